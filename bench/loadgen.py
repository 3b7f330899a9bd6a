"""The load generator: asyncio + aiohttp, a fixed number of connections, a fixed duration, loopback only.

    python bench/loadgen.py URL --connections 50 --duration 10 [--rate 500] [--header K:V] ...

Closed loop (default): each connection sends its next request as soon as the last was answered, which finds
the server's maximum rate. Paced (`--rate R`): requests start on a fixed schedule of R per second, whatever
the answers do (open loop, at most `--connections` in flight), which is how latency at a given load is
measured. Each request is a distinct Telegram update (`common.update_body`), its ids starting at `--first-id`.

Prints one JSON object: counts by status, the achieved rate, answer-time percentiles, the generator's own
CPU use (near 100 % means the generator, not the server, was the limit) and each 2xx answer's time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import LOAD_CORE, percentile, pin_to, update_body

__all__ = ["Load", "main", "run_load"]


@dataclass
class Load:
    url: str
    headers: dict[str, str]
    connections: int
    duration: float
    rate: float | None
    first_id: int
    chats: int
    phase: str
    statuses: Counter[str] = field(default_factory=Counter)
    answer_ns: list[int] = field(default_factory=list)
    ok_at_ns: list[int] = field(default_factory=list)
    _next_id: int = 0

    def __post_init__(self) -> None:
        self._next_id = self.first_id

    def next_body(self) -> bytes:
        seq = self._next_id
        self._next_id += 1
        return update_body(seq, self.chats, self.phase)

    async def send(self, session: aiohttp.ClientSession) -> None:
        body = self.next_body()
        started = time.monotonic_ns()
        try:
            async with session.post(self.url, data=body) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.statuses[type(exc).__name__] += 1
            return
        done = time.monotonic_ns()
        self.statuses[str(status)] += 1
        if 200 <= status < 300:
            self.answer_ns.append(done - started)
            self.ok_at_ns.append(done)


async def _closed_loop(load: Load, session: aiohttp.ClientSession, deadline: float) -> None:
    async def worker() -> None:
        while time.monotonic() < deadline:
            await load.send(session)

    await asyncio.gather(*(worker() for _ in range(load.connections)))


async def _paced(load: Load, session: aiohttp.ClientSession, start: float, deadline: float) -> None:
    assert load.rate is not None
    interval = 1.0 / load.rate
    slots = asyncio.Semaphore(load.connections)
    tasks: set[asyncio.Task[None]] = set()

    async def one() -> None:
        try:
            await load.send(session)
        finally:
            slots.release()

    n = 0
    while True:
        due = start + n * interval
        if due >= deadline:
            break
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await slots.acquire()
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
    if tasks:
        await asyncio.wait(tasks, timeout=30.0)


async def run_load(load: Load) -> dict[str, object]:
    host = urlsplit(load.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"refusing to load {host!r}: the generator only targets loopback addresses")
    connector = aiohttp.TCPConnector(limit=load.connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=30.0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=load.headers) as session:
        cpu0 = time.process_time()
        start = time.monotonic()
        deadline = start + load.duration
        if load.rate:
            await _paced(load, session, start, deadline)
        else:
            await _closed_loop(load, session, deadline)
        elapsed = time.monotonic() - start
        cpu = time.process_time() - cpu0
    answers = sorted(load.answer_ns)
    ok = len(answers)
    return {
        "phase": load.phase,
        "sent": sum(load.statuses.values()),
        "ok": ok,
        "statuses": dict(load.statuses),
        "elapsed": elapsed,
        # Answers within the planned duration, so a slow tail after the deadline does not inflate the rate.
        "rate": ok / elapsed if elapsed else 0.0,
        "answer_p50_ms": _ms(percentile(answers, 0.50)),
        "answer_p99_ms": _ms(percentile(answers, 0.99)),
        "gen_cpu": cpu / elapsed if elapsed else 0.0,
        "start_ns": int(start * 1e9),
        "ok_at_ns": sorted(load.ok_at_ns),
        "next_id": load._next_id,
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else value / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=float, help="requests per second (open loop); default: closed loop")
    parser.add_argument("--header", action="append", default=[], help="K:V, repeatable")
    parser.add_argument("--first-id", type=int, default=1)
    parser.add_argument("--chats", type=int, default=500, help="distinct chats the updates are spread over")
    parser.add_argument("--phase", default="load", help="tag carried in each message text")
    args = parser.parse_args(argv)
    if args.connections < 1 or not 0 < args.duration <= 600 or (args.rate is not None and args.rate <= 0):
        parser.error("connections >= 1, 0 < duration <= 600 and rate > 0 are required")
    headers = {"Content-Type": "application/json"}
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep:
            parser.error(f"--header {header!r}: expected NAME:VALUE")
        headers[name.strip()] = value.strip()
    pin_to(LOAD_CORE)
    load = Load(args.url, headers, args.connections, args.duration, args.rate, args.first_id, args.chats,
                args.phase)
    print(json.dumps(asyncio.run(run_load(load))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
