"""compose.yaml and the Dockerfile, checked without a Docker engine.

compose.yaml is validated against the Compose Specification's JSON schema (tests/data/
compose-spec.json, vendored from check-jsonschema 0.39.0, Apache-2.0: LICENSE.compose-spec),
before and after `${VAR}` interpolation, and the app's resolved environment is loaded through
the game's own settings.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from game.settings import Settings, load_settings
from tests.appserver import ROOT

SCHEMA = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
_VAR = re.compile(r"\$(?:\$|\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution: $$, ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}, ${VAR?error}."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        if name is None:
            return "$"
        unset = name not in env or (op.startswith(":") and env[name] == "")
        if unset and op.endswith("-"):
            return arg
        if unset and op.endswith("?"):
            raise ValueError(f"{name}: {arg}")
        return env.get(name, "")

    return _VAR.sub(substitute, value)


def validate(document: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(document)


def test_compose_file_follows_the_compose_specification() -> None:
    validate(compose())
    validate(interpolate(compose(), {"CHATGAME_PASSWORD": "s3cret"}))


def test_the_schema_check_catches_mistakes() -> None:
    broken = compose()
    broken["services"]["app"]["healthcheck"]["intervall"] = "5s"
    with pytest.raises(jsonschema.ValidationError, match="intervall"):
        validate(broken)
    broken = compose()
    broken["services"]["app"]["depends_on"]["postgres"]["condition"] = "service_ready"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


def test_every_service_is_health_checked_or_waits_for_healthy_dependencies() -> None:
    services = compose()["services"]
    assert {"app", "worker", "postgres", "llm"} <= services.keys()
    for name, service in services.items():
        waits = service.get("depends_on", {})
        assert "healthcheck" in service or (
            waits and all(dep.get("condition") == "service_healthy" for dep in waits.values())
        ), name
        for dependency in waits:
            assert dependency in services, (name, dependency)
    assert services["postgres"]["healthcheck"]["test"][1].startswith("pg_isready")
    assert "/healthz" in " ".join(services["app"]["healthcheck"]["test"])


def test_named_volumes_are_declared_and_shared_where_needed() -> None:
    document = compose()
    declared = set(document["volumes"])
    used: dict[str, set[str]] = {}
    for name, service in document["services"].items():
        for volume in service.get("volumes", []):
            if isinstance(volume, str) and not volume.startswith((".", "/", "$")):
                used.setdefault(volume.split(":", 1)[0], set()).add(name)
    assert set(used) == declared
    assert used["images"] == {"app", "worker"}  # the worker paints what the app serves
    assert used["pgdata"] == {"postgres"}


def _app_environment(env: dict[str, str]) -> dict[str, str]:
    resolved = interpolate(compose(), env)
    return {k: str(v) for k, v in resolved["services"]["app"]["environment"].items()}


def test_the_app_service_is_a_valid_lan_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="CHATGAME_PASSWORD"):
        _app_environment({})  # compose refuses to start without a password, as the game does
    app_env = _app_environment({"CHATGAME_PASSWORD": "s3cret"})
    fields = {f"CHATGAME_{name.upper()}" for name in Settings.model_fields}
    assert set(app_env) <= fields, set(app_env) - fields  # no misspelt setting

    monkeypatch.chdir(ROOT / "tests")  # no .env
    for name, value in app_env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.host == "0.0.0.0" and settings.bind_problem() is None
    assert settings.sqlalchemy_url.startswith("postgresql+asyncpg://arcadia:arcadia@postgres")
    assert settings.in_app_worker is False
    assert settings.ai_mode == "mock"


def test_the_worker_runs_the_worker_command_on_the_same_database() -> None:
    services = interpolate(compose(), {"CHATGAME_PASSWORD": "x"})["services"]
    assert services["worker"]["command"] == ["python", "-m", "game", "worker"]
    assert services["worker"]["image"] == services["app"]["image"]
    worker_env, app_env = services["worker"]["environment"], services["app"]["environment"]
    assert worker_env["CHATGAME_DATABASE_URL"] == app_env["CHATGAME_DATABASE_URL"]
    assert worker_env["CHATGAME_IMAGE_DIR"] == app_env["CHATGAME_IMAGE_DIR"]
    assert "CHATGAME_PASSWORD" not in worker_env


def test_the_llm_profile_serves_a_model_the_app_can_point_at() -> None:
    env = {"CHATGAME_PASSWORD": "x", "CHATGAME_OPENAI_BASE_URL": "http://llm:8080/v1"}
    services = interpolate(compose(), env)["services"]
    llm = services["llm"]
    assert llm["profiles"] == ["llm"]
    assert llm["image"].startswith("ghcr.io/ggml-org/llama.cpp:server")
    port = llm["command"][llm["command"].index("--port") + 1]
    assert services["app"]["environment"]["CHATGAME_OPENAI_BASE_URL"] == f"http://llm:{port}/v1"
    assert llm["volumes"][0]["target"] == "/models"
    assert services["app"]["depends_on"]["llm"]["required"] is False  # off without the profile


def _dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_builds_a_non_root_image_of_the_game() -> None:
    instructions = _dockerfile()
    assert instructions[0] == ("FROM", "python:3.12-slim")
    kinds = [kind for kind, _ in instructions]
    assert kinds.count("USER") == 1 and kinds.index("USER") < kinds.index("CMD")
    assert dict(instructions)["USER"] not in ("root", "0")
    assert ("EXPOSE", "3000") in instructions
    assert json.loads(dict(instructions)["CMD"]) == ["python", "-m", "game"]

    ignored = (ROOT / ".dockerignore").read_text().split()
    copied = []
    for kind, args in instructions:
        if kind == "COPY":
            copied += shlex.split(args)[:-1]
    for source in copied:
        assert (ROOT / source).exists(), source
        assert source not in ignored, source
    # what the running game reads from beside the package (game.settings.PROJECT_ROOT)
    assert {"game", "templates", "static", "pyproject.toml", "README.md"} <= set(copied)


def test_container_paths_match_the_game_defaults() -> None:
    """The volumes sit where the game keeps its key and pictures when run from /app."""
    defaults = Settings.model_fields
    app = compose()["services"]["app"]
    image_dir = app["environment"]["CHATGAME_IMAGE_DIR"]
    assert image_dir == "/app/" + str(Path(str(defaults["image_dir"].default)).relative_to(ROOT))
    key_dir = Path(str(defaults["db_path"].default)).parent.relative_to(ROOT)
    assert f"data:/app/{key_dir}" in " ".join(app["volumes"])
    assert f"images:{image_dir}" in app["volumes"]
