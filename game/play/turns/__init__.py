"""Turns: from a player's action to a stored, streamed narrator reply.

- `service.py`: the story-tree commands (post an action, edit, write again, continue, rewind,
  switch alternatives, stop); `TurnService` is what the web layer talks to.
- `plan.py`: where the prompt is built: what a turn builds on, and its model request.
- `run.py`: where a turn is generated: the task that streams the reply and stores the turn.
- `finish.py`: where a finished turn is parsed and its state merged.
- `partials.py`: streaming text saved about once a second (crash safety).
- `stop.py`: Stop, here or in another process, and turns a crash left open.
"""

from game.play.turns.service import RESUMABLE, TurnService

__all__ = ["RESUMABLE", "TurnService"]
