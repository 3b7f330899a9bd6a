"""The SQLite queue's group commit: puts that share a transaction still succeed or fail one by one."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bridge.queue.base import QueueError
from bridge.queue.sqlite import SqliteQueue
from tests.queue.helpers import inbound

LEASE = 30.0


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[SqliteQueue]:
    opened = SqliteQueue(tmp_path / "queue.db")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def on_the_side(queue: SqliteQueue, statement: str) -> None:
    """Run `statement` on a connection of its own, as another process would."""
    other = sqlite3.connect(queue.path, isolation_level=None)
    try:
        other.execute(statement)
    finally:
        other.close()


async def test_a_failing_put_fails_alone_when_it_shares_a_transaction(queue: SqliteQueue) -> None:
    # A real SQL error for one put only: a trigger refuses one message.
    on_the_side(
        queue,
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON queue_items WHEN NEW.dedupe_key = 'poison' "
        "BEGIN SELECT RAISE(ABORT, 'poison refused'); END",
    )
    # Submitted together, so they go in one batch (one transaction) to the database.
    results = await asyncio.gather(
        queue.put([inbound("before", chat=1)]),
        queue.put([inbound("poison", chat=2), inbound("with-poison", chat=3)]),
        queue.put([inbound("after", chat=1)]),
        return_exceptions=True,
    )
    assert results[0] == 1 and results[2] == 1
    assert isinstance(results[1], QueueError) and "poison refused" in str(results[1])
    # The failing put left nothing behind, not even its other item or its dedupe marks: sent again once
    # the database takes it, it is stored.
    delivered = []
    while (claim := await queue.claim(lease=LEASE)) is not None:
        delivered.append(claim.dedupe_key)
        assert await queue.ack(claim)
    assert sorted(delivered) == ["after", "before"]
    on_the_side(queue, "DROP TRIGGER refuse_poison")
    assert await queue.put([inbound("poison", chat=2), inbound("with-poison", chat=3)]) == 2


async def test_a_lone_failing_put_raises_its_error(queue: SqliteQueue) -> None:
    on_the_side(queue, "CREATE TRIGGER refuse_all BEFORE INSERT ON queue_items BEGIN SELECT RAISE(ABORT, 'full'); END")
    with pytest.raises(QueueError, match="full"):
        await queue.put([inbound("lonely")])
