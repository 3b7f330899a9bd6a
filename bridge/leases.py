"""Lease renewal for the deliveries in flight, one task for all of them.

A claim's lease is renewed about a third of `lease` after the claim or its last renewal, so only a claimer
that died loses it. One task looking every sixth of `lease` replaces a task per delivery, which every
message paid for (created, scheduled and cancelled) although almost no delivery lasts long enough to need it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from bridge.queue import Claim, Queue, QueueError

__all__ = ["LeaseKeeper"]

log = logging.getLogger("bridge.delivery")


class LeaseKeeper:
    def __init__(self, queue: Queue, *, lease: float, describe: Callable[[Claim], str]) -> None:
        if lease <= 0:
            raise ValueError("lease must be positive")
        self.queue = queue
        self.lease = lease
        self._describe = describe
        # Claims being delivered, by lease token, with the loop time of their claim or last renewal.
        self._held: dict[str, tuple[Claim, float]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._renew_forever(), name="delivery-leases")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def holding(self, claim: Claim) -> contextlib.AbstractContextManager[None]:
        """Keep `claim`'s lease while the block runs."""
        return _Holding(self._held, claim)

    async def _renew_forever(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.lease / 3
        while True:
            await asyncio.sleep(period / 2)
            now = loop.time()
            due = [claim for claim, renewed in self._held.values() if now - renewed >= period]
            for claim in due:
                await self._renew(claim)

    async def _renew(self, claim: Claim) -> None:
        if claim.token not in self._held:  # settled while earlier renewals were awaited
            return
        try:
            kept = await self.queue.extend(claim, lease=self.lease)
        except QueueError as exc:
            log.warning("could not renew the lease on %s: %s", self._describe(claim), exc)
            return
        if not kept:
            log.warning("lost the lease on %s while delivering it", self._describe(claim))
            self._held.pop(claim.token, None)  # another claimer has it now: stop renewing
        elif claim.token in self._held:
            self._held[claim.token] = (claim, asyncio.get_running_loop().time())


class _Holding:
    # A plain class rather than a generator-based context manager: one wraps every delivery, and the generator
    # machinery cost more than the two dictionary operations inside.
    __slots__ = ("_claim", "_held")

    def __init__(self, held: dict[str, tuple[Claim, float]], claim: Claim) -> None:
        self._held = held
        self._claim = claim

    def __enter__(self) -> None:
        self._held[self._claim.token] = (self._claim, asyncio.get_running_loop().time())

    def __exit__(self, *_exc: object) -> None:
        self._held.pop(self._claim.token, None)
