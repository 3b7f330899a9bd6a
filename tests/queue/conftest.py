"""Queue fixtures: every contract test runs on a real SQLite file and on the real test Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bridge.queue import Queue
from bridge.queue.redis import RedisQueue
from bridge.queue.sqlite import SqliteQueue
from tests.queue.helpers import FakeClock

MakeQueue = Callable[..., Queue]


@pytest.fixture(params=["sqlite", "redis"])
def make_queue(request: pytest.FixtureRequest, tmp_path: Path) -> MakeQueue:
    """Builds queue instances (not opened) that share one storage, like processes sharing one database."""
    if request.param == "sqlite":
        path = tmp_path / "data" / "bridge.db"

        def make_sqlite(**options: Any) -> Queue:
            return SqliteQueue(path, **options)

        return make_sqlite
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_cleanup")

    def make_redis(**options: Any) -> Queue:
        return RedisQueue(url, prefix=prefix, **options)

    return make_redis


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def queue(make_queue: MakeQueue, clock: FakeClock) -> AsyncIterator[Queue]:
    q = make_queue(clock=clock)
    await q.open()
    yield q
    await q.close()
