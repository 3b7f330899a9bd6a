"""A real HTTP file server on loopback for the download guard's tests, recording every request it gets.

Routes: `/files/{name}` (registered content, with `Content-Length`), `/redirect?to=URL` (302),
`/chunked/{size}` (no `Content-Length`), `/status/{code}`, `/hang` (never answers) and `/drip` (a byte every
few milliseconds, forever).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Seen:
    path: str
    host: str | None


@dataclass
class FileServer:
    url: str = ""
    port: int = 0
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, name: str, content: bytes, content_type: str = "application/octet-stream") -> str:
        self.files[name] = (content, content_type)
        return f"{self.url}/files/{name}"

    def paths(self) -> list[str]:
        return [seen.path for seen in self.seen]

    async def _record(self, request: web.Request) -> None:
        self.seen.append(Seen(request.path_qs, request.headers.get("Host")))

    async def _file(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        found = self.files.get(request.match_info["name"])
        if found is None:
            return web.Response(status=404, text="no such file")
        content, content_type = found
        return web.Response(body=content, content_type=content_type)

    async def _redirect(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        return web.Response(status=302, headers={"Location": request.query["to"]})

    async def _chunked(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        size = int(request.match_info["size"])
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, size, 4096):
            await response.write(b"x" * min(4096, size - start))
        await response.write_eof()
        return response

    async def _status(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        return web.Response(status=int(request.match_info["code"]), text="status")

    async def _hang(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        await self._stop.wait()
        return web.Response(text="late")

    async def _drip(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        while not self._stop.is_set():
            await response.write(b".")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.01)
        return response


@contextlib.asynccontextmanager
async def run_file_server(
    *, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[FileServer]:
    server = FileServer()
    app = web.Application()
    app.router.add_get("/files/{name}", server._file)
    app.router.add_get("/redirect", server._redirect)
    app.router.add_get("/chunked/{size}", server._chunked)
    app.router.add_get("/status/{code}", server._status)
    app.router.add_get("/hang", server._hang)
    app.router.add_get("/drip", server._drip)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
        await site.start()
        server.port = int(runner.addresses[0][1])
        scheme = "https" if ssl_context else "http"
        server.url = f"{scheme}://{host}:{server.port}"
        yield server
    finally:
        server._stop.set()
        await runner.cleanup()
