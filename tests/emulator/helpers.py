"""Loopback HTTP servers for the emulator and platform client tests: a recording fake of the bridge's reply
endpoint, and a scriptable server for answers the emulator never gives."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web

__all__ = [
    "FakeBridge",
    "SeenRequest",
    "loopback_server",
    "new_message",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def loopback_server(handler: Handler) -> AsyncIterator[str]:
    """Serve `handler` for every method and path on 127.0.0.1:<free port>; yields the base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class SeenRequest(msgspec.Struct):
    method: str
    path: str
    authorization: str | None
    content_type: str | None
    body: Any
    peer_port: int


class FakeBridge:
    """Records every request to the bridge's reply endpoint and answers `status` with `{"result": "ok"}`.

    `delays` (seconds, consumed one per request) slow the answers down, so tests can see whether the emulator
    sends one chat's replies one at a time.
    """

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[SeenRequest] = []
        self.delays: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.url = ""
        self._changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delays:
                await asyncio.sleep(self.delays.pop(0))
            raw = await request.read()
            try:
                body: Any = msgspec.json.decode(raw)
            except msgspec.DecodeError:
                body = raw.decode(errors="replace")
            peer = request.transport.get_extra_info("peername") if request.transport else None
            self.requests.append(
                SeenRequest(
                    method=request.method,
                    path=request.path,
                    authorization=request.headers.get("Authorization"),
                    content_type=request.headers.get("Content-Type"),
                    body=body,
                    peer_port=int(peer[1]) if peer else 0,
                )
            )
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()
            return web.json_response({"result": "ok"}, status=self.status)
        finally:
            self.in_flight -= 1

    async def wait_for(self, n: int, timeout: float = 5.0) -> list[SeenRequest]:
        async with asyncio.timeout(timeout):
            while len(self.requests) < n:
                await self._changed.wait()
        return self.requests

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[FakeBridge]:
        async with loopback_server(self.handle) as url:
            self.url = url
            yield self


def new_message(
    text: str = "hello",
    *,
    chat_id: int = 42,
    message_id: str = "m-1",
    visitor_id: str = "v-1",
    **message: Any,
) -> dict[str, Any]:
    """A raw `new_message` body (a dict, so tests can break it); `message` overrides the message object."""
    body_message: dict[str, Any] = message or {"id": message_id, "kind": "visitor", "text": text}
    return {
        "event": "new_message",
        "chat_id": chat_id,
        "visitor": {"id": visitor_id, "fields": {"name": "Ann"}},
        "message": body_message,
    }
