"""One open WebSocket of one visitor: frames to it go through a bounded queue and one writer task, so a
message pushed by a delivery never waits on a slow browser and frames never interleave."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from litestar import WebSocket

from adapters.webchat.wire import ServerFrame, encode_frame
from bridge.messages import Sender

__all__ = ["Connection"]

# Close codes the widget knows: 1001 the bridge is stopping; 4408 too slow to keep up (reconnect and catch up
# from the history).
GOING_AWAY = 1001
TOO_SLOW = 4408

log = logging.getLogger("adapters.webchat.connection")


class Connection:
    def __init__(self, socket: WebSocket[Any, Any, Any], visitor: str, *, outbox_size: int = 256) -> None:
        self.socket = socket
        self.visitor = visitor
        self.name: str | None = None
        self.email: str | None = None
        self._outbox: asyncio.Queue[str | int] = asyncio.Queue(maxsize=outbox_size)
        self._writer: asyncio.Task[None] | None = None
        self._closing = False

    def sender(self) -> Sender:
        return Sender(native_user_id=self.visitor, name=self.name, email=self.email)

    def set_profile(self, name: str | None, email: str | None) -> None:
        self.name = (name or "").strip() or None
        self.email = (email or "").strip() or None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write(), name=f"webchat-writer-{self.visitor[:8]}")

    def push(self, frame: ServerFrame | str) -> None:
        """Queue a frame; a browser that has fallen `outbox_size` frames behind is disconnected instead of
        buffered without bound (it reconnects and finds everything in its history)."""
        if self._closing:
            return
        data = frame if isinstance(frame, str) else encode_frame(frame)
        try:
            self._outbox.put_nowait(data)
        except asyncio.QueueFull:
            self.close(TOO_SLOW)

    def close(self, code: int = GOING_AWAY) -> None:
        if self._closing:
            return
        self._closing = True
        while not self._outbox.empty():
            self._outbox.get_nowait()
        self._outbox.put_nowait(code)

    async def _write(self) -> None:
        try:
            while True:
                item = await self._outbox.get()
                if isinstance(item, int):
                    await self.socket.close(code=item)
                    return
                await self.socket.send_text(item)
        except Exception as exc:  # the browser went away mid-send: the reader sees the disconnect too
            log.debug("web chat socket write failed: %s", exc)

    async def finish(self) -> None:
        """Stop the writer; called once the reader has seen the socket end."""
        self._closing = True
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
