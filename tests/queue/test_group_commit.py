"""Group commit: concurrent submissions share a flush, keep their order, and fail one by one."""

from __future__ import annotations

import asyncio

import pytest

from bridge.queue.batching import GroupCommit


async def test_concurrent_values_share_flushes_in_order() -> None:
    flushed: list[list[int]] = []

    async def flush(values: list[int]) -> list[int | BaseException]:
        flushed.append(values)
        await asyncio.sleep(0.01)  # a write in flight: the next submissions pile up behind it
        return [value * 10 if value != 3 else ValueError("refused: 3") for value in values]

    group: GroupCommit[int, int] = GroupCommit(flush, max_batch=4)
    results = await asyncio.gather(*(group.submit(n) for n in range(10)), return_exceptions=True)

    assert [n for batch in flushed for n in batch] == list(range(10))
    assert len(flushed) < 10 and max(len(batch) for batch in flushed) <= 4
    assert results[:3] == [0, 10, 20] and results[4:] == [n * 10 for n in range(4, 10)]
    assert isinstance(results[3], ValueError), "only the refused value fails"


async def test_a_failed_flush_fails_its_batch_only() -> None:
    calls = 0

    async def flush(values: list[str]) -> list[str | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(0.01)
            raise OSError("disk full")
        return [value.upper() for value in values]

    group: GroupCommit[str, str] = GroupCommit(flush)
    first = asyncio.create_task(group.submit("a"))
    await asyncio.sleep(0)  # "a" is being written alone
    later = asyncio.gather(group.submit("b"), group.submit("c"))
    with pytest.raises(OSError, match="disk full"):
        await first
    assert list(await later) == ["B", "C"]
    await group.wait_idle()
