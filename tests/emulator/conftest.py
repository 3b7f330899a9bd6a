"""A running emulator on loopback whose agent replies to a recording fake bridge, plus a raw HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bridge.emulator import EmulatorChannel, EmulatorConfig, RunningEmulator, run_emulator
from tests.emulator.helpers import FakeBridge

HEADER_TOKEN = "tok-header"
SECRET_TOKEN = "tok-secret"
REPLY_SECRET = "reply-secret-123"


@pytest.fixture
async def fake_bridge() -> AsyncIterator[FakeBridge]:
    async with FakeBridge().serve() as bridge:
        yield bridge


def channels_for(bridge: FakeBridge) -> list[EmulatorChannel]:
    """One header-mode channel and one secret-URL channel, both replying to `bridge`."""
    return [
        EmulatorChannel(token=HEADER_TOKEN, reply_url=f"{bridge.url}/platform/header", reply_token=REPLY_SECRET),
        EmulatorChannel(token=SECRET_TOKEN, reply_url=f"{bridge.url}/platform/secret-abc/"),
    ]


@pytest.fixture
async def platform(fake_bridge: FakeBridge) -> AsyncIterator[RunningEmulator]:
    async with run_emulator(EmulatorConfig(channels=channels_for(fake_bridge))) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
