"""Run an ASGI app on a real loopback port inside the current event loop, for tests."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn

from bridge.access_log import uvicorn_options
from bridge.config import LoggingConfig

__all__ = ["RunningServer", "ServerStartupError", "free_port", "serve"]


class ServerStartupError(RuntimeError):
    """The app's lifespan startup failed (an adapter or the store could not start)."""


@dataclass(frozen=True, slots=True)
class RunningServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _ephemeral_floor() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as ports:
            return int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free now, for a server that must know its port before it starts (its public URL).

    Chosen below the kernel's ephemeral range: a port the kernel handed out (`bind(0)`) would be handed out
    again as the local port of some outgoing connection, which then blocks the server's bind."""
    floor = _ephemeral_floor()
    low, high = (10000, floor - 1) if floor > 11000 else (floor, 65535)
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randint(low, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError("no free port found")


@contextlib.asynccontextmanager
async def serve(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 10.0, logging: LoggingConfig | None = None
) -> AsyncIterator[RunningServer]:
    """Serve `app` (lifespan included) until the block exits; port 0 picks a free port.

    Quiet by default; with `logging`, uvicorn logs as `omnichannel-bridge run` sets it up (no handlers of its
    own, access lines on), for tests that read the bridge's log output."""
    quiet = {"app": app, "log_level": "warning", "access_log": False}
    options: dict[str, Any] = uvicorn_options(logging, app) if logging is not None else quiet
    config = uvicorn.Config(host=host, port=port, lifespan="on", **options)
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
