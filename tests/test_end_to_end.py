"""The whole loop over real sockets: adapter → bridge → emulated platform → /send_message → adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from bridge.app import BridgeRuntime, create_app
from bridge.core import stable_id
from bridge.emulator import EmulatorChannel, EmulatorConfig, RunningEmulator, run_emulator
from bridge.messages import Inbound, InboundButton, InboundFile, InboundText, OutboundKeyboard, OutboundText, Sender
from bridge.protocol import Button
from bridge.testing.server import serve
from tests.conftest import free_port
from tests.support import RecordingAdapter, channel, make_config

PLATFORM_TOKEN = "platform-token-0001"
REPLY_TOKEN = "reply-token-0001"


@dataclass
class Loop:
    emulator: RunningEmulator
    runtime: BridgeRuntime
    url: str

    @property
    def adapter(self) -> RecordingAdapter:
        adapter = self.runtime.channels["web"].adapter
        assert isinstance(adapter, RecordingAdapter)
        return adapter

    async def visitor_says(self, inbound: Inbound) -> None:
        await self.adapter.context.submit(inbound)


@pytest.fixture
async def loop(store_url: str) -> AsyncIterator[Loop]:
    port = free_port()
    async with run_emulator(EmulatorConfig()) as emulator:
        config = make_config(
            [channel("web", emulator.webhook_url(PLATFORM_TOKEN), token=REPLY_TOKEN, site="example.com")],
            store_url=store_url,
            port=port,
            public_url=f"http://127.0.0.1:{port}",
        )
        app = create_app(config, adapters={"recording": RecordingAdapter})
        async with serve(app, port=port) as server:
            emulator.set_channel(
                EmulatorChannel(token=PLATFORM_TOKEN, reply_url=f"{server.url}/channels/web", reply_token=REPLY_TOKEN)
            )
            yield Loop(emulator, app.state.bridge, server.url)


ANN = Sender(native_user_id="u-1", name="Ann Lee", login="ann")


async def test_text_round_trip_exact_json(loop: Loop) -> None:
    await loop.visitor_says(
        Inbound(native_chat_id="c-1", native_message_id="m-1", sender=ANN, content=InboundText("hello"))
    )
    received = await loop.emulator.wait_for_received(1)
    chat_id = await loop.runtime.store.chat_id_for("web", "c-1")
    assert received[0].status == 200
    assert received[0].body == {
        "event": "new_message",
        "chat_id": chat_id,
        "visitor": {
            "id": stable_id("visitor", "web", "u-1"),
            "fields": {"name": "Ann Lee", "login": "ann", "site": "example.com"},
        },
        "message": {"kind": "visitor", "id": stable_id("message", "web", "c-1", "m-1"), "text": "hello"},
    }
    sent = await loop.adapter.wait_sent(1)
    assert sent[0].content == OutboundText("You said: hello")
    assert (sent[0].chat_id, sent[0].native_chat_id) == (chat_id, "c-1")
    replies = await loop.emulator.wait_for_replies(1)
    assert replies[0].authorization == f"Token {REPLY_TOKEN}"
    assert replies[0].status == 200


async def test_menu_button_press_and_profile_merge(loop: Loop) -> None:
    await loop.visitor_says(Inbound("c-2", "m-1", ANN, InboundText("menu")))
    sent = await loop.adapter.wait_sent(1)
    keyboard = sent[0].content
    assert isinstance(keyboard, OutboundKeyboard)
    pressed = keyboard.rows[0][0]
    # The phone arrives later (a shared contact); the name stays from before.
    await loop.visitor_says(
        Inbound(
            "c-2",
            "cb-1",
            Sender(native_user_id="u-1", phone="+41 79 000 00 00"),
            InboundButton(button_id=pressed.id, text=pressed.text),
        )
    )
    received = await loop.emulator.wait_for_received(2)
    assert received[1].body["message"] == {
        "kind": "keyboard_response",
        "id": stable_id("message", "web", "c-2", "cb-1"),
        "data": {"button": {"id": pressed.id, "text": pressed.text}},
    }
    assert received[1].body["visitor"]["fields"] == {
        "name": "Ann Lee",
        "login": "ann",
        "phone": "+41 79 000 00 00",
        "site": "example.com",
    }
    sent = await loop.adapter.wait_sent(2)
    assert sent[1].content == OutboundText(f"You pressed: {pressed.text}")


async def test_file_gets_signed_bridge_url(loop: Loop) -> None:
    await loop.visitor_says(
        Inbound(
            "c-3",
            "m-9",
            ANN,
            InboundFile(file_ref="secret-native-ref", name="photo.jpg", content_type="image/jpeg", size=1234),
        )
    )
    received = await loop.emulator.wait_for_received(1)
    data = received[0].body["message"]["data"]
    assert data["state"] == "ready"
    assert (data["name"], data["content_type"], data["size"]) == ("photo.jpg", "image/jpeg", 1234)
    assert data["url"].startswith(f"{loop.url}/files/")
    assert data["id"] == stable_id("file", "web", "secret-native-ref")
    assert received[0].agent_text == f"file:image|{data['id']}|{data['url']}"
    # The recording adapter serves no files: the signed link is valid, the file is not there.
    async with httpx.AsyncClient() as client:
        r = await client.get(data["url"])
        assert (r.status_code, r.json()["error"]) == (404, "not_found")
        r = await client.get(data["url"][:-3] + "AAA")
        assert (r.status_code, r.json()["error"]) == (403, "forbidden")


async def test_same_chat_same_id_and_ids_stable_on_redelivery(loop: Loop) -> None:
    inbound = Inbound("c-4", "m-1", ANN, InboundText("one"))
    await loop.visitor_says(inbound)
    await loop.visitor_says(Inbound("c-4", "m-2", ANN, InboundText("two")))
    await loop.visitor_says(Inbound("c-5", "m-1", ANN, InboundText("other chat")))
    # Two chats are two lanes: "other chat" may well arrive before "two".
    received = {r.body["message"]["text"]: r.body for r in await loop.emulator.wait_for_received(3)}
    one, two, other = received["one"], received["two"], received["other chat"]
    assert one["chat_id"] == two["chat_id"] != other["chat_id"]
    assert one["message"]["id"] != two["message"]["id"]
    assert one["visitor"]["id"] == other["visitor"]["id"]


async def test_text_plus_buttons_arrive_in_order(loop: Loop) -> None:
    await loop.visitor_says(Inbound("c-6", "m-1", ANN, InboundText("text+buttons")))
    sent = await loop.adapter.wait_sent(2)
    assert isinstance(sent[0].content, OutboundText)
    assert isinstance(sent[1].content, OutboundKeyboard)
    assert all(isinstance(b, Button) for row in sent[1].content.rows for b in row)
