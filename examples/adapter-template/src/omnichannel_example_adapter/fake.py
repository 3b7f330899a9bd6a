"""A fake Chirp on a loopback port, for the adapter's tests: it keeps what the bot sent, serves files, delivers
visitors' events to the registered webhook (redelivering until it gets a 2xx, like Chirp), and refuses sends on
request.

```python
async with FakeChirp.running(api_token="...") as chirp:
    ...  # configure the adapter with api_url=chirp.url
    await chirp.visitor_event("conv-1", text="hello")
    chirp.sent  # the bodies the adapter POSTed to /v1/messages
```
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import aiohttp
from aiohttp import web

__all__ = ["FakeChirp"]

Failure = tuple[Literal["permanent", "retryable"], float | None]


class FakeChirp:
    def __init__(self, api_token: str, *, redeliveries: int = 20, redelivery_delay: float = 0.02) -> None:
        self.api_token = api_token
        self.redeliveries = redeliveries
        self.redelivery_delay = redelivery_delay
        self.url = ""
        self.sent: list[dict[str, Any]] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self.webhook: tuple[str, str] | None = None
        self.failure: Failure | None = None
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    @asynccontextmanager
    async def running(cls, api_token: str, **options: Any) -> AsyncIterator[FakeChirp]:
        fake = cls(api_token, **options)
        app = web.Application()
        app.router.add_put("/v1/webhook", fake._register)
        app.router.add_post("/v1/messages", fake._message)
        app.router.add_get("/v1/files/{file_id}", fake._file)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        fake.url = f"http://127.0.0.1:{port}"
        fake._session = aiohttp.ClientSession()
        try:
            yield fake
        finally:
            await fake._session.close()
            await runner.cleanup()

    # ------------------------------------------------------------------ what tests do

    def add_file(self, content: bytes, mime_type: str) -> str:
        file_id = f"file-{uuid.uuid4().hex[:12]}"
        self.files[file_id] = (content, mime_type)
        return file_id

    async def visitor_event(self, conversation_id: str, user_id: str | None = None, **content: Any) -> int:
        """Deliver one event (`text=...`, `attachment={...}` or `button={...}`) to the webhook, redelivering
        while the bot answers other than 2xx; returns the last status."""
        if self.webhook is None or self._session is None:
            raise RuntimeError("no webhook registered: is the adapter started?")
        url, secret = self.webhook
        event = {
            "event_id": f"ev-{next(self._ids)}",
            "conversation_id": conversation_id,
            "user": {"id": user_id or f"user-{conversation_id}", "name": "Ann Example"},
            **content,
        }
        status = 0
        for _ in range(self.redeliveries):
            async with self._session.post(url, json=event, headers={"X-Chirp-Secret": secret}) as answer:
                status = answer.status
            if status < 300:
                break
            await asyncio.sleep(self.redelivery_delay)
        return status

    # ------------------------------------------------------------------ the bot API

    def _authorized(self, request: web.Request) -> bool:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.api_token}".encode())

    async def _register(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        body = await request.json()
        self.webhook = (body["url"], body["secret"])
        return web.json_response({"ok": True})

    async def _message(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        if self.failure is not None:
            kind, retry_after = self.failure
            if kind == "permanent":
                return web.json_response({"error": "the visitor blocked the bot"}, status=403)
            body: dict[str, Any] = {"error": "slow down"}
            if retry_after is not None:
                body["retry_after"] = retry_after
                return web.json_response(body, status=429)
            return web.json_response(body, status=503)
        self.sent.append(await request.json())
        return web.json_response({"ok": True, "id": f"msg-{len(self.sent)}"})

    async def _file(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": "unauthorized"}, status=401)
        found = self.files.get(request.match_info["file_id"])
        if found is None:
            return web.json_response({"error": "no such file"}, status=404)
        return web.Response(body=found[0], content_type=found[1])
