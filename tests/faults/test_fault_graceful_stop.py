"""SIGTERM, as an orchestrator stops the bridge: it takes no new work, lets the deliveries in flight finish
within `delivery.shutdown_grace`, leaves everything else queued, and the next start resumes.

The receiving side (the platform, or the company behind the HTTP adapter) holds its answers back, so that
deliveries are in flight at the moment of the signal; it answers once the bridge has logged that it is stopping.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from aiohttp import web

from tests.conftest import free_port
from tests.faults.harness import (
    REPLY_TOKEN,
    BridgeProcess,
    Company,
    Fleet,
    bridge_config,
    check_arrivals,
    eventually,
    http_channel,
)

CHATS = 3
PER_CHAT = 3
STOPPED = (0, -signal.SIGTERM)  # uvicorn may re-raise the signal after its graceful shutdown
WEBHOOK_PATH = "/connector/omnichannel/omnichannel_message/{token}/bot_api_webhook"


class HeldAnswers:
    """The other side of a delivery: records each POST the moment it arrives and, while holding, answers
    only when released. `held` says which paths hold (the platform's webhook, the company's callback)."""

    def __init__(self, held: set[str]) -> None:
        self.held = held
        self.received: dict[str, list[dict[str, Any]]] = {"platform": [], "callback": []}
        self._release = asyncio.Event()

    def holding(self, kind: str) -> bool:
        return kind in self.held and not self._release.is_set()

    def release(self) -> None:
        self._release.set()

    async def _answer(self, kind: str, request: web.Request) -> web.Response:
        self.received[kind].append(await request.json())
        if self.holding(kind):
            await self._release.wait()
        return web.json_response({"result": "ok"})

    async def platform(self, request: web.Request) -> web.Response:
        return await self._answer("platform", request)

    async def callback(self, request: web.Request) -> web.Response:
        return await self._answer("callback", request)

    def arrived(self, kind: str, count: int) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return len(self.received[kind]) >= count

        return check


@asynccontextmanager
async def held_answers(port: int, held: set[str]) -> AsyncIterator[HeldAnswers]:
    side = HeldAnswers(held)
    app = web.Application()
    app.router.add_post(WEBHOOK_PATH, side.platform)
    app.router.add_post("/cb", side.callback)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield side
    finally:
        side.release()
        await runner.cleanup()


def chat_texts() -> dict[str, list[str]]:
    return {f"c{chat}": [f"c{chat}/{n}" for n in range(PER_CHAT)] for chat in range(CHATS)}


def desk_channel(port: int) -> dict[str, Any]:
    channel = http_channel(f"http://127.0.0.1:{port}")
    channel["adapter"]["callback_url"] = f"http://127.0.0.1:{port}/cb"
    return channel


def backlog(rows: list[dict[str, Any]], direction: str) -> tuple[int, int, int]:
    """(queued, in flight, dead letters) of the desk channel in `direction`, from `status --json`."""
    row = next(r for r in rows if r["channel_id"] == "desk" and r["direction"] == direction)
    return row["queued"], row["in_flight"], row["dead_letters"]


async def send_all(company: Company, bridge: BridgeProcess, texts: dict[str, list[str]]) -> None:
    await asyncio.gather(*(company.send_chat([bridge.url], chat, chat_texts) for chat, chat_texts in texts.items()))


async def test_in_flight_deliveries_finish_and_the_rest_stays_queued(store_url: str, fleet: Fleet,
                                                                     company: Company) -> None:
    port = free_port()
    bridge = fleet.add(bridge_config([desk_channel(port)], store_url=store_url, port=free_port(), shutdown_grace=20))
    expected = chat_texts()
    async with held_answers(port, {"platform"}) as side:
        await bridge.start()
        await send_all(company, bridge, expected)
        await eventually(side.arrived("platform", CHATS), "every chat's first message held by the platform")

        async def answer_in_flight() -> None:
            side.release()

        assert await bridge.terminate(while_stopping=answer_in_flight) in STOPPED, bridge.log_tail()
        # Nothing was taken after the signal: only the deliveries in flight reached the platform...
        first = sorted(texts[0] for texts in expected.values())
        assert sorted(body["message"]["text"] for body in side.received["platform"]) == first
        # ...they were recorded as delivered, and the rest waits in the queue.
        assert backlog(await bridge.status(), "inbound") == (CHATS * (PER_CHAT - 1), 0, 0)

        await bridge.start()
        await eventually(side.arrived("platform", CHATS * PER_CHAT), "the rest after the restart")
        await bridge.wait_drained()
        check_arrivals(side.received["platform"], expected)  # in order, and nothing delivered twice


async def test_a_send_to_the_messenger_in_flight_finishes(store_url: str, fleet: Fleet, company: Company) -> None:
    """The adapter stays up until the deliveries in flight are done: a callback held at the signal is answered,
    recorded as delivered, and not sent again after the restart."""
    port = free_port()
    bridge = fleet.add(bridge_config([desk_channel(port)], store_url=store_url, port=free_port(), shutdown_grace=20))
    async with held_answers(port, {"callback"}) as side:
        await bridge.start()
        await company.send([bridge.url], "c0", "m-hello", "hello")
        await eventually(side.arrived("platform", 1), "the visitor's message at the platform")
        chat_id = side.received["platform"][0]["chat_id"]
        async with httpx.AsyncClient(base_url=bridge.url, headers={"Authorization": f"Token {REPLY_TOKEN}"}) as client:
            for text in ("r/0", "r/1"):
                body = {"chat_id": chat_id, "message": {"kind": "operator", "text": text}}
                answer = await client.post("/channels/desk/send_message", json=body)
                assert answer.status_code == 200, answer.text
        await eventually(side.arrived("callback", 1), "the first reply held by the company")

        async def answer_in_flight() -> None:
            side.release()

        assert await bridge.terminate(while_stopping=answer_in_flight) in STOPPED, bridge.log_tail()
        assert [c["text"] for c in side.received["callback"]] == ["r/0"]
        assert backlog(await bridge.status(), "outbound") == (1, 0, 0)

        await bridge.start()
        await eventually(side.arrived("callback", 2), "the second reply after the restart")
        await bridge.wait_drained()
        assert [c["text"] for c in side.received["callback"]] == ["r/0", "r/1"]


async def test_deliveries_that_outlast_the_grace_are_handed_back(store_url: str, fleet: Fleet,
                                                                 company: Company) -> None:
    port = free_port()
    bridge = fleet.add(bridge_config([desk_channel(port)], store_url=store_url, port=free_port(), shutdown_grace=0.5))
    expected = chat_texts()
    async with held_answers(port, {"platform"}) as side:
        await bridge.start()
        await send_all(company, bridge, expected)
        await eventually(side.arrived("platform", CHATS), "every chat's first message held by the platform")

        # The platform never answers: the bridge exits all the same, soon after the grace.
        assert await bridge.terminate(timeout=20) in STOPPED, bridge.log_tail()
        assert "still running after" in bridge.log_tail(), "the cut-off deliveries were not reported"
        # Everything is still queued, the cut-off deliveries included, none in flight: a restart need not wait
        # for their leases to run out.
        assert backlog(await bridge.status(), "inbound") == (CHATS * PER_CHAT, 0, 0)
        assert len(side.received["platform"]) == CHATS, "work was taken after the signal"
        side.release()

        await bridge.start()
        await eventually(side.arrived("platform", CHATS + CHATS * PER_CHAT), "everything after the restart")
        await bridge.wait_drained()
    first = [texts[0] for texts in expected.values()]
    counts = check_arrivals(side.received["platform"], expected, may_repeat=first)
    assert {text for text, n in counts.items() if n == 2} == set(first)
