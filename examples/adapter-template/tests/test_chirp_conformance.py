"""The Chirp adapter against the bridge's conformance suite, plus a test of its own.

Copy this file for your adapter: set `adapter_class`, start your fake in `fake_messenger`, and translate the
suite's few driver calls into your fake's terms. Run it with `python -m pytest`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from omnichannel_example_adapter import ChirpAdapter
from omnichannel_example_adapter.fake import FakeChirp

from bridge.testing import AdapterConformance, FailureKind, MessengerRecord

API_TOKEN = "chirp-api-token-0123456789"
WEBHOOK_SECRET = "chirp-webhook-secret-0123456789"


def _record(sent: dict[str, Any]) -> MessengerRecord:
    """One message as Chirp got it, in the suite's terms."""
    buttons = sent.get("buttons")
    return MessengerRecord(
        chat=sent["conversation_id"],
        text=sent.get("text"),
        buttons=[[button["label"] for button in row] for row in buttons] if buttons else None,
        file_url=sent.get("attachment_url"),
        file_name=sent.get("attachment_name"),
        native=sent,
    )


class TestChirpConformance(AdapterConformance):
    adapter_class = ChirpAdapter
    fake: FakeChirp

    @pytest.fixture
    async def fake_messenger(self) -> AsyncIterator[FakeChirp]:
        async with FakeChirp.running(api_token=API_TOKEN) as chirp:
            yield chirp

    def adapter_config(self) -> dict[str, Any]:
        return {"api_url": self.fake.url, "api_token": API_TOKEN, "webhook_secret": WEBHOOK_SECRET, "timeout": 5.0}

    async def send_visitor_text(self, chat: str, text: str) -> None:
        await self.fake.visitor_event(chat, text=text)

    async def send_visitor_file(self, chat: str, name: str, content_type: str, content: bytes) -> None:
        file_id = self.fake.add_file(content, content_type)
        attachment = {"file_id": file_id, "filename": name, "mime_type": content_type, "size": len(content)}
        await self.fake.visitor_event(chat, attachment=attachment)

    async def press_button(self, chat: str, message: MessengerRecord, label: str) -> None:
        button = next(b for row in message.native["buttons"] for b in row if b["label"] == label)
        await self.fake.visitor_event(chat, button={"payload": button["payload"], "label": label})

    async def received_by_messenger(self) -> list[MessengerRecord]:
        return [_record(sent) for sent in self.fake.sent]

    async def make_messenger_fail(self, kind: FailureKind | None, retry_after: float | None = None) -> None:
        self.fake.failure = None if kind is None else (kind, retry_after)


async def test_webhook_refuses_a_wrong_secret(tmp_path: Any) -> None:
    """An adapter's own behaviour beyond the contract gets its own tests, with the same parts."""
    from bridge.testing.conformance_loop import free_port, run_bridge_loop

    async with FakeChirp.running(api_token=API_TOKEN) as chirp:
        block = {"api_url": chirp.url, "api_token": API_TOKEN, "webhook_secret": WEBHOOK_SECRET}
        async with run_bridge_loop(ChirpAdapter, block, channel_id="chirp", port=free_port(), state_dir=tmp_path):
            assert chirp.webhook is not None
            async with httpx.AsyncClient(trust_env=False) as client:
                answer = await client.post(chirp.webhook[0], json={}, headers={"X-Chirp-Secret": "wrong"})
            assert (answer.status_code, answer.json()["error"]) == (401, "unauthorized")
