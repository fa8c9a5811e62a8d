"""Command line: `python -m game` starts the server with the CHATGAME_* settings."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

import uvicorn

from game.redact import RedactingFormatter, mask_url
from game.settings import Settings, SettingsError, load_settings


def doctor(settings: Settings) -> int:
    """Probe the configured backend and print what it can do."""
    from game.ai.capabilities import run_probe

    if not settings.openai_base_url:
        print("No backend configured (CHATGAME_OPENAI_BASE_URL is empty): the mock narrator plays.")
        return 0
    shown = mask_url(settings.public_openai_base_url or settings.openai_base_url)
    print(f"Probing {shown} (chat model {settings.chat_model!r}) ...", flush=True)
    caps = run_probe(
        settings.openai_base_url, settings.openai_api_key, settings.chat_model, settings.image_model
    )
    rows = [("Capability", "Result", "Detail"), *caps.rows()]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for name, result, detail in rows:
        print(f"{name:<{widths[0]}}  {result:<{widths[1]}}  {detail}".rstrip())
    return 0 if caps.streaming else 1


async def run_worker(settings: Settings) -> None:
    """Paint scene pictures in this process until SIGTERM/SIGINT (the app can then skip it)."""
    from game.ai.backend import make_backend
    from game.play.art import ArtService
    from game.store.db import make_engine, make_sessionmaker, migrate
    from game.store.instances import Instance

    engine = make_engine(settings)
    await migrate(engine)
    instance = Instance(engine)
    await instance.start()
    provider, painter = make_backend(settings)
    art = ArtService(
        make_sessionmaker(engine),
        painter,
        settings.image_dir,
        settings.image_concurrency,
        instance=instance,
    )
    await art.recover()
    watcher = asyncio.create_task(instance.watch(art.recover))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    art.start()
    print(
        f"Arcadia worker: painting up to {settings.image_concurrency} picture(s) at once",
        flush=True,
    )
    await stop.wait()
    watcher.cancel()
    await art.stop()  # a picture in progress goes back to the queue
    await instance.stop()
    await engine.dispose()
    await provider.close()


async def run_seed(settings: Settings, games: int, turns: int, player: str) -> int:
    """Fill the database with mock games for `player` (a new player id when empty)."""
    import secrets
    import time

    from game.play.seed import seed
    from game.store.db import make_engine, make_sessionmaker, migrate
    from game.world.catalog import load_catalog

    player = player or secrets.token_hex(16)
    engine = make_engine(settings)
    await migrate(engine)
    started = time.perf_counter()
    ids = await seed(
        make_sessionmaker(engine),
        load_catalog(settings.content_dir),
        player,
        games,
        turns,
        settings.context_tokens,
    )
    await engine.dispose()
    print(
        f"seeded {len(ids)} games of {turns} turns for player {player} "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return 0


KEEP_ALIVE_SECONDS = 75


def proxy_options(settings: Settings) -> dict[str, object]:
    """Believe X-Forwarded-For/-Proto only from CHATGAME_TRUSTED_PROXIES (none by default).

    Uvicorn would otherwise trust them from 127.0.0.1, so any local process could pose as
    any address (and walk past the login throttle) or as https.
    """
    trusted = settings.trusted_proxy_list
    if not trusted:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": trusted}


def server_options(settings: Settings) -> dict[str, object]:
    """How uvicorn serves the app (`serve`, and the test suite's servers in one process)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "log_level": "warning",
        "log_config": None,  # uvicorn's lines go through our redacting handler
        **proxy_options(settings),
        "timeout_graceful_shutdown": 10,
        # Longer than clients keep idle connections (httpx: 5 s), so a client never sends
        # on a connection the server is closing (uvicorn's default 5 s raced it: ReadError
        # on a turn posted after a turn longer than 5 s, seen under load).
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
    }


def setup_logging(settings: Settings) -> None:
    """Log lines to stderr, with the key, the passwords and URL credentials masked."""
    secrets = [
        settings.openai_api_key,
        settings.password,
        settings.operator_password,
        settings.secret_key,
    ]
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(levelname)s %(name)s: %(message)s", secrets))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    # The SDK's HTTP client logs a line per model request, with the base URL as configured
    # (credentials included): not worth a line, and not a thing to write down.
    logging.getLogger("httpx2").setLevel(logging.WARNING)


def serve(settings: Settings, reload: bool = False) -> int:
    """Run the game's web server until stopped (with `reload`: restart on code changes)."""
    from game.app import create_app

    if problem := settings.bind_problem():
        print(problem, file=sys.stderr)
        return 2
    setup_logging(settings)
    if reload:  # developer mode: code, templates, static files and content reload
        print(f"Arcadia (reloading) on http://{settings.host}:{settings.port}", flush=True)
        uvicorn.run(
            "game.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            log_config=None,  # uvicorn's lines go through our redacting handler
            **proxy_options(settings),
            reload=True,
            reload_dirs=["game", "templates", "static"],
            reload_includes=["*.py", "*.html", "*.css", "*.js", "*.toml", "*.j2"],
        )
        return 0
    app = create_app(settings)
    print(
        f"Arcadia ({settings.ai_mode} mode) on http://{settings.host}:{settings.port}",
        flush=True,
    )
    uvicorn.run(app, **server_options(settings))  # type: ignore[arg-type]
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m game", description="Arcadia, an LLM roleplay game."
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "doctor", "worker", "seed"],
        help="what to run (default: serve)",
    )
    parser.add_argument("--reload", action="store_true", help="serve: restart on code changes")
    parser.add_argument("--games", type=int, default=10, help="seed: how many games")
    parser.add_argument("--turns", type=int, default=20, help="seed: turns per game")
    parser.add_argument(
        "--player", default="", help="seed: the player id to own them (see /about); default: new"
    )
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2

    if args.command == "doctor":
        return doctor(settings)
    if args.command == "worker":
        setup_logging(settings)
        asyncio.run(run_worker(settings))
        return 0
    if args.command == "seed":
        return asyncio.run(run_seed(settings, args.games, args.turns, args.player))
    if args.command == "serve":
        return serve(settings, reload=args.reload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
