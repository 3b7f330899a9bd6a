"""Run an ASGI app on a real loopback port inside the current event loop, for tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn

__all__ = ["RunningServer", "ServerStartupError", "serve"]


class ServerStartupError(RuntimeError):
    """The app's lifespan startup failed (an adapter or the store could not start)."""


@dataclass(frozen=True, slots=True)
class RunningServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextlib.asynccontextmanager
async def serve(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0
) -> AsyncIterator[RunningServer]:
    """Serve `app` (lifespan included) until the block exits; port 0 picks a free port."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)

    async def run() -> None:
        try:
            await server.serve()
        except SystemExit as exc:  # uvicorn exits the process when the lifespan startup fails
            raise ServerStartupError(f"the server failed to start (exit code {exc.code}); see its log") from None

    task = asyncio.create_task(run())
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while not server.started:
            if task.done():
                task.result()
                raise ServerStartupError("the server exited during startup")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("server did not start in time")
            await asyncio.sleep(0.01)
        bound = server.servers[0].sockets[0].getsockname()[1]
        yield RunningServer(host, int(bound))
    finally:
        server.should_exit = True
        if not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout)
