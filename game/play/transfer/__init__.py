"""Export a game (a Markdown transcript of the branch, or the whole tree as JSON) and import it.

The JSON holds everything the game is: its fields (for a card game or an imported chat also
the card, the persona and the attached lorebooks), every message of the tree with its state
snapshot, choices, scene, memory, lore fired and chat metadata. Importing it makes a new game
for the importing player with new ids and the identical tree. Imported files are untrusted:
they are validated here (cards and lorebooks as a card or lorebook import would be) and
rendered escaped like any model output.

- `format.py`: the export's format (pydantic models) and its limits.
- `export.py`: writing a game out, a chunk at a time.
- `importing.py`: checking an upload and making the game from it.
"""

from game.play.transfer.export import json_export, markdown_transcript
from game.play.transfer.format import MAX_IMPORT_BYTES
from game.play.transfer.importing import import_export

__all__ = [
    "MAX_IMPORT_BYTES",
    "import_export",
    "json_export",
    "markdown_transcript",
    "parse_export",
]
