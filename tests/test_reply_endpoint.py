"""The reply endpoint's whole matrix, against a running bridge on loopback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bridge.app import BridgeRuntime, create_app
from bridge.messages import OutboundFile, OutboundKeyboard, OutboundText
from bridge.protocol import Button
from bridge.testing.server import serve
from tests.support import RecordingAdapter, channel, make_config

TOKEN = "ac650a3c369a4b9599ad52ab71943712"
SECRET = "s3cret-url-part-0123456789"
UNREACHABLE = "http://127.0.0.1:9/connector/omnichannel/omnichannel_message/x/bot_api_webhook"


@dataclass
class Bridge:
    url: str
    runtime: BridgeRuntime
    chat_hdr: int
    chat_sec: int

    def adapter(self, channel_id: str) -> RecordingAdapter:
        adapter = self.runtime.channels[channel_id].adapter
        assert isinstance(adapter, RecordingAdapter)
        return adapter


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[Bridge]:
    config = make_config(
        [
            channel("hdr", UNREACHABLE, token=TOKEN),
            channel("sec", UNREACHABLE, url_secret=SECRET),
            channel("small", UNREACHABLE, token=TOKEN, adapter={"type": "recording", "max_text_length": 10}),
        ],
        store_url=f"sqlite:///{tmp_path}/bridge.db",
        max_body_bytes=4096,
    )
    app = create_app(config, adapters={"recording": RecordingAdapter})
    runtime: BridgeRuntime = app.state.bridge
    async with serve(app) as server:
        chat_hdr = await runtime.store.chat_id_for("hdr", "native-1")
        chat_sec = await runtime.store.chat_id_for("sec", "native-2")
        yield Bridge(server.url, runtime, chat_hdr, chat_sec)


async def post(url: str, body: bytes | dict[str, object], headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        if isinstance(body, bytes):
            return await client.post(url, content=body, headers={"Content-Type": "application/json", **(headers or {})})
        return await client.post(url, json=body, headers=headers)


def text(chat_id: int, value: str = "Hello! How can I help?") -> dict[str, object]:
    return {"chat_id": chat_id, "message": {"kind": "operator", "text": value}}


AUTH = {"Authorization": f"Token {TOKEN}"}
PROBE = "probe: sent after the request under test"


async def assert_only_probe_arrives(bridge: Bridge, channel_id: str) -> None:
    """Prove a refused request queued nothing: a valid reply sent after it is the first and only one to arrive
    (replies of one chat are delivered in order, so anything queued before would arrive first)."""
    chat_id = bridge.chat_sec if channel_id == "sec" else bridge.chat_hdr
    url = (
        f"{bridge.url}/channels/sec/{SECRET}/send_message"
        if channel_id == "sec"
        else (f"{bridge.url}/channels/{channel_id}/send_message")
    )
    r = await post(url, text(chat_id, PROBE), AUTH)
    assert r.status_code == 200
    sent = await bridge.adapter(channel_id).wait_sent(1)
    assert [m.content for m in sent] == [OutboundText(PROBE)]


async def test_header_mode_ok(bridge: Bridge) -> None:
    r = await post(f"{bridge.url}/channels/hdr/send_message", text(bridge.chat_hdr), AUTH)
    assert (r.status_code, r.json()) == (200, {"result": "ok"})
    sent = await bridge.adapter("hdr").wait_sent(1)
    assert len(sent) == 1
    assert sent[0].content == OutboundText("Hello! How can I help?")
    assert (sent[0].chat_id, sent[0].native_chat_id) == (bridge.chat_hdr, "native-1")


@pytest.mark.parametrize(
    ("headers", "desc"),
    [
        ({}, "missing Authorization header"),
        ({"Authorization": "Token wrong"}, "wrong token in Authorization header"),
        ({"Authorization": f"Token {TOKEN[:-1]}3"}, "wrong token in Authorization header"),
        ({"Authorization": f"Token {TOKEN[:-1]}"}, "wrong token in Authorization header"),
        ({"Authorization": f"Bearer {TOKEN}"}, "wrong token in Authorization header"),
        ({"Authorization": f"Token {TOKEN.upper()}"}, "wrong token in Authorization header"),
        ({"Authorization": f"Token  {TOKEN}"}, "wrong token in Authorization header"),
        ({"Authorization": f"Token{TOKEN}"}, "wrong token in Authorization header"),
    ],
    ids=["missing", "wrong", "one-char-off", "one-char-short", "bearer", "token-case", "two-spaces", "no-space"],
)
async def test_header_mode_refused(bridge: Bridge, headers: dict[str, str], desc: str) -> None:
    r = await post(f"{bridge.url}/channels/hdr/send_message", text(bridge.chat_hdr), headers)
    assert r.status_code == 401
    assert r.json() == {"error": "unauthorized", "desc": desc}
    await assert_only_probe_arrives(bridge, "hdr")


async def test_scheme_word_is_case_insensitive(bridge: Bridge) -> None:
    r = await post(
        f"{bridge.url}/channels/hdr/send_message", text(bridge.chat_hdr), {"Authorization": f"token {TOKEN}"}
    )
    assert (r.status_code, r.json()) == (200, {"result": "ok"})
    await bridge.adapter("hdr").wait_sent(1)


async def test_secret_url_ok(bridge: Bridge) -> None:
    r = await post(f"{bridge.url}/channels/sec/{SECRET}/send_message", text(bridge.chat_sec))
    assert (r.status_code, r.json()) == (200, {"result": "ok"})
    sent = await bridge.adapter("sec").wait_sent(1)
    assert [m.content for m in sent] == [OutboundText("Hello! How can I help?")]


@pytest.mark.parametrize(
    "path",
    [
        f"sec/{SECRET[:-1]}x/send_message",
        "sec/send_message",
        "nope/send_message",
        f"nope/{SECRET}/send_message",
        f"sec/a/{SECRET}/send_message",
    ],
)
async def test_not_found(bridge: Bridge, path: str) -> None:
    r = await post(f"{bridge.url}/channels/{path}", text(bridge.chat_sec), AUTH)
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
    await assert_only_probe_arrives(bridge, "sec")


async def test_body_over_limit(bridge: Bridge) -> None:
    r = await post(f"{bridge.url}/channels/hdr/send_message", text(bridge.chat_hdr, "x" * 5000), AUTH)
    assert r.status_code == 413
    assert r.json()["error"] == "too_large"


@pytest.mark.parametrize(
    ("body", "desc_part"),
    [
        (b"{not json", "not a JSON object"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"message": {"kind": "operator", "text": "x"}}', "missing required field `chat_id`"),
        (b'{"chat_id": 1}', "missing required field `message`"),
        (b'{"chat_id": "abc", "message": {"kind": "operator", "text": "x"}}', "`chat_id` must be an integer"),
        (b'{"chat_id": 1, "message": "hi"}', "`message` must be an object"),
        (b'{"chat_id": 1, "message": {"kind": "operator"}}', "invalid `message` of kind 'operator'"),
        (b'{"chat_id": 1, "message": {"kind": "keyboard", "buttons": [{"id": "a"}]}}', "kind 'keyboard'"),
        (b'{"chat_id": 1, "message": {"kind": "file_operator", "data": {"url": ""}}}', "kind 'file_operator'"),
    ],
    ids=[
        "broken-json",
        "array",
        "no-chat-id",
        "no-message",
        "chat-id-type",
        "message-type",
        "no-text",
        "bad-buttons",
        "empty-url",
    ],
)
async def test_bad_request(bridge: Bridge, body: bytes, desc_part: str) -> None:
    r = await post(f"{bridge.url}/channels/hdr/send_message", body, AUTH)
    assert r.status_code == 400
    assert r.json()["error"] == "bad_request"
    assert desc_part in r.json()["desc"]


async def test_unknown_chat(bridge: Bridge) -> None:
    for chat_id in (999_999, -1, 10**30):  # the last one fits no database integer
        r = await post(f"{bridge.url}/channels/hdr/send_message", text(chat_id), AUTH)
        assert r.status_code == 404
        assert r.json()["error"] == "unknown_chat"
    # A chat of another channel is unknown here too.
    r = await post(f"{bridge.url}/channels/hdr/send_message", text(bridge.chat_sec), AUTH)
    assert (r.status_code, r.json()["error"]) == (404, "unknown_chat")


async def test_unknown_kind_is_ok_and_logged(bridge: Bridge, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bridge.reply")
    body = {"chat_id": bridge.chat_hdr, "message": {"kind": "info", "text": "agent joined"}}
    r = await post(f"{bridge.url}/channels/hdr/send_message", body, AUTH)
    assert (r.status_code, r.json()) == (200, {"result": "ok"})
    await assert_only_probe_arrives(bridge, "hdr")
    assert any(getattr(rec, "kind", None) == "info" for rec in caplog.records)


@pytest.mark.parametrize("method", ["close_chat", "redirect_chat", "set_category"])
async def test_other_methods(bridge: Bridge, method: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bridge.reply")
    r = await post(f"{bridge.url}/channels/hdr/{method}", {"chat_id": bridge.chat_hdr}, AUTH)
    assert (r.status_code, r.json()) == (200, {"result": "ok"})
    r = await post(f"{bridge.url}/channels/sec/{SECRET}/{method}", {"chat_id": bridge.chat_sec})
    assert (r.status_code, r.json()) == (200, {"result": "ok"})
    assert sum(getattr(rec, "method", None) == method for rec in caplog.records) == 2
    # Other methods are authenticated like send_message.
    r = await post(f"{bridge.url}/channels/hdr/{method}", {"chat_id": bridge.chat_hdr})
    assert r.status_code == 401


async def test_keyboard_and_file_reach_adapter_typed(bridge: Bridge) -> None:
    keyboard = {
        "chat_id": bridge.chat_hdr,
        "message": {
            "kind": "keyboard",
            "buttons": [
                [{"id": "yes", "text": "Yes"}, {"id": "no", "text": "No"}],
                [{"id": "human", "text": "Talk to a person"}],
            ],
        },
    }
    file = {
        "chat_id": bridge.chat_hdr,
        "message": {
            "kind": "file_operator",
            "data": {"url": "https://cdn.example.com/a.png", "name": "a.png", "content_type": "image/png", "size": 10},
        },
    }
    for body in (keyboard, file):
        r = await post(f"{bridge.url}/channels/hdr/send_message", body, AUTH)
        assert r.status_code == 200
    sent = await bridge.adapter("hdr").wait_sent(2)
    assert sent[0].content == OutboundKeyboard(
        rows=[[Button("yes", "Yes"), Button("no", "No")], [Button("human", "Talk to a person")]]
    )
    assert sent[1].content == OutboundFile(
        url="https://cdn.example.com/a.png", name="a.png", content_type="image/png", size=10
    )


async def test_long_text_split_by_capabilities(bridge: Bridge) -> None:
    chat = await bridge.runtime.store.chat_id_for("small", "n")
    r = await post(f"{bridge.url}/channels/small/send_message", text(chat, "one two three four"), AUTH)
    assert r.status_code == 200
    parts = [m.content for m in await bridge.adapter("small").wait_sent(2)]
    assert all(isinstance(p, OutboundText) and len(p.text) <= 10 for p in parts)
    assert " ".join(p.text.strip() for p in parts if isinstance(p, OutboundText)) == "one two three four"
    assert len({m.message_id for m in bridge.adapter("small").sent}) == len(parts)


async def test_health_and_readiness(bridge: Bridge) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{bridge.url}/healthz")
        assert (r.status_code, r.json()) == (200, {"status": "ok"})
        r = await client.get(f"{bridge.url}/readyz")
        assert r.status_code == 200
        report = r.json()
        assert report["status"] == "ok"
        assert report["checks"]["store"]["status"] == "ok"
        assert report["checks"]["adapter:hdr"]["status"] == "ok"
        r = await client.get(f"{bridge.url}/no/such/path")
        assert r.status_code == 404 and r.json()["error"] == "not_found"


async def test_store_failure_is_503_not_ok(bridge: Bridge) -> None:
    await bridge.runtime.store.close()  # the store goes away under a running bridge
    r = await post(f"{bridge.url}/channels/hdr/send_message", text(bridge.chat_hdr), AUTH)
    assert r.status_code == 503
    assert r.json()["error"] == "unavailable"


@pytest.mark.parametrize(
    "message", [{"kind": "operator", "text": ""}, {"kind": "keyboard", "buttons": []}], ids=["no-text", "no-buttons"]
)
async def test_reply_with_nothing_to_send_is_ok_and_logged(
    bridge: Bridge, message: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bridge.reply")
    r = await post(f"{bridge.url}/channels/hdr/send_message", {"chat_id": bridge.chat_hdr, "message": message}, AUTH)
    assert (r.status_code, r.json()) == (200, {"result": "ok"})
    await assert_only_probe_arrives(bridge, "hdr")
    assert any("nothing to send" in rec.getMessage() for rec in caplog.records)
