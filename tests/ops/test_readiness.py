"""`/readyz` names each dependency with a status and a detail; `/healthz` answers whatever they say."""

from __future__ import annotations

from pathlib import Path

import httpx

from bridge.app import create_app
from bridge.testing.server import serve
from tests.conftest import free_port
from tests.ops.support import PLATFORM_TOKEN, ops_bridge
from tests.support import RecordingAdapter, channel, make_config


async def test_ready_reports_store_queue_and_adapters(tmp_path: Path) -> None:
    async with ops_bridge(f"sqlite:///{tmp_path}/bridge.db") as ops, httpx.AsyncClient(base_url=ops.url) as client:
        r = await client.get("/readyz")
        assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert r.status_code == 200
    report = r.json()
    assert report["status"] == "ok"
    assert set(report["checks"]) == {"store", "queue", "adapter:web"}, "the platform is not checked by default"
    assert report["checks"]["store"] == {"status": "ok", "detail": "reachable"}
    assert report["checks"]["adapter:web"] == {"status": "ok", "detail": "started"}
    assert report["checks"]["queue"]["status"] == "ok"
    assert report["checks"]["queue"]["detail"].startswith("reachable: 0 queued, 0 in flight, 0 dead letters")


async def test_platform_check_when_enabled(tmp_path: Path) -> None:
    async with ops_bridge(f"sqlite:///{tmp_path}/bridge.db", ready_checks_platform=True) as ops:
        async with httpx.AsyncClient() as client:
            r = await client.get(f"{ops.url}/readyz")
    assert r.status_code == 200
    platform = r.json()["checks"]["platform:web"]
    assert platform["status"] == "ok"
    assert platform["detail"].startswith("reachable (HTTP 4")


async def test_unreachable_platform_makes_it_unready_but_alive(tmp_path: Path) -> None:
    port, closed = free_port(), free_port()
    webhook = f"http://127.0.0.1:{closed}/connector/omnichannel/omnichannel_message/{PLATFORM_TOKEN}/bot_api_webhook"
    config = make_config([channel("web", webhook)], store_url=f"sqlite:///{tmp_path}/bridge.db", port=port)
    config.server.ready_checks_platform = True
    # The default handoff (the durable queue in the store's file) is the one checked.
    app = create_app(config, adapters={"recording": RecordingAdapter})
    async with serve(app, port=port) as server, httpx.AsyncClient(base_url=server.url) as client:
        r = await client.get("/readyz")
        healthz = await client.get("/healthz")
    assert healthz.status_code == 200
    assert r.status_code == 503
    report = r.json()
    assert report["status"] == "error"
    assert report["checks"]["platform:web"]["status"] == "error"
    assert report["checks"]["platform:web"]["detail"]
    assert {name: check["status"] for name, check in report["checks"].items() if name != "platform:web"} == {
        "store": "ok", "queue": "ok", "adapter:web": "ok"
    }
    assert PLATFORM_TOKEN not in r.text
