"""Fault-test fixtures: bridge processes that never outlive their test, the emulated platform, a company."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bridge.emulator import RunningEmulator, run_emulator
from bridge.testing.telegram import FakeTelegram, run_fake_telegram
from tests.faults.harness import Company, Fleet, silent_platform


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    fleet = Fleet(tmp_path)
    try:
        yield fleet
    finally:
        await fleet.close()


@pytest.fixture
async def platform() -> AsyncIterator[RunningEmulator]:
    async with run_emulator(silent_platform()) as emulator:
        yield emulator


@pytest.fixture
async def company() -> AsyncIterator[Company]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield Company(client)


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with run_fake_telegram() as fake:
        yield fake
