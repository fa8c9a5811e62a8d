"""The application factory: wires settings, database, content, AI provider and web routes."""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

from litestar import Litestar
from litestar.datastructures import State
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from game.ai.backend import make_backend
from game.ai.provider import Provider
from game.bulk import GIL_SWITCH_SECONDS, freeze_startup
from game.play.art import ArtService
from game.play.backends import BackendService
from game.play.deletion import GameDeleter
from game.play.fanout import TurnFanout
from game.play.live import TurnHub
from game.play.memory import MemoryKeeper
from game.play.prompts import ContextBudget
from game.play.turns import TurnService
from game.settings import PROJECT_ROOT, Settings, SettingsError, load_settings
from game.store.db import asyncpg_dsn, make_engine, make_sessionmaker, migrate
from game.store.instances import Instance
from game.store.private_files import private_dir, write_private
from game.web import (
    art_pages,
    characters,
    errors,
    health,
    login,
    pages,
    play,
    story,
    workbench,
)
from game.web.csrf import PlayerCSRF
from game.web.dependencies import DEPENDENCIES
from game.web.headers import security_headers
from game.web.hosts import HostGuard, HostPolicy
from game.web.players import player_middleware
from game.web.ratelimit import rate_limits
from game.web.templating import configure_environment
from game.world.catalog import Catalog, load_catalog

log = logging.getLogger("game")


def secret_key(settings: Settings) -> str:
    """CHATGAME_SECRET_KEY, or a random key kept beside the database so cookies survive restarts."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.db_path.parent / "secret_key"
    private_dir(path.parent)
    if not path.exists():
        write_private(path, secrets.token_hex(32).encode())
    return path.read_text().strip()


@dataclass
class Services:
    """The process-wide objects: made once per app, started and stopped with it."""

    settings: Settings
    catalog: Catalog
    engine: AsyncEngine
    sessions: async_sessionmaker
    instance: Instance
    provider: Provider
    backends: BackendService
    art: ArtService
    turns: TurnService
    deleter: GameDeleter
    fanout: TurnFanout | None

    @classmethod
    def build(cls, settings: Settings) -> Services:
        """Make every service from the settings (nothing is started or connected yet)."""
        catalog = load_catalog(settings.content_dir)
        provider, painter = make_backend(settings)
        engine = make_engine(settings)
        sessions = make_sessionmaker(engine)
        instance = Instance(engine)
        art = ArtService(
            sessions, painter, settings.image_dir, settings.image_concurrency, instance=instance
        )
        hub = TurnHub()
        fanout = TurnFanout(asyncpg_dsn(settings.sqlalchemy_url), hub) if instance.shared else None
        # What one request may fill: the setting, or less where the backend says so.
        context = ContextBudget(settings.context_tokens, provider, settings.reply_tokens)
        turns = TurnService(
            sessions=sessions,
            catalog=catalog,
            provider=provider,
            hub=hub,
            max_action_chars=settings.max_action_chars,
            max_model_calls=settings.max_model_calls,
            context=context,
            art=art,
            instance=instance,
            fanout=fanout,
            memory=MemoryKeeper(sessions, catalog, provider, context),
        )
        if fanout is not None:
            fanout.on_stop = turns.stop_here
        backends = BackendService(sessions, settings)
        deleter = GameDeleter(sessions, art)
        return cls(
            settings,
            catalog,
            engine,
            sessions,
            instance,
            provider,
            backends,
            art,
            turns,
            deleter,
            fanout,
        )

    async def start(self) -> asyncio.Task:
        """Migrate, recover what the last run left, start the workers; returns the task that
        repeats the chores when processes share the database."""
        logging.getLogger("alembic").setLevel(logging.WARNING)
        sys.setswitchinterval(GIL_SWITCH_SECONDS)  # the event loop first (see game.bulk)
        await migrate(self.engine)
        await self.instance.start()
        if self.fanout is not None:
            await self.fanout.start()
        chores: list[Callable[[], Awaitable[int | None]]] = [self.turns.recover_interrupted]
        if self.provider.live:
            await self.backends.load_or_probe(self.provider)
            apply_models = partial(self.backends.apply_models, self.provider, self.art.painter)
            await apply_models()
            chores.append(apply_models)
        if recovered := await self.turns.recover_interrupted():
            log.warning("marked %d turn(s) interrupted by the last shutdown", recovered)
        if self.settings.in_app_worker:
            if requeued := await self.art.recover():
                log.warning("%d scene picture(s) were being painted at the last shutdown", requeued)
            self.art.start()
            chores.append(self.art.recover)
        self.deleter.wake()  # finishes deletes a restart interrupted
        freeze_startup()  # no full collection looks at start-up's objects again (game.bulk)
        return asyncio.create_task(self.instance.watch(*chores), name="shared-database-chores")

    async def stop(self) -> None:
        """Save running turns as interrupted and let go of every connection."""
        await self.deleter.stop()
        await self.art.stop()
        if saved := await self.turns.shutdown():
            log.warning("shutting down: saved %d running turn(s) as interrupted", saved)
        if self.fanout is not None:
            await self.fanout.close()
        await self.instance.stop()
        await self.engine.dispose()
        await self.provider.close()

    @asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        """The app's lifespan: started before the first request, stopped after the last."""
        chores = await self.start()
        try:
            yield
        finally:
            chores.cancel()
            await self.stop()


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the Litestar app. Everything process-wide lives on `app.state`."""
    settings = settings or load_settings()
    if problem := settings.bind_problem():
        raise SettingsError(problem)
    services = Services.build(settings)
    key = secret_key(settings)
    template_engine = JinjaTemplateEngine(directory=PROJECT_ROOT / "templates")
    configure_environment(template_engine.engine, settings)
    return Litestar(
        route_handlers=[
            *pages.handlers,
            *play.handlers,
            *story.handlers,
            *art_pages.handlers,
            *workbench.handlers,
            *login.handlers,
            *health.handlers,
            *characters.handlers,
            *characters.upload_handlers(settings.max_upload_bytes),
            create_static_files_router(
                path="/static",
                directories=[PROJECT_ROOT / "static"],
                name="static",
                cache_control=None,
                opt=login.PUBLIC,
            ),
        ],
        dependencies=DEPENDENCIES,  # the request's unit of work (game/web/dependencies.py)
        lifespan=[services.lifespan],
        # outermost first: a foreign Host is refused before anything else (no cookie is set);
        # the login gate and the per-player limits need the player id
        middleware=[
            HostGuard(HostPolicy(settings)),
            player_middleware(key, settings.secure_cookies),
            *([login.LoginGate(key, settings.password)] if settings.password else []),
            PlayerCSRF(key),
            *rate_limits(settings),
        ],
        before_send=[security_headers(settings)],
        plugins=[HTMXPlugin()],  # every request an HTMXRequest: `request.htmx` (sent by htmx?)
        template_config=TemplateConfig(instance=template_engine),
        exception_handlers=errors.handlers,
        logging_config=None,  # `python -m game` logs through a redacting handler; keep it
        state=State(
            {
                "settings": settings,
                "catalog": services.catalog,
                "sessions": services.sessions,
                "turns": services.turns,
                "backends": services.backends,
                "art": services.art,
                "deleter": services.deleter,
                "secret_key": key,
            }
        ),
        request_max_body_size=1024 * 1024,
        debug=False,
    )
