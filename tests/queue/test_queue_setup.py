"""Choosing a queue by URL, and the SQLite queue living in the store's own database file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.queue import open_queue
from bridge.queue.redis import RedisQueue
from bridge.queue.sqlite import SqliteQueue
from bridge.store.migrations import applied_versions, connect
from bridge.store.sqlite import SqliteStore
from tests.queue.helpers import inbound


def test_urls_pick_the_backend() -> None:
    relative = open_queue("sqlite:///data/bridge.db", dedupe_ttl=60.0)
    assert isinstance(relative, SqliteQueue) and relative.path == Path("data/bridge.db")
    assert relative.dedupe_ttl == 60.0
    absolute = open_queue("sqlite:////var/lib/bridge.db")
    assert isinstance(absolute, SqliteQueue) and absolute.path == Path("/var/lib/bridge.db")
    redis = open_queue("redis://:secret@127.0.0.1:6379/2?prefix=acme&health_check_interval=5")
    assert isinstance(redis, RedisQueue)
    assert redis.prefix == "acme" and redis.url == "redis://:secret@127.0.0.1:6379/2?health_check_interval=5"
    default = open_queue("rediss://cache.internal:6380/0")
    assert isinstance(default, RedisQueue) and default.prefix == "omnichannel-bridge"
    assert "secret" not in repr(redis)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://db/bridge", "unsupported store URL scheme 'postgres'"),
        ("bridge.db", "unsupported store URL scheme ''"),
        ("sqlite://bridge.db", "three slashes before a relative path"),
        ("sqlite:///", "must name a database file"),
        ("sqlite:///bridge.db?mode=ro", "takes no query parameters"),
        ("redis://127.0.0.1/0?prefix=", "`prefix` must not be empty"),
        ("redis://127.0.0.1/0?prefix=a&prefix=b", "`prefix` more than once"),
        ("redis://", "needs a host"),
    ],
)
def test_bad_urls_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_queue(url)


async def test_the_queue_shares_the_store_file(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    store = SqliteStore(path)
    queue = SqliteQueue(path)
    await store.open()
    await queue.open()
    try:
        chat_id = await store.chat_id_for("tg", "native-1")
        assert await queue.put([inbound("m1", chat=chat_id)]) == 1
        claim = await queue.claim(lease=10)
        assert claim is not None and claim.chat_id == chat_id
        assert await queue.ack(claim)
    finally:
        await queue.close()
        await store.close()
    conn = connect(path)
    try:
        assert applied_versions(conn, "queue") == [1]
        assert applied_versions(conn, "store") != []
    finally:
        conn.close()
