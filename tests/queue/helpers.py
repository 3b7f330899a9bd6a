"""Items and a hand-moved clock for the queue tests."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from bridge.handoff import Delivered, InboundItem, Item, OutboundItem, Outcome
from bridge.messages import Outbound, OutboundText
from bridge.protocol import NewMessage, TextVisitorMessage, Visitor
from bridge.queue import Lane, lane_of

__all__ = ["FakeClock", "Recorder", "inbound", "outbound"]


class FakeClock:
    """A clock the test moves by hand, so due times and leases need no sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def inbound(key: str, *, chat: int = 1, channel: str = "tg", text: str | None = None) -> InboundItem:
    return InboundItem(
        channel_id=channel,
        chat_id=chat,
        dedupe_key=key,
        payload=NewMessage(
            chat_id=chat, visitor=Visitor(id=f"v{chat}"), message=TextVisitorMessage(id=key, text=text or key)
        ),
    )


def outbound(key: str, *, chat: int = 1, channel: str = "tg", text: str | None = None) -> OutboundItem:
    return OutboundItem(
        channel_id=channel,
        chat_id=chat,
        dedupe_key=key,
        message=Outbound(chat_id=chat, native_chat_id=str(chat), message_id=key, content=OutboundText(text or key)),
    )


class Recorder:
    """A deliverer that answers from a per-key plan (then `Delivered`) and records what it delivered.

    `plan[key][n]` is the outcome of attempt n+1 of that key: an `Outcome`, or an exception to raise.
    """

    def __init__(self, plan: dict[str, list[Outcome | Exception]] | None = None, *, expect: int = 0) -> None:
        self.plan = plan or {}
        self.attempts: Counter[str] = Counter()
        self.attempt_times: dict[str, list[float]] = {}
        self.delivered: dict[Lane, list[str]] = {}
        self.expect = expect
        self.all_delivered = asyncio.Event()

    @property
    def count(self) -> int:
        return sum(len(keys) for keys in self.delivered.values())

    async def __call__(self, item: Item) -> Outcome:
        key = item.dedupe_key
        self.attempts[key] += 1
        self.attempt_times.setdefault(key, []).append(time.time())
        await asyncio.sleep(0)  # let other workers interleave
        steps = self.plan.get(key, [])
        step = steps[self.attempts[key] - 1] if self.attempts[key] <= len(steps) else Delivered()
        if isinstance(step, Exception):
            raise step
        if isinstance(step, Delivered):
            self.delivered.setdefault(lane_of(item), []).append(key)
            if self.expect and self.count >= self.expect:
                self.all_delivered.set()
        return step
