"""Group commit: concurrent writes that arrive while one is being written share the next round trip.

A durable write costs one fsync (SQLite) or one network round trip (Redis) whether it carries one item or a
hundred, so under load the cost per item falls with the batch size, while a lone write is still sent at
once: there is no timer and no added latency.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")

# One result per submitted value: the value's own outcome, or the exception that refused it alone.
Flush = Callable[[list[T]], Awaitable[list[R | BaseException]]]


class GroupCommit(Generic[T, R]):
    """Collects values from concurrent `submit` calls and passes them to `flush` in batches, in order.

    `flush` gets every value waiting (up to `max_batch`) and returns one result per value; if `flush` itself
    raises, every value of that batch fails with that exception.
    """

    def __init__(self, flush: Flush[T, R], *, max_batch: int = 512) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._flush = flush
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, value: T) -> R:
        # A caller that is cancelled stops waiting; its write may still land (dedupe covers a redelivery).
        return await self.enqueue(value)

    def enqueue(self, value: T) -> asyncio.Future[R]:
        """`submit` without waiting: values enqueued one after the other, with no await between them, go in
        the same batch, in that order."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((value, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="queue-group-commit")
        return future

    async def wait_idle(self) -> None:
        """Return once every value submitted so far has been flushed."""
        while self._drainer is not None and not self._drainer.done():
            await asyncio.shield(self._drainer)

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                results = await self._flush([value for value, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            except BaseException:
                # The drainer itself is being cancelled (loop shutdown): nobody will write these values.
                for _, future in batch + self._pending:
                    future.cancel()
                self._pending.clear()
                raise
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
