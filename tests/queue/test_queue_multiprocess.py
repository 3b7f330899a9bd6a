"""Several delivery processes on one queue, one of them killed with SIGKILL mid-load.

The deliverers POST to a loopback recorder (standing in for the platform), which refuses some first attempts
with 503. Per lane, delivery n+1 starts only after n was acknowledged, so the order in which the recorder
accepts a lane's items is the order they were delivered in.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from bridge.handoff import Item
from bridge.queue import Queue, open_queue
from tests.conftest import free_port
from tests.queue.helpers import inbound, outbound

WORKER = Path(__file__).with_name("delivery_worker.py")
PROCESSES = 3
WORKERS_EACH = 4
LEASE = 1.0
LANES = 16
PER_LANE = 25


@dataclass
class Recorder:
    """The loopback "platform": accepts a record unless it is the first attempt of every seventh key."""

    accepted: list[tuple[str, str, int]] = field(default_factory=list)  # (lane, key, pid)
    seen: set[str] = field(default_factory=set)

    async def handle(self, request: web.Request) -> web.Response:
        record = await request.json()
        key = record["key"]
        first_attempt = key not in self.seen
        self.seen.add(key)
        await asyncio.sleep(0.002)  # a little work, so that the load lasts
        if first_attempt and int(key.rsplit("-", 1)[1]) % 7 == 3:
            return web.Response(status=503)
        self.accepted.append((record["lane"], key, int(record["pid"])))
        return web.Response(status=200)


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[Recorder, str]]:
    rec = Recorder()
    app = web.Application()
    app.router.add_post("/record", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield rec, f"http://127.0.0.1:{port}/record"
    await runner.cleanup()


@pytest.fixture(params=["redis", "sqlite"])
def queue_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/bridge.db"
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_cleanup")
    return f"{url}?prefix={prefix}"


def workload() -> list[Item]:
    """Lanes in both directions and two channels, submitted interleaved as traffic arrives."""
    items: list[Item] = []
    for n in range(PER_LANE):
        for lane in range(LANES):
            make = inbound if lane % 2 else outbound
            channel = "tg" if lane % 4 < 2 else "web"
            items.append(make(f"l{lane}-{n}", chat=lane // 4 + 1, channel=channel))
    return items


async def test_killed_replica_loses_nothing_and_lanes_keep_order(
    queue_url: str, recorder: tuple[Recorder, str]
) -> None:
    rec, record_url = recorder
    producer: Queue = open_queue(queue_url)
    await producer.open()
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), queue_url, record_url, str(WORKERS_EACH), str(LEASE),
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"ready\n"
        items = workload()
        for start in range(0, len(items), 40):  # traffic keeps arriving while the workers drain
            await producer.put(items[start : start + 40])
            await asyncio.sleep(0.01)

        await _wait(lambda: len(rec.accepted) >= len(items) // 4)
        by_pid: dict[int, int] = {}
        for _, _, pid in rec.accepted:
            by_pid[pid] = by_pid.get(pid, 0) + 1
        victim = next(p for p in procs if p.pid == max(by_pid, key=by_pid.__getitem__))
        os.kill(victim.pid, signal.SIGKILL)
        await victim.wait()

        expected = {item.dedupe_key for item in items}
        await _wait(lambda: {key for _, key, _ in rec.accepted} == expected)
        await _wait_async(lambda: _drained(producer))
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(proc.wait(), 30) for proc in procs]
        await producer.close()
    assert codes.count(-signal.SIGKILL) == 1 and codes.count(0) == PROCESSES - 1

    # Per lane, the accepted sequence never goes back: n+1 never before n (a re-delivery of n, after the
    # crash, may repeat n but nothing after it).
    lanes: dict[str, list[int]] = {}
    for lane, key, _ in rec.accepted:
        lanes.setdefault(lane, []).append(int(key.rsplit("-", 1)[1]))
    assert len(lanes) == LANES
    for lane, sequence in lanes.items():
        assert sequence == sorted(sequence), f"lane {lane} went out of order: {sequence}"
        assert sorted(set(sequence)) == list(range(PER_LANE))
    # Duplicates only for what the killed process had in flight: at most one item per worker it ran.
    keys = [key for _, key, _ in rec.accepted]
    duplicated = {key for key in keys if keys.count(key) > 1}
    assert len(keys) - len(set(keys)) <= WORKERS_EACH
    first_by = {key: pid for _, key, pid in reversed(rec.accepted)}
    assert all(first_by[key] == victim.pid for key in duplicated)
    assert len(by_pid) >= 2, "the load was shared by several processes"


async def _drained(queue: Queue) -> bool:
    return await queue.status() == []


async def _wait(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _wait_async(condition: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)
