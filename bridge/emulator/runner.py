"""Run the emulator on a real loopback port inside the caller's event loop, for tests and plugin authors.

```python
config = EmulatorConfig(channels=[EmulatorChannel(token="t", reply_url=bridge_url)])
async with run_emulator(config) as platform:
    ...  # point the bridge's channel at platform.webhook_url("t")
    await platform.wait_for_replies(1)
```
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import uvicorn

from bridge.emulator.app import WEBHOOK_PATH, create_emulator_app, emulator_of
from bridge.emulator.config import EmulatorChannel, EmulatorConfig
from bridge.emulator.core import Emulator
from bridge.emulator.records import FaultRule, ReceivedRecord, ReplyRecord
from bridge.emulator.script import Script

__all__ = ["RunningEmulator", "run_emulator"]

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5


class RunningEmulator:
    """Handle on an emulator served by `run_emulator`; reads its records in-process."""

    def __init__(self, emulator: Emulator, host: str, port: int) -> None:
        self.emulator = emulator
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"

    def webhook_url(self, token: str) -> str:
        """The "App.Chatbots webhook: URL" of the channel with `token`, as the bridge's config wants it."""
        return self.url + WEBHOOK_PATH.replace("{token}", token)

    def file_url(self, name: str = "sample.txt") -> str:
        return f"{self.url}/files/{name}"

    def received(self) -> list[ReceivedRecord]:
        return list(self.emulator.recorder.received)

    def replies(self) -> list[ReplyRecord]:
        return list(self.emulator.recorder.replies)

    async def wait_for_received(
        self,
        n: int,
        timeout: float = 5.0,
    ) -> list[ReceivedRecord]:
        """Wait until at least `n` webhook requests were answered; returns all of them."""
        await self.emulator.recorder.wait_until(
            lambda: len(self.emulator.recorder.received) >= n, timeout, f"{n} received"
        )
        return self.received()

    async def wait_for_replies(
        self,
        n: int,
        timeout: float = 5.0,
    ) -> list[ReplyRecord]:
        """Wait until at least `n` reply calls were made and answered (or failed); returns all of them."""
        await self.emulator.recorder.wait_until(
            lambda: len(self.emulator.recorder.replies) >= n, timeout, f"{n} replies"
        )
        return self.replies()

    async def wait_until(
        self,
        condition: Callable[[], bool],
        timeout: float = 5.0,
        what: str = "condition",
    ) -> None:
        await self.emulator.recorder.wait_until(condition, timeout, what)

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until the agent has no reply left to send."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.emulator.agent.idle:
            if asyncio.get_running_loop().time() >= deadline:
                raise TimeoutError(f"the emulated agent was still busy after {timeout:g}s")
            await asyncio.sleep(0.01)

    def add_fault(self, rule: FaultRule | None = None, **fields: Any) -> None:
        """Add a fault rule: `add_fault(status=503, count=3)` or `add_fault(FaultRule(...))`."""
        self.emulator.faults.add(rule if rule is not None else msgspec.convert(fields, FaultRule))

    def clear_faults(self) -> None:
        self.emulator.faults.clear()

    def set_script(self, script: Script) -> None:
        self.emulator.set_script(script)

    def set_channel(self, channel: EmulatorChannel) -> None:
        self.emulator.set_channel(channel)

    async def reset(self) -> None:
        await self.emulator.reset()


@contextlib.asynccontextmanager
async def run_emulator(
    config: EmulatorConfig, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningEmulator]:
    """Serve a fresh emulator on `host:port` (0 = a free port) until the block exits."""
    app = create_emulator_app(config)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    bound_port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=_STOP_TIMEOUT,
        )
    )
    task = asyncio.create_task(_serve(server, sock), name=f"emulator-{bound_port}")
    try:
        await _wait_started(server, task)
        url_host = f"[{host}]" if ":" in host else host
        yield RunningEmulator(emulator_of(app), url_host, bound_port)
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), _STOP_TIMEOUT + 1)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        except Exception:
            pass
        sock.close()


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    # uvicorn reports a failed startup with sys.exit(); a SystemExit escaping a task would stop the caller's
    # event loop.
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        raise RuntimeError(f"uvicorn exited with code {exc.code}") from None


async def _wait_started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    deadline = asyncio.get_running_loop().time() + _START_TIMEOUT
    while not server.started:
        if task.done():
            error = task.exception() if not task.cancelled() else None
            raise RuntimeError(f"the platform emulator failed to start: {error!r}")
        if asyncio.get_running_loop().time() >= deadline:
            raise RuntimeError(f"the platform emulator did not start within {_START_TIMEOUT:g}s")
        await asyncio.sleep(0.005)
