"""HTTP routes of the core: the platform's reply endpoint, health and readiness.

The reply endpoint is one handler for everything under `/channels/{channel_id}/` that no adapter route claims,
because the platform appends method names to whatever base URL the operator entered: `send_message` is acted on,
any other method is answered 200 and logged (the dialect allows `close_chat`, `redirect_chat`, ...).
"""

from __future__ import annotations

import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import ClientException
from litestar.params import FromPath

from bridge.config import ChannelConfig
from bridge.core import Bridge, UnknownChat
from bridge.logs import log_context, new_correlation_id
from bridge.protocol import OkBody, ProtocolError, decode_send_message, encode, error_body
from bridge.queue.base import QueueError
from bridge.store.base import StoreError

__all__ = ["health_routes", "reply_routes"]

log = logging.getLogger("bridge.reply")

_JSON = "application/json"
_OK = encode(OkBody())


def _json(body: bytes, status: int = 200) -> Response[bytes]:
    return Response(content=body, status_code=status, media_type=_JSON)


def _error(status: int, error: str, desc: str) -> Response[bytes]:
    return _json(error_body(error, desc), status)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _header_ok(request: Request[Any, Any, Any], token: str) -> bool:
    """`Authorization: Token {token}`; the scheme word is case-insensitive (RFC 9110), the token is not."""
    scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
    return scheme.lower() == "token" and _same(value, token)


def _authenticate(
    request: Request[Any, Any, Any], channel: ChannelConfig | None, segments: list[str]
) -> tuple[Response[bytes] | None, str]:
    """Check the channel and auth mode; return (error response or None, method)."""
    if channel is None:
        return _error(404, "not_found", "no such channel"), ""
    if len(segments) == 1:
        # Header mode: /channels/{id}/{method}
        if channel.platform.token is None:
            return _error(404, "not_found", "this channel takes replies on its secret URL only"), ""
        if not _header_ok(request, channel.platform.token):
            missing = request.headers.get("authorization") is None
            desc = "missing Authorization header" if missing else "wrong token in Authorization header"
            return _error(401, "unauthorized", desc), ""
        return None, segments[0]
    if len(segments) == 2:
        # Secret-URL mode: /channels/{id}/{url_secret}/{method}
        secret = channel.platform.url_secret
        if secret is None or not _same(segments[0], secret):
            return _error(404, "not_found", "no such URL"), ""
        return None, segments[1]
    return _error(404, "not_found", "no such URL"), ""


def reply_routes(bridge: Bridge, channels: dict[str, ChannelConfig]) -> list[Any]:
    def ignored(channel_id: str, reason: str) -> None:
        if bridge.metrics is not None:
            bridge.metrics.count_reply_ignored(channel_id, reason)

    async def reply(request: Request[Any, Any, Any], channel_id: FromPath[str], tail: FromPath[str]) -> Response[bytes]:
        # One correlation id per call: it follows every part of the reply to its delivery.
        correlation_id = new_correlation_id()
        with log_context(correlation_id=correlation_id, channel=channel_id):
            return await handle(request, channel_id, tail, correlation_id)

    async def handle(
        request: Request[Any, Any, Any], channel_id: str, tail: str, correlation_id: str
    ) -> Response[bytes]:
        channel = channels.get(channel_id)
        segments = [s for s in tail.split("/") if s]
        failure, method = _authenticate(request, channel, segments)
        if failure is not None:
            return failure
        try:
            body = await request.body()
        except ClientException as exc:
            if exc.status_code == 413:
                return _error(413, "too_large", "request body exceeds the configured limit")
            raise
        if method != "send_message":
            log.info(
                "platform called a method the bridge does not act on", extra={"channel": channel_id, "method": method}
            )
            ignored(channel_id, "other_method")
            return _json(_OK)
        try:
            request_data = decode_send_message(body)
        except ProtocolError as exc:
            return _error(400, "bad_request", str(exc))
        request_id = (
            request.headers.get("idempotency-key")
            or (f"id:{request_data.message_id}" if request_data.message_id else None)
            or f"rnd:{uuid.uuid4()}"
        )
        try:
            result = await bridge.accept_reply(
                channel_id, request_data, request_id=request_id, correlation_id=correlation_id
            )
        except UnknownChat:
            return _error(404, "unknown_chat", f"chat_id {request_data.chat_id} is not a chat of this channel")
        except (StoreError, QueueError) as exc:
            # Not taken over: the platform must see a failure so that the reply is not believed delivered.
            log.error("reply not taken over", extra={"channel": channel_id, "reason": str(exc)})
            return _error(503, "unavailable", "the bridge could not store the reply right now; retry later")
        if result.unknown_kind is not None:
            log.warning(
                "reply of an unknown kind was not delivered",
                extra={"channel": channel_id, "chat_id": request_data.chat_id, "kind": result.unknown_kind},
            )
            ignored(channel_id, "unknown_kind")
        elif result.queued == 0:
            log.warning(
                "reply with nothing to send (empty text or no buttons) was not delivered",
                extra={"channel": channel_id, "chat_id": request_data.chat_id},
            )
            ignored(channel_id, "empty")
        return _json(_OK)

    handler = post("/channels/{channel_id:str}/{tail:path}", status_code=200, name="reply")(reply)
    return [handler]


ReadinessCheck = Callable[[], Awaitable[dict[str, Any]]]


def health_routes(readiness: ReadinessCheck) -> list[Any]:
    @get("/healthz", name="healthz")
    async def healthz() -> Response[bytes]:
        return _json(b'{"status":"ok"}')

    @get("/readyz", name="readyz")
    async def readyz() -> Response[bytes]:
        report = await readiness()
        return _json(encode(report), 200 if report["status"] == "ok" else 503)

    return [healthz, readyz]
