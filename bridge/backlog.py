"""Backpressure for the durable handoff: ingest must never starve delivery, nor grow a queue without bound.

Per channel and direction, two marks on the backlog (items queued or in flight):

* above `high_water` a sender waits (at most `high_water_wait` seconds) for deliveries to settle before its
  items are taken over: on one event loop, unthrottled ingest would take the loop from the delivery workers
  and the backlog would only grow. Held senders go on in the order they came, one per settled item (waking
  them all would cost every one of them a look per settled item);
* at `max_backlog` new items are refused with `Backpressure`, so the sender redelivers later.

The backlog is read from the queue at most every `refresh` seconds (other processes' and replicas' work shows
up there); in between it is kept by counting this process's puts and settled items, as reading the queue's
status on every submit would cost more than the submit itself. A zero mark is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable, Sequence

from bridge.handoff import Item
from bridge.queue import Claim, Queue, QueueError, lane_of

__all__ = ["Backlog", "Backpressure"]

_Key = tuple[str, str]  # (channel id, direction)


class Backpressure(QueueError):
    """A channel's queue in one direction is full (`max_backlog`): the items were not taken over, and the
    sender should come back later. Raised instead of storing without bound, so ingest cannot starve delivery."""


class Backlog:
    def __init__(
        self,
        queue: Queue,
        *,
        max_backlog: int = 0,
        high_water: int = 0,
        high_water_wait: float = 2.0,
        refresh: float = 1.0,
        clock: Callable[[], float],
    ) -> None:
        if max_backlog < 0 or high_water < 0 or high_water_wait < 0 or refresh <= 0:
            raise ValueError(
                "max_backlog, high_water and high_water_wait must not be negative, backlog_refresh must be positive"
            )
        self.queue = queue
        self.max_backlog = max_backlog
        self.high_water = high_water
        self.high_water_wait = high_water_wait
        self.refresh = refresh
        self._clock = clock
        self._counts: dict[_Key, int] = {}
        self._read_at = -math.inf
        self._read_lock = asyncio.Lock()
        self._held: dict[_Key, deque[asyncio.Future[bool]]] = {}
        self._closed = False
        # Below this many items a channel is under every mark that is on (0: no mark is on).
        self._room = min((mark for mark in (high_water, max_backlog) if mark), default=0)

    async def admit(self, items: Sequence[Item]) -> None:
        """Return when the items may be stored: at once below high water, after a bounded wait above it;
        raise `Backpressure` when their channel's queue is full."""
        if self._has_room(items):
            return
        if self.high_water:
            await self._wait_below_high_water(items)
        if self.max_backlog:
            await self._refuse_when_full(items)

    def stored(self, items: Sequence[Item]) -> None:
        if self.max_backlog or self.high_water:
            for item in items:
                key = _key(item)
                self._counts[key] = self._counts.get(key, 0) + 1

    def settled(self, claim: Claim) -> None:
        """One item left the backlog (delivered or dead-lettered): let the longest-held sender of it through."""
        key = (claim.channel_id, claim.direction)
        if key in self._counts:
            self._counts[key] = max(0, self._counts[key] - 1)
        held = self._held.get(key)
        while held:
            turn = held.popleft()
            if not turn.done():
                turn.set_result(True)
                return

    def close(self) -> None:
        """Let every held sender go (the handoff is stopping) and hold no more."""
        self._closed = True
        for held in self._held.values():
            while held:
                _release(held.popleft())

    def _has_room(self, items: Sequence[Item]) -> bool:
        """The common case, decided without a look at the queue: the counts are fresh and every item's channel
        is below every mark (or no mark is on)."""
        if not self._room:
            return True
        if self._clock() - self._read_at >= self.refresh:
            return False
        counts, room = self._counts, self._room
        return all(counts.get(_key(item), 0) < room for item in items)

    async def _read(self) -> None:
        if self._clock() - self._read_at >= self.refresh:
            async with self._read_lock:
                if self._clock() - self._read_at >= self.refresh:
                    rows = await self.queue.status()
                    self._counts = {(r.channel_id, r.direction): r.queued + r.in_flight for r in rows}
                    self._read_at = self._clock()

    async def _wait_below_high_water(self, items: Sequence[Item]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.high_water_wait
        keys = {_key(item) for item in items}
        woken = False
        while not self._closed:
            await self._read()
            full = next((key for key in keys if self._counts.get(key, 0) >= self.high_water), None)
            remaining = deadline - loop.time()
            if full is None or remaining <= 0:
                return
            held = self._held.setdefault(full, deque())
            turn: asyncio.Future[bool] = loop.create_future()
            # A sender woken for a settled item that still finds no room keeps its place at the front.
            if woken:
                held.appendleft(turn)
            else:
                held.append(turn)
            timer = loop.call_later(min(remaining, self.refresh), _release, turn)
            try:
                woken = await turn
            finally:
                timer.cancel()
                if not turn.done() or not woken:
                    with contextlib.suppress(ValueError):
                        held.remove(turn)

    async def _refuse_when_full(self, items: Sequence[Item]) -> None:
        await self._read()
        for key in {_key(item) for item in items}:
            count = self._counts.get(key, 0)
            if count >= self.max_backlog:
                raise Backpressure(
                    f"the {key[1]} queue of channel {key[0]!r} holds {count} messages (delivery.max_backlog "
                    f"is {self.max_backlog}); not taken over, retry later"
                )


def _release(turn: asyncio.Future[bool]) -> None:
    """A held sender's wait ended without a settled item (timed out, or the handoff stops)."""
    if not turn.done():
        turn.set_result(False)


def _key(item: Item) -> _Key:
    lane = lane_of(item)
    return lane.channel_id, lane.direction
