"""`delivery.max_backlog`: a full channel refuses new items (the sender redelivers) instead of growing without bound."""

from __future__ import annotations

import asyncio

import pytest

from bridge.delivery import Backpressure, DurableHandoff
from bridge.handoff import Delivered, Item, Outcome
from tests.queue.conftest import MakeQueue
from tests.queue.helpers import FakeClock, inbound, outbound


async def test_a_full_channel_refuses_then_accepts_once_drained(make_queue: MakeQueue) -> None:
    clock = FakeClock()
    handoff = DurableHandoff(make_queue(clock=clock), max_backlog=3, backlog_refresh=1.0, clock=clock)
    try:
        assert await handoff.submit([inbound("a", chat=1), inbound("b", chat=2)]) == 2
        assert await handoff.submit([inbound("c", chat=1)]) == 1
        with pytest.raises(Backpressure, match=r"inbound queue of channel 'tg' holds 3 messages .*max_backlog is 3"):
            await handoff.submit([inbound("d", chat=3)])
        # Other directions and other channels have their own backlog.
        assert await handoff.submit([outbound("e", chat=1)]) == 1
        assert await handoff.submit([inbound("f", chat=1, channel="other")]) == 1

        delivered: list[Item] = []

        async def deliver(item: Item) -> Outcome:
            delivered.append(item)
            return Delivered()

        await handoff.start(deliver)
        for _ in range(500):
            if len(delivered) == 5:
                break
            await asyncio.sleep(0.01)
        assert len(delivered) == 5
        # The backlog is read again from the queue after `backlog_refresh`: the drained channel takes items again.
        clock.advance(1.0)
        assert await handoff.submit([inbound("d", chat=3)]) == 1
    finally:
        await handoff.stop()


async def test_no_limit_when_zero(make_queue: MakeQueue) -> None:
    handoff = DurableHandoff(make_queue(), max_backlog=0)
    try:
        assert await handoff.submit([inbound(f"k{n}", chat=n) for n in range(50)]) == 50
    finally:
        await handoff.stop()


async def test_above_high_water_a_sender_waits_for_deliveries(make_queue: MakeQueue) -> None:
    handoff = DurableHandoff(make_queue(), high_water=2, high_water_wait=5.0)
    gate = asyncio.Event()
    delivered: list[Item] = []

    async def deliver(item: Item) -> Outcome:
        await gate.wait()
        delivered.append(item)
        return Delivered()

    try:
        await handoff.start(deliver)
        assert await handoff.submit([inbound("a", chat=1), inbound("b", chat=2)]) == 2
        third = asyncio.create_task(handoff.submit([inbound("c", chat=3)]))
        await asyncio.sleep(0.2)
        assert not third.done(), "a sender above high water must wait while nothing is delivered"
        gate.set()  # deliveries settle: the waiting sender goes on
        assert await asyncio.wait_for(third, 5.0) == 1
        assert len(delivered) >= 1
    finally:
        gate.set()
        await handoff.stop()


async def test_high_water_wait_is_bounded(make_queue: MakeQueue) -> None:
    handoff = DurableHandoff(make_queue(), high_water=1, high_water_wait=0.2)
    try:
        assert await handoff.submit([inbound("a", chat=1)]) == 1
        # Nothing delivers (not started): after high_water_wait the item is taken over anyway.
        assert await asyncio.wait_for(handoff.submit([inbound("b", chat=2)]), 5.0) == 1
    finally:
        await handoff.stop()
