"""The adapter plugin API: what a messenger adapter subclasses and what the core hands it.

An adapter knows one messenger and nothing of the core: it receives its config Struct and an
`AdapterContext` (callback, key-value handle, public URL, logger) and never imports the store, the queues or the
platform client. The public methods here are final and do the shared work (state, logging, error
classification); subclasses fill in the small `do_*` hooks.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar, final

import httpx
import msgspec

from bridge._errors import describe_error
from bridge.fetch import SafeFetcher
from bridge.messages import Inbound, Outbound, OutboundFile, OutboundKeyboard
from bridge.webhook import DEFAULT_MAX_BODY

__all__ = [
    "Adapter",
    "AdapterContext",
    "AdapterError",
    "Capabilities",
    "FileDownload",
    "FileGone",
    "FileTooLarge",
    "InboundCallback",
    "KeyValue",
    "NotTakenOver",
    "PermanentSendError",
    "RetryableSendError",
    "SendError",
    "stream_download",
]

ConfigT = TypeVar("ConfigT", bound=msgspec.Struct)
InboundCallback = Callable[[Inbound], Awaitable[None]]
TextUnit = Literal["codepoints", "utf16"]


class AdapterError(Exception):
    """Base of every error an adapter raises on purpose."""


class SendError(AdapterError):
    pass


class PermanentSendError(SendError):
    """Sending cannot succeed by retrying (bot blocked, chat gone, message refused): dead-letter it."""


class RetryableSendError(SendError):
    """A passing failure (network, 5xx, rate limit). `retry_after` is the messenger's own wait, in seconds."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class NotTakenOver(AdapterError):
    """Raised by the inbound callback when the core could not take a message over; answer the messenger
    with an error (or keep the polling offset) so that it redelivers."""


class FileGone(AdapterError):
    """The messenger no longer has the file."""


class FileTooLarge(AdapterError):
    """The file exists but is larger than the messenger lets the bridge download (Telegram's Bot API: 20 MB).
    The file proxy answers 413 with `size` and `limit` (each None when not known), so the agent learns why."""

    def __init__(self, size: int | None, limit: int | None, reason: str | None = None) -> None:
        if reason is None:
            told = f"the file ({size} bytes)" if size is not None else "the file"
            reason = f"{told} is larger than the messenger lets the bridge download"
            if limit is not None:
                reason += f" ({limit} bytes)"
        super().__init__(reason)
        self.size = size
        self.limit = limit


class Capabilities(msgspec.Struct, frozen=True):
    """What the messenger can show. The core adapts outbound messages to these before `send` is called:
    long text is split into parts of at most `max_text_length` `text_unit`s, and keyboards and files are
    turned into text when unsupported."""

    max_text_length: int | None = None
    text_unit: TextUnit = "codepoints"
    buttons: bool = True
    files: bool = True
    max_buttons_per_row: int | None = None
    max_buttons: int | None = None


class KeyValue(Protocol):
    """A small durable key-value space of the adapter's own channel (webhook secrets, short tokens...)."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> None: ...

    async def set_if_absent(self, key: str, value: bytes, *, ttl: float | None = None) -> bool: ...

    async def delete(self, key: str) -> None: ...


@dataclass(frozen=True, slots=True)
class FileDownload:
    """A file streamed from the messenger; `chunks` is consumed exactly once."""

    chunks: AsyncIterator[bytes]
    size: int | None = None
    content_type: str | None = None
    name: str | None = None


def stream_download(response: httpx.Response, *, size: int | None = None, chunk_size: int = 64 * 1024) -> FileDownload:
    """A `FileDownload` over an httpx response sent with `stream=True`: read to its end, then closed, never
    held whole in memory. A transfer that breaks off mid-way raises `AdapterError`. The size is the answer's
    Content-Length, else `size`; the content type is the answer's."""

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_bytes(chunk_size):
                yield chunk
        except httpx.HTTPError as exc:
            raise AdapterError(f"file download interrupted: {type(exc).__name__}") from None
        finally:
            await response.aclose()

    length = response.headers.get("content-length")
    return FileDownload(
        chunks=chunks(),
        size=int(length) if length and length.isdigit() else size,
        content_type=response.headers.get("content-type"),
    )


def _uncounted(kind: str) -> None:
    """The default `AdapterContext.dropped`: nobody is counting."""


@dataclass(slots=True)
class AdapterContext:
    """Everything the core hands an adapter at construction.

    `dropped(kind)` is for the operator's metrics: call it once for each visitor message the channel's config
    tells the adapter not to forward (an ignored group message or edit), with the message's kind (`text`,
    `file`, `button`, `edit`, `other`).

    `fetcher` is how an adapter downloads a URL itself (an agent's file its messenger wants uploaded): it
    refuses addresses inside the bridge's network unless the operator allow-listed them (`bridge.fetch`).

    `max_body_bytes` is the server's limit on request bodies (`server.max_body_bytes`), for the adapter's own
    routes (`bridge.webhook_route` takes it as `max_body`)."""

    channel_id: str
    submit: InboundCallback
    kv: KeyValue
    public_url: str | None = None
    route_prefix: str = ""
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("bridge.adapter"))
    extra: dict[str, Any] = field(default_factory=dict)
    dropped: Callable[[str], None] = _uncounted
    fetcher: SafeFetcher = field(default_factory=SafeFetcher)
    max_body_bytes: int = DEFAULT_MAX_BODY

    def public_route_url(self, path: str) -> str | None:
        """The public URL of one of the adapter's own routes, or None when no public URL is configured."""
        if not self.public_url:
            return None
        return f"{self.public_url.rstrip('/')}{self.route_prefix}/{path.lstrip('/')}"


class Adapter(ABC, Generic[ConfigT]):
    """Base class of every messenger adapter.

    Declare `name` (the entry-point name, used as `adapter.type` in the config), `config_type` (a msgspec
    Struct decoded strictly from the channel's `adapter:` block, minus `type`) and `capabilities`.
    Implement `do_send`; override `do_start`, `do_stop`, `route_handlers` and `do_open_file` as needed.
    """

    name: ClassVar[str]
    config_type: ClassVar[type[msgspec.Struct]]
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, config: ConfigT, context: AdapterContext) -> None:
        self.config = config
        self.context = context
        self.log = context.logger
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    @final
    async def start(self) -> None:
        """Start the adapter; when `do_start` fails, `do_stop` runs so that nothing half-started leaks."""
        if self._started:
            return
        try:
            await self.do_start()
        except BaseException:
            try:
                await self.do_stop()
            except Exception:
                self.log.exception("adapter cleanup after a failed start failed too")
            raise
        self._started = True

    @final
    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        await self.do_stop()

    @property
    def started(self) -> bool:
        return self._started

    async def do_start(self) -> None:
        """Connect to the messenger (set webhooks, start polling tasks)."""

    async def do_stop(self) -> None:
        """Release what `do_start` took. Must be safe to call after a partial start."""

    def route_handlers(self) -> Sequence[Any]:
        """Litestar route handlers of this adapter, mounted under `/channels/{channel_id}`."""
        return ()

    # ------------------------------------------------------------------ outbound

    @final
    async def send(self, message: Outbound) -> None:
        """Send one agent message. Raises `PermanentSendError` or `RetryableSendError`; any other exception
        is treated as retryable, since an unexpected failure may well be passing."""
        content = message.content
        if isinstance(content, OutboundKeyboard) and not self.capabilities.buttons:
            raise PermanentSendError("this adapter cannot show buttons")
        if isinstance(content, OutboundFile) and not self.capabilities.files:
            raise PermanentSendError("this adapter cannot send files")
        try:
            await self.do_send(message)
        except SendError:
            raise
        except Exception as exc:
            raise RetryableSendError(describe_error(exc)) from exc

    @abstractmethod
    async def do_send(self, message: Outbound) -> None:
        """Deliver one message natively, raising `PermanentSendError` / `RetryableSendError` on failure."""

    # ------------------------------------------------------------------ files

    @final
    async def open_file(self, file_ref: str) -> FileDownload:
        """Open a visitor's file by the `file_ref` the adapter put in an `InboundFile`."""
        return await self.do_open_file(file_ref)

    async def do_open_file(self, file_ref: str) -> FileDownload:
        raise FileGone("this adapter does not serve files")
