"""A handoff without a queue: delivers inline while the sender waits.

For tests of the core and for a bridge that must not keep state; it loses nothing only because it reports
every failure back to the sender (which then redelivers), so it is not the default.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from bridge.handoff import Deliverer, Handoff, Item, Permanent, Retry

__all__ = ["DeliveryFailed", "DirectHandoff"]


class DeliveryFailed(Exception):
    pass


class DirectHandoff(Handoff):
    def __init__(self) -> None:
        self._deliver: Deliverer | None = None
        self._lanes: defaultdict[tuple[str, str, int], asyncio.Lock] = defaultdict(asyncio.Lock)

    async def start(self, deliver: Deliverer) -> None:
        self._deliver = deliver

    async def stop(self) -> None:
        self._deliver = None

    async def submit(self, items: list[Item]) -> None:
        if self._deliver is None:
            raise DeliveryFailed("the bridge is not running")
        for item in items:
            async with self._lanes[(type(item).__name__, item.channel_id, item.chat_id)]:
                outcome = await self._deliver(item)
            match outcome:
                case Retry(reason=reason) | Permanent(reason=reason):
                    raise DeliveryFailed(reason)
