"""Fixtures for the Telegram adapter: the fake Bot API server, a real SQLite store, a recording core."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.telegram import TelegramAdapter, TelegramConfig
from bridge.adapter import AdapterContext, NotTakenOver
from bridge.messages import Inbound
from bridge.store.keyvalue import StoreKeyValue
from bridge.store.sqlite import SqliteStore
from bridge.testing.telegram import FakeTelegram, run_fake_telegram


class Core:
    """Stands in for the bridge core behind `AdapterContext.submit`: records what was taken over and
    refuses on demand, which is the whole contract an adapter sees."""

    def __init__(self) -> None:
        self.taken: list[Inbound] = []
        self.attempts: list[Inbound] = []
        self.refuse: Callable[[Inbound], bool] = lambda _inbound: False
        self.dropped: list[str] = []
        self._tick = asyncio.Event()

    async def submit(self, inbound: Inbound) -> None:
        self.attempts.append(inbound)
        self._notify()
        if self.refuse(inbound):
            raise NotTakenOver("the store is down")
        self.taken.append(inbound)
        self._notify()

    def drop(self, kind: str) -> None:
        """`AdapterContext.dropped`: what the channel's config said not to forward."""
        self.dropped.append(kind)

    def refuse_once(self, predicate: Callable[[Inbound], bool] = lambda _inbound: True) -> None:
        """Refuse the first inbound message matching `predicate`, then take everything."""
        refused: list[Inbound] = []

        def refuse(inbound: Inbound) -> bool:
            if not refused and predicate(inbound):
                refused.append(inbound)
                return True
            return False

        self.refuse = refuse

    def _notify(self) -> None:
        self._tick.set()
        self._tick = asyncio.Event()

    async def wait_taken(self, count: int, timeout: float = 5.0) -> list[Inbound]:
        async with asyncio.timeout(timeout):
            while len(self.taken) < count:
                await self._tick.wait()
        return self.taken


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with run_fake_telegram() as fake:
        yield fake


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "bridge.db")
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def kv(store: SqliteStore) -> StoreKeyValue:
    return StoreKeyValue(store, "adapter:tg")


@pytest.fixture
def core() -> Core:
    return Core()


def telegram_config(tg: FakeTelegram, **overrides: Any) -> TelegramConfig:
    # Limits too high to matter, so tests never wait on the limiter unless they mean to (it has its own tests).
    return msgspec.convert(tg.adapter_settings(request_timeout=5.0, **overrides), TelegramConfig)


MakeAdapter = Callable[..., Awaitable[TelegramAdapter]]


@pytest.fixture
async def make_adapter(tg: FakeTelegram, kv: StoreKeyValue, core: Core) -> AsyncIterator[MakeAdapter]:
    """Build (and by default start) an adapter against the fake; every adapter is stopped after the test."""
    adapters: list[TelegramAdapter] = []

    async def make(*, start: bool = True, public_url: str | None = None, **overrides: Any) -> TelegramAdapter:
        overrides.setdefault("mode", "polling")
        context = AdapterContext(
            channel_id="tg", submit=core.submit, kv=kv, public_url=public_url, route_prefix="/channels/tg",
            dropped=core.drop,
        )
        adapter = TelegramAdapter(telegram_config(tg, **overrides), context)
        adapters.append(adapter)
        if start:
            await adapter.start()
        return adapter

    yield make
    for adapter in adapters:
        await adapter.stop()


@pytest.fixture
async def adapter(make_adapter: MakeAdapter) -> TelegramAdapter:
    """A started adapter in polling mode."""
    return await make_adapter()
