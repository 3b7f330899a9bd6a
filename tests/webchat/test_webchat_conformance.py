"""The bridge's adapter conformance suite, run against the web chat with aiohttp WebSockets as the browsers.

The web chat has no remote messenger: the "fake" is the visitors' side, one socket per chat key, speaking the
widget's frames (adapters/webchat/wire.py) as the widget does — `hello` first, then each message sent again
with the same id until the adapter acknowledges it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

from adapters.webchat import WebchatAdapter
from bridge.testing import AdapterConformance, ConformanceFailure, FailureKind, MessengerRecord

__all__ = ["TestWebchatConformance"]

_RESEND_DELAY = 0.05

_NO_FILE_UPLOAD = (
    "the web chat widget has no file upload: visitors send texts and button presses only (wire.py has no file "
    "frame), so there is no visitor file to proxy"
)
_SEND_CANNOT_BE_REFUSED = (
    "a web chat send has no messenger that could refuse it: do_send keeps the message in the bridge's own store "
    "and pushes it to the visitor's open sockets. A visitor with no socket open is no failure (the history "
    "keeps the message and shows it on their return), nor is a browser too slow to keep up (it is disconnected "
    "and catches up from the history); there is no blocked or deleted chat to make it permanent, and a store "
    "outage raises and is retried by the queue like any unexpected exception"
)


@dataclass
class _Tab:
    """One visitor's socket: every frame received on it, in order, collected by a reader task."""

    ws: aiohttp.ClientWebSocketResponse
    frames: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    ended: bool = False
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        try:
            async for message in self.ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    async with self.arrived:
                        self.frames.append(json.loads(message.data))
                        self.arrived.notify_all()
        finally:
            async with self.arrived:
                self.ended = True
                self.arrived.notify_all()

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], start: int, timeout: float) -> dict[str, Any]:
        """The first frame from index `start` on that matches; ConformanceFailure when the socket ends or the
        time is up first."""

        def found() -> dict[str, Any] | None:
            return next((f for f in self.frames[start:] if predicate(f)), None)

        try:
            async with asyncio.timeout(timeout), self.arrived:
                await self.arrived.wait_for(lambda: self.ended or found() is not None)
        except TimeoutError:
            pass
        frame = found()
        if frame is None:
            state = "the socket ended" if self.ended else f"nothing came within {timeout:g}s"
            raise ConformanceFailure(f"{state}; frames received: {self.frames}")
        return frame

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader


class TestWebchatConformance(AdapterConformance):
    adapter_class = WebchatAdapter
    fake: aiohttp.ClientSession

    @pytest.fixture
    async def fake_messenger(self) -> AsyncIterator[aiohttp.ClientSession]:
        self.tabs: dict[str, _Tab] = {}
        async with aiohttp.ClientSession() as session:
            try:
                yield session
            finally:
                for tab in self.tabs.values():
                    await tab.close()

    def adapter_config(self) -> dict[str, Any]:
        # A configured secret (rather than the generated one) so that the secrets test has something to find.
        return {"secret": "webchat-conformance-secret-0123456789", "title": "Conformance", "history_limit": 200}

    async def tab(self, chat: str) -> _Tab:
        """The chat's socket, opened (and greeted) on first use: the bridge runs only once a test starts."""
        tab = self.tabs.get(chat)
        if tab is None:
            url = f"{self.bridge_url.replace('http', 'ws', 1)}/channels/{self.channel_id}/ws"
            tab = _Tab(await self.fake.ws_connect(url))
            self.tabs[chat] = tab
            tab.reader = asyncio.create_task(tab.read(), name=f"conformance-tab-{chat}")
            await tab.ws.send_str(json.dumps({"type": "hello", "visitor": None, "name": None, "email": None}))
            await tab.wait_for(lambda f: f.get("type") == "welcome", 0, self.timeout)
        return tab

    async def send_until_acked(self, chat: str, frame: dict[str, Any], what: str) -> None:
        """Send the frame and, like the widget, again with the same id after each `failed` that says to retry,
        until the adapter acknowledges it."""
        tab = await self.tab(chat)
        client_id = frame["id"]
        deadline = asyncio.get_running_loop().time() + self.timeout
        while True:
            start = len(tab.frames)
            await tab.ws.send_str(json.dumps(frame))
            left = max(deadline - asyncio.get_running_loop().time(), 0.0)
            try:
                answer = await tab.wait_for(
                    lambda f: f.get("type") in ("ack", "failed") and f.get("id") == client_id, start, left)
            except ConformanceFailure as exc:
                raise ConformanceFailure(f"{what} was never acknowledged: {exc}") from None
            if answer["type"] == "ack":
                return
            if not answer.get("retry"):
                raise ConformanceFailure(f"{what} was refused for good: {answer}")
            await asyncio.sleep(_RESEND_DELAY)

    async def send_visitor_text(self, chat: str, text: str) -> None:
        frame = {"type": "text", "id": uuid.uuid4().hex, "text": text}
        await self.send_until_acked(chat, frame, f"the visitor's text {text[:40]!r}")

    async def send_visitor_file(self, chat: str, name: str, content_type: str, content: bytes) -> None:
        pytest.skip(_NO_FILE_UPLOAD)

    async def press_button(self, chat: str, message: MessengerRecord, label: str) -> None:
        entry: dict[str, Any] = message.native
        button_id = next(b["id"] for row in entry["rows"] for b in row if b["text"] == label)
        frame = {"type": "button", "id": uuid.uuid4().hex, "button_id": button_id}
        await self.send_until_acked(chat, frame, f"the press of {label!r}")

    async def received_by_messenger(self) -> list[MessengerRecord]:
        records = []
        for chat, tab in self.tabs.items():
            for frame in list(tab.frames):
                entry = frame.get("entry") or {}
                if frame.get("type") != "message" or entry.get("sender") != "agent":
                    continue
                rows = entry.get("rows")
                records.append(MessengerRecord(
                    chat=chat,
                    text=entry.get("text"),
                    buttons=[[b["text"] for b in row] for row in rows] if rows else None,
                    file_url=entry.get("url"),
                    file_name=entry.get("name") if entry.get("kind") == "file" else None,
                    native=entry,
                ))
        return records

    async def make_messenger_fail(self, kind: FailureKind | None, retry_after: float | None = None) -> None:
        pytest.skip(_SEND_CANNOT_BE_REFUSED)
