"""The Redis store: for several replicas on several hosts.

Every key lives under `{prefix}:` so one Redis database can serve several bridges (and tests):

    {prefix}:seq                         last chat id handed out (INCR)
    {prefix}:chat:{channel}:{native}     chat id of a messenger chat
    {prefix}:chatid:{id}                 hash: channel_id, native_chat_id, adapter_data (JSON)
    {prefix}:visitor:{channel}:{user}    hash of visitor fields, plus a `_seen` marker
    {prefix}:kv:{namespace}:{key}        value, with a native expiry when it has a TTL

Key parts escape `%` and `:`, so `("a:b", "c")` and `("a", "b:c")` never share a key. Allocation is one Lua
script, hence atomic: racing first messages of a chat get one id. The script writes the record key it
computes, which a standalone Redis allows but Redis Cluster does not; cluster mode is not supported.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from bridge._errors import describe_error
from bridge.protocol import VisitorFields
from bridge.store._shared import ChatIdCache, VisitorCache, check_ttl, redact_url
from bridge.store.base import ChatRecord, Store, StoreError

__all__ = ["RedisStore"]

_ALLOCATE = """
local id = redis.call('GET', KEYS[1])
if id then return tonumber(id) end
id = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], id)
redis.call('HSET', ARGV[3] .. id, 'channel_id', ARGV[1], 'native_chat_id', ARGV[2], 'adapter_data', '{}')
return id
"""

_SET_DATA_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'adapter_data', ARGV[1])
return 1
"""

# The merge of a visitor's fields (HSET of those given) and the result, in one atomic step and one round trip.
_SAVE_VISITOR = """
redis.call('HSET', KEYS[1], unpack(ARGV))
return redis.call('HGETALL', KEYS[1])
"""

# Marks a visitor hash as existing even when every field is empty, so a visitor seen without any profile
# is still "known", as in the SQLite store.
_SEEN = b"_seen"

_adapter_data = msgspec.json.Decoder(dict[str, str])


def _part(value: str) -> str:
    return value.replace("%", "%25").replace(":", "%3A")


class RedisStore(Store):
    """`url` is a redis-py URL (`redis://`, `rediss://`, with `?`-options); it may carry a password, which
    never appears in an error message."""

    def __init__(
        self,
        url: str,
        prefix: str = "omnichannel-bridge",
        *,
        connect_timeout: float = 5.0,
        timeout: float = 5.0,
        max_connections: int = 50,
    ) -> None:
        if not prefix:
            raise ValueError("the Redis key prefix must not be empty")
        self.url = url
        self.prefix = prefix
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.max_connections = max_connections
        self._client: aioredis.Redis | None = None
        self._chat_ids = ChatIdCache()
        self._visitors = VisitorCache()

    def __repr__(self) -> str:
        return f"RedisStore({redact_url(self.url)!r}, prefix={self.prefix!r})"

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        if self._client is not None:
            return
        try:
            # A blocking pool: a burst of concurrent calls waits up to `timeout` for a free connection
            # instead of failing with "Too many connections".
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url,
                max_connections=self.max_connections,
                timeout=self.timeout,
                socket_connect_timeout=self.connect_timeout,
                socket_timeout=self.timeout,
                # One quick retry mends a connection the server dropped; more would only delay the error.
                retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 1),
                decode_responses=False,
            )
        except (ValueError, RedisError) as exc:
            raise StoreError(f"invalid Redis URL {redact_url(self.url)!r}: {exc}") from exc
        client = aioredis.Redis.from_pool(pool)
        try:
            with self._errors():
                await client.ping()
        except StoreError:
            await client.aclose()
            raise
        self._client = client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def ping(self) -> None:
        with self._errors():
            await self._redis().ping()

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise StoreError(f"{self!r} is not open")
        return self._client

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except RedisError as exc:
            raise StoreError(f"Redis at {redact_url(self.url)} failed: {describe_error(exc)}") from exc
        except OSError as exc:
            raise StoreError(f"Redis at {redact_url(self.url)} is unreachable: {exc}") from exc

    async def _script(self, source: str, keys: list[str], args: list[str]) -> Any:
        # eval, not a cached EVALSHA object: scripts are tiny and this keeps no state across reconnects.
        with self._errors():
            return await self._redis().eval(source, len(keys), *keys, *args)

    # ------------------------------------------------------------------ chat ids

    async def chat_id_for(self, channel_id: str, native_chat_id: str) -> int:
        known = self._chat_ids.get(channel_id, native_chat_id)
        if known is not None:
            return known
        keys = [self._key("chat", _part(channel_id), _part(native_chat_id)), self._key("seq")]
        result = await self._script(_ALLOCATE, keys, [channel_id, native_chat_id, self._key("chatid", "")])
        return self._chat_ids.put(channel_id, native_chat_id, int(result))

    async def chat_by_id(self, chat_id: int) -> ChatRecord | None:
        with self._errors():
            raw = await cast(
                Awaitable[dict[bytes, bytes]], self._redis().hgetall(self._key("chatid", str(chat_id)))
            )
        if not raw:
            return None
        return ChatRecord(
            chat_id=chat_id,
            channel_id=raw[b"channel_id"].decode(),
            native_chat_id=raw[b"native_chat_id"].decode(),
            adapter_data=_adapter_data.decode(raw.get(b"adapter_data", b"{}")),
        )

    async def set_chat_data(self, chat_id: int, adapter_data: dict[str, str]) -> None:
        encoded = msgspec.json.encode(adapter_data).decode()
        updated = await self._script(_SET_DATA_IF_EXISTS, [self._key("chatid", str(chat_id))], [encoded])
        if not updated:
            raise KeyError(chat_id)

    # ------------------------------------------------------------------ visitors

    def _visitor_key(self, channel_id: str, native_user_id: str) -> str:
        return self._key("visitor", _part(channel_id), _part(native_user_id))

    async def save_visitor(
        self, channel_id: str, native_user_id: str, fields: VisitorFields
    ) -> VisitorFields:
        known = self._visitors.merged(channel_id, native_user_id, fields)
        if known is not None:
            return known
        args = [_SEEN.decode(), "1"]
        for name in fields.__struct_fields__:
            value = getattr(fields, name)
            if value is not None:
                args += [name, value]
        flat = await self._script(_SAVE_VISITOR, [self._visitor_key(channel_id, native_user_id)], args)
        # HSET of the given fields only is the merge.
        merged = _visitor_from(dict(zip(flat[::2], flat[1::2], strict=True)))
        return self._visitors.put(channel_id, native_user_id, merged)

    async def get_visitor(self, channel_id: str, native_user_id: str) -> VisitorFields | None:
        with self._errors():
            raw = await cast(
                Awaitable[dict[bytes, bytes]],
                self._redis().hgetall(self._visitor_key(channel_id, native_user_id)),
            )
        return _visitor_from(raw) if raw else None

    # ------------------------------------------------------------------ key-values

    def _kv_key(self, namespace: str, key: str) -> str:
        return self._key("kv", _part(namespace), _part(key))

    async def kv_get(self, namespace: str, key: str) -> bytes | None:
        with self._errors():
            value = await self._redis().get(self._kv_key(namespace, key))
        return cast(bytes | None, value)  # decode_responses=False: always bytes

    async def kv_set(self, namespace: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        px = _milliseconds(check_ttl(ttl))
        with self._errors():
            await self._redis().set(self._kv_key(namespace, key), value, px=px)

    async def kv_set_if_absent(
        self, namespace: str, key: str, value: bytes, *, ttl: float | None = None
    ) -> bool:
        px = _milliseconds(check_ttl(ttl))
        with self._errors():
            return bool(await self._redis().set(self._kv_key(namespace, key), value, px=px, nx=True))

    async def kv_delete(self, namespace: str, key: str) -> None:
        with self._errors():
            await self._redis().delete(self._kv_key(namespace, key))


def _visitor_from(raw: dict[bytes, bytes]) -> VisitorFields:
    known = set(VisitorFields.__struct_fields__)
    return VisitorFields(
        **{name: value.decode() for k, value in raw.items() if (name := k.decode()) in known}
    )


def _milliseconds(ttl: float | None) -> int | None:
    # Round up, so a sub-millisecond TTL still sets an expiry rather than none (PX 0 is an error).
    return None if ttl is None else max(1, math.ceil(ttl * 1000))
