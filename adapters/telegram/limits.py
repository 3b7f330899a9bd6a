"""Telegram's flood limits, enforced before a request leaves: per bot, per private chat and per group.

PTB's own `AIORateLimiter` knows the bot-wide and group limits but not the per-chat one for private chats,
and it retries 429s itself, which would hide them from the durable queue. This limiter plugs into PTB through
its `BaseRateLimiter` seam and instead:

- waits (asynchronously) for a slot when the wait is short, so a burst of parts goes out smoothly;
- raises `RateLimited` when the wait would be long, so the queue reschedules the message and the worker
  is free for other chats;
- lets Telegram's `RetryAfter` through untouched: the adapter turns it into `RetryableSendError(retry_after=...)`
  and the queue, which keeps a chat's messages in order, holds that chat (and only it) for as long.

Buckets are plain token buckets on an injectable clock, so tests run on a fake one.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import msgspec
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

__all__ = [
    "Clock",
    "MonotonicClock",
    "RateLimited",
    "RateLimits",
    "SendLimiter",
    "TelegramRateLimiter",
    "is_group_chat",
    "retry_after_seconds",
]

# Endpoints that post into a chat and count against Telegram's message limits.
_LIMITED_PREFIXES = ("send", "edit", "copyMessage", "forwardMessage", "stopPoll")
# Idle buckets are dropped once this many chats are tracked, so a bot talking to many people stays small.
_MAX_TRACKED_CHATS = 10_000


class RateLimits(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Sending rates. Defaults follow Telegram's published limits, with small bursts for multi-part
    replies."""

    per_bot_per_second: float = 30.0
    per_bot_burst: int = 30
    private_per_second: float = 1.0
    private_burst: int = 3
    group_per_minute: float = 20.0
    group_burst: int = 3
    # The longest a send waits in-process; beyond it the message is rescheduled by the queue instead.
    max_wait: float = 5.0

    def __post_init__(self) -> None:
        for name in ("per_bot_per_second", "private_per_second", "group_per_minute"):
            if getattr(self, name) <= 0:
                raise ValueError(f"rate_limits.{name} must be positive")
        for name in ("per_bot_burst", "private_burst", "group_burst"):
            if getattr(self, name) < 1:
                raise ValueError(f"rate_limits.{name} must be at least 1")
        if self.max_wait < 0:
            raise ValueError("rate_limits.max_wait must not be negative")


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class RateLimited(Exception):
    """Sending now would exceed a limit for longer than the limiter is willing to wait."""

    def __init__(self, chat_id: int | str | None, retry_after: float) -> None:
        super().__init__(f"rate limit for chat {chat_id}: next slot in {retry_after:.2f}s")
        self.chat_id = chat_id
        self.retry_after = retry_after


@dataclass(slots=True)
class _Bucket:
    rate: float  # tokens per second
    burst: float
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def delay(self, now: float) -> float:
        """Seconds until a token is free, counting reservations already made (negative tokens)."""
        self.refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def idle(self, now: float) -> bool:
        self.refill(now)
        return self.tokens >= self.burst


def is_group_chat(chat_id: int | str) -> bool:
    """Telegram gives groups, supergroups and channels negative ids; `@username` targets are public ones."""
    if isinstance(chat_id, int):
        return chat_id < 0
    return chat_id.startswith(("-", "@"))


class SendLimiter:
    """Token buckets: one for the bot, one per chat (private or group rates by the chat id's sign)."""

    def __init__(self, limits: RateLimits, clock: Clock | None = None) -> None:
        self.limits = limits
        self.clock: Clock = clock or MonotonicClock()
        now = self.clock.now()
        self._bot = _Bucket(limits.per_bot_per_second, limits.per_bot_burst, limits.per_bot_burst, now)
        self._chats: dict[str, _Bucket] = {}

    def _chat(self, chat_id: int | str, now: float) -> _Bucket:
        key = str(chat_id)
        bucket = self._chats.get(key)
        if bucket is None:
            if len(self._chats) >= _MAX_TRACKED_CHATS:
                self._chats = {k: b for k, b in self._chats.items() if not b.idle(now)}
            if is_group_chat(chat_id):
                rate, burst = self.limits.group_per_minute / 60.0, self.limits.group_burst
            else:
                rate, burst = self.limits.private_per_second, self.limits.private_burst
            bucket = self._chats[key] = _Bucket(rate, burst, burst, now)
        return bucket

    def delay(self, chat_id: int | str | None) -> float:
        """How long a send to `chat_id` would wait right now (without reserving anything)."""
        now = self.clock.now()
        wait = self._bot.delay(now)
        if chat_id is not None:
            wait = max(wait, self._chat(chat_id, now).delay(now))
        return wait

    async def acquire(self, chat_id: int | str | None) -> None:
        """Take a slot for one message, waiting up to `max_wait`; raise `RateLimited` rather than wait longer.

        The slot is reserved before sleeping, so concurrent senders line up instead of all waking at once.
        """
        now = self.clock.now()
        buckets = [self._bot] if chat_id is None else [self._bot, self._chat(chat_id, now)]
        wait = max(bucket.delay(now) for bucket in buckets)
        if wait > self.limits.max_wait:
            raise RateLimited(chat_id, wait)
        for bucket in buckets:
            bucket.tokens -= 1
        if wait > 0:
            await self.clock.sleep(wait)


def retry_after_seconds(error: RetryAfter) -> float:
    """`RetryAfter.retry_after` in seconds, whichever type this PTB version returns."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value: Any = error.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


class TelegramRateLimiter(BaseRateLimiter[None]):
    """`SendLimiter` inside PTB's request path: every chat-posting call of the bot goes through it."""

    def __init__(self, limiter: SendLimiter) -> None:
        self.limiter = limiter

    async def initialize(self) -> None:
        """Nothing to set up: the buckets live in memory."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        if not endpoint.startswith(_LIMITED_PREFIXES):
            return await callback(*args, **kwargs)
        chat_id = data.get("chat_id")
        if not isinstance(chat_id, int | str):
            chat_id = None
        await self.limiter.acquire(chat_id)
        return await callback(*args, **kwargs)
