"""What only the Redis store has: the key layout under a prefix, and errors of an unreachable server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from bridge.protocol import VisitorFields
from bridge.store import StoreError
from bridge.store.redis import RedisStore


async def test_keys_live_under_the_prefix(redis_url: str, redis_cleanup: str) -> None:
    prefix = redis_cleanup
    store = RedisStore(redis_url, prefix=prefix)
    await store.open()
    client = aioredis.Redis.from_url(redis_url)
    try:
        chat_id = await store.chat_id_for("tg", "42")
        await store.chat_id_for("odd:channel", "50%")
        await store.save_visitor("tg", "u1", VisitorFields(name="Ann"))
        await store.kv_set("secrets", "hook", b"s", ttl=60)
        keys = {key.decode() async for key in client.scan_iter(match=f"{prefix}:*")}
        assert keys == {
            f"{prefix}:seq",
            f"{prefix}:chat:tg:42",
            f"{prefix}:chat:odd%3Achannel:50%25",
            f"{prefix}:chatid:{chat_id}",
            f"{prefix}:chatid:{chat_id + 1}",
            f"{prefix}:visitor:tg:u1",
            f"{prefix}:kv:secrets:hook",
        }
        assert await client.get(f"{prefix}:chat:tg:42") == str(chat_id).encode()
        assert 0 < await client.pttl(f"{prefix}:kv:secrets:hook") <= 60_000
    finally:
        await client.aclose()
        await store.close()


async def test_two_prefixes_in_one_database_are_independent(redis_url: str, redis_cleanup: str) -> None:
    one = RedisStore(redis_url, prefix=f"{redis_cleanup}-one")
    two = RedisStore(redis_url, prefix=f"{redis_cleanup}-two")
    await one.open()
    await two.open()
    try:
        await one.chat_id_for("tg", "first")
        id_one = await one.chat_id_for("tg", "shared")
        id_two = await two.chat_id_for("tg", "shared")
        assert (id_one, id_two) == (2, 1)
        await one.kv_set("ns", "k", b"one")
        assert await two.kv_get("ns", "k") is None
    finally:
        await one.close()
        await two.close()


def test_an_empty_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="prefix"):
        RedisStore("redis://127.0.0.1:6379/15", prefix="")


async def test_an_unreachable_server_raises_store_error_without_the_password(unused_port: int) -> None:
    store = RedisStore(f"redis://user:hunter2@127.0.0.1:{unused_port}/0", connect_timeout=1)
    with pytest.raises(StoreError, match=r"unreachable|Connection") as caught:
        await store.open()
    assert "hunter2" not in str(caught.value)
    assert f"user:***@127.0.0.1:{unused_port}" in str(caught.value)
    assert "hunter2" not in repr(store)
    with pytest.raises(StoreError, match="not open"):
        await store.ping()


async def test_an_invalid_url_raises_store_error() -> None:
    with pytest.raises(StoreError, match="invalid Redis URL"):
        await RedisStore("redis://127.0.0.1:notaport/0").open()


async def test_ping_raises_store_error_once_the_server_goes_away(redis_url: str, unused_port: int) -> None:
    """A real TCP relay to the test Redis, closed under an open store: the store must say so, not hang."""
    async with _relay(redis_url, unused_port) as stop:
        store = RedisStore(f"redis://127.0.0.1:{unused_port}/15", connect_timeout=1, timeout=1)
        await store.open()
        try:
            await store.ping()
            await stop()
            with pytest.raises(StoreError):
                await store.ping()
            with pytest.raises(StoreError):
                await store.chat_id_for("tg", "1")
        finally:
            await store.close()


@contextlib.asynccontextmanager
async def _relay(redis_url: str, port: int) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    target = urlsplit(redis_url)
    writers: list[asyncio.StreamWriter] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(target.hostname, target.port or 6379)
        writers.extend((client_writer, server_writer))
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port)

    async def stop() -> None:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()

    try:
        yield stop
    finally:
        await stop()
