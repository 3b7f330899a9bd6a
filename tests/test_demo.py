"""`omnichannel-bridge demo` as a user runs it: a real process, its printed URL, a chat through it, Ctrl+C."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


@dataclass
class Demo:
    process: asyncio.subprocess.Process
    url: str

    async def stop(self, sig: int = signal.SIGINT) -> int:
        self.process.send_signal(sig)
        return await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)


async def _output(process: asyncio.subprocess.Process) -> str:
    out = await process.stdout.read() if process.stdout else b""
    err = await process.stderr.read() if process.stderr else b""
    return f"stdout:\n{out.decode()}\nstderr:\n{err.decode()}"


@asynccontextmanager
async def demo(data: Path, *extra: str) -> AsyncIterator[Demo]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "demo", "--port", "0", "--data", str(data), *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=data.parent,
    )
    try:
        assert process.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT):
                while True:
                    line = (await process.stdout.readline()).decode()
                    if not line:
                        raise AssertionError(f"demo exited before printing its URL\n{await _output(process)}")
                    if line.startswith("Open "):
                        break
        except TimeoutError:
            process.kill()
            raise AssertionError(f"demo printed no URL within {START_TIMEOUT:g}s\n{await _output(process)}") from None
        yield Demo(process, line.removeprefix("Open ").strip())
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_demo_serves_its_url_chats_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    data = tmp_path / "demo-data"
    async with demo(data) as running:
        assert running.url.startswith("http://127.0.0.1:") and running.url.endswith("/channels/demo/chat")
        async with aiohttp.ClientSession() as session:
            async with session.get(running.url) as r:
                assert r.status == 200
                assert r.content_type == "text/html"
                assert "widget.js" in await r.text()
            # The whole loop: web chat → bridge → emulator → scripted agent → bridge → web chat.
            ws_url = running.url.replace("http://", "ws://").replace("/chat", "/ws")
            async with session.ws_connect(ws_url) as ws:
                await ws.send_json({"type": "hello"})
                await ws.send_json({"type": "text", "id": "m-1", "text": "hello demo"})
                texts: list[str] = []
                async with asyncio.timeout(10):
                    while "You said: hello demo" not in texts:
                        frame = json.loads((await ws.receive()).data)
                        if frame["type"] == "message":
                            texts.append(frame["entry"].get("text"))
        code = await running.stop(signal.SIGINT)
        assert code == 0, await _output(running.process)
    assert (data / "bridge.db").is_file()


async def test_demo_stops_on_sigterm_and_reuses_its_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "demo-data"
    for _ in range(2):
        async with demo(data) as running:
            assert await running.stop(signal.SIGTERM) == 0, await _output(running.process)


async def test_demo_says_plainly_when_its_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridge", "demo", "--port", str(port), "--data", str(tmp_path / "d"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    assert process.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err.decode()
    assert "--port" in err.decode()
    assert "Traceback" not in err.decode()


@pytest.mark.parametrize(("args", "words"), [(["--script", "missing.yaml"], "cannot read script")])
async def test_demo_bad_arguments(tmp_path: Path, args: list[str], words: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bridge", "demo", "--port", "0", "--data", str(tmp_path / "d"), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
    )
    _, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT)
    assert process.returncode == 2
    assert words in err.decode() and "Traceback" not in err.decode()


async def test_demo_logs_through_the_bridges_redaction(tmp_path: Path) -> None:
    """At debug level uvicorn logs a socket's request headers, and the bridge logs the webhook URL (whose path
    holds the demo's platform token) of each delivery: both go through the bridge's redaction, in its readable
    console format."""
    credential = "visitor-credential-0123456789"
    async with demo(tmp_path / "demo-data", "--log-level", "debug") as running:
        ws_url = running.url.replace("http://", "ws://").replace("/chat", "/ws")
        headers = {"Authorization": f"Bearer {credential}"}
        async with aiohttp.ClientSession() as session, session.ws_connect(ws_url, headers=headers) as ws:
            await ws.send_json({"type": "hello"})
            await ws.send_json({"type": "text", "id": "m-1", "text": "hello demo"})
            async with asyncio.timeout(10):
                while json.loads((await ws.receive()).data)["type"] != "message":
                    pass
        assert await running.stop(signal.SIGINT) == 0, await _output(running.process)
        assert running.process.stderr is not None
        lines = (await running.process.stderr.read()).decode().splitlines()
    assert not [line for line in lines if credential in line], lines
    assert any("uvicorn.error: < authorization: " in line and line.endswith("***") for line in lines), lines
    webhook_lines = [line for line in lines if "/omnichannel_message/" in line]
    assert any(" DEBUG   bridge.platform: " in line for line in webhook_lines), lines
    assert all("/omnichannel_message/***/" in line for line in webhook_lines), webhook_lines
