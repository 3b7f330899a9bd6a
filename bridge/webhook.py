"""A lean route for a messenger's webhook: headers and body in, a status and a JSON body out.

A webhook that receives every visitor message needs none of what Litestar's request and response objects
offer (parameter parsing, dependency injection, content negotiation), and building them costs about 90 µs
of CPU per request, a visible share of the whole inbound path. `webhook_route` gives an adapter a plain
ASGI route instead: the body is read with the server's size limit, the handler is called with a
`WebhookRequest`, and its answer is sent as `application/json`. The route still runs inside the app, so
the bridge's metrics, logging and error handling see it like any other route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from litestar import asgi
from litestar.exceptions import ClientException, MethodNotAllowedException
from litestar.handlers import ASGIRouteHandler
from litestar.types import HTTPResponseStartEvent, Receive, Scope, Send

__all__ = ["DEFAULT_MAX_BODY", "WebhookHandler", "WebhookRequest", "webhook_route"]

DEFAULT_MAX_BODY: Final = 1024 * 1024
_JSON_HEADERS: Final = (b"content-type", b"application/json")


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """`headers` has lower-case names (a repeated header keeps its last value); `body` is the whole body."""

    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


# Returns (HTTP status, JSON body).
WebhookHandler = Callable[[WebhookRequest], Awaitable[tuple[int, bytes]]]


class _TooLarge(ClientException):
    status_code = 413


def webhook_route(path: str, handler: WebhookHandler, *, max_body: int = DEFAULT_MAX_BODY) -> ASGIRouteHandler:
    """A POST-only route at `path` (relative to the adapter's `/channels/{channel_id}` prefix) calling
    `handler`. A body over `max_body` bytes is answered 413 without calling it; another method, 405."""
    if max_body < 1:
        raise ValueError("max_body must be at least 1 byte")

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") != "POST":
            raise MethodNotAllowedException(headers={"Allow": "POST"})
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        body = await _read_body(receive, headers.get("content-length"), max_body)
        if body is None:  # the client went away: nobody to answer
            return
        status, answer = await handler(WebhookRequest(headers, body))
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON_HEADERS, (b"content-length", str(len(answer)).encode())],
        }
        await send(start)
        await send({"type": "http.response.body", "body": answer, "more_body": False})

    return asgi(path=f"/{path.lstrip('/')}", copy_scope=False)(endpoint)


async def _read_body(receive: Receive, declared: str | None, max_body: int) -> bytes | None:
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise _TooLarge(detail=f"the body is over {max_body} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            raise _TooLarge(detail=f"the body is over {max_body} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
