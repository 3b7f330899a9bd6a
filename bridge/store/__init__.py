"""Chat-id store backends; `open_store(url)` picks one by URL scheme.

    sqlite:///relative/path.db      a file relative to the working directory
    sqlite:////absolute/path.db     an absolute path
    redis://[:password@]host:port/db[?prefix=name]
    rediss://...                    the same over TLS

`open_store` only builds the store; call `await store.open()` to connect and migrate.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bridge.store.base import ChatRecord, Store, StoreError

__all__ = ["SUPPORTED_SCHEMES", "ChatRecord", "Store", "StoreError", "open_store"]

SUPPORTED_SCHEMES = ("sqlite", "redis", "rediss")


def open_store(url: str) -> Store:
    """The store a `store.url` names. Raises `ValueError` with a message fit for a config error."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in SUPPORTED_SCHEMES:
        shown = scheme if sep else ""
        raise ValueError(
            f"unsupported store URL scheme {shown!r}; supported: "
            + ", ".join(f"{s}://" for s in SUPPORTED_SCHEMES)
        )
    if scheme == "sqlite":
        return _sqlite(rest)
    return _redis(url)


def _sqlite(rest: str) -> Store:
    from bridge.store.sqlite import SqliteStore

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
    return SqliteStore(path)


def _redis(url: str) -> Store:
    from bridge.store.redis import RedisStore

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
    if prefixes:
        return RedisStore(client_url, prefix=prefixes[0])
    return RedisStore(client_url)
