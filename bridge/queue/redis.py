"""The Redis queue: for one or many replicas on one Redis server (a `redis://` or `rediss://` store URL).

Design: **one stream per lane** (per direction, channel and chat), each with one consumer group `g`, plus a
sorted set that says which lanes are ready.

    {P}:l:{lane}          stream of the lane's items in order (fields d=dedupe key, b=body, t=enqueued at)
    {P}:ready             sorted set lane -> time the lane may next be claimed: now when it has work, the due
                          time of a retry, or the end of the current lease while someone holds it
    {P}:lease             hash lane -> token of the claim holding it
    {P}:err               hash lane -> last error of the lane's head
    {P}:heads:{channel}   sorted set lane -> enqueued-at of the lane's head (oldest age per channel)
    {P}:n                 hash channel key -> items in that channel's lanes
    {P}:dead              stream of dead letters (the entry id is the dead letter's id)
    {P}:deadn             hash channel key -> dead letters of that channel
    {P}:dd:{dedupe}       dedupe marker, SET NX PX dedupe_ttl

with `{P}` = `{prefix}:q`. Every operation is one Lua script, hence atomic across replicas:

* `claim` takes the lane with the lowest ready time that is `<= now`, moves its score to the lease end and
  records a fresh token; then it takes the lane's head from the group: the entry still pending from an
  earlier claim if any (XAUTOCLAIM, which also counts the attempt), else the next new entry (XREADGROUP).
  A lane's group thus never has more than one pending entry, and it is always the head: per-lane order holds
  however many workers and replicas claim, and different lanes never wait on each other.
* `ack` / `dead_letter` XACK and XDEL the head and make the lane ready again (or delete its keys when it is
  empty); `retry_at` leaves the head pending and sets the lane's score to the due time. Each first checks
  the token, so a claimer whose lease ran out cannot touch a lane someone else holds now.
* A replica that dies mid-delivery stops renewing its leases (`extend`); when a lease runs out the lane's
  score is in the past, the next `claim` anywhere takes the pending head over with XAUTOCLAIM and delivers it
  again. The lane's score is the lease (a lane lock with expiry, in the same atomic step as the claim), which
  is why XAUTOCLAIM runs with a minimum idle time of 0: ownership is decided by the lease, not by idle time.

Durability is Redis's own: run it with `appendonly yes` (with `appendfsync everysec` a crash of Redis itself
may lose the last second; `always` loses nothing) and `maxmemory-policy noeviction`, or items and dedupe
markers can be evicted.

Script calls made while a pipeline is in flight are sent together in the next one (group commit: one round
trip for the puts of concurrent requests, the claims and acks of concurrent workers); each call stays one
script, so a put is stored all or none. These pipelines go through a small client of our own (`resp.py`):
redis-py's pipeline machinery cost about a fifth of the bridge's CPU under load. Every other call stays on
redis-py. Times are the replicas' clocks (passed into the scripts): keep them in sync to well within a
lease. Scripts derive their keys from the prefix, which a Redis Cluster only allows when every key hashes
to one slot: there, use a prefix with a hash tag, such as `{bridge}`.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from collections.abc import Sequence
from secrets import token_hex
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from bridge.handoff import DeliveryStatus, Direction, Item
from bridge.queue import redis_scripts
from bridge.queue.base import DEFAULT_DEDUPE_TTL, Claim, Clock, DeadLetter, Lane, Queue, QueueError
from bridge.queue.base import entries_for as _entries_for
from bridge.queue.batching import GroupCommit
from bridge.queue.resp import RespConnection, RespOptions

__all__ = ["RedisQueue"]

_SCRIPT_NAMES = ("PUT", "CLAIM", "EXTEND", "ACK", "RETRY", "DEAD_LETTER", "REPLAY", "DROP")
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


_ScriptCall = tuple[str, tuple[str | bytes, ...]]  # script name, arguments after the prefix


def _lane_name(lane: Lane) -> str:
    return f"{lane.direction}|{lane.chat_id}|{lane.channel_id}"


def _channel_key(direction: str, channel_id: str) -> str:
    return f"{direction}|{channel_id}"


def _parse_lane(name: bytes | str) -> Lane:
    text = name.decode() if isinstance(name, bytes) else name
    direction, chat_id, channel_id = text.split("|", 2)
    return Lane(direction, channel_id, int(chat_id))  # type: ignore[arg-type]


def _num(value: float) -> str:
    return repr(float(value))


class RedisQueue(Queue):
    """`url` is a redis:// or rediss:// URL; keys live under `{prefix}:q:`."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "omnichannel-bridge",
        dedupe_ttl: float = DEFAULT_DEDUPE_TTL,
        clock: Clock = time.time,
        consumer: str | None = None,
    ) -> None:
        super().__init__(dedupe_ttl=dedupe_ttl, clock=clock)
        if not prefix:
            raise ValueError("the Redis key prefix must not be empty")
        self.url = url
        self.prefix = prefix
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{token_hex(4)}"
        self._p = f"{prefix}:q"
        self._redis: aioredis.Redis | None = None
        self._script_calls: RespConnection | None = None  # the pipelines of script calls, the hot path
        self._shas: dict[str, str] = {}
        # Every script call goes through one group commit: calls made while a pipeline is in flight (puts of
        # concurrent requests, claims and acks of concurrent workers) share the next round trip.
        self._calls: GroupCommit[_ScriptCall, Any] = GroupCommit(self._flush_calls)

    def __repr__(self) -> str:
        return f"RedisQueue(prefix={self.prefix!r})"

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        if self._redis is not None:
            return
        # Both clients connect alike: `resp`'s defaults (no command of the queue blocks on the server, so a reply
        # slower than its timeout means a sick connection), values in the URL's query string first.
        options = RespOptions.from_url(self.url)
        client = aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=options.connect_timeout,
            socket_timeout=options.reply_timeout,
            health_check_interval=options.health_check_interval,
        )
        try:
            await client.ping()
        except RedisError as exc:
            await client.aclose()
            raise QueueError(f"cannot reach the queue's Redis: {exc}") from exc
        self._redis = client
        try:
            await self._load_scripts()
        except QueueError:
            self._redis = None
            await client.aclose()
            raise
        self._script_calls = RespConnection(options)

    async def _load_scripts(self) -> None:
        """Load every script once (again after Redis lost them, e.g. on a restart): pipelines then call them
        by hash, without redis-py's SCRIPT EXISTS round trip before each pipeline."""
        try:
            for name in _SCRIPT_NAMES:
                self._shas[name] = await self._client.script_load(getattr(redis_scripts, name))
        except RedisError as exc:
            raise QueueError(f"cannot load the queue's scripts into Redis: {exc}") from exc

    async def close(self) -> None:
        await self._calls.wait_idle()
        client, self._redis = self._redis, None
        script_calls, self._script_calls = self._script_calls, None
        if script_calls is not None:
            await script_calls.close()
        if client is not None:
            await client.aclose()

    @property
    def _client(self) -> Any:
        """The client, typed loosely: redis-py types replies as unions over `decode_responses`, while this
        client always answers bytes."""
        if self._redis is None:
            raise QueueError(f"{self!r} is not open")
        return self._redis

    async def _call(self, script: str, *args: str | bytes) -> Any:
        self._client  # noqa: B018 -- fail fast when not open
        return await self._calls.submit((script, args))

    async def _flush_calls(self, calls: list[_ScriptCall]) -> list[Any]:
        try:
            results = await self._pipeline(calls)
            missing = [n for n, result in enumerate(results) if isinstance(result, NoScriptError)]
            if missing:
                # Redis restarted or flushed its scripts: those calls did not run, so running them again is safe.
                await self._load_scripts()
                for n, result in zip(missing, await self._pipeline([calls[n] for n in missing]), strict=True):
                    results[n] = result
        except RedisError as exc:
            raise QueueError(f"the queue's Redis failed: {exc}") from exc
        return [
            QueueError(f"the queue's Redis failed: {result}") if isinstance(result, Exception) else result
            for result in results
        ]

    async def _pipeline(self, calls: list[_ScriptCall]) -> list[Any]:
        if self._script_calls is None:
            raise QueueError(f"{self!r} is not open")
        commands = [("EVALSHA", self._shas[script], "0", self._p, *args) for script, args in calls]
        return await self._script_calls.execute(commands)

    # ------------------------------------------------------------------ producers

    async def put(self, items: Sequence[Item]) -> int:
        if not items:
            return 0
        args: list[str | bytes] = [_num(self.clock()), str(max(1, int(self.dedupe_ttl * 1000)))]
        for lane, dedupe_key, body in _entries_for(items):
            channel = _channel_key(lane.direction, lane.channel_id)
            marker = f"{lane.direction}|{len(lane.channel_id)}|{lane.channel_id}|{dedupe_key}"
            args += [_lane_name(lane), channel, marker, dedupe_key, body]
        return int(await self._call("PUT", *args))

    # ------------------------------------------------------------------ consumers

    async def claim(self, *, lease: float) -> Claim | None:
        args = self._claim_args(lease)
        return self._claim_from(await self._call("CLAIM", *args), token=args[-1])

    async def ack_and_claim(self, claim: Claim, *, lease: float) -> tuple[bool, Claim | None]:
        # Both scripts in the same pipeline: one round trip instead of two per delivered message.
        self._client  # noqa: B018 -- fail fast when not open
        args = self._claim_args(lease)
        acked = self._calls.enqueue(("ACK", tuple(self._head_args(claim))))
        found = self._calls.enqueue(("CLAIM", tuple(args)))
        for reply in (acked, found):  # both settle in the same step; awaiting them in turn is the cheap wait
            with contextlib.suppress(Exception):
                await reply
        ack_result: Any = acked.exception() or acked.result()
        claim_result: Any = found.exception() or found.result()
        if isinstance(claim_result, BaseException):
            if isinstance(ack_result, BaseException):
                raise ack_result
            raise claim_result
        next_claim = self._claim_from(claim_result, token=args[-1])
        if isinstance(ack_result, BaseException):
            if next_claim is not None:  # hand it straight back rather than hold it until its lease runs out
                with contextlib.suppress(QueueError):
                    await self.retry_at(next_claim, self.clock(), "handed back: the ack before it failed")
            raise ack_result
        return bool(ack_result), next_claim

    def _claim_args(self, lease: float) -> list[str]:
        now = self.clock()
        return [_num(now), _num(now + lease), self.consumer, token_hex(12)]

    def _claim_from(self, found: Any, *, token: str) -> Claim | None:
        if not found:
            return None
        lane_name, entry_id, flat, attempts, last_error = found
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        lane = _parse_lane(lane_name)
        return Claim(
            item_id=entry_id.decode(),
            token=token,
            direction=lane.direction,
            channel_id=lane.channel_id,
            chat_id=lane.chat_id,
            dedupe_key=fields[b"d"].decode(),
            body=fields[b"b"],
            enqueued_at=float(fields[b"t"]),
            attempts=int(attempts),
            last_error=last_error.decode() or None,
        )

    async def extend(self, claim: Claim, *, lease: float) -> bool:
        until = _num(self.clock() + lease)
        return bool(await self._call("EXTEND", _lane_name(claim.lane), claim.token, until))

    async def ack(self, claim: Claim) -> bool:
        return bool(await self._call("ACK", *self._head_args(claim)))

    async def retry_at(self, claim: Claim, due: float, reason: str) -> bool:
        return bool(await self._call("RETRY", _lane_name(claim.lane), claim.token, _num(due), reason))

    async def dead_letter(self, claim: Claim, reason: str) -> bool:
        return bool(await self._call("DEAD_LETTER", *self._head_args(claim), str(claim.attempts), reason))

    def _head_args(self, claim: Claim) -> list[str]:
        return [
            _lane_name(claim.lane),
            _channel_key(claim.direction, claim.channel_id),
            claim.item_id,
            claim.token,
            self.consumer,
            _num(self.clock()),
        ]

    async def next_ready_at(self) -> float | None:
        try:
            first = await self._client.zrange(f"{self._p}:ready", 0, 0, withscores=True)
        except RedisError as exc:
            raise QueueError(f"the queue's Redis failed: {exc}") from exc
        return float(first[0][1]) if first else None

    # ------------------------------------------------------------------ operators

    async def status(self) -> list[DeliveryStatus]:
        client = self._client
        now = self.clock()
        try:
            # One snapshot: read one by one, an item dead-lettered in between would count twice.
            async with client.pipeline(transaction=True) as pipe:
                pipe.hgetall(f"{self._p}:n")
                pipe.hgetall(f"{self._p}:deadn")
                pipe.hkeys(f"{self._p}:lease")
                snapshot = await pipe.execute()
            counts: dict[bytes, bytes] = snapshot[0]
            dead: dict[bytes, bytes] = snapshot[1]
            leases: list[Any] = snapshot[2]
            scores = await client.zmscore(f"{self._p}:ready", leases) if leases else []
            channels = sorted({key.decode() for key in (*counts, *dead)})
            async with client.pipeline(transaction=False) as pipe:
                for channel in channels:
                    pipe.zrange(f"{self._p}:heads:{channel}", 0, 0, withscores=True)
                heads = await pipe.execute()
        except RedisError as exc:
            raise QueueError(f"the queue's Redis failed: {exc}") from exc
        in_flight: dict[str, int] = {}
        for lane_name, score in zip(leases, scores, strict=True):
            if score is not None and score > now:
                lane = _parse_lane(lane_name)
                key = _channel_key(lane.direction, lane.channel_id)
                in_flight[key] = in_flight.get(key, 0) + 1
        rows = []
        for channel, head in zip(channels, heads, strict=True):
            direction, channel_id = channel.split("|", 1)
            total = int(counts.get(channel.encode(), 0))
            flying = min(in_flight.get(channel, 0), total)
            rows.append(
                DeliveryStatus(
                    channel_id=channel_id,
                    direction=direction,  # type: ignore[arg-type]
                    queued=total - flying,
                    in_flight=flying,
                    oldest_age=max(0.0, now - float(head[0][1])) if head and total else None,
                    dead_letters=int(dead.get(channel.encode(), 0)),
                )
            )
        return sorted(rows, key=lambda row: (row.channel_id, row.direction))

    async def dead_letters(
        self, *, channel_id: str | None = None, direction: Direction | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        start = "-"
        try:
            while len(found) < limit:
                chunk: list[Any] = await self._client.xrange(f"{self._p}:dead", start, "+", count=500)
                for entry_id, fields in chunk:
                    letter = _dead_letter(entry_id, fields)
                    if (channel_id is None or letter.channel_id == channel_id) and (
                        direction is None or letter.direction == direction
                    ):
                        found.append(letter)
                if len(chunk) < 500:
                    break
                start = "(" + chunk[-1][0].decode()
        except RedisError as exc:
            raise QueueError(f"the queue's Redis failed: {exc}") from exc
        return found[:limit]

    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetter | None:
        if not _STREAM_ID.match(dead_letter_id):
            return None
        try:
            entries: list[Any] = await self._client.xrange(f"{self._p}:dead", dead_letter_id, dead_letter_id)
        except RedisError as exc:
            raise QueueError(f"the queue's Redis failed: {exc}") from exc
        return _dead_letter(*entries[0]) if entries else None

    async def replay(self, dead_letter_ids: Sequence[str]) -> list[str]:
        ids = _sorted_ids(dead_letter_ids)
        if not ids:
            return []
        done = await self._call("REPLAY", _num(self.clock()), *ids)
        return [value.decode() for value in done]

    async def drop(self, dead_letter_ids: Sequence[str]) -> list[str]:
        ids = _sorted_ids(dead_letter_ids)
        if not ids:
            return []
        done = await self._call("DROP", *ids)
        return [value.decode() for value in done]


def _sorted_ids(values: Sequence[str]) -> list[str]:
    """Valid stream ids, unique, in stream order (the order they were dead-lettered)."""
    valid = {value for value in values if _STREAM_ID.match(value)}
    return sorted(valid, key=lambda value: tuple(int(part) for part in value.split("-")))


def _dead_letter(entry_id: bytes, fields: dict[bytes, bytes]) -> DeadLetter:
    lane = _parse_lane(fields[b"lane"])
    return DeadLetter(
        id=entry_id.decode(),
        direction=lane.direction,
        channel_id=lane.channel_id,
        chat_id=lane.chat_id,
        dedupe_key=fields[b"d"].decode(),
        body=fields[b"b"],
        enqueued_at=float(fields[b"t"]),
        dead_at=float(fields[b"x"]),
        attempts=int(fields[b"a"]),
        reason=fields[b"r"].decode(),
    )
