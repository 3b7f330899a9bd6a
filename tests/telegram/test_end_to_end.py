"""The whole loop over real sockets: fake Telegram → bridge → platform emulator → /send_message → fake Telegram."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from adapters.telegram import TelegramAdapter
from bridge.app import BridgeRuntime, create_app
from bridge.core import stable_id
from bridge.emulator import EmulatorChannel, EmulatorConfig, RunningEmulator, run_emulator
from bridge.testing.server import serve
from bridge.testing.telegram import FakeTelegram, run_fake_telegram
from tests.conftest import free_port
from tests.ops.support import MESSAGES, parse_samples, value
from tests.support import channel, make_config

PLATFORM_TOKEN = "platform-token-tg"
REPLY_TOKEN = "reply-token-tg"
ANN = {"id": 42, "is_bot": False, "first_name": "Ann", "last_name": "Lee", "username": "ann"}


@dataclass
class Loop:
    tg: FakeTelegram
    emulator: RunningEmulator
    runtime: BridgeRuntime
    url: str


@pytest.fixture
async def loop(tmp_path: Path) -> AsyncIterator[Loop]:
    port = free_port()
    async with run_fake_telegram() as tg, run_emulator(EmulatorConfig()) as emulator:
        adapter_block = {"type": "telegram", **tg.adapter_settings()}
        config = make_config(
            [channel("tg", emulator.webhook_url(PLATFORM_TOKEN), token=REPLY_TOKEN, site="example.com",
                     adapter=adapter_block)],
            store_url=f"sqlite:///{tmp_path}/bridge.db",
            port=port,
            public_url=f"http://127.0.0.1:{port}",  # not https: the adapter polls
        )
        app = create_app(config, adapters={"telegram": TelegramAdapter})
        async with serve(app, port=port) as server:
            emulator.set_channel(
                EmulatorChannel(token=PLATFORM_TOKEN, reply_url=f"{server.url}/channels/tg", reply_token=REPLY_TOKEN)
            )
            yield Loop(tg, emulator, app.state.bridge, server.url)


async def test_text_round_trip_exact_json_at_each_hop(loop: Loop) -> None:
    tg = loop.tg
    tg.push_update(tg.message_update(42, text="hello", message_id=7, from_user=ANN))
    received = await loop.emulator.wait_for_received(1)
    chat_id = await loop.runtime.store.chat_id_for("tg", "42")
    assert received[0].body == {
        "event": "new_message",
        "chat_id": chat_id,
        "visitor": {
            "id": stable_id("visitor", "tg", "42"),
            "fields": {"name": "Ann Lee", "login": "ann", "site": "example.com"},
        },
        "message": {"kind": "visitor", "id": stable_id("message", "tg", "42", "42:7"), "text": "hello"},
    }
    replies = await loop.emulator.wait_for_replies(1)
    assert replies[0].path == "/channels/tg/send_message"
    assert replies[0].body == {"chat_id": chat_id, "message": {"kind": "operator", "text": "You said: hello"}}
    assert replies[0].status == 200
    (call,) = await tg.wait_for("sendMessage")
    assert call.params == {"chat_id": 42, "text": "You said: hello"}


async def test_keyboard_and_button_press(loop: Loop) -> None:
    tg = loop.tg
    tg.push_update(tg.message_update(42, text="menu", from_user=ANN))
    await tg.wait_for("sendMessage")
    (menu,) = tg.sent_to(42)
    assert menu["text"] == "What would you like to do?"
    assert menu["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Yes", "callback_data": "yes"}, {"text": "No", "callback_data": "no"}],
            [{"text": "Talk to a person", "callback_data": "human"}],
        ]
    }
    tg.push_update(tg.callback_update(42, "yes", message=menu, from_user=ANN, query_id="press-1"))
    received = await loop.emulator.wait_for_received(2)
    assert received[1].body["message"] == {
        "kind": "keyboard_response",
        "id": stable_id("message", "tg", "42", "cb:press-1"),
        "data": {"button": {"id": "yes", "text": "Yes"}},
    }
    assert (await tg.wait_for("answerCallbackQuery"))[0].params == {"callback_query_id": "press-1"}
    calls = await tg.wait_for("sendMessage", 2)
    assert calls[1].params == {"chat_id": 42, "text": "You pressed: Yes"}


async def test_keyboard_without_text_is_attached_to_the_text_before(loop: Loop) -> None:
    tg = loop.tg
    tg.push_update(tg.message_update(42, text="text+buttons", from_user=ANN))
    (edit,) = await tg.wait_for("editMessageReplyMarkup")
    (message,) = tg.sent_to(42)
    assert message["text"] == "Here are your options:"
    assert edit.params == {
        "chat_id": 42,
        "message_id": message["message_id"],
        "reply_markup": {"inline_keyboard": [[{"text": "Yes", "callback_data": "yes"},
                                              {"text": "No", "callback_data": "no"}]]},
    }


async def test_visitor_photo_reaches_the_platform_through_the_signed_proxy(loop: Loop) -> None:
    tg = loop.tg
    content = b"\x89PNG fake image bytes" * 1000
    tg.add_file("photo-big", content, file_path="photos/file_9.jpg")
    sizes = [{"file_id": "photo-small", "file_unique_id": "s", "width": 90, "height": 90, "file_size": 10},
             {"file_id": "photo-big", "file_unique_id": "b", "width": 900, "height": 900,
              "file_size": len(content)}]
    tg.push_update(tg.message_update(42, message_id=8, photo=sizes, caption="my cat", from_user=ANN))
    received = await loop.emulator.wait_for_received(2)
    file_message = received[0].body["message"]
    data = file_message["data"]
    assert file_message["kind"] == "file_visitor"
    assert file_message["id"] == stable_id("message", "tg", "42", "42:8")
    assert (data["state"], data["name"], data["content_type"], data["size"]) == (
        "ready", "photo_8.jpg", "image/jpeg", len(content))
    assert data["url"].startswith(f"{loop.url}/files/")
    assert tg.token not in data["url"]
    assert received[1].body["message"] == {
        "kind": "visitor", "id": stable_id("message", "tg", "42", "42:8:caption"), "text": "my cat"}
    async with httpx.AsyncClient() as client:
        response = await client.get(data["url"])
    assert response.status_code == 200
    assert response.content == content
    assert tg.calls_to("getFile")[-1].params == {"file_id": "photo-big"}


async def test_agent_file_is_sent_by_url(loop: Loop) -> None:
    tg = loop.tg
    tg.push_update(tg.message_update(42, text="file", from_user=ANN))
    replies = await loop.emulator.wait_for_replies(1)
    reply = replies[0].body["message"]
    assert reply["kind"] == "file_operator"
    (call,) = await tg.wait_for("sendDocument")
    assert call.params == {"chat_id": 42, "document": reply["data"]["url"]}


async def test_ignored_group_message_is_counted_as_dropped_by_config(loop: Loop) -> None:
    """`groups: ignore` (the default): a group's message never reaches the platform, and /metrics says so."""
    tg = loop.tg
    tg.push_update(tg.message_update(-100200, text="hi all", from_user=ANN))
    tg.push_update(tg.message_update(42, text="private", from_user=ANN))
    # Updates are handled in order: once the private message is through, the group's was handled before it.
    received = await loop.emulator.wait_for_received(1)
    assert [r.body["message"]["text"] for r in received] == ["private"]
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{loop.url}/metrics")
    assert response.status_code == 200
    samples = parse_samples(response.text)
    counted = {"channel": "tg", "direction": "inbound", "kind": "text"}
    assert value(samples, MESSAGES, **counted, outcome="dropped_by_config") == 1
    assert value(samples, MESSAGES, **counted, outcome="delivered") == 1
