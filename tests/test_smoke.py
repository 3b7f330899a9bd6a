"""`omnichannel-bridge smoke` as a process, against a running bridge and the platform emulator."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.app import create_app
from bridge.config import load_config
from bridge.emulator import EmulatorChannel, EmulatorConfig, RunningEmulator, run_emulator
from bridge.plugins import discover_adapters
from bridge.testing.server import serve
from tests.conftest import free_port

PLATFORM_TOKEN = "smoke-platform-token-01"
REPLY_TOKEN = "smoke-reply-token-0123456789"
URL_SECRET = "smoke-url-secret-0123456789"


def write_config(path: Path, *, webhook_url: str, port: int, reply_token: str = REPLY_TOKEN) -> Path:
    path.write_text(
        f"""
server: {{host: 127.0.0.1, port: {port}, public_url: "http://127.0.0.1:{port}"}}
store: {{url: "sqlite:///{path.parent}/bridge.db"}}
channels:
  - id: web
    platform:
      webhook_url: "{webhook_url}"
      token: "{reply_token}"
      url_secret: "{URL_SECRET}"
    adapter: {{type: webchat}}
""",
        encoding="utf-8",
    )
    return path


@dataclass
class Setup:
    emulator: RunningEmulator
    config_path: Path
    port: int


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Setup]:
    port = free_port()
    async with run_emulator(EmulatorConfig()) as emulator:
        emulator.set_channel(
            EmulatorChannel(
                token=PLATFORM_TOKEN, reply_url=f"http://127.0.0.1:{port}/channels/web", reply_token=REPLY_TOKEN
            )
        )
        path = write_config(tmp_path / "config.yaml", webhook_url=emulator.webhook_url(PLATFORM_TOKEN), port=port)
        app = create_app(load_config(path, discover_adapters()))
        async with serve(app, port=port):
            yield Setup(emulator, path, port)


async def smoke(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        "smoke",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode()


async def test_all_good(running: Setup) -> None:
    code, out = await smoke("-c", str(running.config_path))
    assert code == 0, out
    assert "ok       bridge alive" in out
    assert "ok       bridge ready" in out
    assert "ok       web: reply endpoint (header mode): authenticates" in out
    assert "ok       web: reply endpoint (secret-URL mode): authenticates" in out
    assert "ok       web: platform webhook" in out
    assert "smoke: 5 of 5 checks ok" in out
    # Nothing reached the agent: the smoke event is one the platform ignores.
    received = running.emulator.received()
    assert [r.outcome for r in received] == ["ignored"]
    assert running.emulator.replies() == []
    assert PLATFORM_TOKEN not in out and REPLY_TOKEN not in out and URL_SECRET not in out


async def test_wrong_platform_token_is_named(running: Setup, tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "other.yaml", webhook_url=running.emulator.webhook_url("not-a-channel-token"), port=running.port
    )
    code, out = await smoke("-c", str(path))
    assert code == 1
    assert "PROBLEM  web: platform webhook" in out
    assert "the agent channel is inactive or the token in webhook_url is wrong" in out


async def test_credential_the_bridge_does_not_have(running: Setup, tmp_path: Path) -> None:
    path = write_config(
        tmp_path / "other.yaml",
        webhook_url=running.emulator.webhook_url(PLATFORM_TOKEN),
        port=running.port,
        reply_token="a-token-the-bridge-does-not-use",
    )
    code, out = await smoke("-c", str(path), "--skip-platform")
    assert code == 1
    assert "PROBLEM  web: reply endpoint (header mode): the configured credential was refused (401" in out
    assert "ok       web: reply endpoint (secret-URL mode)" in out


async def test_bridge_not_running(tmp_path: Path) -> None:
    port = free_port()
    path = write_config(tmp_path / "config.yaml", webhook_url="http://127.0.0.1:9/x", port=port)
    code, out = await smoke("-c", str(path), "--timeout", "2")
    assert code == 1
    assert f"PROBLEM  bridge alive: http://127.0.0.1:{port}/healthz: connection refused" in out
    assert "PROBLEM  web: platform webhook" in out


async def test_bad_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("channels: [{id: web}]\n", encoding="utf-8")
    code, out = await smoke("-c", str(path))
    assert code == 2
    assert "channels[0]" in out
