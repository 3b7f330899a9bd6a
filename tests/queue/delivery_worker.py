"""One bridge replica's delivery side, for the multi-process tests (run by a test, not collected by pytest).

    python delivery_worker.py QUEUE_URL RECORD_URL WORKERS LEASE

Runs a `DurableHandoff` on the queue whose deliverer POSTs each item to RECORD_URL (a loopback server in
the test, standing in for the platform): 200 means delivered, anything else a retry. Prints "ready" once
its workers run, and stops gracefully on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import aiohttp

from bridge.delivery import DurableHandoff
from bridge.handoff import Delivered, Item, Outcome, Retry
from bridge.queue import lane_of, open_queue


async def run(queue_url: str, record_url: str, workers: int, lease: float) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    handoff = DurableHandoff(
        open_queue(queue_url),
        schedule=(0.0, 0.05),
        jitter=0.0,
        workers=workers,
        lease=lease,
        poll_interval=0.05,
        shutdown_grace=2.0,
    )
    async with aiohttp.ClientSession() as session:

        async def deliver(item: Item) -> Outcome:
            lane = lane_of(item)
            record = {"key": item.dedupe_key, "lane": f"{lane.direction}/{lane.channel_id}/{lane.chat_id}",
                      "pid": os.getpid()}
            try:
                async with session.post(record_url, json=record) as response:
                    if response.status == 200:
                        return Delivered()
                    return Retry(f"recorder answered {response.status}")
            except aiohttp.ClientError as exc:
                return Retry(f"recorder unreachable: {exc}")

        await handoff.start(deliver)
        print("ready", flush=True)
        await stop.wait()
        await handoff.stop()


def main() -> None:
    queue_url, record_url, workers, lease = sys.argv[1:]
    asyncio.run(run(queue_url, record_url, int(workers), float(lease)))


if __name__ == "__main__":
    main()
