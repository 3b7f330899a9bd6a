"""The generic HTTP adapter: the universal connector for a company's own systems.

The company POSTs one JSON message per visitor message to `/channels/{channel_id}/inbound` (bearer token or
HMAC signature) and gets `200` only once the bridge has taken it over, so it retries anything else. The bridge
POSTs each agent message to the company's `callback_url`, HMAC-signed, and classifies the answer like every
other adapter: 2xx delivered; 408, 429, 5xx, timeouts and connection errors retried; other 4xx dead-lettered.

A visitor's file arrives as a URL in the company's network. The URL is kept in the channel's key-value store
under a reference derived from the message (stable across redeliveries) and never leaves the bridge: the
platform gets the bridge's own signed file link, and `do_open_file` streams the company's URL on each GET.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx
import msgspec
from litestar import Request, Response, post
from litestar.exceptions import ClientException

from adapters.http import signing
from adapters.http.config import HttpConfig
from adapters.http.wire import InboundBody, InboundError, callback_body, content_of, decode_inbound, sender_of
from bridge import (
    Adapter,
    AdapterContext,
    AdapterError,
    Capabilities,
    FileDownload,
    FileGone,
    Inbound,
    NotTakenOver,
    Outbound,
    PermanentSendError,
    RetryableSendError,
    stream_download,
)

__all__ = ["INBOUND_PATH", "HttpAdapter"]

INBOUND_PATH: Final = "inbound"
_FILE_KEY: Final = "file:"
_OK: Final = b'{"result":"ok"}'
_RETRYABLE_4XX: Final = (408, 425, 429)
_MAX_RETRY_AFTER: Final = 24 * 3600.0


def _error(status: int, code: str, desc: str, headers: Mapping[str, str] | None = None) -> Response[bytes]:
    body = msgspec.json.encode({"error": code, "desc": desc})
    return Response(body, status_code=status, media_type="application/json", headers=dict(headers or {}))


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), _MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return min(max(when - (time.time() if now is None else now), 0.0), _MAX_RETRY_AFTER)


class HttpAdapter(Adapter[HttpConfig]):
    name = "http"
    config_type = HttpConfig
    capabilities = Capabilities()

    def __init__(self, config: HttpConfig, context: AdapterContext) -> None:
        super().__init__(config, context)
        if config.max_text_length is not None:
            # Per channel: the company may sit in front of something with a limit (an SMS gateway).
            self.capabilities = Capabilities(max_text_length=config.max_text_length)  # type: ignore[misc]
        self._client: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------ lifecycle

    async def do_start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.config.timeout, follow_redirects=False)

    async def do_stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            raise AdapterError("the HTTP adapter is not started")
        return self._client

    # ------------------------------------------------------------------ inbound

    def route_handlers(self) -> Sequence[Any]:
        @post(f"/{INBOUND_PATH}", status_code=200, request_max_body_size=self.config.max_body_bytes)
        async def http_inbound(request: Request[Any, Any, Any]) -> Response[bytes]:
            try:
                body = await request.body()
            except ClientException as exc:
                if exc.status_code == 413:
                    return _error(413, "too_large", f"the body exceeds {self.config.max_body_bytes} bytes")
                raise
            return await self.handle_inbound(request.headers, body)

        return (http_inbound,)

    def authenticate(self, headers: Mapping[str, str], body: bytes) -> str | None:
        """None when the request is authentic, else why not."""
        config = self.config
        if config.auth == "bearer":
            given = headers.get("authorization")
            if given is None:
                return "missing Authorization header (expected: Bearer <token>)"
            scheme, _, token = given.strip().partition(" ")
            expected = (config.token or "").encode("utf-8")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode("utf-8"), expected):
                return "wrong bearer token"
            return None
        try:
            signing.verify(config.secret or "", headers, body, max_skew=config.max_skew)
        except signing.SignatureError as exc:
            return str(exc)
        return None

    async def handle_inbound(self, headers: Mapping[str, str], body: bytes) -> Response[bytes]:
        refused = self.authenticate(headers, body)
        if refused is not None:
            self.log.warning("inbound request refused", extra={"reason": refused})
            return _error(401, "unauthorized", refused)
        try:
            message = decode_inbound(body)
        except InboundError as exc:
            return _error(400, "bad_request", str(exc))
        file_ref = await self._keep_file_url(message) if message.file is not None else None
        inbound = Inbound(
            native_chat_id=message.chat_id,
            native_message_id=message.message_id,
            sender=sender_of(message),
            content=content_of(message, file_ref),
        )
        try:
            await self.context.submit(inbound)
        except NotTakenOver:
            return _error(
                503,
                "not_taken_over",
                "the bridge could not take the message over; retry it later",
                {"Retry-After": "1"},
            )
        return Response(_OK, status_code=200, media_type="application/json")

    async def _keep_file_url(self, message: InboundBody) -> str:
        """The file's reference: derived from the message (the same on a redelivery), the URL stored under it."""
        url = message.file.url if message.file is not None else ""
        digest = hashlib.sha256("\x1f".join((message.chat_id, message.message_id, url)).encode()).hexdigest()
        file_ref = digest[:40]
        await self.context.kv.set(_FILE_KEY + file_ref, url.encode(), ttl=self.config.file_ttl)
        return file_ref

    # ------------------------------------------------------------------ outbound

    async def do_send(self, message: Outbound) -> None:
        body = msgspec.json.encode(callback_body(self.context.channel_id, message))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.message_id,
            **signing.signature_headers(self.config.signing_secret, body),
        }
        try:
            answer = await self._http().post(self.config.callback_url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise RetryableSendError(f"the callback timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise RetryableSendError(f"the callback could not be delivered ({type(exc).__name__}: {exc})") from None
        status = answer.status_code
        if 200 <= status < 300:
            return
        wait = retry_after_seconds(answer.headers.get("retry-after"))
        detail = f"the callback answered {status}: {answer.text[:200]!r}"
        if status >= 500 or status in _RETRYABLE_4XX:
            raise RetryableSendError(detail, retry_after=wait)
        raise PermanentSendError(detail)

    # ------------------------------------------------------------------ files

    async def do_open_file(self, file_ref: str) -> FileDownload:
        stored = await self.context.kv.get(_FILE_KEY + file_ref)
        if stored is None:
            raise FileGone("the file's URL is no longer known to the bridge")
        client = self._http()
        try:
            answer = await client.send(client.build_request("GET", stored.decode()), stream=True)
        except httpx.HTTPError as exc:
            raise AdapterError(f"the company's file server could not be reached ({type(exc).__name__})") from None
        if answer.status_code in (404, 410):
            await answer.aclose()
            raise FileGone(f"the company's file server answered {answer.status_code}")
        if answer.status_code != 200:
            await answer.aclose()
            raise AdapterError(f"the company's file server answered {answer.status_code}")

        return stream_download(answer)
