"""The HTTP adapter passes the adapter conformance suite, with a company system faked on loopback."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.http import HttpAdapter
from bridge.testing import AdapterConformance, FailureKind, MessengerRecord
from tests.http_adapter.company import Callback, FakeCompany

INBOUND_SECRET = "desk-inbound-secret-0123456789"
CALLBACK_SECRET = "desk-callback-secret-0123456789"


def record(callback: Callback) -> MessengerRecord:
    body = callback.body
    file = body.get("file") or {}
    buttons = body.get("buttons")
    return MessengerRecord(
        chat=body["chat_id"],
        text=body.get("text"),
        buttons=[[button["text"] for button in row] for row in buttons] if buttons else None,
        file_url=file.get("url"),
        file_name=file.get("name"),
        native=body,
    )


class TestHttpAdapterConformance(AdapterConformance):
    adapter_class = HttpAdapter
    fake: FakeCompany

    @pytest.fixture
    async def fake_messenger(self) -> AsyncIterator[FakeCompany]:
        async with FakeCompany.running(CALLBACK_SECRET) as company:
            yield company

    def adapter_config(self) -> dict[str, Any]:
        # A limit, so that the suite's long text is split and the parts' order checked.
        return {"auth": "hmac", "secret": INBOUND_SECRET, "callback_url": self.fake.callback_url,
                "callback_secret": CALLBACK_SECRET, "timeout": 5.0, "max_text_length": 700}

    async def _post(self, chat: str, **content: Any) -> None:
        message = {"chat_id": chat, "message_id": self.fake.new_message_id(),
                   "user": {"id": f"user-{chat}", "name": "Ann Lee"}, **content}
        inbound_url = f"{self.bridge_url}/channels/{self.channel_id}/inbound"
        status, answer = await self.fake.post(inbound_url, message, secret=INBOUND_SECRET)
        assert status == 200, f"the bridge refused the company's message: {status} {answer}"

    async def send_visitor_text(self, chat: str, text: str) -> None:
        await self._post(chat, text=text)

    async def send_visitor_file(self, chat: str, name: str, content_type: str, content: bytes) -> None:
        url = self.fake.add_file(f"{uuid.uuid4().hex}-{name}", content, content_type)
        await self._post(chat, file={"url": url, "name": name, "content_type": content_type, "size": len(content)})

    async def press_button(self, chat: str, message: MessengerRecord, label: str) -> None:
        button = next(b for row in message.native["buttons"] for b in row if b["text"] == label)
        await self._post(chat, button=button)

    async def received_by_messenger(self) -> list[MessengerRecord]:
        return [record(callback) for callback in self.fake.callbacks]

    async def make_messenger_fail(self, kind: FailureKind | None, retry_after: float | None = None) -> None:
        self.fake.failure = None if kind is None else (kind, retry_after)

