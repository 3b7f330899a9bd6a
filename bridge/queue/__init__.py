"""Durable delivery queues; `open_queue(url)` picks a backend by the same URL as the store.

    sqlite:///relative/path.db      the queue's tables in that SQLite file (the store's own file is fine)
    sqlite:////absolute/path.db
    redis://[:password@]host:port/db[?prefix=name]     keys under `{prefix}:q:` (default prefix
    rediss://...                                        `omnichannel-bridge`, as the store's)

`open_queue` only builds the queue; `await queue.open()` connects and migrates.
"""

from __future__ import annotations

import time

from bridge.queue.base import (
    DEFAULT_DEDUPE_TTL,
    Claim,
    Clock,
    DeadLetter,
    DeliveryStatus,
    Lane,
    Queue,
    QueueError,
    lane_of,
)
from bridge.store.url import SUPPORTED_SCHEMES, RedisLocation, SqliteLocation, parse_store_url

__all__ = [
    "SUPPORTED_SCHEMES",
    "Claim",
    "DeadLetter",
    "DeliveryStatus",
    "Lane",
    "Queue",
    "QueueError",
    "lane_of",
    "open_queue",
]


def open_queue(url: str, *, dedupe_ttl: float = DEFAULT_DEDUPE_TTL, clock: Clock = time.time) -> Queue:
    """The queue a `store.url` names. Raises `ValueError` with a message fit for a config error."""
    match parse_store_url(url):
        case SqliteLocation(path):
            from bridge.queue.sqlite import SqliteQueue

            return SqliteQueue(path, dedupe_ttl=dedupe_ttl, clock=clock)
        case RedisLocation(client_url, prefix):
            from bridge.queue.redis import RedisQueue

            if prefix is None:
                return RedisQueue(client_url, dedupe_ttl=dedupe_ttl, clock=clock)
            return RedisQueue(client_url, prefix=prefix, dedupe_ttl=dedupe_ttl, clock=clock)
    raise AssertionError("unreachable")
