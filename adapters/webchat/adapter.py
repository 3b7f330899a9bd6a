"""The web chat adapter: a chat page and an embeddable widget talking to the bridge over a WebSocket.

A visitor's messages are acknowledged to the browser only once the core has taken them over; until then the
widget keeps them (in local storage) and sends them again with the same id, so a lost connection, a reload
or a failing platform never loses a message and a retry is recognised as a duplicate. Agent messages are kept
in a bounded per-visitor history in the store before they are pushed, so a visitor who was away sees them on
return.
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any
from urllib.parse import unquote, urlsplit

from litestar import Response, WebSocket, get, websocket
from litestar.exceptions import WebSocketDisconnect

from adapters.webchat.config import WebchatConfig
from adapters.webchat.connection import Connection
from adapters.webchat.history import History, KeyedLocks, find_button
from adapters.webchat.visitor import VisitorIds, new_key
from adapters.webchat.wire import (
    MAX_TEXT_LENGTH,
    Ack,
    Entry,
    ErrorFrame,
    Failed,
    Hello,
    MessageFrame,
    Press,
    ProfileUpdate,
    Saved,
    TextFrame,
    Welcome,
    decode_client_frame,
    encode_frame,
)
from bridge.adapter import Adapter, AdapterContext, Capabilities
from bridge.messages import (
    Inbound,
    InboundButton,
    InboundContent,
    InboundText,
    Outbound,
    OutboundFile,
    OutboundKeyboard,
    OutboundText,
)

__all__ = ["WebchatAdapter"]

_KEY_NAME = "visitor-key"
# WebSocket close codes the widget acts on: 1008 bad first frame (no retry), 1011/1013 try again later.
_POLICY = 1008
_INTERNAL = 1011
_TRY_LATER = 1013
_ORIGIN_REFUSED = 4403

_SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
# The page loads only its own script and stylesheet and talks only to its own origin (WebSocket included).
_PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'"
)


@dataclass(frozen=True, slots=True)
class _Assets:
    page: bytes
    script: bytes
    stylesheet: bytes


def _load_assets(title: str) -> _Assets:
    static = files("adapters.webchat").joinpath("static")
    page = static.joinpath("chat.html").read_text(encoding="utf-8").replace("{{TITLE}}", html.escape(title))
    return _Assets(
        page=page.encode("utf-8"),
        script=static.joinpath("widget.js").read_bytes(),
        stylesheet=static.joinpath("chat.css").read_bytes(),
    )


async def _close(socket: WebSocket[Any, Any, Any], code: int, frame: ErrorFrame) -> None:
    """Say why, then close; the browser may already be gone, which is no error of ours."""
    try:
        await socket.send_text(encode_frame(frame))
        await socket.close(code=code)
    except Exception as exc:
        logging.getLogger("adapters.webchat").debug("web chat socket already gone: %s", exc)


def _file_name(url: str) -> str:
    tail = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return tail or "file"


def _entry_for(message: Outbound) -> Entry:
    entry_id = f"a:{message.message_id}"
    now = time.time()
    match message.content:
        case OutboundText(text=text):
            return Entry(id=entry_id, sender="agent", kind="text", ts=now, text=text)
        case OutboundKeyboard(rows=rows, text=text):
            return Entry(id=entry_id, sender="agent", kind="keyboard", ts=now, text=text, rows=rows)
        case OutboundFile() as file:
            return Entry(id=entry_id, sender="agent", kind="file", ts=now, url=file.url,
                         name=file.name or _file_name(file.url), content_type=file.content_type, size=file.size)


class WebchatAdapter(Adapter[WebchatConfig]):
    """Routes under `/channels/{channel_id}`: `GET chat` (the page), `GET widget.js`, `GET chat.css`,
    WebSocket `ws`. `native_chat_id` is the visitor id; `native_message_id` the widget's id per message."""

    name = "webchat"
    config_type = WebchatConfig
    capabilities = Capabilities(max_text_length=MAX_TEXT_LENGTH, buttons=True, files=True)

    def __init__(self, config: WebchatConfig, context: AdapterContext) -> None:
        super().__init__(config, context)
        self.history = History(context.kv, limit=config.history_limit, ttl=config.history_ttl)
        self.hello_timeout = 10.0
        self.outbox_size = 256
        self._assets = _load_assets(config.title)
        self._locks = KeyedLocks()
        self._connections: dict[str, set[Connection]] = {}
        self._ids: VisitorIds | None = None

    # ------------------------------------------------------------------ lifecycle

    async def do_start(self) -> None:
        key = self.config.secret
        if key is None:
            # Generated once and kept in the store, so ids stay valid across restarts and replicas.
            await self.context.kv.set_if_absent(_KEY_NAME, new_key().encode())
            stored = await self.context.kv.get(_KEY_NAME)
            if stored is None:
                raise RuntimeError("the web chat's visitor key could not be stored")
            key = stored.decode()
        self._ids = VisitorIds(key, self.context.channel_id)

    async def do_stop(self) -> None:
        self._ids = None
        for connections in list(self._connections.values()):
            for connection in list(connections):
                connection.close()

    def open_sockets(self, visitor: str | None = None) -> int:
        """How many sockets are open (of one visitor): for readiness reports and tests."""
        if visitor is not None:
            return len(self._connections.get(visitor, ()))
        return sum(len(c) for c in self._connections.values())

    # ------------------------------------------------------------------ routes

    def route_handlers(self) -> Sequence[Any]:
        assets = self._assets

        @get("/chat", name=f"webchat-page-{self.context.channel_id}")
        async def page() -> Response[bytes]:
            headers = {**_SECURITY_HEADERS, "Content-Security-Policy": _PAGE_CSP}
            return Response(assets.page, media_type="text/html; charset=utf-8", headers=headers)

        @get("/widget.js", name=f"webchat-widget-{self.context.channel_id}")
        async def script() -> Response[bytes]:
            headers = {**_SECURITY_HEADERS, "Access-Control-Allow-Origin": "*"}
            return Response(assets.script, media_type="text/javascript; charset=utf-8", headers=headers)

        @get("/chat.css", name=f"webchat-css-{self.context.channel_id}")
        async def stylesheet() -> Response[bytes]:
            headers = {**_SECURITY_HEADERS, "Access-Control-Allow-Origin": "*"}
            return Response(assets.stylesheet, media_type="text/css; charset=utf-8", headers=headers)

        @websocket("/ws", name=f"webchat-ws-{self.context.channel_id}")
        async def socket_handler(socket: WebSocket[Any, Any, Any]) -> None:
            await self._session(socket)

        return [page, script, stylesheet, socket_handler]

    def _origin_allowed(self, origin: str | None) -> bool:
        allowed = self.config.allowed_origins
        if not allowed:
            return True
        return origin is not None and origin.rstrip("/").lower() in allowed

    # ------------------------------------------------------------------ one socket

    async def _session(self, socket: WebSocket[Any, Any, Any]) -> None:
        origin = socket.headers.get("origin")
        if not self._origin_allowed(origin):
            self.log.info("web chat socket refused: origin not allowed", extra={"origin": origin})
            await socket.close(code=_ORIGIN_REFUSED, reason="origin not allowed")  # before accept: HTTP 403
            return
        ids = self._ids
        if ids is None:
            await socket.close(code=_TRY_LATER, reason="the chat is starting")
            return
        await socket.accept()
        connection: Connection | None = None
        try:
            hello = await self._hello(socket)
            if hello is None:
                return
            visitor, signed, renewed = self._identify(ids, hello.visitor)
            connection = Connection(socket, visitor, outbox_size=self.outbox_size)
            connection.set_profile(hello.name, hello.email)
            if not await self._register(connection, signed, renewed):
                return
            connection.start()
            while True:
                data = await socket.receive_data("text")
                await self._handle(connection, data)
        except WebSocketDisconnect:
            pass
        finally:
            if connection is not None:
                self._unregister(connection)
                await connection.finish()

    async def _hello(self, socket: WebSocket[Any, Any, Any]) -> Hello | None:
        try:
            async with asyncio.timeout(self.hello_timeout):
                data = await socket.receive_data("text")
        except TimeoutError:
            await socket.close(code=_POLICY, reason="no hello frame")
            return None
        try:
            frame = decode_client_frame(data)
        except ValueError as exc:
            frame = None
            desc = str(exc)
        else:
            desc = "the first frame must be a hello frame"
        if not isinstance(frame, Hello):
            await _close(socket, _POLICY, ErrorFrame(error="bad_hello", desc=desc))
            return None
        return frame

    def _identify(self, ids: VisitorIds, offered: str | None) -> tuple[str, str, bool]:
        """(visitor id, signed id, renewed). A tampered or foreign id gets a fresh identity, never an error:
        the visitor can always chat, just not as someone else."""
        if offered:
            visitor = ids.verify(offered)
            if visitor is not None:
                return visitor, offered, False
            self.log.info("web chat visitor id refused; a new one is issued")
        visitor, signed = ids.issue()
        return visitor, signed, bool(offered)

    async def _register(self, connection: Connection, signed: str, renewed: bool) -> bool:
        """Send the welcome with the history and start receiving pushes, atomically with respect to
        deliveries to this visitor: nothing is missed and nothing comes before the history."""
        visitor = connection.visitor
        try:
            async with self._locks.hold(visitor):
                history = await self.history.load(visitor)
                self._connections.setdefault(visitor, set()).add(connection)
                connection.push(Welcome(visitor=signed, renewed=renewed, title=self.config.title, history=history))
        except Exception:
            self.log.exception("web chat history could not be read")
            await _close(connection.socket, _INTERNAL,
                         ErrorFrame(error="unavailable", desc="the chat is unavailable; retrying"))
            return False
        return True

    def _unregister(self, connection: Connection) -> None:
        connections = self._connections.get(connection.visitor)
        if connections is None:
            return
        connections.discard(connection)
        if not connections:
            del self._connections[connection.visitor]

    def _broadcast(self, visitor: str, frame: MessageFrame, *, skip: Connection | None = None) -> None:
        data = encode_frame(frame)
        for connection in list(self._connections.get(visitor, ())):
            if connection is not skip:
                connection.push(data)

    # ------------------------------------------------------------------ visitor → platform

    async def _handle(self, connection: Connection, data: str) -> None:
        try:
            frame = decode_client_frame(data)
        except ValueError as exc:
            connection.push(ErrorFrame(error="bad_frame", desc=str(exc)))
            return
        now = time.time()
        match frame:
            case TextFrame(id=client_id, text=text):
                entry = Entry(id=f"v:{client_id}", sender="visitor", kind="text", ts=now, text=text)
                await self._take(connection, client_id, entry, InboundText(text))
            case Press(id=client_id, button_id=button_id):
                await self._press(connection, client_id, button_id, now)
            case ProfileUpdate(name=name, email=email):
                connection.set_profile(name, email)
                connection.push(Saved())
            case Hello():
                connection.push(ErrorFrame(error="bad_frame", desc="hello was already received"))

    async def _press(self, connection: Connection, client_id: str, button_id: str, now: float) -> None:
        try:
            async with self._locks.hold(connection.visitor):
                entries = await self.history.load(connection.visitor)
        except Exception:
            self.log.exception("web chat history could not be read")
            connection.push(Failed(id=client_id, error="unavailable", desc="the chat cannot take messages right "
                                   "now; it will try again", retry=True))
            return
        button = find_button(entries, button_id)
        if button is None:
            connection.push(Failed(id=client_id, error="unknown_button",
                                   desc="this button is no longer available", retry=False))
            return
        entry = Entry(id=f"v:{client_id}", sender="visitor", kind="button", ts=now, text=button.text,
                      button_id=button.id)
        await self._take(connection, client_id, entry, InboundButton(button_id=button.id, text=button.text))

    async def _take(self, connection: Connection, client_id: str, entry: Entry, content: InboundContent) -> None:
        """Keep the visitor's message in the history, hand it to the core, and only then acknowledge it.

        The entry goes into the history first so that an agent reply delivered while `submit` is still
        running (a direct handoff delivers inline) comes after it; it is taken out again if `submit` fails.
        """
        visitor = connection.visitor
        try:
            async with self._locks.hold(visitor):
                added = await self.history.append(visitor, entry)
        except Exception:
            self.log.exception("web chat history could not be written")
            connection.push(Failed(id=client_id, error="unavailable", desc="the chat cannot take messages right "
                                   "now; it will try again", retry=True))
            return
        inbound = Inbound(native_chat_id=visitor, native_message_id=client_id, sender=connection.sender(),
                          content=content)
        try:
            await self.context.submit(inbound)
        except Exception as exc:
            self.log.warning("web chat message not taken over; the widget will retry", extra={"reason": str(exc)})
            if added:
                try:
                    async with self._locks.hold(visitor):
                        await self.history.remove(visitor, entry.id)
                except Exception:
                    self.log.exception("web chat history could not be written")
            connection.push(Failed(id=client_id, error="not_taken_over",
                                   desc="the message could not be passed on; it will be sent again", retry=True))
            return
        connection.push(Ack(client_id))
        if added:
            # The visitor's other tabs show it too.
            self._broadcast(visitor, MessageFrame(entry), skip=connection)

    # ------------------------------------------------------------------ platform → visitor

    async def do_send(self, message: Outbound) -> None:
        """Keep the message in the history, then push it to every open socket of the visitor. A visitor with
        no socket open is not a failure: they see it when they come back. A redelivered message (same
        `message_id`) is recognised and not shown twice."""
        entry = _entry_for(message)
        visitor = message.native_chat_id
        async with self._locks.hold(visitor):
            if not await self.history.append(visitor, entry):
                return
            self._broadcast(visitor, MessageFrame(entry))
