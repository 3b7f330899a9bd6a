"""The send limiter on a fake clock: bursts, steady rates per chat kind, the bot-wide cap."""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from telegram.error import RetryAfter

from adapters.telegram.limits import (
    RateLimited,
    RateLimits,
    SendLimiter,
    TelegramRateLimiter,
    is_group_chat,
    retry_after_seconds,
)


class FakeClock:
    """Time moves only when someone sleeps, so every wait is exact and the test takes no time."""

    def __init__(self) -> None:
        self.time = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds


async def send_times(limiter: SendLimiter, clock: FakeClock, chats: list[int]) -> list[float]:
    """When each send goes out, relative to the start."""
    start = clock.time
    times = []
    for chat in chats:
        await limiter.acquire(chat)
        times.append(round(clock.time - start, 6))
    return times


async def test_private_chat_bursts_then_one_per_second() -> None:
    clock = FakeClock()
    limiter = SendLimiter(RateLimits(), clock)
    assert await send_times(limiter, clock, [42] * 6) == [0, 0, 0, 1, 2, 3]


async def test_group_gets_twenty_per_minute() -> None:
    clock = FakeClock()
    limiter = SendLimiter(RateLimits(max_wait=10), clock)
    assert await send_times(limiter, clock, [-100] * 5) == [0, 0, 0, 3, 6]


async def test_chats_are_independent_but_share_the_bot_cap() -> None:
    clock = FakeClock()
    limiter = SendLimiter(RateLimits(per_bot_per_second=30, per_bot_burst=30), clock)
    times = await send_times(limiter, clock, list(range(1, 33)))  # 32 different private chats
    assert times[:30] == [0] * 30
    assert times[30:] == pytest.approx([1 / 30, 2 / 30], abs=1e-5)


async def test_refill_after_idle_restores_the_burst() -> None:
    clock = FakeClock()
    limiter = SendLimiter(RateLimits(), clock)
    await send_times(limiter, clock, [42] * 3)
    clock.time += 60
    assert await send_times(limiter, clock, [42] * 3) == [0, 0, 0]


async def test_slots_are_reserved_before_sleeping() -> None:
    class FrozenClock(FakeClock):
        async def sleep(self, seconds: float) -> None:
            self.sleeps.append(seconds)  # time does not move: concurrent senders all start together

    clock = FrozenClock()
    limiter = SendLimiter(RateLimits(), clock)
    for _ in range(5):
        await limiter.acquire(42)
    assert clock.sleeps == [1.0, 2.0], "each waiting sender gets its own later slot"


async def test_long_wait_raises_without_reserving() -> None:
    clock = FakeClock()
    limiter = SendLimiter(RateLimits(group_burst=1, max_wait=2.0), clock)
    await limiter.acquire(-5)
    with pytest.raises(RateLimited) as info:
        await limiter.acquire(-5)
    assert info.value.retry_after == pytest.approx(3.0)
    assert info.value.chat_id == -5
    assert limiter.delay(-5) == pytest.approx(3.0), "a refused send takes no slot"
    assert clock.sleeps == []


def test_group_detection() -> None:
    assert is_group_chat(-100123) and is_group_chat("-5") and is_group_chat("@channel")
    assert not is_group_chat(42) and not is_group_chat("42")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"private_per_second": 0}, "private_per_second must be positive"),
        ({"group_burst": 0}, "group_burst must be at least 1"),
        ({"max_wait": -1}, "max_wait must not be negative"),
    ],
)
def test_invalid_limits_are_clear_errors(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert(settings, RateLimits)


# --------------------------------------------------------------------------- inside PTB's request path


class Endpoint:
    """PTB's request callback seam: the function the rate limiter must call to make the request."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls = 0
        self.error = error

    def __call__(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, bool]:
        async def request() -> bool:
            self.calls += 1
            if self.error is not None:
                raise self.error
            return True

        return request()


async def test_ptb_seam_limits_only_chat_posting_endpoints() -> None:
    clock = FakeClock()
    limiter = TelegramRateLimiter(SendLimiter(RateLimits(private_burst=1, max_wait=0), clock))
    endpoint = Endpoint()
    for _ in range(3):
        assert await limiter.process_request(endpoint, (), {}, "answerCallbackQuery", {"callback_query_id": "q"}, None)
        assert await limiter.process_request(endpoint, (), {}, "getFile", {"file_id": "f"}, None)
    await limiter.process_request(endpoint, (), {}, "sendMessage", {"chat_id": 42, "text": "a"}, None)
    with pytest.raises(RateLimited):
        await limiter.process_request(endpoint, (), {}, "sendMessage", {"chat_id": 42, "text": "b"}, None)
    with pytest.raises(RateLimited):
        await limiter.process_request(endpoint, (), {}, "editMessageReplyMarkup", {"chat_id": 42}, None)
    assert endpoint.calls == 7


async def test_ptb_seam_passes_retry_after_through() -> None:
    limiter = SendLimiter(RateLimits(), FakeClock())
    seam = TelegramRateLimiter(limiter)
    with pytest.warns(Warning):  # PTB warns about its own retry_after type on construction
        error = RetryAfter(12)
    endpoint = Endpoint(error)
    with pytest.raises(RetryAfter):
        await seam.process_request(endpoint, (), {}, "sendPhoto", {"chat_id": 7}, None)
    assert endpoint.calls == 1, "no retry here: the queue reschedules, holding only that chat"


def test_retry_after_seconds_accepts_both_types() -> None:
    with pytest.warns(Warning):
        assert retry_after_seconds(RetryAfter(5)) == 5.0
        assert retry_after_seconds(RetryAfter(timedelta(seconds=2.5))) == 2.5
