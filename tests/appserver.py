"""Real app servers on 127.0.0.1 (each with its own temp database) and players talking to them.

Tests talk to the game over HTTP exactly as a browser does: cookies, CSRF tokens, SSE.
"""

from __future__ import annotations

import html
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from game.__main__ import server_options
from game.app import create_app
from game.settings import Settings, load_settings
from tests.databases import database_env

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """An app server on 127.0.0.1: `python -m game` as a process of its own or, `in_process`,
    the app that `create_app` builds from the same variables, served by uvicorn on a thread
    of the test process (no interpreter start and no imports: about ten times faster to start).

    A test that kills the process, reads its log or runs several processes needs the former.
    """

    url: str
    data_dir: Path
    env: dict[str, str]
    in_process: bool = False
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    _uvicorn: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def start(self, timeout: float = 60) -> Server:
        if self.in_process:
            return self._start_thread(timeout)
        assert self.log_path is not None
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "game"], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            try:
                httpx.get(self.url + "/about", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.log_path.read_text()}")

    def _start_thread(self, timeout: float) -> Server:
        settings = settings_from_env(self.env)
        config = uvicorn.Config(create_app(settings), **server_options(settings))  # type: ignore[arg-type]
        self._uvicorn = server = uvicorn.Server(config)
        self._thread = threading.Thread(target=server.run, name=self.url, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive():
                raise RuntimeError(
                    f"server {self.url} exited early (its lines are in the test log)"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"server {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Send the process `sig`; a server in this process always stops as on SIGTERM (its
        shutdown closes the database connections, which would otherwise outlive its loop)."""
        if self._thread is not None and self._uvicorn is not None:
            self._uvicorn.should_exit = True
            self._thread.join(30)
            self._thread = self._uvicorn = None
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        """What the server process wrote (an in-process server has no log of its own)."""
        assert not self.in_process, "read the log of a server process (make_server(...))"
        return self.log_path.read_text() if self.log_path else ""

    def database(self) -> dict[str, str]:
        """The variable naming this server's database, for commands run against it."""
        return {
            k: v for k, v in self.env.items() if k in ("CHATGAME_DB_PATH", "CHATGAME_DATABASE_URL")
        }


def read_events(
    response: httpx.Response, max_events: int | None = None
) -> list[tuple[str, str, str]]:
    """Server-sent events of a streamed response: (event, id, data) until `done`/max_events."""
    events: list[tuple[str, str, str]] = []
    event, ident, data = "message", "", []
    for line in response.iter_lines():
        if line == "":
            if data or event != "message":
                events.append((event, ident, "\n".join(data)))
                if event == "done" or (max_events and len(events) >= max_events):
                    break
            event, ident, data = "message", "", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("id:"):
            ident = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip(" "))
    return events


def app_env(tmp: Path) -> dict[str, str]:
    """The CHATGAME_* variables that give an app under test its own database and files, an
    instant mock narrator and a secret key."""
    return {
        **database_env(tmp),
        "CHATGAME_IMAGE_DIR": str(tmp / "images"),
        "CHATGAME_MOCK_DELAY_MS": "0",
        "CHATGAME_SECRET_KEY": "test-secret-" + tmp.name,
    }


def settings_from_env(env: dict[str, str], **overrides: object) -> Settings:
    """The settings `python -m game` would read from these variables (and no .env file)."""
    values: dict[str, object] = {
        name.removeprefix("CHATGAME_").lower(): value
        for name, value in env.items()
        if name.startswith("CHATGAME_")
    }
    return load_settings(_env_file=None, **(values | overrides))


def app_settings(tmp: Path, **overrides: object) -> Settings:
    """Settings for an app built in this process (`create_app`), from `app_env`."""
    return settings_from_env(app_env(tmp), **overrides)


def make_server(tmp: Path, *, in_process: bool = False, **env: str) -> Server:
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHATGAME_")}
    base |= {"CHATGAME_PORT": str(port), **app_env(tmp)} | env
    return Server(
        url=f"http://127.0.0.1:{port}",
        data_dir=tmp,
        env=base,
        in_process=in_process,
        log_path=tmp / "server.log",
    )


_CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')


@dataclass
class Player:
    """One browser's worth of cookies, talking to a server over HTTP."""

    server: Server
    client: httpx.Client = field(init=False)
    _csrf: str = ""

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.server.url, timeout=30, follow_redirects=False)

    def get(self, path: str, **kw) -> httpx.Response:  # type: ignore[no-untyped-def]
        return self.client.get(path, **kw)

    def csrf(self) -> str:
        """This player's CSRF token, as a page shows it (it is bound to the player cookie)."""
        if not self._csrf or "arcadia_player" not in self.client.cookies:
            page = self.get("/games/new")
            if page.status_code != 200:  # locked by the password: the login page has it too
                page = self.get("/login")
            self._csrf = _CSRF_FIELD.search(page.text).group(1)  # type: ignore[union-attr]
        return self._csrf

    def post(
        self, path: str, data: dict | None = None, *, htmx: bool = False, csrf: bool = True
    ) -> httpx.Response:
        form = dict(data or {})
        if csrf:
            form["_csrf_token"] = self.csrf()
        headers = {"HX-Request": "true"} if htmx else {}
        return self.client.post(path, data=form, headers=headers)

    def new_game(
        self,
        world: str = "lantern-isles",
        route: str = "the-drowned-bell",
        cast: str = "wren-halloway",
        name: str = "Mara Quill",
        origin: str = "",
    ) -> str:
        response = self.post(
            "/games",
            {"world": world, "route": route, "cast": cast, "player_name": name, "origin": origin},
        )
        assert response.status_code == 303, response.text
        return response.headers["location"].rsplit("/", 1)[1]

    def stream(
        self,
        game_id: str,
        message_id: str,
        offset: int = 0,
        last_event_id: str | None = None,
        max_events: int | None = None,
    ) -> list[tuple[str, str, str]]:
        """Read a turn's SSE stream: a list of (event, id, data) until `done` or max_events."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        url = f"/games/{game_id}/messages/{message_id}/stream"
        with self.client.stream("GET", url, params={"offset": offset}, headers=headers) as resp:
            assert resp.status_code == 200, resp.read()
            return read_events(resp, max_events)

    def post_events(self, path: str, data: dict) -> list[tuple[str, str, str]]:
        """Post a turn as the page's script does (asking for events); the response's events."""
        form = dict(data) | {"_csrf_token": self.csrf()}
        headers = {"HX-Request": "true", "Accept": "text/event-stream"}
        with self.client.stream("POST", path, data=form, headers=headers) as resp:
            assert resp.status_code == 200, resp.read()
            assert resp.headers["content-type"].startswith("text/event-stream")
            return read_events(resp)

    def play_page(self, game_id: str) -> str:
        response = self.get(f"/games/{game_id}")
        assert response.status_code == 200, response.text
        return response.text

    def head_id(self, game_id: str) -> str:
        """The id of the newest narrator message on the play page."""
        ids = re.findall(
            r'<article class="msg msg--narrator[^"]*" id="msg-([0-9a-f]+)"', self.play_page(game_id)
        )
        return ids[-1]

    def finish_turn(self, game_id: str) -> str:
        """Follow the newest turn's stream to the end; returns the finished narration as text."""
        message_id = self.head_id(game_id)
        events = self.stream(game_id, message_id)
        assert events[-1][0] == "done"
        fragment = self.get(f"/games/{game_id}/messages/{message_id}").text
        narration = fragment.split('<div class="narration">', 1)[1].split("</div>", 1)[0]
        return html.unescape(re.sub(r"<[^>]+>", "\n", narration)).strip()


@dataclass
class FakeBackend:
    """The fake OpenAI-compatible server (tests/fake_openai.py) running on 127.0.0.1."""

    url: str
    process: subprocess.Popen | None = None

    def base_url(self, profile: str) -> str:
        return f"{self.url}/{profile}/v1"

    def script(self, profile: str, **behaviour: object) -> None:
        """Queue how the profile answers its next (non-probe) chat request."""
        httpx.post(f"{self.url}/_control/script", json={"profile": profile, **behaviour})

    def log(self, profile: str | None = None, route: str | None = None) -> list[dict]:
        records = httpx.get(f"{self.url}/_control/log").json()
        return [
            r
            for r in records
            if (profile is None or r["profile"] == profile)
            and (route is None or r["route"] == route)
        ]

    def turn_requests(self, profile: str) -> list[dict]:
        """The chat requests the game sent for turns (not the capability probe)."""
        return [r for r in self.log(profile, "/chat/completions") if not r.get("probe")]

    def reset(self) -> None:
        httpx.post(f"{self.url}/_control/reset")


def start_fake_backend(log_path: Path, delay_ms: float = 3.0) -> FakeBackend:
    port = free_port()
    backend = FakeBackend(url=f"http://127.0.0.1:{port}")
    with log_path.open("ab") as log:
        backend.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fake_openai",
                "--port",
                str(port),
                "--delay-ms",
                str(delay_ms),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=log,
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{backend.url}/_control/log", timeout=1)
            return backend
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("fake backend did not start")


def run_game(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run `python -m game ARGS` to completion with only PATH and the given variables."""
    return subprocess.run(
        [sys.executable, "-m", "game", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def start_live_server(
    tmp: Path, backend: FakeBackend, profile: str, *, in_process: bool = True, **env: str
) -> Server:
    """A game in live mode pointed at one profile of the fake backend (in this process unless
    the test needs a process of its own)."""
    settings = {
        "CHATGAME_OPENAI_BASE_URL": backend.base_url(profile),
        "CHATGAME_OPENAI_API_KEY": "sk-test-key",
        "CHATGAME_READ_TIMEOUT": "3",
        **env,
    }
    return make_server(tmp, in_process=in_process, **settings).start()
