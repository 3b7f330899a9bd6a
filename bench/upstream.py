"""The fast upstream: a platform stub that answers 200 at once, plus the fake Telegram Bot API, in one process.

    python bench/upstream.py            prints one JSON line {"port": ..., "telegram": "http://..."} when ready

* `POST {PLATFORM_PATH}`: the platform's new_message webhook. Answers 200 `{}` and records, per message id,
  when it arrived and how long after the load generator sent it (the stamp in the message text).
* `POST /relay`: the naive relay's (and the client micro-benchmark's) upstream; answers 200 `{}`.
* `GET /_stats?phase=NAME`: what arrived: totals, duplicates, the phase's latencies and arrival times.
* The fake Telegram (bridge.testing.telegram) answers the bridge's getMe and setWebhook at its start.

It runs on the load generator's core, so the bridge's core does only the bridge's work.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BOT_TOKEN, LOAD_CORE, PLATFORM_PATH, parse_stamp, pin_to

from bridge.testing.telegram import run_fake_telegram

__all__ = ["Recorder", "main"]


class _Message(msgspec.Struct):
    id: str
    text: str = ""


class _NewMessage(msgspec.Struct):
    message: _Message


_decoder = msgspec.json.Decoder(_NewMessage)


@dataclass
class _Phase:
    latencies_ns: list[int] = field(default_factory=list)
    arrivals_ns: list[int] = field(default_factory=list)


@dataclass
class Recorder:
    """Everything the platform stub saw; one per process, reset by nobody (phases have distinct names)."""

    received: int = 0
    relayed: int = 0
    undecodable: int = 0
    seen: set[str] = field(default_factory=set)
    duplicates: int = 0
    phases: dict[str, _Phase] = field(default_factory=dict)

    def record(self, body: bytes, now_ns: int) -> None:
        self.received += 1
        try:
            message = _decoder.decode(body).message
        except msgspec.DecodeError:
            self.undecodable += 1
            return
        if message.id in self.seen:
            self.duplicates += 1
            return
        self.seen.add(message.id)
        stamp = parse_stamp(message.text)
        if stamp is None:
            return
        phase = self.phases.setdefault(stamp[0], _Phase())
        phase.latencies_ns.append(now_ns - stamp[1])
        phase.arrivals_ns.append(now_ns)

    def stats(self, phase_name: str) -> dict[str, object]:
        phase = self.phases.get(phase_name, _Phase())
        return {
            "received": self.received,
            "unique": len(self.seen),
            "duplicates": self.duplicates,
            "undecodable": self.undecodable,
            "relayed": self.relayed,
            "phase_count": len(phase.arrivals_ns),
            "latencies_ns": phase.latencies_ns,
            "arrivals_ns": phase.arrivals_ns,
        }


def build_app(recorder: Recorder) -> web.Application:
    async def platform(request: web.Request) -> web.Response:
        body = await request.read()
        recorder.record(body, time.monotonic_ns())
        return web.Response(body=b"{}", content_type="application/json")

    async def relay(request: web.Request) -> web.Response:
        await request.read()
        recorder.relayed += 1
        return web.Response(body=b"{}", content_type="application/json")

    async def stats(request: web.Request) -> web.Response:
        payload = msgspec.json.encode(recorder.stats(request.query.get("phase", "")))
        return web.Response(body=payload, content_type="application/json")

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post(PLATFORM_PATH, platform)
    app.router.add_post("/relay", relay)
    app.router.add_get("/_stats", stats)
    return app


async def serve(port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(build_app(Recorder()), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    async with run_fake_telegram(token=BOT_TOKEN) as telegram:
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
        await site.start()
        bound = runner.addresses[0][1]
        print(json.dumps({"port": bound, "telegram": telegram.url}), flush=True)
        await stop.wait()
    with contextlib.suppress(Exception):
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    pin_to(LOAD_CORE)
    asyncio.run(serve(args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
