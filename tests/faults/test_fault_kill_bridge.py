"""Fault 2: `kill -9` the bridge at the three moments that matter, restart it, and count what arrived.

(a) messages taken over while the platform is down, none POSTed yet: all arrive after the restart, once;
(b) a POST that reached the platform but whose success was never recorded: it arrives again after the restart,
    with the same `message.id` (the platform's dedupe key), and that is the only repeat;
(c) Telegram polling: updates fetched with getUpdates but not yet taken over (the store refuses writes at that
    moment): the restarted bridge fetches them again, and each arrives once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from bridge.emulator import RunningEmulator, run_emulator
from bridge.testing.telegram import FakeTelegram
from tests.conftest import free_port
from tests.faults.harness import (
    Company,
    Fleet,
    accepted_bodies,
    bridge_config,
    check_arrivals,
    eventually,
    http_channel,
    silent_platform,
    telegram_channel,
)

CHATS = 3
PER_CHAT = 3


def chat_texts() -> dict[str, list[str]]:
    return {f"c{chat}": [f"c{chat}/{n}" for n in range(PER_CHAT)] for chat in range(CHATS)}


async def send_all(company: Company, url: str, texts: dict[str, list[str]]) -> None:
    await asyncio.gather(*(company.send_chat([url], chat, chat_texts) for chat, chat_texts in texts.items()))


async def test_killed_after_taking_over_before_posting(store_url: str, fleet: Fleet, company: Company) -> None:
    platform_port = free_port()  # nothing listens there yet: every POST is refused
    bridge = fleet.add(bridge_config([http_channel(f"http://127.0.0.1:{platform_port}")], store_url=store_url,
                                     port=free_port()))
    await bridge.start()
    expected = chat_texts()
    await send_all(company, bridge.url, expected)
    await bridge.kill()

    async with run_emulator(silent_platform(), port=platform_port) as platform:
        await bridge.start()
        total = CHATS * PER_CHAT
        await platform.wait_until(lambda: len(accepted_bodies(platform.received())) >= total, timeout=20,
                                  what=f"{total} messages")
        await bridge.wait_drained()
        check_arrivals(accepted_bodies(platform.received()), expected)
        assert await bridge.outcomes("delivered") == total


class StallingPlatform:
    """A platform that records each `new_message` the moment it arrives and, while `stalling`, answers only
    when released: the window between the POST and the bridge recording its success, held open."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.stalling = True
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        if self.stalling:
            await self.release.wait()
        return web.json_response({"result": "ok"})

    def recover(self) -> None:
        self.stalling = False
        self.release.set()


@asynccontextmanager
async def stalling_platform(port: int) -> AsyncIterator[StallingPlatform]:
    platform = StallingPlatform()
    app = web.Application()
    app.router.add_post("/connector/omnichannel/omnichannel_message/{token}/bot_api_webhook", platform.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield platform
    finally:
        platform.recover()
        await runner.cleanup()


async def test_killed_after_posting_before_recording_success(store_url: str, fleet: Fleet,
                                                             company: Company) -> None:
    platform_port = free_port()
    bridge = fleet.add(bridge_config([http_channel(f"http://127.0.0.1:{platform_port}")], store_url=store_url,
                                     port=free_port()))
    expected = chat_texts()
    async with stalling_platform(platform_port) as platform:
        await bridge.start()
        await send_all(company, bridge.url, expected)
        # Every chat's first message is at the platform, which holds its answer back.
        await eventually(_at_least(platform.received, CHATS), f"{CHATS} POSTs held by the platform")
        await bridge.kill()
        in_flight = sorted(body["message"]["text"] for body in platform.received)
        assert in_flight == sorted(texts[0] for texts in expected.values())

        platform.recover()
        await bridge.start()
        total = CHATS * PER_CHAT + len(in_flight)
        await eventually(_at_least(platform.received, total), f"{total} POSTs after the restart")
        await bridge.wait_drained()
        counts = check_arrivals(platform.received, expected, may_repeat=in_flight)
        # The restarted bridge delivered everything itself: the held messages again, the rest once.
        assert await bridge.outcomes("delivered") == CHATS * PER_CHAT
    assert {text for text, n in counts.items() if n == 2} == set(in_flight)
    assert len(platform.received) == total


async def test_killed_between_get_updates_and_taking_over(tmp_path: Path, fleet: Fleet, tg: FakeTelegram,
                                                          platform: RunningEmulator) -> None:
    database = tmp_path / "bridge.db"
    served = _record_served_updates(tg)
    bridge = fleet.add(bridge_config([telegram_channel(platform.url, tg, mode="polling")],
                                     store_url=f"sqlite:///{database}", port=free_port()))
    await bridge.start()
    first = tg.push_update(tg.message_update(501, text="a/0"))
    await platform.wait_for_received(1, timeout=10)
    await tg.wait_confirmed(first + 1, timeout=10)
    await bridge.wait_drained()  # its delivery is recorded too: the lock below must not hold up an ack

    with _writes_refused(database):
        pending = [tg.push_update(tg.message_update(chat, text=text))
                   for chat, text in ((501, "a/1"), (502, "b/0"), (501, "a/2"))]
        await eventually(_served_all(served, pending), "getUpdates handing out the new updates")
        # The answer is on its way to the bridge, which cannot store what it holds: give it the moment it
        # needs to read the answer and be stuck taking the messages over, then cut it off.
        await asyncio.sleep(0.2)
        await bridge.kill()
    assert tg.confirmed_offset <= pending[0], "the updates were confirmed without being taken over"
    assert platform.received()[1:] == []

    await bridge.start()
    await platform.wait_for_received(4, timeout=20)
    await bridge.wait_drained()
    check_arrivals(accepted_bodies(platform.received()), {"501": ["a/0", "a/1", "a/2"], "502": ["b/0"]})
    assert all(served.count(update_id) >= 2 for update_id in pending), "the restart fetched the updates again"


# ---------------------------------------------------------------------------------------------------- helpers


def _at_least(received: list[dict[str, Any]], count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return len(received) >= count

    return check


def _record_served_updates(tg: FakeTelegram) -> list[int]:
    """The update ids each getUpdates answer carried, in order, as the fake handed them out."""
    served: list[int] = []
    original = tg._api_getUpdates

    async def get_updates(params: dict[str, Any]) -> web.Response:
        answer = await original(params)
        served.extend(update["update_id"] for update in tg._updates[: int(params.get("limit") or 100)])
        return answer

    setattr(tg, "_api_getUpdates", get_updates)  # noqa: B010 -- instrumenting the fake, not our code
    return served


def _served_all(served: list[int], update_ids: list[int]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return set(update_ids) <= set(served)

    return check


@contextmanager
def _writes_refused(database: Path) -> Iterator[None]:
    """Hold the database's write lock, as a stalled disk or a long operator query would: the bridge can read
    but cannot take anything over until it is released."""
    conn = sqlite3.connect(database, isolation_level=None, timeout=10)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()
