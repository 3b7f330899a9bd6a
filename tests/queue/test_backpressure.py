"""`delivery.max_backlog`: a full channel refuses new items (the sender redelivers) instead of growing without bound."""

from __future__ import annotations

import asyncio

import pytest

from bridge.delivery import Backpressure, DurableHandoff, HandoffStopped
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


async def test_held_senders_go_on_one_per_settled_item_in_arrival_order(make_queue: MakeQueue) -> None:
    handoff = DurableHandoff(make_queue(), high_water=1, high_water_wait=30.0, backlog_refresh=60.0)
    permits = asyncio.Semaphore(0)

    async def deliver(item: Item) -> Outcome:
        await permits.acquire()
        return Delivered()

    through: list[str] = []

    async def send(key: str, chat: int) -> None:
        await handoff.submit([inbound(key, chat=chat)])
        through.append(key)

    try:
        await handoff.start(deliver)
        await send("a", 1)
        senders = []
        for n, key in enumerate("bcd", start=2):
            senders.append(asyncio.create_task(send(key, n)))
            await asyncio.sleep(0.05)  # they queue up in this order
        assert through == ["a"]
        for expected in (["a", "b"], ["a", "b", "c"], ["a", "b", "c", "d"]):
            permits.release()  # one delivery settles: exactly one held sender goes on, the longest held
            for _ in range(200):
                if len(through) == len(expected):
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            assert through == expected
        await asyncio.gather(*senders)
    finally:
        for _ in range(10):
            permits.release()
        await handoff.stop()


async def test_stop_lets_held_senders_go_with_an_error(make_queue: MakeQueue) -> None:
    handoff = DurableHandoff(make_queue(), high_water=1, high_water_wait=30.0, backlog_refresh=60.0)
    assert await handoff.submit([inbound("a", chat=1)]) == 1
    held = asyncio.create_task(handoff.submit([inbound("b", chat=2)]))
    await asyncio.sleep(0.05)
    assert not held.done()
    await handoff.stop()
    with pytest.raises(HandoffStopped):
        await asyncio.wait_for(held, 2.0)
