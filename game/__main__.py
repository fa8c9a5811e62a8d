"""Command line: `python -m game` starts the server with the CHATGAME_* settings."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from game.settings import SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m game", description="Arcadia, an LLM roleplay game."
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve"],
        help="what to run (default: serve)",
    )
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2

    if args.command == "serve":
        from game.app import create_app

        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        app = create_app(settings)
        print(
            f"Arcadia ({settings.ai_mode} mode) on http://{settings.host}:{settings.port}",
            flush=True,
        )
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            timeout_graceful_shutdown=10,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
