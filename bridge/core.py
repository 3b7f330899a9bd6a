"""The core: typed messages in, platform payloads out, and back.

`Bridge.accept_inbound` is the callback adapters get; `Bridge.accept_reply` is what the reply route calls;
`Bridge.deliver` is the `Deliverer` the handoff calls for each item. Nothing here speaks HTTP to the world
directly: the platform client and the adapters do.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from bridge.adapter import Adapter, PermanentSendError, RetryableSendError
from bridge.config import ChannelConfig
from bridge.files import FileUrlSigner
from bridge.handoff import Delivered, Handoff, InboundItem, Item, OutboundItem, Outcome, Permanent, Retry
from bridge.logs import current_correlation_id, item_log_fields, log_context, new_correlation_id
from bridge.messages import Inbound, InboundButton, InboundFile, InboundText, Outbound
from bridge.metrics import Metrics, is_store_failure
from bridge.platform import PlatformClient
from bridge.protocol import (
    Button,
    ButtonPress,
    FileVisitorData,
    FileVisitorMessage,
    KeyboardResponseMessage,
    NewMessage,
    SendMessageRequest,
    TextVisitorMessage,
    UnknownReply,
    Visitor,
    VisitorFields,
    VisitorMessage,
)
from bridge.shaping import reply_contents
from bridge.store.base import Store, StoreError

__all__ = ["Bridge", "Channel", "ReplyResult", "UnknownChat", "stable_id"]

# Fixed namespace: ids derived from it must stay the same across versions and replicas.
_ID_NAMESPACE = uuid.UUID("5b0c9a43-7f0e-4b59-9a4c-3d1f6f0b2a71")
_ID_PREFIX = _ID_NAMESPACE.bytes
_VISITOR_IDS_KEPT = 10_000

log = logging.getLogger("bridge.core")


def stable_id(*parts: str) -> str:
    """A UUID that is the same every time for the same parts, so a redelivered message keeps its id.

    Exactly `str(uuid.uuid5(namespace, parts joined by U+001F))`, built from the digest directly: two ids per
    inbound message made `uuid.UUID`'s integer round trips a visible share of the hot path."""
    digest = bytearray(hashlib.sha1(_ID_PREFIX + "\x1f".join(parts).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    hex_ = digest.hex()
    return f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}"


class UnknownChat(LookupError):
    pass


@dataclass(slots=True)
class Channel:
    config: ChannelConfig
    adapter: Adapter  # type: ignore[type-arg]


@dataclass(frozen=True, slots=True)
class ReplyResult:
    queued: int
    unknown_kind: str | None = None


class Bridge:
    def __init__(
        self,
        *,
        channels: Mapping[str, Channel],
        store: Store,
        platform: PlatformClient,
        handoff: Handoff,
        file_urls: FileUrlSigner | None,
        metrics: Metrics | None = None,
    ) -> None:
        self.channels = channels
        self.store = store
        self.platform = platform
        self.handoff = handoff
        self.file_urls = file_urls
        self.metrics = metrics
        # (channel id, native user id) -> visitor id: the same few visitors write again and again, and the id
        # (a SHA-1 and a UUID's text) was half of what naming a message cost.
        self._visitor_ids: dict[tuple[str, str], str] = {}

    async def _submit(self, items: list[Item]) -> None:
        """Hand items over, counting duplicates and store failures when metrics are kept."""
        try:
            taken = await self.handoff.submit(items)
        except Exception as exc:
            if self.metrics is not None and is_store_failure(exc):
                self.metrics.count_store_error("queue_put")
            raise
        if self.metrics is not None and taken is not None and taken < len(items):
            self.metrics.record_duplicates(items[taken:])

    def _store_failed(self, operation: str) -> None:
        if self.metrics is not None:
            self.metrics.count_store_error(operation)

    # ------------------------------------------------------------------ inbound: messenger → platform

    async def accept_inbound(self, channel_id: str, inbound: Inbound) -> None:
        """Take one visitor message over; returns once the handoff has it, raises otherwise."""
        correlation_id = new_correlation_id()
        with log_context(correlation_id=correlation_id, channel=channel_id):
            await self._accept_inbound(channel_id, inbound, correlation_id)

    async def _accept_inbound(self, channel_id: str, inbound: Inbound, correlation_id: str) -> None:
        channel = self.channels[channel_id].config
        sender = inbound.sender
        try:
            chat_id = await self.store.chat_id_for(channel_id, inbound.native_chat_id)
            fields = await self.store.save_visitor(
                channel_id,
                sender.native_user_id,
                VisitorFields(
                    name=sender.name,
                    login=sender.login,
                    phone=sender.phone,
                    email=sender.email,
                    site=channel.platform.site,
                ),
            )
        except StoreError:
            self._store_failed("accept_inbound")
            raise
        message_id = stable_id("message", channel_id, inbound.native_chat_id, inbound.native_message_id)
        payload = NewMessage(
            chat_id=chat_id,
            visitor=Visitor(id=self._visitor_id(channel_id, sender.native_user_id), fields=fields),
            message=self._wire_message(channel_id, message_id, inbound),
        )
        item = InboundItem(
            channel_id=channel_id,
            chat_id=chat_id,
            dedupe_key=f"in:{channel_id}:{inbound.native_chat_id}:{inbound.native_message_id}",
            payload=payload,
            taken_over_at=time.time(),
            correlation_id=correlation_id,
        )
        await self._submit([item])

    def _visitor_id(self, channel_id: str, native_user_id: str) -> str:
        key = (channel_id, native_user_id)
        visitor_id = self._visitor_ids.get(key)
        if visitor_id is None:
            if len(self._visitor_ids) >= _VISITOR_IDS_KEPT:
                self._visitor_ids.clear()
            visitor_id = self._visitor_ids[key] = stable_id("visitor", channel_id, native_user_id)
        return visitor_id

    def _wire_message(self, channel_id: str, message_id: str, inbound: Inbound) -> VisitorMessage:
        match inbound.content:
            case InboundText(text=text):
                return TextVisitorMessage(id=message_id, text=text)
            case InboundButton(button_id=button_id, text=text):
                return KeyboardResponseMessage(id=message_id, data=ButtonPress(Button(id=button_id, text=text)))
            case InboundFile() as file:
                return FileVisitorMessage(
                    id=message_id,
                    data=FileVisitorData(
                        id=stable_id("file", channel_id, file.file_ref),
                        state="ready",
                        name=file.name,
                        content_type=file.content_type,
                        size=file.size,
                        url=self._file_url(channel_id, file),
                    ),
                )

    def _file_url(self, channel_id: str, file: InboundFile) -> str:
        if self.file_urls is not None:
            return self.file_urls.sign(
                channel_id, file.file_ref, name=file.name, content_type=file.content_type, size=file.size
            )
        if file.url:
            return file.url
        raise RuntimeError("no public URL configured for files: set server.public_url")

    # ------------------------------------------------------------------ outbound: platform → messenger

    async def accept_reply(
        self, channel_id: str, request: SendMessageRequest, *, request_id: str, correlation_id: str | None = None
    ) -> ReplyResult:
        """Queue one `/send_message` call. `request_id` is stable for a repeated call (dedupe), else unique;
        `correlation_id` (default: the one bound to the logs, else a new one) follows its parts to delivery."""
        correlation_id = correlation_id or current_correlation_id() or new_correlation_id()
        try:
            record = await self.store.chat_by_id(request.chat_id)
        except StoreError:
            self._store_failed("accept_reply")
            raise
        if record is None or record.channel_id != channel_id:
            raise UnknownChat(request.chat_id)
        if isinstance(request.message, UnknownReply):
            return ReplyResult(queued=0, unknown_kind=request.message.kind or "<missing>")
        adapter = self.channels[channel_id].adapter
        contents = reply_contents(request.message, adapter.capabilities)
        taken_over_at = time.time()
        items: list[Item] = [
            OutboundItem(
                channel_id=channel_id,
                chat_id=record.chat_id,
                dedupe_key=f"out:{channel_id}:{request_id}:{index}",
                message=Outbound(
                    chat_id=record.chat_id,
                    native_chat_id=record.native_chat_id,
                    message_id=f"{request_id}:{index}",
                    content=content,
                ),
                taken_over_at=taken_over_at,
                correlation_id=correlation_id,
            )
            for index, content in enumerate(contents)
        ]
        if items:
            await self._submit(items)
        return ReplyResult(queued=len(items))

    # ------------------------------------------------------------------ delivery (called by the handoff)

    async def deliver(self, item: Item) -> Outcome:
        """Deliver one item with its ids bound to every log line, and count the outcome."""
        with log_context(**item_log_fields(item)):
            try:
                outcome = await self._deliver(item)
            except Exception:
                if self.metrics is not None:
                    self.metrics.record_outcome(item, Retry("delivery raised"))
                raise
            if self.metrics is not None:
                self.metrics.record_outcome(item, outcome)
            return outcome

    async def _deliver(self, item: Item) -> Outcome:
        channel = self.channels.get(item.channel_id)
        if channel is None:
            return Permanent(f"channel {item.channel_id!r} is no longer configured")
        match item:
            case InboundItem(payload=payload):
                platform = channel.config.platform
                return await self.platform.post_new_message(
                    platform.webhook_url, payload, timeout=platform.timeout, connect_timeout=platform.connect_timeout
                )
            case OutboundItem(message=message):
                try:
                    await channel.adapter.send(message)
                except PermanentSendError as exc:
                    return Permanent(str(exc))
                except RetryableSendError as exc:
                    return Retry(str(exc), retry_after=exc.retry_after)
                return Delivered()
