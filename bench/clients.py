"""CPU cost of one HTTP POST by client library, 50 in flight, against the platform stub's /relay.

    python bench/clients.py http://127.0.0.1:PORT/relay [--requests 3000] [--concurrency 50]

Runs pinned to the app core (the client is what is measured; the stub answers from the other core) and
prints one JSON object: per client, CPU milliseconds per POST and POSTs per second. This is the number that
chose the platform path's client (first aiohttp over httpx, then `bridge.http1` over aiohttp): the delivery
workers spend much of their time in their HTTP client. `platform_client` is the bridge's own
`PlatformClient.post_json` (`bridge.http1` plus answer classification).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import APP_CORE, pin_to, update_body

from bridge.handoff import Delivered
from bridge.platform import PlatformClient

__all__ = ["main", "measure_clients"]

_HEADERS = {"Content-Type": "application/json"}
Post = Callable[[bytes], Awaitable[bool]]


async def _measure(post: Post, requests: int, concurrency: int) -> dict[str, float]:
    bodies = [update_body(n, 100, "client") for n in range(concurrency)]

    async def worker(k: int, count: int) -> int:
        ok = 0
        for _ in range(count):
            ok += await post(bodies[k])
        return ok

    warm = max(concurrency, requests // 10)
    await asyncio.gather(*(worker(k, warm // concurrency) for k in range(concurrency)))
    per_worker = max(1, requests // concurrency)
    cpu, wall = time.process_time(), time.perf_counter()
    ok = sum(await asyncio.gather(*(worker(k, per_worker) for k in range(concurrency))))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    total = per_worker * concurrency
    return {"cpu_ms": cpu / total * 1e3, "rate": total / wall, "failed": total - ok}


async def measure_clients(url: str, requests: int, concurrency: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(timeout=10.0, limits=limits) as client:

        async def httpx_post(body: bytes) -> bool:
            return (await client.post(url, content=body, headers=_HEADERS)).status_code == 200

        results["httpx"] = await _measure(httpx_post, requests, concurrency)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

        async def aiohttp_post(body: bytes) -> bool:
            async with session.post(url, data=body, headers=_HEADERS) as response:
                await response.read()
                return response.status == 200

        results["aiohttp"] = await _measure(aiohttp_post, requests, concurrency)

    async with PlatformClient() as platform:

        async def platform_post(body: bytes) -> bool:
            return isinstance(await platform.post_json(url, body), Delivered)

        results["platform_client"] = await _measure(platform_post, requests, concurrency)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be positive")
    if not args.url.startswith(("http://127.0.0.1:", "http://localhost:")):
        parser.error("the micro-benchmark only posts to loopback")
    pin_to(APP_CORE)
    print(json.dumps(asyncio.run(measure_clients(args.url, args.requests, args.concurrency))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
