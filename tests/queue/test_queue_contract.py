"""The `Queue` contract, run against both backends (a real SQLite file and the real test Redis)."""

from __future__ import annotations

import asyncio

import pytest

from bridge.handoff import Item, decode_item
from bridge.queue import Claim, DeliveryStatus, Queue, QueueError
from tests.queue.conftest import MakeQueue
from tests.queue.helpers import FakeClock, inbound, outbound

LEASE = 10.0


async def claim_ok(queue: Queue) -> Claim:
    claim = await queue.claim(lease=LEASE)
    assert claim is not None, "expected a ready lane"
    return claim


def item_of(claim: Claim) -> Item:
    return decode_item(claim.body)


async def test_put_claim_ack_in_order(queue: Queue, clock: FakeClock) -> None:
    first, second = inbound("m1"), inbound("m2")
    assert await queue.put([first, second]) == 2

    claim = await claim_ok(queue)
    assert item_of(claim) == first
    assert (claim.direction, claim.channel_id, claim.chat_id) == ("inbound", "tg", 1)
    assert claim.attempts == 1 and claim.last_error is None
    assert claim.enqueued_at == clock.now
    assert await queue.claim(lease=LEASE) is None, "the lane is held: its next item must wait"

    assert await queue.ack(claim)
    claim = await claim_ok(queue)
    assert item_of(claim) == second
    assert await queue.ack(claim)
    assert await queue.claim(lease=LEASE) is None
    assert await queue.next_ready_at() is None
    assert await queue.status() == []


async def test_other_lanes_are_not_held_up(queue: Queue) -> None:
    await queue.put([inbound("a1", chat=1), inbound("a2", chat=1)])
    await queue.put([inbound("b1", chat=2), outbound("c1", chat=1), inbound("d1", chat=1, channel="web")])

    held = [await claim_ok(queue) for _ in range(4)]
    assert sorted(c.dedupe_key for c in held) == ["a1", "b1", "c1", "d1"]
    assert await queue.claim(lease=LEASE) is None


async def test_dedupe_sequential(queue: Queue) -> None:
    results = [await queue.put([inbound("same")]) for _ in range(5)]
    assert results == [1, 0, 0, 0, 0]
    await claim_ok(queue)
    assert await queue.claim(lease=LEASE) is None


async def test_dedupe_concurrent_across_instances(queue: Queue, make_queue: MakeQueue, clock: FakeClock) -> None:
    other = make_queue(clock=clock)
    await other.open()
    try:
        results = await asyncio.gather(
            *(q.put([inbound("same", text=f"copy {n}")]) for n in range(5) for q in (queue, other))
        )
    finally:
        await other.close()
    assert sum(results) == 1
    [row] = await queue.status()
    assert row.queued == 1


async def test_dedupe_within_one_put_and_its_scope(queue: Queue) -> None:
    assert await queue.put([inbound("k"), inbound("k")]) == 1
    # The same key in another channel or direction is another message.
    assert await queue.put([inbound("k", channel="web"), outbound("k")]) == 2


async def test_dedupe_outlives_delivery(queue: Queue) -> None:
    await queue.put([inbound("k")])
    assert await queue.ack(await claim_ok(queue))
    assert await queue.put([inbound("k")]) == 0


async def test_dedupe_key_expires_after_ttl(make_queue: MakeQueue) -> None:
    # Redis expires the marker on its own clock, so this one test waits for real.
    queue = make_queue(dedupe_ttl=0.2)
    await queue.open()
    try:
        assert await queue.put([inbound("k")]) == 1
        assert await queue.put([inbound("k")]) == 0
        await asyncio.sleep(0.3)
        assert await queue.put([inbound("k")]) == 1
    finally:
        await queue.close()


async def test_retry_keeps_the_lane_waiting_in_order(queue: Queue, clock: FakeClock) -> None:
    await queue.put([inbound("n1"), inbound("n2")])
    claim = await claim_ok(queue)
    assert await queue.retry_at(claim, clock.now + 30, "platform answered 503")

    assert await queue.claim(lease=LEASE) is None, "n2 must not overtake n1"
    assert await queue.next_ready_at() == pytest.approx(clock.now + 30)
    clock.advance(29)
    assert await queue.claim(lease=LEASE) is None
    clock.advance(2)
    again = await claim_ok(queue)
    assert again.dedupe_key == "n1"
    assert again.attempts == 2
    assert again.last_error == "platform answered 503"
    assert await queue.ack(again)
    following = await claim_ok(queue)
    assert following.dedupe_key == "n2" and following.last_error is None and following.attempts == 1


async def test_lease_runs_out_and_another_claimer_takes_over(
    queue: Queue, make_queue: MakeQueue, clock: FakeClock
) -> None:
    await queue.put([inbound("n1"), inbound("n2")])
    lost = await claim_ok(queue)
    other = make_queue(clock=clock)
    await other.open()
    try:
        clock.advance(LEASE - 1)
        assert await other.claim(lease=LEASE) is None
        clock.advance(2)
        taken = await other.claim(lease=LEASE)
        assert taken is not None and taken.dedupe_key == "n1" and taken.attempts == 2
        # The first claimer comes back too late: nothing it does is recorded.
        assert not await queue.ack(lost)
        assert not await queue.retry_at(lost, clock.now, "late")
        assert not await queue.dead_letter(lost, "late")
        assert not await queue.extend(lost, lease=LEASE)
        assert await queue.claim(lease=LEASE) is None
        assert await other.ack(taken)
        assert (await claim_ok(queue)).dedupe_key == "n2"
    finally:
        await other.close()


async def test_extend_keeps_the_lease(queue: Queue, clock: FakeClock) -> None:
    await queue.put([inbound("n1")])
    claim = await claim_ok(queue)
    clock.advance(LEASE - 1)
    assert await queue.extend(claim, lease=LEASE)
    clock.advance(LEASE - 1)
    assert await queue.claim(lease=LEASE) is None
    clock.advance(2)
    assert (await claim_ok(queue)).dedupe_key == "n1"


async def test_dead_letter_lets_the_lane_move_on(queue: Queue, clock: FakeClock) -> None:
    await queue.put([inbound("poison", text="bad"), inbound("next")])
    claim = await claim_ok(queue)
    clock.advance(1)
    assert await queue.dead_letter(claim, "platform answered 400: bad payload")

    assert (await claim_ok(queue)).dedupe_key == "next"
    [letter] = await queue.dead_letters()
    assert letter.reason == "platform answered 400: bad payload"
    assert (letter.direction, letter.channel_id, letter.chat_id) == ("inbound", "tg", 1)
    assert letter.dedupe_key == "poison" and letter.attempts == 1
    assert letter.dead_at == clock.now and letter.enqueued_at == clock.now - 1
    assert decode_item(letter.body) == inbound("poison", text="bad")
    assert await queue.get_dead_letter(letter.id) == letter
    [row] = await queue.status()
    assert row.dead_letters == 1 and row.in_flight == 1 and row.queued == 0


async def test_replay_appends_at_the_lane_tail_in_dead_letter_order(queue: Queue, clock: FakeClock) -> None:
    await queue.put([inbound(f"n{i}") for i in range(1, 5)])
    for _ in range(2):
        assert await queue.dead_letter(await claim_ok(queue), "refused")
    in_flight = await claim_ok(queue)
    assert in_flight.dedupe_key == "n3"
    first, second = await queue.dead_letters()
    assert (first.dedupe_key, second.dedupe_key) == ("n1", "n2")

    clock.advance(5)
    assert await queue.replay([second.id, first.id, "no-such-id", "99999999-0"]) == [first.id, second.id]
    assert await queue.dead_letters() == []
    assert await queue.ack(in_flight)
    order = []
    while (claim := await queue.claim(lease=LEASE)) is not None:
        order.append(claim.dedupe_key)
        if claim.dedupe_key in ("n1", "n2"):
            assert claim.attempts == 1 and claim.enqueued_at == clock.now, "a replay starts afresh"
        assert await queue.ack(claim)
    assert order == ["n4", "n1", "n2"]


async def test_drop_and_unknown_ids(queue: Queue) -> None:
    await queue.put([inbound("a"), inbound("b", chat=2)])
    for _ in range(2):
        assert await queue.dead_letter(await claim_ok(queue), "refused")
    kept, dropped = await queue.dead_letters()
    assert await queue.drop([dropped.id, "garbage", ""]) == [dropped.id]
    assert await queue.drop([dropped.id]) == []
    assert await queue.get_dead_letter(dropped.id) is None
    assert await queue.get_dead_letter("garbage") is None
    assert await queue.dead_letters() == [kept]
    assert await queue.replay(["garbage"]) == []
    [row] = await queue.status()
    assert row.dead_letters == 1


async def test_dead_letters_filter_and_limit(queue: Queue) -> None:
    await queue.put([inbound("a"), outbound("b"), inbound("c", channel="web"), inbound("d", chat=2)])
    for _ in range(4):
        assert await queue.dead_letter(await claim_ok(queue), "refused")
    assert {d.dedupe_key for d in await queue.dead_letters(channel_id="tg")} == {"a", "b", "d"}
    assert {d.dedupe_key for d in await queue.dead_letters(direction="outbound")} == {"b"}
    assert {d.dedupe_key for d in await queue.dead_letters(channel_id="tg", direction="inbound")} == {"a", "d"}
    assert len(await queue.dead_letters(limit=2)) == 2


async def test_status_per_channel_and_direction(queue: Queue, clock: FakeClock) -> None:
    await queue.put([inbound("a1"), inbound("a2"), inbound("b1", chat=2)])
    clock.advance(10)
    await queue.put([outbound("o1"), inbound("w1", channel="web")])
    clock.advance(5)
    held = await claim_ok(queue)  # the oldest ready lane first: tg inbound chat 1
    assert held.dedupe_key == "a1"
    poison = await claim_ok(queue)
    assert poison.dedupe_key == "b1"
    await queue.dead_letter(poison, "refused")

    assert await queue.status() == [
        DeliveryStatus(channel_id="tg", direction="inbound", queued=1, in_flight=1, oldest_age=15.0,
                       dead_letters=1),
        DeliveryStatus(channel_id="tg", direction="outbound", queued=1, in_flight=0, oldest_age=5.0),
        DeliveryStatus(channel_id="web", direction="inbound", queued=1, in_flight=0, oldest_age=5.0),
    ]
    clock.advance(LEASE + 1)  # the holder died: its item counts as queued again
    rows = {(r.channel_id, r.direction): r for r in await queue.status()}
    assert rows["tg", "inbound"].in_flight == 0 and rows["tg", "inbound"].queued == 2


async def test_items_survive_a_restart(make_queue: MakeQueue, clock: FakeClock) -> None:
    first = make_queue(clock=clock)
    await first.open()
    await first.put([inbound("n1"), outbound("o1")])
    await first.close()
    second = make_queue(clock=clock)
    await second.open()
    try:
        keys = {(await claim_ok(second)).dedupe_key, (await claim_ok(second)).dedupe_key}
        assert keys == {"n1", "o1"}
        assert await second.put([inbound("n1")]) == 0
    finally:
        await second.close()


async def test_closed_queue_refuses_work(make_queue: MakeQueue) -> None:
    queue = make_queue()
    with pytest.raises(QueueError):
        await queue.put([inbound("a")])
    await queue.open()
    await queue.open()  # idempotent
    await queue.close()
    with pytest.raises(QueueError):
        await queue.claim(lease=LEASE)


async def test_ack_and_claim_acks_then_claims_the_next_ready_head(queue: Queue) -> None:
    await queue.put([inbound("a1", chat=1), inbound("a2", chat=1), inbound("b1", chat=2)])
    first = await claim_ok(queue)
    assert first.dedupe_key == "a1"
    # b1 is ready on another lane; a2 becomes ready by the ack itself: either may come next, never a1 again.
    acked, following = await queue.ack_and_claim(first, lease=LEASE)
    assert acked and following is not None and following.dedupe_key in ("a2", "b1")
    acked, last = await queue.ack_and_claim(following, lease=LEASE)
    assert acked and last is not None and {following.dedupe_key, last.dedupe_key} == {"a2", "b1"}
    assert await queue.ack_and_claim(last, lease=LEASE) == (True, None)
    assert await queue.status() == []


async def test_ack_and_claim_with_a_lost_lease(queue: Queue, make_queue: MakeQueue, clock: FakeClock) -> None:
    await queue.put([inbound("n1")])
    lost = await claim_ok(queue)
    clock.advance(LEASE + 1)
    other = make_queue(clock=clock)
    await other.open()
    try:
        taken = await other.claim(lease=LEASE)
        assert taken is not None and taken.dedupe_key == "n1"
        await queue.put([inbound("m1", chat=2)])
        # The late ack is not recorded; the claim made with it is a real one (the other chat's message).
        acked, following = await queue.ack_and_claim(lost, lease=LEASE)
        assert not acked
        assert following is not None and following.dedupe_key == "m1"
        assert await other.ack(taken) and await queue.ack(following)
    finally:
        await other.close()
