"""`DurableHandoff` on both backends: order under retries, dead letters, backoff, wake-up, graceful stop."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bridge.config import Config, DeliveryConfig, StoreConfig
from bridge.delivery import DurableHandoff, HandoffStopped, build_handoff
from bridge.handoff import Delivered, DeliveryStatus, Item, Outcome, Permanent, Retry
from bridge.queue import Claim, Lane, Queue, QueueError, lane_of
from bridge.queue.sqlite import SqliteQueue
from tests.queue.conftest import MakeQueue
from tests.queue.helpers import FakeClock, Recorder, inbound, outbound

WAIT = 15.0  # generous bound for "eventually"; a passing run takes a fraction of it

MakeHandoff = Callable[..., DurableHandoff]


@pytest.fixture
async def make_handoff(make_queue: MakeQueue) -> AsyncIterator[MakeHandoff]:
    """Handoffs on fresh queue instances over one storage, with fast test timings; all stopped at the end."""
    made: list[DurableHandoff] = []

    def make(queue: Queue | None = None, **options: Any) -> DurableHandoff:
        settings: dict[str, Any] = {
            "schedule": (0.0, 0.01, 0.02),
            "jitter": 0.0,
            "workers": 4,
            "lease": 5.0,
            "poll_interval": 0.05,
            "shutdown_grace": 2.0,
            **options,
        }
        handoff = DurableHandoff(queue or make_queue(), **settings)
        made.append(handoff)
        return handoff

    yield make
    for handoff in made:
        await handoff.stop()


async def wait_for(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), WAIT)


async def drained(
    handoff: DurableHandoff, *, until: list[DeliveryStatus] | None = None, ignore_age: bool = False
) -> None:
    """Wait for the backlog to become `until` (empty by default): a deliverer sees the last delivery just
    before its worker records the outcome."""
    expected = until or []
    rows: list[DeliveryStatus] = []
    for _ in range(int(WAIT / 0.02)):
        rows = await handoff.status()
        if ignore_age:
            rows = [msgspec.structs.replace(row, oldest_age=0.0) for row in rows]
        if rows == expected:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the backlog is {rows}, not {expected}, after {WAIT}s")


async def test_per_lane_order_holds_under_retries_with_several_workers(make_handoff: MakeHandoff) -> None:
    rng = random.Random(7)
    lanes = [(channel, chat) for channel in ("tg", "web") for chat in range(1, 7)]
    submitted: dict[Lane, list[str]] = {}
    plan: dict[str, list[Outcome | Exception]] = {}
    batches: list[list[Item]] = []
    for n in range(8):
        batch: list[Item] = []
        for channel, chat in lanes:
            make = inbound if chat % 2 else outbound
            item = make(f"{channel}-{chat}-{n}", chat=chat, channel=channel)
            batch.append(item)
            submitted.setdefault(lane_of(item), []).append(item.dedupe_key)
            if rng.random() < 0.3:  # fails its first one or two attempts
                plan[item.dedupe_key] = [Retry("platform answered 503")] * rng.randint(1, 2)
        rng.shuffle(batch)
        batches.append(batch)
    recorder = Recorder(plan, expect=sum(len(keys) for keys in submitted.values()))
    handoff = make_handoff(workers=5)
    await handoff.start(recorder)
    for batch in batches:
        await handoff.submit(batch)
    await wait_for(recorder.all_delivered)

    assert recorder.delivered == submitted
    assert all(recorder.attempts[key] == len(steps) + 1 for key, steps in plan.items())
    await drained(handoff)


async def test_a_waiting_lane_holds_up_no_other(make_handoff: MakeHandoff) -> None:
    # Chat 1 is rate limited for an hour; with only two workers, every other chat still flows.
    plan: dict[str, list[Outcome | Exception]] = {"slow-0": [Retry("429", retry_after=3600)]}
    others: list[Item] = [outbound(f"fast-{chat}-{n}", chat=chat) for chat in range(2, 7) for n in range(3)]
    recorder = Recorder(plan, expect=len(others))
    handoff = make_handoff(workers=2)
    await handoff.start(recorder)
    await handoff.submit([outbound("slow-0", chat=1), outbound("slow-1", chat=1)])
    await handoff.submit(others)
    await wait_for(recorder.all_delivered)

    assert Lane("outbound", "tg", 1) not in recorder.delivered
    assert recorder.attempts["slow-0"] == 1 and recorder.attempts["slow-1"] == 0
    waiting = DeliveryStatus(channel_id="tg", direction="outbound", queued=2, oldest_age=0.0)
    await drained(handoff, until=[waiting], ignore_age=True)


async def test_permanent_failure_is_dead_lettered_and_replay_delivers_it(make_handoff: MakeHandoff) -> None:
    recorder = Recorder({"poison": [Permanent("platform answered 400: invalid message")]}, expect=2)
    handoff = make_handoff()
    await handoff.start(recorder)
    assert await handoff.submit([inbound("poison"), inbound("after-1"), inbound("after-2")]) == 3
    await wait_for(recorder.all_delivered)
    assert await handoff.submit([inbound("after-1")]) == 0, "a redelivered message is recognised"

    assert recorder.delivered == {Lane("inbound", "tg", 1): ["after-1", "after-2"]}
    [letter] = await handoff.queue.dead_letters()
    assert letter.reason == "platform answered 400: invalid message" and letter.attempts == 1

    recorder.expect, recorder.all_delivered = 3, asyncio.Event()
    assert await handoff.queue.replay([letter.id]) == [letter.id]
    await wait_for(recorder.all_delivered)
    assert recorder.delivered == {Lane("inbound", "tg", 1): ["after-1", "after-2", "poison"]}
    await drained(handoff)


async def test_exhausted_schedule_dead_letters_and_the_lane_moves_on(make_handoff: MakeHandoff) -> None:
    recorder = Recorder({"doomed": [Retry("platform answered 503")] * 1000}, expect=1)
    handoff = make_handoff(schedule=(0.0, 0.05, 0.1), max_age=0.5)
    await handoff.start(recorder)
    await handoff.submit([inbound("doomed")])
    # "next" comes later, or it would reach max_age too while it waits behind "doomed": after attempt 5,
    # which the schedule puts at least 0.15 s after "doomed" was taken over.
    for _ in range(int(WAIT / 0.005)):
        if recorder.attempts["doomed"] >= 5 or await handoff.queue.dead_letters():
            break
        await asyncio.sleep(0.005)
    await handoff.submit([inbound("next")])
    await wait_for(recorder.all_delivered)

    assert recorder.delivered == {Lane("inbound", "tg", 1): ["next"]}
    [letter] = await handoff.queue.dead_letters()
    assert letter.dedupe_key == "doomed"
    assert letter.reason.startswith(f"gave up after {letter.attempts} attempt(s)")
    assert "max_age 0.5s" in letter.reason and letter.reason.endswith("platform answered 503")
    assert recorder.attempts["doomed"] == letter.attempts >= 4


async def test_retry_after_is_honoured_when_longer_than_the_schedule(make_handoff: MakeHandoff) -> None:
    recorder = Recorder({"limited": [Retry("429 Too Many Requests", retry_after=0.3)]}, expect=2)
    handoff = make_handoff(schedule=(0.0,))
    await handoff.start(recorder)
    await handoff.submit([outbound("limited"), outbound("other", chat=2)])
    await wait_for(recorder.all_delivered)

    first, second = recorder.attempt_times["limited"]
    assert second - first >= 0.3


def test_retry_delay_follows_the_schedule_with_jitter() -> None:
    handoff = DurableHandoff(
        SqliteQueue("unused.db"), schedule=(0.0, 5.0, 30.0), jitter=0.1, rng=random.Random(1)
    )
    assert handoff.retry_delay(1) == 0.0
    assert 4.5 <= handoff.retry_delay(2) <= 5.5  # type: ignore[operator]
    delays = {handoff.retry_delay(3) for _ in range(50)}
    assert all(27.0 <= d <= 33.0 for d in delays) and len(delays) > 1  # type: ignore[operator]
    assert all(27.0 <= handoff.retry_delay(9) <= 33.0 for _ in range(20))  # type: ignore[operator]
    assert handoff.retry_delay(1, retry_after=12.0) == 12.0
    assert handoff.retry_delay(3, retry_after=1.0) >= 27.0  # type: ignore[operator]
    assert DurableHandoff(SqliteQueue("unused.db"), schedule=()).retry_delay(1) is None


async def test_a_raising_deliverer_counts_as_a_retry(make_handoff: MakeHandoff) -> None:
    recorder = Recorder({"flaky": [RuntimeError("connection reset")]}, expect=1)
    handoff = make_handoff()
    await handoff.start(recorder)
    await handoff.submit([inbound("flaky")])
    await wait_for(recorder.all_delivered)
    assert recorder.attempts["flaky"] == 2


async def test_workers_wake_at_once_for_new_work_and_due_retries(make_handoff: MakeHandoff) -> None:
    # With a 60 s poll, only the in-process wake-up and the sleep-until-due can make this pass in time.
    recorder = Recorder({"retried": [Retry("503")]}, expect=1)
    handoff = make_handoff(poll_interval=60.0, schedule=(0.2,))
    await handoff.start(recorder)
    await asyncio.sleep(0.05)  # the workers found nothing and went to sleep
    await handoff.submit([inbound("retried")])
    await wait_for(recorder.all_delivered)
    assert recorder.attempts["retried"] == 2

    recorder.expect, recorder.all_delivered = 2, asyncio.Event()
    await handoff.submit([inbound("fresh", chat=2)])
    await wait_for(recorder.all_delivered)


class _CountsClaims(SqliteQueue):
    """A real SQLite queue that counts the claims workers make on their own (not those made with an ack)."""

    claims = 0

    async def claim(self, *, lease: float) -> Claim | None:
        self.claims += 1
        return await super().claim(lease=lease)


async def test_an_item_wakes_one_idle_worker_not_all(tmp_path: Path) -> None:
    queue = _CountsClaims(tmp_path / "bridge.db")
    handoff = DurableHandoff(queue, workers=8, poll_interval=60.0)
    recorder = Recorder(expect=1)
    await handoff.start(recorder)
    try:
        for _ in range(200):  # every worker looks once, then sleeps for the 60 s poll
            if queue.claims == 8:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert queue.claims == 8
        await handoff.submit([inbound("only")])
        await wait_for(recorder.all_delivered)
        await asyncio.sleep(0.1)
        # The woken worker's claim, and its look after the delivery's ack found nothing more; the seven
        # others slept on (each used to wake and claim nothing).
        assert queue.claims == 8 + 2
    finally:
        await handoff.stop()


async def test_idle_waits_that_time_out_leave_nothing_behind(tmp_path: Path) -> None:
    handoff = DurableHandoff(SqliteQueue(tmp_path / "bridge.db"), workers=3, poll_interval=0.005)
    await handoff.start(Recorder())
    try:
        await asyncio.sleep(0.3)  # dozens of timed-out waits per worker
        assert len(handoff._idle) <= 3
    finally:
        await handoff.stop()
    assert not handoff._idle


async def test_graceful_stop_finishes_in_flight_and_the_next_start_resumes(make_handoff: MakeHandoff) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    delivered: list[str] = []

    async def slow_first(item: Item) -> Outcome:
        if item.dedupe_key == "n1":
            started.set()
            await release.wait()
        delivered.append(item.dedupe_key)
        return await Recorder()(item)

    handoff = make_handoff(workers=2)
    await handoff.start(slow_first)
    await handoff.submit([inbound(f"n{i}") for i in range(1, 6)])
    await wait_for(started)
    stopping = asyncio.create_task(handoff.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done(), "stop waits for the delivery in flight"
    release.set()
    await asyncio.wait_for(stopping, WAIT)
    assert delivered == ["n1"]
    with pytest.raises(HandoffStopped):
        await handoff.submit([inbound("late")])

    recorder = Recorder(expect=4)
    resumed = make_handoff()
    await resumed.queue.open()
    [row] = await resumed.status()
    assert (row.queued, row.in_flight) == (4, 0)
    await resumed.start(recorder)
    await wait_for(recorder.all_delivered)
    assert recorder.delivered == {Lane("inbound", "tg", 1): ["n2", "n3", "n4", "n5"]}


async def test_a_delivery_overrunning_the_grace_is_handed_back(make_handoff: MakeHandoff) -> None:
    started = asyncio.Event()

    async def hangs(item: Item) -> Outcome:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    handoff = make_handoff(shutdown_grace=0.1, lease=60.0)
    await handoff.start(hangs)
    await handoff.submit([inbound("stuck")])
    await wait_for(started)
    await asyncio.wait_for(handoff.stop(), WAIT)

    # Handed back: delivered now, not a minute later when the lease would have run out.
    recorder = Recorder(expect=1)
    await make_handoff(lease=60.0).start(recorder)
    await wait_for(recorder.all_delivered)
    assert recorder.attempts["stuck"] == 1


async def test_an_item_older_than_max_age_is_dead_lettered_unsent(make_queue: MakeQueue) -> None:
    clock = FakeClock()
    queue = make_queue(clock=clock)
    await queue.open()
    await queue.put([inbound("stale"), inbound("fresh", chat=2)])
    clock.advance(120)
    await queue.put([inbound("fresh-too", chat=2)])
    recorder = Recorder(expect=1)
    handoff = DurableHandoff(queue, max_age=60, poll_interval=0.05, workers=1)
    await handoff.start(recorder)
    try:
        await wait_for(recorder.all_delivered)
        await _until_dead_letters(queue, 2)
    finally:
        await handoff.stop()
    assert recorder.attempts == {"fresh-too": 1}
    reasons = {d.dedupe_key: d.reason for d in await _reopened_dead_letters(queue)}
    assert set(reasons) == {"stale", "fresh"}
    assert reasons["stale"] == "expired before delivery: waited 120.0s, max_age is 60s"


async def _until_dead_letters(queue: Queue, count: int) -> None:
    for _ in range(int(WAIT / 0.02)):
        if len(await queue.dead_letters()) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} dead letters after {WAIT}s")


async def _reopened_dead_letters(queue: Queue) -> list[Any]:
    await queue.open()
    try:
        return await queue.dead_letters()
    finally:
        await queue.close()


async def test_an_undecodable_item_is_dead_lettered(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "bridge.db")
    await queue.open()
    await queue.put([inbound("garbled"), inbound("fine")])
    with sqlite3.connect(tmp_path / "bridge.db") as db:
        db.execute("UPDATE queue_items SET body = ? WHERE dedupe_key = 'garbled'", (b'{"direction":"x"}',))
    recorder = Recorder(expect=1)
    handoff = DurableHandoff(queue, poll_interval=0.05, workers=1)
    await handoff.start(recorder)
    try:
        await wait_for(recorder.all_delivered)
        [letter] = await queue.dead_letters()
    finally:
        await handoff.stop()
    assert letter.dedupe_key == "garbled" and letter.reason.startswith("undecodable item")


def test_build_handoff_takes_the_policy_from_config(tmp_path: Path) -> None:
    delivery = DeliveryConfig(retry_schedule=[1.0, 2.0], max_age=60.0, jitter=0.2, workers=3,
                              shutdown_grace=4.0, dedupe_ttl=99.0, lease=12.0)
    config = Config(channels=[], store=StoreConfig(url=f"sqlite:///{tmp_path}/b.db"), delivery=delivery)
    handoff = build_handoff(config, poll_interval=0.25)
    assert isinstance(handoff.queue, SqliteQueue) and handoff.queue.path == tmp_path / "b.db"
    assert handoff.queue.dedupe_ttl == 99.0
    assert (handoff.schedule, handoff.max_age, handoff.jitter) == ((1.0, 2.0), 60.0, 0.2)
    assert (handoff.workers, handoff.shutdown_grace, handoff.lease, handoff.poll_interval) == (3, 4.0, 12.0, 0.25)


@pytest.mark.parametrize(
    "options",
    [{"schedule": (-1.0,)}, {"jitter": 1.5}, {"workers": 0}, {"max_age": 0}, {"lease": -1}],
)
def test_bad_policy_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        DurableHandoff(SqliteQueue("unused.db"), **options)



async def test_workers_ride_out_a_locked_database(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "bridge.db"
    queue = SqliteQueue(path, busy_timeout=0.05)
    await queue.open()
    await queue.put([inbound("n1"), inbound("n2")])
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another process holds the write lock for a while
    recorder = Recorder(expect=3)
    handoff = DurableHandoff(queue, poll_interval=0.02, workers=2)
    try:
        await handoff.start(recorder)
        with pytest.raises(QueueError):
            await handoff.submit([inbound("refused")])  # not taken over: the sender will redeliver
        await asyncio.sleep(0.2)
        blocker.execute("COMMIT")
        assert await handoff.submit([inbound("n3")]) == 1
        await wait_for(recorder.all_delivered)
    finally:
        blocker.close()
        await handoff.stop()
    assert recorder.delivered == {Lane("inbound", "tg", 1): ["n1", "n2", "n3"]}
    assert any("the delivery queue failed" in record.message for record in caplog.records)


async def test_a_delivery_longer_than_the_lease_keeps_its_lane(
    make_handoff: MakeHandoff, make_queue: MakeQueue
) -> None:
    handoff = make_handoff(lease=0.3)
    calls: list[str] = []

    async def slow(item: Item) -> Outcome:
        calls.append(item.dedupe_key)
        await asyncio.sleep(1.2)  # four leases long: renewed meanwhile, or another claimer would take it
        return Delivered()

    await handoff.submit([inbound("k1", chat=1)])
    await handoff.start(slow)
    other = make_queue()
    await other.open()
    try:
        for _ in range(10):
            await asyncio.sleep(0.1)
            assert await other.claim(lease=0.3) is None, "a renewed lease must keep other claimers out"
        await drained(handoff)
    finally:
        await other.close()
    assert calls == ["k1"]


class _StopsDuringAck(SqliteQueue):
    """A real SQLite queue whose first ack-and-claim is followed by the handoff's stop: the claim made with
    that ack is then held by a worker that must not deliver it."""

    handoff: DurableHandoff | None = None
    stopping: asyncio.Task[None] | None = None

    async def ack_and_claim(self, claim: Claim, *, lease: float) -> tuple[bool, Claim | None]:
        result = await super().ack_and_claim(claim, lease=lease)
        if self.stopping is None and self.handoff is not None:
            self.stopping = asyncio.create_task(self.handoff.stop())
            await asyncio.sleep(0)  # the stop has begun when the worker goes on
        return result


async def test_a_claim_made_with_the_last_ack_is_handed_back_at_stop(tmp_path: Path) -> None:
    queue = _StopsDuringAck(tmp_path / "bridge.db")
    handoff = DurableHandoff(queue, workers=1, lease=60.0, poll_interval=0.05)
    queue.handoff = handoff
    delivered: list[str] = []

    async def deliver(item: Item) -> Outcome:
        delivered.append(item.dedupe_key)
        return Delivered()

    await handoff.submit([inbound("first", chat=1), inbound("second", chat=2)])
    await handoff.start(deliver)
    for _ in range(200):
        if queue.stopping is not None and queue.stopping.done():
            break
        await asyncio.sleep(0.01)
    assert delivered == ["first"]
    # Handed back: ready now for the next start, not when its 60 s lease would have run out.
    again = SqliteQueue(tmp_path / "bridge.db")
    await again.open()
    try:
        claim = await again.claim(lease=60.0)
        assert claim is not None and claim.dedupe_key == "second"
    finally:
        await again.close()


async def test_a_chat_left_ready_by_an_ack_wakes_an_idle_worker(tmp_path: Path) -> None:
    # Worker A delivers l1 while l2 of the same chat waits behind it; m1 of another chat is due for a retry
    # and worker B sleeps (a 60 s poll). A's ack of l1 leaves chat 1 ready, and the claim made with that ack
    # takes the older ready lane, m1, whose delivery waits for l2. Only a wake-up of B delivers l2 in time.
    clock = FakeClock()
    queue = SqliteQueue(tmp_path / "bridge.db", clock=clock)
    handoff = DurableHandoff(queue, workers=2, poll_interval=60.0, lease=3600.0, clock=clock)
    l1_may_finish = asyncio.Event()
    l2_delivered = asyncio.Event()
    attempts: list[str] = []

    async def deliver(item: Item) -> Outcome:
        key = item.dedupe_key
        attempts.append(key)
        if key == "l1":
            await l1_may_finish.wait()
        elif key == "m1" and attempts.count("m1") == 1:
            return Retry("platform answered 503", retry_after=100.0)
        elif key == "m1":
            await asyncio.wait_for(l2_delivered.wait(), WAIT)
        elif key == "l2":
            l2_delivered.set()
        return Delivered()

    async def until(condition: Callable[[], bool]) -> None:
        for _ in range(int(WAIT / 0.01)):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the workers did not get there")

    await handoff.start(deliver)
    try:
        await until(lambda: len(handoff._idle) == 2)
        await handoff.submit([inbound("l1", chat=1)])
        await until(lambda: attempts == ["l1"] and len(handoff._idle) == 1)
        await handoff.submit([inbound("m1", chat=2)])
        await until(lambda: attempts == ["l1", "m1"] and len(handoff._idle) == 1)
        await handoff.submit([inbound("l2", chat=1)])  # wakes B, which finds chat 1 held and m1 not due
        await asyncio.sleep(0.05)
        await until(lambda: len(handoff._idle) == 1)
        clock.advance(200)  # m1 is due now; B sleeps on
        l1_may_finish.set()
        await wait_for(l2_delivered)
        await drained(handoff)
    finally:
        await handoff.stop()
    assert attempts == ["l1", "m1", "m1", "l2"]
