"""The durable queue under `DurableHandoff`: one abstract base, one small module per backend.

The model both backends implement:

* Items live in **lanes**, one per `(direction, channel_id, chat_id)`. A lane delivers strictly in `put`
  order: only its *head* is ever handed out, and only to one claimer at a time. Different lanes are
  independent: a lane waiting for a retry or held by a slow delivery never delays another lane.
* A lane is **ready** when its head is due and nobody holds it. `claim` hands out the head of a ready lane
  under a **lease**: the lane is held until the claimer calls `ack` (delivered), `retry_at` (the head stays
  where it is and the lane waits until the due time; message n+1 never goes before n) or `dead_letter` (the
  head moves to the dead letters with its reason and the lane moves on). A claimer that dies simply stops
  renewing its lease (`extend`); once the lease runs out the lane is ready again and another claimer (in this
  process, another process or another replica) gets the same head again: delivery is at least once.
  A claimer that lost its lease gets `False` from `ack`/`retry_at`/`dead_letter` and must not assume
  anything it did was recorded.
* `put` stores a batch all or none, and skips items whose `dedupe_key` was put within `dedupe_ttl` for the same
  direction and channel (also when the earlier item has been delivered, dead-lettered or dropped since).
* **Replay order.** Within a lane, heads are dead-lettered in lane order, so the order of dead letters (their
  ids ascending) is the order the chat should have seen them. `replay` appends the chosen dead letters to the
  tail of their lanes in that order: after any item already queued in the lane (an operator never makes a
  later message overtake one that is waiting), and in their original relative order. A replayed item starts
  afresh: no attempts, its age counted from the replay, its dedupe key still remembered.

Times are seconds on the queue's `clock` (wall-clock by default, shared by every replica: keep clocks in sync
to well within the lease). All methods may raise `QueueError` when the backend cannot answer.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import NamedTuple

import msgspec

from bridge.handoff import DeliveryStatus, Direction, InboundItem, Item, encode_item

__all__ = [
    "DEFAULT_DEDUPE_TTL",
    "Claim",
    "Clock",
    "DeadLetter",
    "DeliveryStatus",
    "Entry",
    "Lane",
    "Queue",
    "QueueError",
    "entries_for",
    "lane_of",
]

DEFAULT_DEDUPE_TTL = 24 * 3600.0

Clock = Callable[[], float]


class QueueError(Exception):
    """The queue's backend is unreachable or refused an operation; nothing can be assumed to be stored."""


class Lane(NamedTuple):
    direction: Direction
    channel_id: str
    chat_id: int


def lane_of(item: Item) -> Lane:
    direction: Direction = "inbound" if isinstance(item, InboundItem) else "outbound"
    return Lane(direction, item.channel_id, item.chat_id)


class Entry(NamedTuple):
    """An item as a backend stores it: its lane, its dedupe key and its encoded body."""

    lane: Lane
    dedupe_key: str
    body: bytes


def entries_for(items: Sequence[Item]) -> list[Entry]:
    return [Entry(lane_of(item), item.dedupe_key, encode_item(item)) for item in items]


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """The head of a lane, handed to one claimer under a lease.

    `body` is the encoded item (`bridge.handoff.decode_item`); it is kept encoded so that an item written by
    another version of the bridge that cannot be decoded can still be dead-lettered instead of blocking its
    lane. `attempts` counts claims of this item, this one included.
    """

    item_id: str
    token: str
    direction: Direction
    channel_id: str
    chat_id: int
    dedupe_key: str
    body: bytes
    enqueued_at: float
    attempts: int
    last_error: str | None = None

    @property
    def lane(self) -> Lane:
        return Lane(self.direction, self.channel_id, self.chat_id)


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """An item that will not be delivered unless an operator replays it. `body` is the item's JSON."""

    id: str
    direction: Direction
    channel_id: str
    chat_id: int
    dedupe_key: str
    body: bytes
    enqueued_at: float
    dead_at: float
    attempts: int
    reason: str

    @property
    def lane(self) -> Lane:
        return Lane(self.direction, self.channel_id, self.chat_id)


class Queue(ABC):
    """A durable, deduplicating, per-lane ordered queue (see the module docstring for the model)."""

    def __init__(self, *, dedupe_ttl: float = DEFAULT_DEDUPE_TTL, clock: Clock = time.time) -> None:
        if dedupe_ttl <= 0:
            raise ValueError("dedupe_ttl must be positive")
        self.dedupe_ttl = dedupe_ttl
        self.clock = clock

    @abstractmethod
    async def open(self) -> None:
        """Connect and create or migrate the schema. Idempotent."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; puts still being written finish first."""

    # ----------------------------------------------------------------- producers

    @abstractmethod
    async def put(self, items: Sequence[Item]) -> int:
        """Store the items, all or none, skipping duplicates; return how many were new. Returns only once
        the new items are durable. Concurrent calls may share one write (group commit)."""

    # ----------------------------------------------------------------- consumers

    @abstractmethod
    async def claim(self, *, lease: float) -> Claim | None:
        """The head of some ready lane, held for `lease` seconds; None when no lane is ready now."""

    @abstractmethod
    async def extend(self, claim: Claim, *, lease: float) -> bool:
        """Hold the claim `lease` more seconds from now; False when the lease was lost."""

    @abstractmethod
    async def ack(self, claim: Claim) -> bool:
        """The head was delivered: remove it and release the lane."""

    async def ack_and_claim(self, claim: Claim, *, lease: float) -> tuple[bool, Claim | None]:
        """`ack`, then `claim`: what a worker does after each delivery. A backend that can send both in one
        round trip overrides this; if the ack fails, no claim is left held."""
        acked = await self.ack(claim)
        return acked, await self.claim(lease=lease)

    @abstractmethod
    async def retry_at(self, claim: Claim, due: float, reason: str) -> bool:
        """Keep the head, note `reason`, and keep the lane waiting until `due`."""

    @abstractmethod
    async def dead_letter(self, claim: Claim, reason: str) -> bool:
        """Move the head to the dead letters with `reason` and release the lane."""

    @abstractmethod
    async def next_ready_at(self) -> float | None:
        """The earliest time some lane becomes ready (may be in the past); None when the queue is empty.
        Lets idle consumers sleep exactly until a retry is due."""

    # ----------------------------------------------------------------- operators

    @abstractmethod
    async def status(self) -> list[DeliveryStatus]:
        """One row per (channel, direction) that has queued items or dead letters, sorted."""

    @abstractmethod
    async def dead_letters(
        self, *, channel_id: str | None = None, direction: Direction | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        """Dead letters, oldest first, optionally of one channel and/or direction."""

    @abstractmethod
    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetter | None: ...

    @abstractmethod
    async def replay(self, dead_letter_ids: Sequence[str]) -> list[str]:
        """Re-queue the dead letters at their lanes' tails, in dead-letter order; return the ids replayed
        (unknown ids are left out)."""

    @abstractmethod
    async def drop(self, dead_letter_ids: Sequence[str]) -> list[str]:
        """Delete dead letters for good; return the ids dropped (unknown ids are left out)."""
