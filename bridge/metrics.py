"""Prometheus metrics of one bridge, scraped at `GET /metrics` in the text exposition format.

Each app builds its own `Metrics` (its own `CollectorRegistry`): two bridges in one process, as in tests, never
share a counter, and nothing is registered at import time. The core counts every delivery outcome in
`Bridge.deliver` (the one place both directions pass through); the backlog gauges are read from the handoff's
`status()` at scrape time, so they are exact across replicas when the queue is shared; HTTP requests are
counted by an ASGI wrapper around the whole app, so requests that match no route (scanners, a wrong reply URL)
are counted too, under the route label `unmatched`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final

from litestar import Litestar, Request, Response, get
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bridge import __version__
from bridge.handoff import (
    Delivered,
    DeliveryStatus,
    Direction,
    InboundItem,
    Item,
    Outcome,
    Permanent,
    Retry,
)
from bridge.messages import OutboundFile, OutboundKeyboard, OutboundText
from bridge.protocol import FileVisitorMessage, KeyboardResponseMessage, TextVisitorMessage, error_body
from bridge.queue.base import QueueError
from bridge.store.base import StoreError

__all__ = [
    "CONTENT_TYPE",
    "PREFIX",
    "BacklogSource",
    "HttpMetrics",
    "Metrics",
    "direction_of",
    "install_http_metrics",
    "is_store_failure",
    "item_kind",
    "metrics_routes",
]

PREFIX: Final = "omnichannel_bridge"
# The classic text format (what `generate_latest` writes), understood by every Prometheus version.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED_ROUTE: Final = "unmatched"

# From a few milliseconds (an inline delivery) to an hour (a message that waited out a long outage).
_DELIVERY_BUCKETS: Final = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_HTTP_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# A scrape must answer even when the queue's backend hangs.
_BACKLOG_TIMEOUT: Final = 3.0

BacklogSource = Callable[[], Awaitable[Sequence[DeliveryStatus]]]

log = logging.getLogger("bridge.metrics")


def direction_of(item: Item) -> Direction:
    return "inbound" if isinstance(item, InboundItem) else "outbound"


def item_kind(item: Item) -> str:
    """A small closed set of values (`text`, `button`, `file`, `keyboard`), fit for a label."""
    if isinstance(item, InboundItem):
        match item.payload.message:
            case TextVisitorMessage():
                return "text"
            case KeyboardResponseMessage():
                return "button"
            case FileVisitorMessage():
                return "file"
        return "other"
    match item.message.content:
        case OutboundText():
            return "text"
        case OutboundKeyboard():
            return "keyboard"
        case OutboundFile():
            return "file"
    return "other"


def is_store_failure(exc: BaseException) -> bool:
    """Whether `exc` says the store or the queue (which lives in the store) could not answer."""
    return isinstance(exc, StoreError | QueueError)


class Metrics:
    """The bridge's metrics in a registry of their own. `backlog` is the handoff's `status` (None or a handoff
    without a backlog: no queue gauges); `channels` pre-creates per-channel series at zero, so `rate()` and
    alerts work from the first scrape."""

    def __init__(
        self,
        *,
        backlog: BacklogSource | None = None,
        channels: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._backlog = backlog
        self._clock = clock
        registry = self.registry
        Gauge(f"{PREFIX}_info", "The running version of the bridge (always 1).", ["version"],
              registry=registry).labels(__version__).set(1)
        self.messages = Counter(
            f"{PREFIX}_messages_total",
            "Delivery outcomes: delivered, retried, dead_lettered (a permanent failure), duplicate (taken over "
            "before), dropped_by_config (not forwarded because the channel's config says so).",
            ["channel", "direction", "kind", "outcome"],
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            f"{PREFIX}_delivery_seconds",
            "Seconds from taking a message over to its delivery, retries and waiting included.",
            ["direction"],
            buckets=_DELIVERY_BUCKETS,
            registry=registry,
        )
        self.rate_limited = Counter(
            f"{PREFIX}_rate_limited_total",
            "Delivery attempts the receiving side asked to repeat after a given wait (429, Retry-After).",
            ["channel", "direction"],
            registry=registry,
        )
        self.store_errors = Counter(
            f"{PREFIX}_store_errors_total",
            "Operations the store or the queue could not perform.",
            ["operation"],
            registry=registry,
        )
        self.replies_ignored = Counter(
            f"{PREFIX}_replies_ignored_total",
            "Platform calls answered 200 without sending anything: unknown_kind, other_method, empty.",
            ["channel", "reason"],
            registry=registry,
        )
        self.files_refused = Counter(
            f"{PREFIX}_files_refused_total",
            "File links answered with an error instead of the file: too_large (413, over the bridge's or the "
            "messenger's download limit), gone (404, the messenger no longer has it), expired (410), invalid "
            "(403, tampered or signed by another key; no channel label), unknown_channel (404), unavailable "
            "(502, the messenger did not answer).",
            ["channel", "reason"],
            registry=registry,
        )
        self.http_requests = Counter(
            f"{PREFIX}_http_requests_total",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_seconds = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Seconds to answer an HTTP request, by route template and method.",
            ["route", "method"],
            buckets=_HTTP_BUCKETS,
            registry=registry,
        )
        backlog_labels = ["channel", "direction"]
        self.queue_depth = Gauge(f"{PREFIX}_queue_depth", "Messages waiting for delivery, scheduled retries "
                                 "included.", backlog_labels, registry=registry)
        self.queue_in_flight = Gauge(f"{PREFIX}_queue_in_flight", "Messages being delivered right now.",
                                     backlog_labels, registry=registry)
        self.queue_oldest_age = Gauge(f"{PREFIX}_queue_oldest_age_seconds", "Seconds since the oldest waiting "
                                      "message was taken over.", backlog_labels, registry=registry)
        self.dead_letters = Gauge(f"{PREFIX}_dead_letters", "Dead letters kept for an operator to replay or "
                                  "drop.", backlog_labels, registry=registry)
        for channel in channels:
            for direction in ("inbound", "outbound"):
                self.rate_limited.labels(channel, direction)
            for reason in ("unknown_kind", "other_method"):
                self.replies_ignored.labels(channel, reason)
            for reason in ("too_large", "gone"):
                self.files_refused.labels(channel, reason)

    # ------------------------------------------------------------------ counting

    def _child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembered: looking a child up costs more than counting (every message and
        request counts two or three). Only for counters and histograms: gauges are cleared at each scrape."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def count_message(self, channel: str, direction: Direction, kind: str, outcome: str, count: int = 1) -> None:
        self._child(self.messages, channel, direction, kind, outcome).inc(count)

    def record_outcome(self, item: Item, outcome: Outcome) -> None:
        """Count one delivery attempt's outcome; a delivery also observes its latency."""
        direction = direction_of(item)
        kind = item_kind(item)
        match outcome:
            case Delivered():
                self.count_message(item.channel_id, direction, kind, "delivered")
                if item.taken_over_at is not None:
                    latency = max(0.0, self._clock() - item.taken_over_at)
                    self._child(self.delivery_seconds, direction).observe(latency)
            case Retry(retry_after=retry_after):
                self.count_message(item.channel_id, direction, kind, "retried")
                if retry_after is not None:
                    self.rate_limited.labels(item.channel_id, direction).inc()
            case Permanent():
                self.count_message(item.channel_id, direction, kind, "dead_lettered")

    def record_duplicates(self, items: Sequence[Item]) -> None:
        for item in items:
            self.count_message(item.channel_id, direction_of(item), item_kind(item), "duplicate")

    def dropped_counter(self, channel: str) -> Callable[[str], None]:
        """The `AdapterContext.dropped` of one channel: visitor messages its config says not to forward."""

        def dropped(kind: str) -> None:
            self.count_message(channel, "inbound", kind, "dropped_by_config")

        return dropped

    def count_store_error(self, operation: str) -> None:
        self.store_errors.labels(operation).inc()

    def count_reply_ignored(self, channel: str, reason: str) -> None:
        self.replies_ignored.labels(channel, reason).inc()

    def count_file_refused(self, channel: str, reason: str) -> None:
        """One file link answered with an error; `channel` is empty when the link did not say (tampered)."""
        self.files_refused.labels(channel, reason).inc()

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        self._child(self.http_requests, route, method, str(status)).inc()
        self._child(self.http_seconds, route, method).observe(seconds)

    # ------------------------------------------------------------------ scraping

    async def _read_backlog(self) -> Sequence[DeliveryStatus] | None:
        source = self._backlog
        if source is None:
            return None
        try:
            return await asyncio.wait_for(source(), _BACKLOG_TIMEOUT)
        except NotImplementedError:
            self._backlog = None  # this handoff keeps no backlog: stop asking
            return None
        except Exception as exc:
            self.count_store_error("queue_status")
            log.warning("the queue's status could not be read for metrics: %s", exc)
            return None

    async def exposition(self) -> bytes:
        """The registry in the text format, backlog gauges refreshed first. Stale backlog series are removed
        rather than kept at their last value: a gauge that cannot be read must not look healthy."""
        rows = await self._read_backlog()
        # No await from here on: concurrent scrapes cannot interleave between clearing and writing.
        gauges = (self.queue_depth, self.queue_in_flight, self.queue_oldest_age, self.dead_letters)
        for gauge in gauges:
            gauge.clear()
        for row in rows or ():
            labels = (row.channel_id, row.direction)
            self.queue_depth.labels(*labels).set(row.queued)
            self.queue_in_flight.labels(*labels).set(row.in_flight)
            self.queue_oldest_age.labels(*labels).set(row.oldest_age or 0.0)
            self.dead_letters.labels(*labels).set(row.dead_letters)
        return generate_latest(self.registry)


# ---------------------------------------------------------------------- HTTP


class HttpMetrics:
    """ASGI wrapper counting every HTTP request with its route template (never the raw path: a secret-URL
    reply path must not become a label) and its status."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # when the app fails before answering, the server answers 500

        async def send_and_note(message: Any) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 500))
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("path_template") or UNMATCHED_ROUTE
            self.metrics.observe_http(route, str(scope.get("method", "")), status, time.perf_counter() - started)


def install_http_metrics(app: Litestar, metrics: Metrics) -> None:
    """Wrap the app's request handling (inside Litestar, so `path_template` is known once routing ran)."""
    app.asgi_handler = HttpMetrics(app.asgi_handler, metrics)


def _bearer_ok(header: str | None, token: str) -> bool:
    if header is None:
        return False
    scheme, _, given = header.partition(" ")
    # Compared even when the scheme is wrong, so timing says nothing about the token.
    same = hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))
    return same and scheme.lower() == "bearer"


def metrics_routes(metrics: Metrics, token: str | None) -> list[Any]:
    """`GET /metrics`; with `token`, only for `Authorization: Bearer {token}` (else 401 JSON)."""

    @get("/metrics", name="metrics")
    async def scrape(request: Request[Any, Any, Any]) -> Response[bytes]:
        if token is not None and not _bearer_ok(request.headers.get("authorization"), token):
            return Response(
                content=error_body("unauthorized", "the metrics endpoint needs Authorization: Bearer <token>"),
                status_code=401,
                media_type="application/json",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        return Response(content=await metrics.exposition(), media_type=CONTENT_TYPE)

    return [scrape]
