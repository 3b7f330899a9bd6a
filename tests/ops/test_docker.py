"""The Dockerfile and compose.yaml say what operators rely on (no Docker engine here: they are read, not built)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.app import create_app
from bridge.config import DeliveryConfig, ServerConfig, parse_config
from bridge.direct import DirectHandoff
from bridge.testing.server import serve
from tests.conftest import free_port
from tests.support import RecordingAdapter, channel, make_config

ROOT = Path(__file__).parents[2]
DEFAULT_PORT = ServerConfig().port


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments left out."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


@pytest.fixture(scope="module")
def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions((ROOT / "Dockerfile").read_text(encoding="utf-8")):
        if keyword == "FROM":
            found.append([])
        assert found, "an instruction before the first FROM"
        found[-1].append((keyword, rest))
    return found


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def args(stage: list[tuple[str, str]], keyword: str) -> list[str]:
    return [rest for key, rest in stage if key == keyword]


def test_multi_stage_slim_final_image(stages: list[list[tuple[str, str]]]) -> None:
    assert len(stages) >= 2
    final = stages[-1]
    assert re.match(r"python:3\.\d+-slim\b", args(final, "FROM")[0])
    assert any(rest.startswith("--from=") for rest in args(final, "COPY")), "the final stage copies the build"
    # Only the build stage installs; no test extras anywhere.
    assert not any("pip" in rest for rest in args(final, "RUN"))
    assert not any("[test]" in rest for stage in stages for rest in args(stage, "RUN"))


def test_final_stage_runs_as_an_unprivileged_user(stages: list[list[tuple[str, str]]]) -> None:
    final = stages[-1]
    (user,) = args(final, "USER")
    name = user.split(":")[0]
    assert name not in ("root", "0", "")
    created = " ".join(args(final, "RUN"))
    uid = re.search(rf"useradd\b.*--uid (\d+)\b.*\b{name}\b", created)
    assert uid is not None and int(uid.group(1)) > 0
    # The user comes last: nothing after it runs as root, and the entrypoint runs as the user.
    keywords = [key for key, _ in final]
    assert keywords.index("USER") > max(i for i, key in enumerate(keywords) if key in ("RUN", "COPY"))


def test_port_healthcheck_config_and_data(stages: list[list[tuple[str, str]]]) -> None:
    final = stages[-1]
    assert args(final, "EXPOSE") == [str(DEFAULT_PORT)]
    (health,) = args(final, "HEALTHCHECK")
    assert "/healthz" in health and f"'{DEFAULT_PORT}'" in health
    command = json.loads(args(final, "CMD")[0])
    assert command[0] == "run" and command[command.index("-c") + 1] == "/config/config.yaml"
    assert json.loads(args(final, "ENTRYPOINT")[0]) == ["omnichannel-bridge"]
    assert json.loads(args(final, "VOLUME")[0]) == ["/data"]
    env = " ".join(args(final, "ENV"))
    assert "BRIDGE_STORE_URL=sqlite:////data/" in env, "the SQLite file lands in the data volume"


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv", "tests", "bridge.env"} <= set(ignored)


def test_compose_bridge_and_persistent_redis(compose: dict[str, Any]) -> None:
    services = compose["services"]
    redis = services["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert "healthcheck" in redis

    bridge = services["bridge"]
    assert bridge["build"] == "."
    assert "./config.yaml:/config/config.yaml:ro" in bridge["volumes"]
    assert any(volume.endswith(":/data") for volume in bridge["volumes"])
    assert bridge["env_file"] == ["bridge.env"]
    assert bridge["depends_on"]["redis"]["condition"] == "service_healthy"
    assert bridge["environment"]["BRIDGE_STORE_URL"].startswith("redis://redis:6379/")
    published = [port.rsplit(":", 1)[1] for port in bridge["ports"]]
    assert published == [str(DEFAULT_PORT)] == [bridge["environment"]["PORT"]]
    assert set(compose["volumes"]) == {"bridge-data", "redis-data"}


def test_compose_waits_for_the_graceful_stop(compose: dict[str, Any]) -> None:
    """Docker kills 10 s after SIGTERM unless told otherwise: the bridge must get its whole shutdown grace."""
    grace = compose["services"]["bridge"].get("stop_grace_period", "10s")
    match = re.fullmatch(r"(\d+)s", grace)
    assert match is not None, f"stop_grace_period {grace!r} is not in seconds"
    assert int(match.group(1)) > DeliveryConfig().shutdown_grace + 5


def test_example_config_with_the_env_file_names_runs_in_compose(compose: dict[str, Any]) -> None:
    """config.example.yaml, given every name bridge.env.example lists plus compose's environment, passes the
    config checks (no placeholder left) and uses compose's store and port."""
    environ: dict[str, str] = {}
    for line in (ROOT / "bridge.env.example").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, given = line.partition("=")
            environ[name] = given or f"{name.lower()}-0123456789abcdef"
    services = compose["services"]
    environ.update(services["bridge"]["environment"])
    config = parse_config((ROOT / "config.example.yaml").read_text(encoding="utf-8"), environ=environ)
    assert config.store.url == "redis://redis:6379/0"
    assert config.server.port == DEFAULT_PORT


async def test_healthcheck_command_probes_healthz_on_port(
    stages: list[list[tuple[str, str]]], tmp_path: Path
) -> None:
    """The HEALTHCHECK's own command, run against a real bridge on the port named by PORT, and a closed one."""
    (health,) = args(stages[-1], "HEALTHCHECK")
    command = json.loads(health[health.index("CMD") + 3 :])
    assert command[0] == "python"

    async def probe(port: int) -> int:
        process = await asyncio.create_subprocess_exec(
            sys.executable, *command[1:], env={**os.environ, "PORT": str(port)},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        return await asyncio.wait_for(process.wait(), 30)

    port = free_port()
    webhook = "http://127.0.0.1:9/connector/omnichannel/omnichannel_message/t/bot_api_webhook"
    config = make_config([channel("web", webhook)], store_url=f"sqlite:///{tmp_path}/bridge.db", port=port)
    app = create_app(config, adapters={"recording": RecordingAdapter}, handoff=DirectHandoff())
    async with serve(app, port=port):
        assert await probe(port) == 0
    assert await probe(free_port()) != 0
