"""Chat-id store backends; `open_store(url)` picks one by URL scheme.

    sqlite:///relative/path.db      a file relative to the working directory
    sqlite:////absolute/path.db     an absolute path
    redis://[:password@]host:port/db[?prefix=name]
    rediss://...                    the same over TLS

`open_store` only builds the store; call `await store.open()` to connect and migrate.
"""

from __future__ import annotations

from bridge.store.base import ChatRecord, Store, StoreError
from bridge.store.url import SUPPORTED_SCHEMES, RedisLocation, SqliteLocation, parse_store_url

__all__ = ["SUPPORTED_SCHEMES", "ChatRecord", "Store", "StoreError", "open_store"]


def open_store(url: str) -> Store:
    """The store a `store.url` names. Raises `ValueError` with a message fit for a config error."""
    match parse_store_url(url):
        case SqliteLocation(path):
            from bridge.store.sqlite import SqliteStore

            return SqliteStore(path)
        case RedisLocation(client_url, prefix):
            from bridge.store.redis import RedisStore

            return RedisStore(client_url) if prefix is None else RedisStore(client_url, prefix=prefix)
    raise AssertionError("unreachable")
