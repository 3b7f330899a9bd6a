"""A lean route for a messenger's webhook: headers and body in, a status and a JSON body out.

A webhook that receives every visitor message needs none of what Litestar's request and response objects
offer (parameter parsing, dependency injection, content negotiation), and building them costs about 90 µs
of CPU per request, a visible share of the whole inbound path. `webhook_route` gives an adapter a plain
ASGI route instead: the body is read with the server's size limit, the handler is called with a
`WebhookRequest`, and its answer is sent as `application/json`. The route answers its own errors (405, 413,
and a JSON 500 for a failing handler), so it behaves the same wherever it is mounted.

The app goes one step further (`WebhookFastPath`): a request whose path is exactly a webhook route's is
answered before Litestar's routing and exception middleware: about 5 % less CPU per message (the median
of six A/B pairs of benchmark runs).
Every other request takes the usual way through the app; the bridge's metrics count both alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from litestar import asgi
from litestar.handlers import ASGIRouteHandler
from litestar.types import ASGIApp, HTTPResponseStartEvent, Receive, Scope, Send

from bridge.protocol import status_error_body

__all__ = ["DEFAULT_MAX_BODY", "WebhookFastPath", "WebhookHandler", "WebhookRequest", "webhook_endpoint",
           "webhook_route"]

DEFAULT_MAX_BODY: Final = 1024 * 1024
_JSON_HEADERS: Final = (b"content-type", b"application/json")
_ENDPOINT_OPT: Final = "bridge_webhook_endpoint"  # where a route handler made here keeps its endpoint

log = logging.getLogger("bridge.webhook")


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """`headers` has lower-case names (a repeated header keeps its last value); `body` is the whole body."""

    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


# Returns (HTTP status, JSON body).
WebhookHandler = Callable[[WebhookRequest], Awaitable[tuple[int, bytes]]]


# (route label, method, status, seconds): how the fast path reports a request to the metrics.
ObserveRequest = Callable[[str, str, int, float], None]


class _TooLarge(Exception):
    pass


class _Endpoint:
    """The ASGI callable behind a webhook route. `answer` returns the status it sent, which the fast path
    counts without wrapping `send`."""

    __slots__ = ("handler", "max_body")

    def __init__(self, handler: WebhookHandler, max_body: int) -> None:
        self.handler = handler
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.answer(scope, receive, send)

    async def answer(self, scope: Scope, receive: Receive, send: Send) -> int:
        if scope.get("method") != "POST":
            return await _send(send, 405, status_error_body(405, "this endpoint takes POST only"), (b"allow", b"POST"))
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        try:
            body = await _read_body(receive, headers.get("content-length"), self.max_body)
        except _TooLarge:
            return await _send(send, 413, status_error_body(413, f"the body is over {self.max_body} bytes"))
        if body is None:  # the client went away: nobody to answer
            return 499  # nginx's "client closed the request", for the metrics
        try:
            status, answer = await self.handler(WebhookRequest(headers, body))
        except Exception:
            log.exception("unhandled error in a request")
            return await _send(send, 500, status_error_body(500, "internal error"))
        return await _send(send, status, answer)


async def _send(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> int:
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [_JSON_HEADERS, (b"content-length", str(len(body)).encode()), *extra],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})
    return status


def webhook_route(path: str, handler: WebhookHandler, *, max_body: int = DEFAULT_MAX_BODY) -> ASGIRouteHandler:
    """A POST-only route at `path` (relative to the adapter's `/channels/{channel_id}` prefix) calling
    `handler`. A body over `max_body` bytes is answered 413 without calling it; another method, 405; a
    handler that raises, a JSON 500 (the error is logged). The path takes no parameters: every request
    carries what identifies it in headers or body, and the fast path matches whole paths."""
    if "{" in path:
        raise ValueError(f"a webhook route's path takes no parameters: {path!r}")
    if max_body < 1:
        raise ValueError("max_body must be at least 1 byte")
    endpoint = _Endpoint(handler, max_body)
    return asgi(path=f"/{path.lstrip('/')}", copy_scope=False, opt={_ENDPOINT_OPT: endpoint})(endpoint)


def webhook_endpoint(route: Any) -> Callable[[Scope, Receive, Send], Awaitable[int]] | None:
    """For a route handler `webhook_route` made: its endpoint, which answers and returns the status sent."""
    opt = getattr(route, "opt", None)
    endpoint = opt.get(_ENDPOINT_OPT) if isinstance(opt, dict) else None
    return endpoint.answer if isinstance(endpoint, _Endpoint) else None


class WebhookFastPath:
    """ASGI wrapper answering requests for the exact paths in `routes` ({full path: endpoint}) itself and
    passing everything else to `app`. Each request it answers is reported to `observe` with its path as the
    route label, the same label Litestar's routing gives a path without parameters."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Mapping[str, Callable[[Scope, Receive, Send], Awaitable[int]]],
        observe: ObserveRequest,
    ) -> None:
        self.app = app
        self.routes = dict(routes)
        self.observe = observe

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        endpoint = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # when sending fails midway, as the metrics wrapper of the other routes counts it
        try:
            status = await endpoint(scope, receive, send)
        finally:
            self.observe(scope["path"], scope["method"], status, time.perf_counter() - started)


async def _read_body(receive: Receive, declared: str | None, max_body: int) -> bytes | None:
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Any = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
