"""A bridge with one web chat channel wired to the real platform emulator, and a WebSocket client that speaks
the widget's frames (aiohttp's client, as a browser would connect)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from adapters.webchat import WebchatAdapter
from bridge.app import BridgeRuntime, create_app
from bridge.direct import DirectHandoff
from bridge.emulator import EmulatorChannel, EmulatorConfig, RunningEmulator, run_emulator
from bridge.testing.server import serve
from tests.support import channel, make_config

PLATFORM_TOKEN = "webchat-platform-token"
REPLY_TOKEN = "webchat-reply-token-0123456789"
CHANNEL = "web"
TIMEOUT = 10.0


@dataclass
class ChatClient:
    """One browser tab: every frame it received, in order, and those no `expect` has taken yet."""

    ws: aiohttp.ClientWebSocketResponse
    frames: list[dict[str, Any]] = field(default_factory=list)
    welcome: dict[str, Any] = field(default_factory=dict)
    pending: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def text(self, client_id: str, text: str) -> None:
        await self.send({"type": "text", "id": client_id, "text": text})

    async def press(self, client_id: str, button_id: str) -> None:
        await self.send({"type": "button", "id": client_id, "button_id": button_id})

    async def expect(self, predicate: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The first not yet taken frame that matches, waiting for it; other frames stay for later calls
        (an agent reply may come before or after the ack of the message it answers)."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                for index in range(len(self.pending)):
                    if predicate(self.pending[index]):
                        return self.pending.pop(index)
                message = await self.ws.receive()
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise AssertionError(f"socket ended ({message.type!r}, {message.data!r}) waiting for {what}; "
                                         f"frames: {self.frames}")
                frame = json.loads(message.data)
                self.frames.append(frame)
                self.pending.append(frame)

    async def expect_type(self, frame_type: str, **fields: Any) -> dict[str, Any]:
        return await self.expect(
            lambda f: f.get("type") == frame_type and all(f.get(k) == v for k, v in fields.items()),
            f"{frame_type} {fields}",
        )

    async def agent_entry(self) -> dict[str, Any]:
        frame = await self.expect(lambda f: f.get("type") == "message" and f["entry"]["sender"] == "agent",
                                  "an agent message")
        entry: dict[str, Any] = frame["entry"]
        return entry

    async def closed(self) -> int | None:
        """Wait for the server to close the socket; the close code."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                message = await self.ws.receive()
                if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    return self.ws.close_code
                if message.type == aiohttp.WSMsgType.TEXT:
                    self.frames.append(json.loads(message.data))
                    self.pending.append(self.frames[-1])


@dataclass
class ChatLoop:
    emulator: RunningEmulator
    runtime: BridgeRuntime
    url: str
    session: aiohttp.ClientSession

    @property
    def adapter(self) -> WebchatAdapter:
        adapter = self.runtime.channels[CHANNEL].adapter
        assert isinstance(adapter, WebchatAdapter)
        return adapter

    @property
    def ws_url(self) -> str:
        return f"{self.url.replace('http', 'ws', 1)}/channels/{CHANNEL}/ws"

    async def open(self, origin: str | None = None) -> aiohttp.ClientWebSocketResponse:
        return await self.session.ws_connect(self.ws_url, origin=origin, autoclose=False)

    async def connect(self, visitor: str | None = None, *, origin: str | None = None, name: str | None = None,
                      email: str | None = None) -> ChatClient:
        """Open a socket, say hello, and wait for the welcome."""
        client = ChatClient(await self.open(origin))
        await client.send({"type": "hello", "visitor": visitor, "name": name, "email": email})
        client.welcome = await client.expect_type("welcome")
        return client

    async def chat_id(self, signed_visitor: str) -> int:
        return await self.runtime.store.chat_id_for(CHANNEL, signed_visitor.partition(".")[0])

    async def agent_says(self, chat_id: int, message: dict[str, Any], *, idempotency_key: str | None = None) -> None:
        """The platform's reply, as the agent would send it (while the visitor may be away)."""
        headers = {"Authorization": f"Token {REPLY_TOKEN}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        async with self.session.post(
            f"{self.url}/channels/{CHANNEL}/send_message",
            json={"chat_id": chat_id, "message": message},
            headers=headers,
        ) as response:
            assert response.status == 200, await response.text()


@asynccontextmanager
async def chat_loop(store_url: str, *, durable: bool = False, **adapter: Any) -> AsyncIterator[ChatLoop]:
    """Emulator and bridge on loopback; the channel's web chat settings are `adapter`. Delivery is direct
    (inline), so a platform failure reaches the widget as a `failed` frame; `durable` uses the bridge's
    default, the durable queue on the store."""
    async with run_emulator(EmulatorConfig()) as emulator:
        config = make_config(
            [channel(CHANNEL, emulator.webhook_url(PLATFORM_TOKEN), token=REPLY_TOKEN,
                     adapter={"type": "webchat", **adapter})],
            store_url=store_url,
        )
        handoff = None if durable else DirectHandoff()
        app = create_app(config, adapters={"webchat": WebchatAdapter}, handoff=handoff)
        async with serve(app) as server, aiohttp.ClientSession() as session:
            emulator.set_channel(
                EmulatorChannel(token=PLATFORM_TOKEN, reply_url=f"{server.url}/channels/{CHANNEL}",
                                reply_token=REPLY_TOKEN)
            )
            yield ChatLoop(emulator, app.state.bridge, server.url, session)
