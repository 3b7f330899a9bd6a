"""Metrics move as messages flow, scraped from a real server and read with prometheus-client's parser."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Request, post

from bridge import WebhookRequest, webhook_route
from bridge.app import create_app
from bridge.direct import DirectHandoff
from bridge.metrics import Metrics
from bridge.testing.server import serve
from bridge.webhook import WebhookFastPath
from tests.conftest import free_port
from tests.ops.support import (
    METRICS_TOKEN,
    REPLY_TOKEN,
    URL_SECRET,
    OpsBridge,
    Samples,
    messages,
    ops_bridge,
    parse_samples,
    value,
)
from tests.support import RecordingAdapter, channel, make_config


def both_delivered(samples: Samples, count: int) -> bool:
    return messages(samples, "inbound", "delivered") == messages(samples, "outbound", "delivered") == count


@pytest.fixture
async def ops(store_url: str) -> AsyncIterator[OpsBridge]:
    async with ops_bridge(store_url) as running:
        yield running


async def test_outcomes_latency_backlog_as_messages_flow(ops: OpsBridge) -> None:
    # Delivered both ways; the messenger's first send fails and is retried.
    await ops.visitor_says("c-1", "m-1", "hello")
    # (The agent's reply may be delivered before the inbound worker has counted its own delivery.)
    s = await ops.until(lambda s: both_delivered(s, 1))
    assert messages(s, "outbound", "retried") == 1
    assert messages(s, "inbound", "retried") == 0
    assert value(s, "omnichannel_bridge_delivery_seconds_count", direction="inbound") == 1
    assert value(s, "omnichannel_bridge_delivery_seconds_count", direction="outbound") == 1
    assert value(s, "omnichannel_bridge_delivery_seconds_sum", direction="outbound") > 0

    # The platform answers 503 twice: two retries, then delivered.
    ops.emulator.add_fault(status=503, count=2)
    await ops.visitor_says("c-2", "m-1", "again")
    s = await ops.until(lambda s: both_delivered(s, 2))
    assert messages(s, "inbound", "retried") == 2
    assert value(s, "omnichannel_bridge_rate_limited_total", channel="web", direction="inbound") == 0

    # A 429 with Retry-After is a rate-limit wait.
    ops.emulator.add_fault(status=429, count=1, headers={"Retry-After": "0"})
    await ops.visitor_says("c-2", "m-2", "slowly")
    s = await ops.until(lambda s: both_delivered(s, 3))
    assert messages(s, "inbound", "retried") == 3
    assert value(s, "omnichannel_bridge_rate_limited_total", channel="web", direction="inbound") == 1

    # A permanent refusal is dead-lettered, and shows as a dead letter in the backlog gauges.
    ops.emulator.add_fault(status=400, match_text="poison")
    await ops.visitor_says("c-3", "m-1", "poison pill")
    # (The outcome is counted as the deliverer returns it; the queue records the dead letter right after.)
    s = await ops.until(
        lambda s: value(s, "omnichannel_bridge_dead_letters", channel="web", direction="inbound") == 1
    )
    assert messages(s, "inbound", "dead_lettered") == 1
    assert value(s, "omnichannel_bridge_queue_depth", channel="web", direction="inbound") == 0

    # The same native message again is a duplicate, counted when it is handed over.
    await ops.visitor_says("c-1", "m-1", "hello")
    s = await ops.scrape()
    assert messages(s, "inbound", "duplicate") == 1
    assert messages(s, "inbound", "delivered") == 3

    # A message the platform keeps refusing with a long Retry-After waits in the queue.
    ops.emulator.add_fault(status=503, match_text="stuck", headers={"Retry-After": "60"})
    await ops.visitor_says("c-4", "m-1", "stuck here")
    s = await ops.until(lambda s: value(s, "omnichannel_bridge_queue_depth", channel="web", direction="inbound") == 1)
    assert value(s, "omnichannel_bridge_rate_limited_total", channel="web", direction="inbound") == 2
    assert value(s, "omnichannel_bridge_queue_oldest_age_seconds", channel="web", direction="inbound") > 0

    # What the adapter drops on the config's word.
    ops.adapter.context.dropped("text")
    s = await ops.scrape()
    assert messages(s, "inbound", "dropped_by_config") == 1
    assert value(s, "omnichannel_bridge_store_errors_total", operation="queue_status") == 0


async def test_replies_ignored_and_http_requests_by_route(ops: OpsBridge) -> None:
    await ops.visitor_says("c-1", "m-1", "hello")
    s = await ops.until(lambda s: messages(s, "outbound", "delivered") == 1)
    chat_id = await ops.runtime.store.chat_id_for("web", "c-1")
    header = {"Authorization": f"Token {REPLY_TOKEN}"}
    async with httpx.AsyncClient(base_url=ops.url) as client:
        r = await client.post("/channels/web/close_chat", json={"chat_id": chat_id}, headers=header)
        assert r.status_code == 200
        r = await client.post(
            f"/channels/web/{URL_SECRET}/send_message", json={"chat_id": chat_id, "message": {"kind": "hologram"}}
        )
        assert r.status_code == 200
        assert (await client.get("/no/such/page")).status_code == 404
        assert (await client.post("/channels/web/send_message", json={}, headers={})).status_code == 401
    s = await ops.scrape()
    assert value(s, "omnichannel_bridge_replies_ignored_total", channel="web", reason="other_method") == 1
    assert value(s, "omnichannel_bridge_replies_ignored_total", channel="web", reason="unknown_kind") == 1
    assert value(s, "omnichannel_bridge_http_requests_total", route="unmatched", method="GET", status="404") == 1

    requests = {
        dict(labels)["route"]: dict(labels)
        for (name, labels), _ in s.items()
        if name == "omnichannel_bridge_http_requests_total"
    }
    reply_route = next(route for route in requests if route.startswith("/channels/{channel_id"))
    # The agent's replies (secret URL) and the calls above share the one route template.
    assert value(s, "omnichannel_bridge_http_requests_total", route=reply_route, method="POST", status="200") >= 3
    assert value(s, "omnichannel_bridge_http_requests_total", route=reply_route, method="POST", status="401") == 1
    assert value(s, "omnichannel_bridge_http_request_duration_seconds_count", route=reply_route, method="POST") >= 4
    assert not any(URL_SECRET in route for route in requests)


async def test_metrics_token(ops: OpsBridge) -> None:
    async with httpx.AsyncClient(base_url=ops.url) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Token {METRICS_TOKEN}"}):
            r = await client.get("/metrics", headers=headers)
            assert r.status_code == 401, headers
            assert r.json()["error"] == "unauthorized"
            assert r.headers["www-authenticate"].startswith("Bearer")
        r = await client.get("/metrics", headers={"Authorization": f"bearer {METRICS_TOKEN}"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert value(parse_samples(r.text), "omnichannel_bridge_info", version="0.1.0") == 1


async def test_each_app_has_its_own_registry_and_no_token_means_open(tmp_path: Path) -> None:
    async def running_app(name: str) -> tuple[object, int]:
        port = free_port()
        config = make_config(
            [channel("web", "http://127.0.0.1:9/connector/omnichannel/omnichannel_message/t/bot_api_webhook")],
            store_url=f"sqlite:///{tmp_path}/{name}.db",
            port=port,
        )
        return create_app(config, adapters={"recording": RecordingAdapter}, handoff=DirectHandoff()), port

    first, first_port = await running_app("first")
    second, second_port = await running_app("second")
    async with serve(first, port=first_port) as one, serve(second, port=second_port) as two:
        async with httpx.AsyncClient() as client:
            for _ in range(3):
                assert (await client.get(f"{one.url}/healthz")).status_code == 200
            a = parse_samples((await client.get(f"{one.url}/metrics")).text)
            b = parse_samples((await client.get(f"{two.url}/metrics")).text)
    healthz = {"route": "/healthz", "method": "GET", "status": "200"}
    assert value(a, "omnichannel_bridge_http_requests_total", **healthz) == 3
    assert value(b, "omnichannel_bridge_http_requests_total", **healthz) == 0
    # A handoff without a backlog: no queue gauges, and no error for asking.
    assert not any(name.startswith("omnichannel_bridge_queue_") for name, _ in b)
    assert value(b, "omnichannel_bridge_store_errors_total", operation="queue_status") == 0


class HookedAdapter(RecordingAdapter):
    """A webhook route (answered by the fast path) beside a Litestar route of the same adapter."""

    def route_handlers(self) -> Sequence[Any]:
        async def hook(request: WebhookRequest) -> tuple[int, bytes]:
            return 202, b'{"len":%d}' % len(request.body)

        @post("/plain", status_code=202)
        async def plain(request: Request[Any, Any, Any]) -> dict[str, int]:
            return {"len": len(await request.body())}

        return (webhook_route("hook", hook), plain)


async def test_webhook_routes_are_counted_by_their_route_whichever_way_they_are_served(tmp_path: Path) -> None:
    port = free_port()
    config = make_config(
        [channel("web", "http://127.0.0.1:9/connector/omnichannel/omnichannel_message/t/bot_api_webhook")],
        store_url=f"sqlite:///{tmp_path}/hooked.db",
        port=port,
    )
    app = create_app(config, adapters={"recording": HookedAdapter}, handoff=DirectHandoff())
    assert isinstance(app.asgi_handler, WebhookFastPath)
    assert set(app.asgi_handler.routes) == {"/channels/web/hook"}
    async with serve(app, port=port) as server, httpx.AsyncClient(base_url=server.url) as client:
        for path in ("/channels/web/hook", "/channels/web/plain"):
            r = await client.post(path, content=b"1234")
            assert (r.status_code, r.json()) == (202, {"len": 4})
        assert (await client.get("/channels/web/hook")).status_code == 405
        s = parse_samples((await client.get("/metrics")).text)
    assert value(s, "omnichannel_bridge_http_requests_total", route="/channels/web/hook", method="POST",
                 status="202") == 1
    assert value(s, "omnichannel_bridge_http_requests_total", route="/channels/web/hook", method="GET",
                 status="405") == 1
    assert value(s, "omnichannel_bridge_http_requests_total", route="/channels/web/plain",
                 method="POST", status="202") == 1


def test_every_metric_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    names = {
        f"{metric.name}_total" if metric.type == "counter" else metric.name for metric in Metrics().registry.collect()
    }
    assert len(names) >= 12
    missing = [name for name in sorted(names) if name not in readme]
    assert not missing, f"metrics not documented in README.md: {missing}"
