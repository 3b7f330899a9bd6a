"""`omnichannel-bridge run` sets the garbage collector for serving once the bridge has started."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from bridge.commands.run import GC_YOUNG_THRESHOLD, tune_gc_after_startup


@pytest.fixture
def unfrozen() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


async def test_objects_made_by_startup_are_frozen_once_it_completes(unfrozen: None) -> None:
    seen: dict[str, int] = {}
    kept: list[object] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        await receive()
        kept.extend([{"made": "by startup"} for _ in range(1000)])  # like a store's caches or connections
        seen["before"] = gc.get_freeze_count()
        await send({"type": "lifespan.startup.complete"})
        seen["after"] = gc.get_freeze_count()

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await tune_gc_after_startup(app)({"type": "lifespan"}, receive, send)
    assert sent == [{"type": "lifespan.startup.complete"}]
    assert seen["before"] == 0
    assert seen["after"] >= len(kept)
    assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD


async def test_requests_pass_through_untouched(unfrozen: None) -> None:
    calls: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        calls.append(scope["type"])
        await send({"type": "http.response.start", "status": 204, "headers": []})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    await tune_gc_after_startup(app)({"type": "http"}, receive, send)
    assert calls == ["http"] and sent[0]["status"] == 204
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold()[0] != GC_YOUNG_THRESHOLD
