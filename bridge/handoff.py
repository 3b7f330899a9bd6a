"""The seam between taking a message over and delivering it, in both directions.

The core builds a `InboundItem` (for the platform) or an `OutboundItem` (for a messenger) and hands it to a
`Handoff`. `Handoff.submit` returns only once the item is taken over: with a durable handoff that means it is
stored; the caller answers its sender 2xx only after that. Delivery itself is a `Deliverer` that turns one item
into an `Outcome`; the handoff decides about retries, order and dead letters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Literal

import msgspec

from bridge.messages import Outbound
from bridge.protocol import NewMessage

__all__ = [
    "Delivered",
    "Deliverer",
    "DeliveryStatus",
    "Direction",
    "Handoff",
    "InboundItem",
    "Item",
    "OutboundItem",
    "Outcome",
    "Permanent",
    "Retry",
    "decode_item",
    "encode_item",
]

Direction = Literal["inbound", "outbound"]


class InboundItem(msgspec.Struct, tag="inbound", tag_field="direction"):
    """A visitor's message on its way to the platform."""

    channel_id: str
    chat_id: int
    dedupe_key: str
    payload: NewMessage
    # When the core took the message over (seconds since the epoch, shared by replicas): delivery latency.
    taken_over_at: float | None = None
    # Follows the message from its arrival to its delivery in every log line (see bridge.logs).
    correlation_id: str | None = None


class OutboundItem(msgspec.Struct, tag="outbound", tag_field="direction"):
    """An agent's message (one part of it, after splitting) on its way to a messenger."""

    channel_id: str
    chat_id: int
    dedupe_key: str
    message: Outbound
    taken_over_at: float | None = None
    correlation_id: str | None = None


Item = InboundItem | OutboundItem

_item_encoder = msgspec.json.Encoder()
_item_decoder = msgspec.json.Decoder(Item)


def encode_item(item: Item) -> bytes:
    return _item_encoder.encode(item)


def decode_item(data: bytes) -> Item:
    item: Item = _item_decoder.decode(data)  # typed as Any by older msgspec releases
    return item


class Delivered(msgspec.Struct, frozen=True):
    pass


class Retry(msgspec.Struct, frozen=True):
    reason: str
    retry_after: float | None = None


class Permanent(msgspec.Struct, frozen=True):
    reason: str


Outcome = Delivered | Retry | Permanent
Deliverer = Callable[[Item], Awaitable[Outcome]]


class DeliveryStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The backlog of one channel in one direction, as operators and health checks see it.

    `queued` counts items waiting (a scheduled retry included), `in_flight` items being delivered right now,
    `oldest_age` the seconds since the oldest of both was taken over (None when there are none)."""

    channel_id: str
    direction: Direction
    queued: int = 0
    in_flight: int = 0
    oldest_age: float | None = None
    dead_letters: int = 0


class Handoff(ABC):
    """Takes items over and gets them delivered. Items of one (channel, chat, direction) are delivered in the
    order `submit` was called for them."""

    @abstractmethod
    async def start(self, deliver: Deliverer) -> None:
        """Begin delivering with `deliver`."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop taking work; let in-flight deliveries finish within the configured bound."""

    @abstractmethod
    async def submit(self, items: list[Item]) -> int | None:
        """Take the items over (all or none); items whose `dedupe_key` was seen before are skipped.
        Raises an exception when they could not be taken over, so the sender can redeliver.
        Returns how many items were new when the handoff knows (the rest were duplicates), else None."""

    async def status(self) -> list[DeliveryStatus]:
        """The backlog per channel and direction; only handoffs that keep a backlog implement it."""
        raise NotImplementedError(f"{type(self).__name__} keeps no backlog")
