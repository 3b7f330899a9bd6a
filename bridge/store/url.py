"""One reading of `store.url`, shared by everything that keeps data on the store (chat ids, queues)."""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["SUPPORTED_SCHEMES", "RedisLocation", "SqliteLocation", "parse_store_url"]

SUPPORTED_SCHEMES = ("sqlite", "redis", "rediss")


class SqliteLocation(NamedTuple):
    path: str


class RedisLocation(NamedTuple):
    client_url: str  # the URL for redis-py, without our own `prefix` parameter
    prefix: str | None


def parse_store_url(url: str) -> SqliteLocation | RedisLocation:
    """Raises `ValueError` with a message fit for a config error."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SUPPORTED_SCHEMES:
        shown = scheme if sep else ""
        raise ValueError(
            f"unsupported store URL scheme {shown!r}; supported: " + ", ".join(f"{s}://" for s in SUPPORTED_SCHEMES)
        )
    if scheme == "sqlite":
        return SqliteLocation(_sqlite_path(rest))
    return _redis_location(url)


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


def _redis_location(url: str) -> RedisLocation:
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
    return RedisLocation(client_url, prefixes[0] if prefixes else None)
