"""The durable handoff: items are taken over by storing them in a `Queue`, and worker tasks deliver them.

Workers claim the head of a ready lane, call the `Deliverer`, and settle the claim by the outcome:
`Delivered` acks it; `Permanent` dead-letters it; `Retry` schedules the next attempt along `schedule` (the delay
before retry k is `schedule[k-1]`, the last step repeating), with +/- `jitter` (a fraction) so that lanes that
failed together do not retry together, and never sooner than the deliverer's `retry_after`. An item is
dead-lettered instead when its next attempt would come later than `max_age` after it was taken over (the
schedule is exhausted), and an item that waited longer than `max_age` for its first attempt (a bridge stopped
for days) is dead-lettered without one: operators can still replay it. A deliverer that raises counts as a retry.

Workers wake at once when this process submits work (one idle worker per item stored, as each claims one
lane) or an ack leaves a chat ready that the acking worker did not take, at the exact time the next retry is
due, and otherwise every `poll_interval` seconds to see work that other processes or replicas put. While a
delivery runs its lease is renewed every third of `lease`, so only a claimer that died loses it.

`stop()` stops claiming, gives in-flight deliveries `shutdown_grace` seconds to finish and be recorded, then
cancels them and hands their items back to the queue; whatever is still queued stays there for the next
start. The handoff owns its queue: `start()` opens it, `stop()` closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

import msgspec

from bridge._errors import describe_error
from bridge.backlog import Backlog, Backpressure
from bridge.config import Config, DeliveryConfig
from bridge.handoff import (
    Delivered,
    Deliverer,
    DeliveryStatus,
    Handoff,
    Item,
    Outcome,
    Permanent,
    Retry,
    decode_item,
)
from bridge.leases import LeaseKeeper
from bridge.logs import item_log_fields
from bridge.queue import Claim, Queue, QueueError, open_queue

__all__ = ["DEFAULT_SCHEDULE", "Backpressure", "DurableHandoff", "HandoffStopped", "build_handoff"]

DEFAULT_SCHEDULE: tuple[float, ...] = (0.0, 5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0)

log = logging.getLogger("bridge.delivery")


class HandoffStopped(QueueError):
    """`submit` after `stop()`: the items were not taken over."""


class DurableHandoff(Handoff):
    def __init__(
        self,
        queue: Queue,
        *,
        schedule: Sequence[float] = DEFAULT_SCHEDULE,
        jitter: float = 0.1,
        max_age: float = 24 * 3600.0,
        workers: int = 16,
        shutdown_grace: float = 10.0,
        lease: float = 30.0,
        poll_interval: float = 0.5,
        max_backlog: int = 0,
        high_water: int = 0,
        high_water_wait: float = 2.0,
        backlog_refresh: float = 1.0,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if any(not math.isfinite(step) or step < 0 for step in schedule):
            raise ValueError("retry schedule steps must be non-negative numbers of seconds")
        if not 0 <= jitter <= 1:
            raise ValueError("jitter must be a fraction between 0 and 1")
        if max_age <= 0 or lease <= 0 or poll_interval <= 0 or shutdown_grace < 0:
            raise ValueError("max_age, lease and poll_interval must be positive, shutdown_grace not negative")
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.queue = queue
        self.schedule = tuple(schedule)
        self.jitter = jitter
        self.max_age = max_age
        self.workers = workers
        self.shutdown_grace = shutdown_grace
        self.lease = lease
        self.poll_interval = poll_interval
        self._clock = clock or queue.clock
        self._rng = rng or random.Random()
        self._deliver: Deliverer | None = None
        self._leases = LeaseKeeper(queue, lease=lease, describe=_describe)
        self._tasks: list[asyncio.Task[None]] = []
        # Idle workers, longest idle first, each waiting on its own future (see `_notify`); and the number of
        # submits that stored something, so that a worker whose claim raced one does not go to sleep.
        self._idle: deque[asyncio.Future[bool]] = deque()
        self._submits = 0
        self._stopping = False
        self._stopped = False
        self._ready_probe: asyncio.Future[float | None] | None = None
        self.backlog = Backlog(
            queue,
            max_backlog=max_backlog,
            high_water=high_water,
            high_water_wait=high_water_wait,
            refresh=backlog_refresh,
            clock=self._clock,
        )

    @classmethod
    def from_config(cls, queue: Queue, config: DeliveryConfig, **overrides: float) -> DurableHandoff:
        """The handoff `config.delivery` describes; keyword overrides (lease, poll_interval) win."""
        options: dict[str, float] = {
            "jitter": config.jitter,
            "max_age": config.max_age,
            "workers": config.workers,
            "shutdown_grace": config.shutdown_grace,
            "lease": config.lease,
            "max_backlog": config.max_backlog,
            "high_water": config.high_water,
            "high_water_wait": config.high_water_wait,
            **overrides,
        }
        return cls(queue, schedule=config.retry_schedule, **options)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ Handoff

    async def start(self, deliver: Deliverer) -> None:
        if self._tasks or self._stopped:
            raise RuntimeError("a DurableHandoff starts once")
        await self.queue.open()
        self._deliver = deliver
        self._leases.start()
        self._tasks = [asyncio.create_task(self._work(), name=f"delivery-worker-{n}") for n in range(self.workers)]

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopping = self._stopped = True
        self._notify(len(self._idle))
        self.backlog.close()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=self.shutdown_grace)
            if pending:
                log.warning(
                    "%d deliveries still running after %ss: handing them back", len(pending), self.shutdown_grace
                )
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        self._tasks = []
        await self._leases.stop()
        if self._ready_probe is not None:
            self._ready_probe.cancel()
        await self.queue.close()

    async def submit(self, items: list[Item]) -> int:
        if self._stopped:
            raise HandoffStopped("the bridge is shutting down; the items were not taken over")
        if not items:
            return 0
        await self.queue.open()
        await self.backlog.admit(items)
        if self._stopped:  # while the sender was held above high water
            raise HandoffStopped("the bridge is shutting down; the items were not taken over")
        stored = await self.queue.put(items)
        if stored:
            self._notify(stored)
            self.backlog.stored(items)
        return stored

    async def status(self) -> list[DeliveryStatus]:
        return await self.queue.status()

    # ------------------------------------------------------------------ policy

    def retry_delay(self, attempts: int, retry_after: float | None = None) -> float | None:
        """Seconds before the next attempt after `attempts` failed ones; None when no retry is scheduled."""
        if not self.schedule:
            return None
        step = self.schedule[min(max(attempts, 1), len(self.schedule)) - 1]
        delay = max(0.0, step * (1 + self._rng.uniform(-self.jitter, self.jitter)))
        if retry_after is not None and math.isfinite(retry_after):
            delay = max(delay, retry_after)
        return delay

    # ------------------------------------------------------------------ workers

    def _notify(self, count: int) -> None:
        """Wake up to `count` idle workers, the longest idle first. Waking every idle worker for each item cost
        each of them a claim that found nothing, which made a larger pool dearer at low load. A worker busy
        claiming meanwhile sees the submit by its count and looks again instead of sleeping (`_sleep`)."""
        self._submits += 1
        idle = self._idle
        while count > 0 and idle:
            waiter = idle.popleft()
            if not waiter.done():
                waiter.set_result(True)
                count -= 1

    async def _work(self) -> None:
        failures = 0
        claim: Claim | None = None  # made along with the last ack, not yet delivered
        while not self._stopping:
            seen = self._submits
            try:
                if claim is None:
                    claim = await self.queue.claim(lease=self.lease)
                if claim is None:
                    await self._sleep(seen, await self._idle_for())
                else:
                    claim = await self._process(claim)
                failures = 0
            except QueueError as exc:
                claim = None
                failures = min(failures + 1, 8)
                log.warning("the delivery queue failed (%s); retrying", exc)
                await self._sleep(seen, min(self.poll_interval * 2**failures, 5.0))
            except Exception:
                # A bug must not silently shrink the pool: log it and go on (an item held now is
                # handed out again when its lease runs out).
                claim = None
                failures = min(failures + 1, 8)
                log.exception("a delivery worker failed; it goes on")
                await self._sleep(seen, min(self.poll_interval * 2**failures, 5.0))
        if claim is not None:  # made along with the last ack just before the stop: not to be delivered now
            await self._hand_back(claim)

    async def _idle_for(self) -> float:
        # Workers that found nothing to claim share one look at the queue instead of one query (a thread hop
        # or a round trip) each.
        probe = self._ready_probe
        if probe is None or probe.done():
            probe = self._ready_probe = asyncio.ensure_future(self.queue.next_ready_at())
            probe.add_done_callback(_consume_error)  # its waiters may all have been cancelled meanwhile
        ready_at = await asyncio.shield(probe)
        if ready_at is None:
            return self.poll_interval
        return min(max(ready_at - self._clock(), 0.005), self.poll_interval)

    async def _sleep(self, seen: int, seconds: float) -> None:
        """Wait `seconds` or until `_notify` picks this worker; not at all when work was submitted since the
        worker read `seen` (before its claim), so no wake-up is lost."""
        if self._stopping or self._submits != seen:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._idle.append(waiter)
        timer = loop.call_later(seconds, _time_up, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            if waiter.cancelled() or not waiter.result():  # not taken off the list by `_notify`
                with contextlib.suppress(ValueError):
                    self._idle.remove(waiter)

    async def _process(self, claim: Claim) -> Claim | None:
        """Deliver and settle one claim; returns the next claim when one was made along with the ack."""
        try:
            item = decode_item(claim.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await self._settle(claim, self.queue.dead_letter(claim, f"undecodable item: {exc}"))
            self.backlog.settled(claim)
            return None
        age = self._clock() - claim.enqueued_at
        # Only a first attempt can be too late: a retry was scheduled within max_age, so it is made.
        if claim.attempts == 1 and age > self.max_age:
            reason = f"expired before delivery: waited {age:.1f}s, max_age is {self.max_age:g}s"
            log.warning("dead-lettering %s: %s", _describe(claim), reason, extra=_extra(item))
            await self._settle(claim, self.queue.dead_letter(claim, reason))
            self.backlog.settled(claim)
            return None
        outcome = await self._attempt(claim, item)
        next_claim = None
        if isinstance(outcome, Delivered):
            if self._stopping:
                await self._settle(claim, self.queue.ack(claim))
            else:
                acked, next_claim = await self.queue.ack_and_claim(claim, lease=self.lease)
                _note_recorded(claim, acked)
                if next_claim is not None and next_claim.lane != claim.lane:
                    # The ack may have left this chat's next item ready while the claim made with it took
                    # an older lane: an idle worker takes the chat on, instead of it waiting for a poll.
                    self._notify(1)
            self.backlog.settled(claim)
        elif isinstance(outcome, Permanent):
            log.warning(
                "dead-lettering %s after a permanent failure: %s", _describe(claim), outcome.reason, extra=_extra(item)
            )
            await self._settle(claim, self.queue.dead_letter(claim, outcome.reason))
            self.backlog.settled(claim)
        else:
            await self._settle(claim, self._schedule_retry(claim, item, outcome))
        return next_claim

    async def _attempt(self, claim: Claim, item: Item) -> Outcome:
        deliver = self._deliver
        assert deliver is not None, "workers run only after start()"
        try:
            with self._leases.holding(claim):
                outcome = await deliver(item)
        except asyncio.CancelledError:
            await self._hand_back(claim)
            raise
        except Exception as exc:
            log.exception("delivering %s raised; it will be retried", _describe(claim), extra=_extra(item))
            outcome = Retry(f"delivery raised {describe_error(exc)}")
        if not isinstance(outcome, Delivered | Permanent | Retry):
            return Retry(f"the deliverer returned {outcome!r} instead of an outcome")
        return outcome

    def _schedule_retry(self, claim: Claim, item: Item, outcome: Retry) -> Awaitable[bool]:
        now = self._clock()
        delay = self.retry_delay(claim.attempts, outcome.retry_after)
        deadline = claim.enqueued_at + self.max_age
        if delay is None or now + delay > deadline:
            reason = (
                f"gave up after {claim.attempts} attempt(s) in {now - claim.enqueued_at:.1f}s "
                f"(max_age {self.max_age:g}s); last error: {outcome.reason}"
            )
            log.warning("dead-lettering %s: %s", _describe(claim), reason, extra=_extra(item))
            return self.queue.dead_letter(claim, reason)
        log.info(
            "retrying %s in %.1fs (attempt %d failed: %s)",
            _describe(claim),
            delay,
            claim.attempts,
            outcome.reason,
            extra=_extra(item),
        )
        return self.queue.retry_at(claim, now + delay, outcome.reason)

    async def _settle(self, claim: Claim, operation: Awaitable[bool]) -> None:
        """Record an outcome. Only `False` (the lease was lost to another claimer) is final here: a queue
        error propagates to the worker loop, and the lease running out makes the item go round again."""
        _note_recorded(claim, await operation)

    async def _hand_back(self, claim: Claim) -> None:
        """A delivery cancelled at shutdown: make its lane ready now rather than when the lease runs out."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.queue.retry_at(claim, self._clock(), "delivery interrupted by shutdown"), 2.0)


def _note_recorded(claim: Claim, recorded: bool) -> None:
    if not recorded:
        log.warning(
            "the lease on %s ran out before its outcome was recorded; it will be delivered again", _describe(claim)
        )


def _time_up(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


def _consume_error(future: asyncio.Future[float | None]) -> None:
    if not future.cancelled():
        future.exception()


def _describe(claim: Claim) -> str:
    return f"{claim.direction} item {claim.dedupe_key!r} of chat {claim.chat_id} on {claim.channel_id!r}"


def _extra(item: Item) -> dict[str, object]:
    """Log-record fields that tie a line to the message and its journey through the bridge: direction, channel,
    chat id, message id and correlation id, as on every other line about it."""
    return {key: value for key, value in item_log_fields(item).items() if value is not None}


def build_handoff(config: Config, **overrides: float) -> DurableHandoff:
    """The durable handoff for a bridge config: its queue on `store.url`, its policy from `delivery`."""
    queue = open_queue(config.store.url, dedupe_ttl=config.delivery.dedupe_ttl)
    return DurableHandoff.from_config(queue, config.delivery, **overrides)
