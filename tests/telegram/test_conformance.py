"""The bridge's adapter conformance suite, run against the Telegram adapter and the fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.telegram import TelegramAdapter
from bridge.testing import AdapterConformance, FailureKind, MessengerRecord
from bridge.testing.telegram import FakeTelegram, run_fake_telegram

# PTB warns about its own RetryAfter type when it builds one from a 429; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


class TestTelegramConformance(AdapterConformance):
    adapter_class = TelegramAdapter
    fake: FakeTelegram

    @pytest.fixture
    async def fake_messenger(self) -> AsyncIterator[FakeTelegram]:
        self.chats: dict[str, int] = {}
        async with run_fake_telegram() as fake:
            yield fake

    def adapter_config(self) -> dict[str, Any]:
        return self.fake.adapter_settings()

    def chat_id(self, chat: str) -> int:
        return self.chats.setdefault(chat, 1000 + len(self.chats))

    async def send_visitor_text(self, chat: str, text: str) -> None:
        self.fake.push_update(self.fake.message_update(self.chat_id(chat), text=text))

    async def send_visitor_file(self, chat: str, name: str, content_type: str, content: bytes) -> None:
        file_id = f"file-{chat}-{name}"
        self.fake.add_file(file_id, content, file_path=f"documents/{chat}/{name}")
        document = {"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_name": name,
                    "mime_type": content_type, "file_size": len(content)}
        self.fake.push_update(self.fake.message_update(self.chat_id(chat), document=document))

    async def press_button(self, chat: str, message: MessengerRecord, label: str) -> None:
        sent: dict[str, Any] = message.native
        data = next(b["callback_data"] for row in sent["reply_markup"]["inline_keyboard"] for b in row
                    if b["text"] == label)
        self.fake.push_update(self.fake.callback_update(self.chat_id(chat), data, message=sent))

    async def received_by_messenger(self) -> list[MessengerRecord]:
        chats = {chat_id: chat for chat, chat_id in self.chats.items()}
        records = []
        for sent in self.fake.sent_messages():
            message, params = sent.message, sent.params
            chat = chats.get(message["chat"]["id"], str(message["chat"]["id"]))
            markup = message.get("reply_markup")
            buttons = [[b["text"] for b in row] for row in markup["inline_keyboard"]] if markup else None
            url = next((params[k] for k in ("photo", "video", "audio", "document") if k in params), None)
            records.append(MessengerRecord(chat=chat, text=message.get("text"), buttons=buttons, file_url=url,
                                           native=message))
        return records

    async def make_messenger_fail(self, kind: FailureKind | None, retry_after: float | None = None) -> None:
        self.fake.clear_failures()
        if kind == "permanent":
            self.fake.fail("sendMessage", error_code=403, times=None)
        elif kind == "retryable" and retry_after is not None:
            self.fake.fail("sendMessage", error_code=429, retry_after=int(retry_after), times=None)
        elif kind == "retryable":
            self.fake.fail("sendMessage", error_code=502, times=None)
