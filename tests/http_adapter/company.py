"""A fake of a company's system for the HTTP adapter's tests, on a loopback port.

It plays both sides of the integration: it POSTs visitors' messages to the bridge (signed or with a bearer
token, redelivering on 5xx like a well-behaved system), and it receives the bridge's callbacks, checking their
signatures with the receiver snippet from docs/http-adapter.md, and failing them on request.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import msgspec
from aiohttp import web

from adapters.http.signing import signature_headers
from tests.http_adapter.receiver import verify_bridge_callback

Failure = tuple[Literal["permanent", "retryable"], float | None]


@dataclass
class Callback:
    body: dict[str, Any]
    headers: dict[str, str]
    verified: bool
    raw: bytes


@dataclass
class FakeCompany:
    callback_secret: str
    url: str = ""
    callbacks: list[Callback] = field(default_factory=list)
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    failure: Failure | None = None
    # Answer callbacks after this many seconds (longer than the adapter's timeout = a timeout).
    delay: float = 0.0
    # Answer callbacks with this status (and Retry-After value) instead of processing them.
    answer: tuple[int, str | None] | None = None
    redeliveries: int = 20
    redelivery_delay: float = 0.02
    _session: aiohttp.ClientSession | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @classmethod
    @asynccontextmanager
    async def running(cls, callback_secret: str) -> AsyncIterator[FakeCompany]:
        company = cls(callback_secret)
        app = web.Application()
        app.router.add_post("/callback", company._callback)
        app.router.add_get("/files/{name}", company._file)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        company.url = f"http://127.0.0.1:{port}"
        company._session = aiohttp.ClientSession()
        try:
            yield company
        finally:
            await company._session.close()
            await runner.cleanup()

    @property
    def callback_url(self) -> str:
        return f"{self.url}/callback"

    def add_file(self, name: str, content: bytes, content_type: str) -> str:
        self.files[name] = (content, content_type)
        return f"{self.url}/files/{name}"

    def new_message_id(self) -> str:
        return f"m-{next(self._ids)}"

    # ------------------------------------------------------------------ the company calling the bridge

    async def post(
        self,
        inbound_url: str,
        message: dict[str, Any],
        *,
        secret: str | None = None,
        token: str | None = None,
        redeliver: bool = True,
    ) -> tuple[int, dict[str, Any]]:
        """POST one message, signed with `secret` or with the bearer `token`; redelivers on 5xx when asked."""
        if self._session is None:
            raise RuntimeError("the fake company is not running")
        body = msgspec.json.encode(message)
        status, answer = 0, {}
        for _ in range(self.redeliveries if redeliver else 1):
            headers = {"Content-Type": "application/json"}
            if secret is not None:
                headers.update(signature_headers(secret, body))
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            async with self._session.post(inbound_url, data=body, headers=headers) as response:
                status, answer = response.status, await response.json()
            if status < 500:
                break
            await asyncio.sleep(self.redelivery_delay)
        return status, answer

    # ------------------------------------------------------------------ the bridge calling the company

    async def _callback(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        verified = verify_bridge_callback(self.callback_secret, headers, body, now=time.time())
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.answer is not None:
            status, retry_after = self.answer
            extra = {"Retry-After": retry_after} if retry_after is not None else {}
            return web.json_response({"error": "scripted answer"}, status=status, headers=extra)
        if not verified:
            return web.json_response({"error": "bad signature"}, status=401)
        if self.failure is not None:
            kind, wait = self.failure
            if kind == "permanent":
                return web.json_response({"error": "unknown chat"}, status=404)
            headers_out = {"Retry-After": str(int(wait))} if wait is not None else {}
            return web.json_response({"error": "busy"}, status=429 if wait is not None else 503,
                                     headers=headers_out)
        self.callbacks.append(Callback(msgspec.json.decode(body), headers, verified, body))
        return web.json_response({"ok": True})

    async def _file(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["name"])
        if found is None:
            return web.json_response({"error": "no such file"}, status=404)
        return web.Response(body=found[0], content_type=found[1])
