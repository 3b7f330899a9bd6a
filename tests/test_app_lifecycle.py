"""The app's lifespan: what starts, in which order, and what is undone when a start fails."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from bridge.app import BridgeRuntime, create_app
from bridge.testing.server import ServerStartupError, serve
from tests.support import RecordingAdapter, channel, make_config

WEBHOOK = "http://127.0.0.1:9/connector/omnichannel/omnichannel_message/t/bot_api_webhook"


def _adapter(runtime: BridgeRuntime, channel_id: str) -> RecordingAdapter:
    adapter = runtime.channels[channel_id].adapter
    assert isinstance(adapter, RecordingAdapter)
    return adapter


async def test_adapters_start_and_stop_with_the_app(tmp_path: Path) -> None:
    config = make_config(
        [channel("a", WEBHOOK, token="t" * 20), channel("b", WEBHOOK, token="u" * 20)],
        store_url=f"sqlite:///{tmp_path}/deep/folder/bridge.db",
    )
    app = create_app(config, adapters={"recording": RecordingAdapter})
    runtime: BridgeRuntime = app.state.bridge
    async with serve(app) as server:
        assert _adapter(runtime, "a").events == ["start"] and _adapter(runtime, "b").events == ["start"]
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{server.url}/readyz")).json()["status"] == "ok"
    assert _adapter(runtime, "a").events == ["start", "stop"]
    assert _adapter(runtime, "b").events == ["start", "stop"]
    # The SQLite file and its folders were created on first start.
    assert (tmp_path / "deep" / "folder" / "bridge.db").is_file()


async def test_a_failed_adapter_start_undoes_what_started(tmp_path: Path) -> None:
    config = make_config(
        [
            channel("good", WEBHOOK, token="t" * 20),
            channel("bad", WEBHOOK, token="u" * 20, adapter={"type": "recording", "fail_start": True}),
        ],
        store_url=f"sqlite:///{tmp_path}/bridge.db",
    )
    app = create_app(config, adapters={"recording": RecordingAdapter})
    runtime: BridgeRuntime = app.state.bridge
    with pytest.raises(ServerStartupError):
        async with serve(app):
            pass  # pragma: no cover - startup must fail
    # The failing adapter cleaned up after itself; the one started before it was stopped again.
    assert _adapter(runtime, "bad").events == ["start", "stop"]
    assert _adapter(runtime, "good").events == ["start", "stop"]
    assert not _adapter(runtime, "good").started
