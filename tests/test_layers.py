"""The layering the README draws is the code's: import-linter's contracts in pyproject.toml
(arrows only downward, web -> play -> {ai, store} -> {world, cards}; no cycles in any package;
data access only through the store, so game.play imports no SQLAlchemy), checked on the real
tree, and shown to catch an upward import, a cycle and SQLAlchemy in play when one is added."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter on the `game` package found in `project`, with its pyproject.toml."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", "pyproject.toml", "--no-cache"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(project)},
    )


def test_the_game_keeps_its_layers_and_has_no_cycles() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def lint_with_line(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    """Run import-linter on a copy of the tree with `line` added at the end of `module`."""
    shutil.copytree(ROOT / "game", tmp_path / "game", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with (tmp_path / "game" / module).open("a") as source:
        source.write(f"\n{line}\n")
    return lint_imports(tmp_path)


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        # the store reaching up into the web layer
        ("store/db.py", "import game.web.urls", "game.store is not allowed to import game.web"),
        # type-only counts: the narrator port naming play's types
        (
            "ai/provider.py",
            "if TYPE_CHECKING:\n    from game.play.live import LiveTurn",
            "game.ai is not allowed to import game.play",
        ),
        # a cycle inside one package: the client module importing the provider that imports it
        ("ai/client.py", "from game.ai import openai_compat", "No cycles are allowed in game.ai"),
    ],
)
def test_an_upward_import_or_a_cycle_breaks_the_contracts(
    tmp_path: Path, module: str, line: str, expected: str
) -> None:
    result = lint_with_line(tmp_path, module, line)
    assert result.returncode != 0
    assert expected in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("module", "line"),
    [
        # a statement built in play instead of asking the store
        ("play/art.py", "from sqlalchemy import select, update"),
        # a submodule, from a module of a subpackage
        ("play/transfer/export.py", "import sqlalchemy.orm"),
        # type-only counts: a session type named in the turn pipeline
        (
            "play/turns/stop.py",
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from sqlalchemy.ext.asyncio import AsyncSession",
        ),
    ],
)
def test_sqlalchemy_in_play_breaks_the_store_contract(
    tmp_path: Path, module: str, line: str
) -> None:
    result = lint_with_line(tmp_path, module, line)
    assert result.returncode != 0
    assert "game.play is not allowed to import sqlalchemy" in result.stdout, result.stdout
    assert "2 kept, 1 broken" in result.stdout, result.stdout  # only the store contract
