"""The Chirp adapter: everything a messenger adapter does, for an imaginary HTTP messenger called Chirp.

Chirp's bot API (see the README): the bot sends with `POST {api_url}/v1/messages` and fetches files with
`GET {api_url}/v1/files/{file_id}`, both with `Authorization: Bearer {api_token}`; Chirp delivers visitors'
messages to the webhook the bot registered with `PUT {api_url}/v1/webhook`, with the registered secret in
`X-Chirp-Secret`, and redelivers every event it did not get a 2xx for.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any, Final

import httpx
import msgspec
from litestar import Request, Response, post

from bridge import (
    Adapter,
    AdapterContext,
    AdapterError,
    Capabilities,
    FileDownload,
    FileGone,
    Inbound,
    InboundButton,
    InboundContent,
    InboundFile,
    InboundText,
    NotTakenOver,
    Outbound,
    OutboundFile,
    OutboundKeyboard,
    OutboundText,
    PermanentSendError,
    RetryableSendError,
    Sender,
    stream_download,
)

__all__ = ["WEBHOOK_PATH", "ChirpAdapter", "ChirpConfig"]

WEBHOOK_PATH: Final = "chirp/webhook"
SECRET_HEADER: Final = "X-Chirp-Secret"


class ChirpConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The channel's `adapter:` block. Strict: a misspelt key is a config error, not a silent default."""

    api_url: str
    api_token: str
    webhook_secret: str
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.api_url.startswith(("http://", "https://")):
            raise ValueError("api_url must be an http(s) URL")
        self.api_url = self.api_url.rstrip("/")
        if len(self.webhook_secret) < 16:
            raise ValueError("webhook_secret must be at least 16 characters")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")

    def __repr__(self) -> str:
        # A repr ends up in tracebacks and debug logs: never with the token or the secret.
        return f"ChirpConfig(api_url={self.api_url!r}, timeout={self.timeout!r})"


# Chirp's webhook events, decoded strictly.
class _User(msgspec.Struct):
    id: str
    name: str | None = None


class _Attachment(msgspec.Struct):
    file_id: str
    filename: str
    mime_type: str = "application/octet-stream"
    size: int = 0


class _Button(msgspec.Struct):
    payload: str
    label: str


class _Event(msgspec.Struct):
    event_id: str
    conversation_id: str
    user: _User
    text: str | None = None
    attachment: _Attachment | None = None
    button: _Button | None = None


_decode_event = msgspec.json.Decoder(_Event).decode


def _content(event: _Event) -> InboundContent | None:
    if event.button is not None:
        return InboundButton(button_id=event.button.payload, text=event.button.label)
    if event.attachment is not None:
        a = event.attachment
        # The file_ref is Chirp's own file id: do_open_file resolves it again whenever the file is fetched.
        return InboundFile(file_ref=a.file_id, name=a.filename, content_type=a.mime_type, size=a.size)
    if event.text is not None:
        return InboundText(event.text)
    return None


def _json(status: int, body: dict[str, str]) -> Response[bytes]:
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json")


class ChirpAdapter(Adapter[ChirpConfig]):
    name = "chirp"
    config_type = ChirpConfig
    # Chirp's limits. The core shapes every message to them before do_send sees it.
    capabilities = Capabilities(max_text_length=1000, buttons=True, files=True, max_buttons_per_row=3, max_buttons=6)

    def __init__(self, config: ChirpConfig, context: AdapterContext) -> None:
        super().__init__(config, context)
        self._client: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------ lifecycle

    async def do_start(self) -> None:
        self._client = httpx.AsyncClient(
            base_url=self.config.api_url,
            headers={"Authorization": f"Bearer {self.config.api_token}"},
            timeout=self.config.timeout,
        )
        url = self.context.public_route_url(WEBHOOK_PATH)
        if url is None:
            raise AdapterError("Chirp delivers by webhook: set server.public_url")
        answer = await self._client.put("/v1/webhook", json={"url": url, "secret": self.config.webhook_secret})
        if answer.status_code != 200:
            # do_stop runs after a failed start and closes the client.
            raise AdapterError(f"Chirp refused the webhook registration ({answer.status_code})")
        self.log.info("chirp webhook registered", extra={"url": url})

    async def do_stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            raise AdapterError("the Chirp adapter is not started")
        return self._client

    # ------------------------------------------------------------------ inbound

    def route_handlers(self) -> Sequence[Any]:
        @post(f"/{WEBHOOK_PATH}", status_code=200)
        async def chirp_webhook(request: Request[Any, Any, Any]) -> Response[bytes]:
            secret = request.headers.get(SECRET_HEADER, "")
            if not hmac.compare_digest(secret.encode(), self.config.webhook_secret.encode()):
                return _json(401, {"error": "unauthorized", "desc": "missing or wrong X-Chirp-Secret"})
            try:
                event = _decode_event(await request.body())
            except msgspec.DecodeError as exc:
                return _json(400, {"error": "bad_request", "desc": str(exc)})
            content = _content(event)
            if content is None:
                return _json(200, {"result": "ignored"})  # an event kind this adapter does not forward
            inbound = Inbound(
                native_chat_id=event.conversation_id,
                # Chirp's event id is the same on every redelivery: the core recognises duplicates by it.
                native_message_id=event.event_id,
                sender=Sender(native_user_id=event.user.id, name=event.user.name),
                content=content,
            )
            try:
                await self.context.submit(inbound)
            except NotTakenOver:
                # Not 2xx: Chirp redelivers the event later.
                return _json(503, {"error": "not_taken_over", "desc": "try again later"})
            return _json(200, {"result": "ok"})

        return (chirp_webhook,)

    # ------------------------------------------------------------------ outbound

    async def do_send(self, message: Outbound) -> None:
        body: dict[str, Any] = {"conversation_id": message.native_chat_id, "client_message_id": message.message_id}
        match message.content:
            case OutboundText(text=text):
                body["text"] = text
            case OutboundKeyboard(rows=rows, text=text):
                body["text"] = text
                body["buttons"] = [[{"label": b.text, "payload": b.id} for b in row] for row in rows]
            case OutboundFile(url=url, name=name):
                body["attachment_url"] = url
                body["attachment_name"] = name
        # Transport errors (timeouts, refused connections) propagate: the base class treats them as retryable.
        answer = await self._http().post("/v1/messages", json=body)
        status = answer.status_code
        if status < 300:
            return
        if status == 429 or status >= 500:
            raise RetryableSendError(f"Chirp answered {status}", retry_after=_retry_after(answer))
        raise PermanentSendError(f"Chirp refused the message ({status}: {answer.text[:200]})")

    # ------------------------------------------------------------------ files

    async def do_open_file(self, file_ref: str) -> FileDownload:
        client = self._http()
        answer = await client.send(client.build_request("GET", f"/v1/files/{file_ref}"), stream=True)
        if answer.status_code == 404:
            await answer.aclose()
            raise FileGone(f"Chirp no longer has file {file_ref}")
        if answer.status_code != 200:
            await answer.aclose()
            raise AdapterError(f"Chirp answered {answer.status_code} for a file")

        return stream_download(answer)


def _retry_after(answer: httpx.Response) -> float | None:
    try:
        value = msgspec.json.decode(answer.content).get("retry_after")
    except (msgspec.DecodeError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None
