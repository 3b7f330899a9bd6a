"""Durable delivery queues; `open_queue(url)` picks a backend by the same URL as the store.

    sqlite:///relative/path.db      the queue's tables in that SQLite file (the store's own file is fine)
    sqlite:////absolute/path.db
    redis://[:password@]host:port/db[?prefix=name]     keys under `{prefix}:q:` (default prefix
    rediss://...                                        `omnichannel-bridge`, as the store's)

`open_queue` only builds the queue; `await queue.open()` connects and migrates.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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

SUPPORTED_SCHEMES = ("sqlite", "redis", "rediss")


def open_queue(url: str, *, dedupe_ttl: float = DEFAULT_DEDUPE_TTL, clock: Clock = time.time) -> Queue:
    """The queue a `store.url` names. Raises `ValueError` with a message fit for a config error."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SUPPORTED_SCHEMES:
        shown = scheme if sep else ""
        raise ValueError(
            f"unsupported store URL scheme {shown!r}; supported: "
            + ", ".join(f"{s}://" for s in SUPPORTED_SCHEMES)
        )
    if scheme == "sqlite":
        from bridge.queue.sqlite import SqliteQueue

        return SqliteQueue(_sqlite_path(rest), dedupe_ttl=dedupe_ttl, clock=clock)
    from bridge.queue.redis import RedisQueue

    client_url, prefix = _redis_url(url)
    if prefix is None:
        return RedisQueue(client_url, dedupe_ttl=dedupe_ttl, clock=clock)
    return RedisQueue(client_url, prefix=prefix, dedupe_ttl=dedupe_ttl, clock=clock)


def _sqlite_path(rest: str) -> str:
    path, _, query = rest.partition("?")
    if query:
        raise ValueError("a sqlite:// store URL takes no query parameters")
    if not path.startswith("/"):
        raise ValueError(
            "a sqlite store URL has three slashes before a relative path (sqlite:///data/bridge.db) "
            "and four before an absolute one (sqlite:////var/lib/bridge.db)"
        )
    path = path[1:]
    if not path or path.endswith("/"):
        raise ValueError("a sqlite:// store URL must name a database file")
    return path


def _redis_url(url: str) -> tuple[str, str | None]:
    """The URL for the client (without our own `prefix` parameter) and the prefix, if given."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for name, value in pairs if name == "prefix"]
    if len(prefixes) > 1:
        raise ValueError("the store URL gives `prefix` more than once")
    if prefixes and not prefixes[0]:
        raise ValueError("the store URL's `prefix` must not be empty")
    if not parts.hostname and not parts.path.strip("/"):
        raise ValueError("a redis:// store URL needs a host, as in redis://127.0.0.1:6379/0")
    remaining = urlencode([(name, value) for name, value in pairs if name != "prefix"])
    client_url = urlunsplit((parts.scheme, parts.netloc, parts.path, remaining, parts.fragment))
    return client_url, (prefixes[0] if prefixes else None)
