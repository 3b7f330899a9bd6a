"""A full queue pushes back at both doors of a running bridge, and nothing taken over is lost."""

from __future__ import annotations

from pathlib import Path

import httpx
import msgspec
import pytest

from bridge import Inbound, InboundText, NotTakenOver, Sender
from bridge.app import BridgeRuntime, create_app
from bridge.config import DeliveryConfig
from bridge.testing.server import serve
from tests.support import RecordingAdapter, channel, make_config

TOKEN = "backpressure-token-0123456789"
# Nothing listens on port 9: every inbound delivery is retried, so the inbound queue only grows.
UNREACHABLE = "http://127.0.0.1:9/connector/omnichannel/omnichannel_message/x/bot_api_webhook"


async def test_both_directions_push_back_at_max_backlog(tmp_path: Path) -> None:
    config = make_config(
        [channel("web", UNREACHABLE, token=TOKEN, adapter={"type": "recording", "fail": "retryable"})],
        store_url=f"sqlite:///{tmp_path}/bridge.db",
    )
    config = msgspec.structs.replace(config, delivery=DeliveryConfig(max_backlog=2, retry_schedule=[30.0], workers=1))
    app = create_app(config, adapters={"recording": RecordingAdapter})
    runtime: BridgeRuntime = app.state.bridge
    async with serve(app) as server, httpx.AsyncClient() as client:
        adapter = runtime.channels["web"].adapter
        ann = Sender(native_user_id="u")
        for n in range(2):
            await adapter.context.submit(Inbound("c", f"m{n}", ann, InboundText(f"hello {n}")))
        with pytest.raises(NotTakenOver, match="max_backlog"):
            await adapter.context.submit(Inbound("c", "m2", ann, InboundText("one too many")))

        chat_id = await runtime.store.chat_id_for("web", "c")
        url = f"{server.url}/channels/web/send_message"
        auth = {"Authorization": f"Token {TOKEN}"}
        answers = [
            (
                await client.post(
                    url, json={"chat_id": chat_id, "message": {"kind": "operator", "text": f"r{n}"}}, headers=auth
                )
            ).status_code
            for n in range(3)
        ]
        assert answers == [200, 200, 503]

        status = {(row.channel_id, row.direction): row.queued + row.in_flight for row in await runtime.handoff.status()}
        assert status == {("web", "inbound"): 2, ("web", "outbound"): 2}
