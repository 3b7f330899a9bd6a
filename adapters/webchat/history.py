"""Each visitor's recent conversation, kept in the channel's key-value space so it outlives a reload, a
restart and a visitor who was away when the agent answered.

Bounded to the last `limit` entries per visitor and expired `ttl` seconds after the last change, so a store
does not fill up with visitors who never come back. Writes are read-modify-write of one key: callers serialise
them per visitor with `KeyedLocks` (one process owns a visitor's sockets, so that is the lock that matters).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec

from adapters.webchat.wire import Entry
from bridge.adapter import KeyValue
from bridge.messages import Button

__all__ = ["History", "KeyedLocks", "find_button"]

log = logging.getLogger("adapters.webchat.history")


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it (visitors come and go)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class History:
    def __init__(self, kv: KeyValue, *, limit: int, ttl: float | None) -> None:
        self.kv = kv
        self.limit = limit
        self.ttl = ttl
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(list[Entry])

    @staticmethod
    def _key(visitor: str) -> str:
        return f"history:{visitor}"

    async def load(self, visitor: str) -> list[Entry]:
        if self.limit == 0:
            return []
        data = await self.kv.get(self._key(visitor))
        if data is None:
            return []
        try:
            return self._decoder.decode(data)
        except msgspec.DecodeError:
            # A damaged history must not lock the visitor out of the chat: start again.
            log.warning("unreadable web chat history dropped", extra={"visitor": visitor})
            return []

    async def _save(self, visitor: str, entries: list[Entry]) -> None:
        await self.kv.set(self._key(visitor), self._encoder.encode(entries[-self.limit :]), ttl=self.ttl)

    async def append(self, visitor: str, entry: Entry) -> bool:
        """Add `entry` unless one with its id is already kept; False means it was (a redelivery)."""
        if self.limit == 0:
            return True
        entries = await self.load(visitor)
        if any(e.id == entry.id for e in entries):
            return False
        entries.append(entry)
        await self._save(visitor, entries)
        return True

    async def remove(self, visitor: str, entry_id: str) -> None:
        if self.limit == 0:
            return
        entries = await self.load(visitor)
        kept = [e for e in entries if e.id != entry_id]
        if len(kept) != len(entries):
            await self._save(visitor, kept)


def find_button(entries: list[Entry], button_id: str) -> Button | None:
    """The button with this id on the latest keyboard that has one: a visitor may press only what the agent
    offered, and still can after a reload."""
    for entry in reversed(entries):
        if entry.kind != "keyboard" or not entry.rows:
            continue
        for row in entry.rows:
            for button in row:
                if button.id == button_id:
                    return button
    return None
