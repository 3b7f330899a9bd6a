"""The web chat adapter over a real running bridge, the real platform emulator and real WebSockets."""

from __future__ import annotations

import aiohttp
import pytest

from bridge.core import stable_id
from bridge.messages import Outbound, OutboundText
from tests.webchat.helpers import CHANNEL, ChatClient, ChatLoop, chat_loop


async def test_page_and_assets(chat: ChatLoop) -> None:
    async with chat.session.get(f"{chat.url}/channels/{CHANNEL}/chat") as r:
        assert r.status == 200
        assert r.content_type == "text/html"
        page = await r.text()
        assert "<title>Help &lt;desk&gt;</title>" in page  # the configured title, escaped
        assert 'src="widget.js"' in page
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    async with chat.session.get(f"{chat.url}/channels/{CHANNEL}/widget.js") as r:
        assert (r.status, r.content_type) == (200, "text/javascript")
        assert "OmnichannelChat" in await r.text()
    async with chat.session.get(f"{chat.url}/channels/{CHANNEL}/chat.css") as r:
        assert (r.status, r.content_type) == (200, "text/css")


async def test_text_round_trip(chat: ChatLoop) -> None:
    tab = await chat.connect(name="Ann Lee", email="ann@example.com")
    assert tab.welcome["renewed"] is False
    assert tab.welcome["history"] == []
    assert tab.welcome["title"] == "Help <desk>"
    visitor = tab.welcome["visitor"]
    await tab.text("m-1", "hello")
    await tab.expect_type("ack", id="m-1")
    entry = await tab.agent_entry()
    assert (entry["kind"], entry["text"]) == ("text", "You said: hello")

    received = await chat.emulator.wait_for_received(1)
    body = received[0].body
    raw = visitor.partition(".")[0]
    assert body["chat_id"] == await chat.chat_id(visitor)
    assert body["message"] == {"kind": "visitor", "id": stable_id("message", CHANNEL, raw, "m-1"), "text": "hello"}
    assert body["visitor"]["fields"] == {"name": "Ann Lee", "email": "ann@example.com"}


async def test_menu_keyboard_and_press(chat: ChatLoop) -> None:
    tab = await chat.connect()
    await tab.text("m-1", "menu")
    keyboard = await tab.agent_entry()
    assert keyboard["kind"] == "keyboard"
    assert keyboard["text"] == "What would you like to do?"
    assert keyboard["rows"] == [[{"id": "yes", "text": "Yes"}, {"id": "no", "text": "No"}],
                                [{"id": "human", "text": "Talk to a person"}]]
    await tab.press("p-1", "human")
    await tab.expect_type("ack", id="p-1")
    assert (await tab.agent_entry())["text"] == "You pressed: Talk to a person"
    received = await chat.emulator.wait_for_received(2)
    assert received[1].body["message"]["kind"] == "keyboard_response"
    assert received[1].body["message"]["data"] == {"button": {"id": "human", "text": "Talk to a person"}}


async def test_button_never_offered_is_refused(chat: ChatLoop) -> None:
    tab = await chat.connect()
    await tab.press("p-1", "yes")
    failed = await tab.expect_type("failed", id="p-1")
    assert (failed["error"], failed["retry"]) == ("unknown_button", False)
    assert chat.emulator.received() == []


async def test_file_link(chat: ChatLoop) -> None:
    tab = await chat.connect()
    await tab.text("m-1", "file")
    entry = await tab.agent_entry()
    assert entry["kind"] == "file"
    assert entry["name"] == "sample.txt"
    assert entry["url"] == f"{chat.emulator.url}/files/sample.txt"
    async with chat.session.get(entry["url"]) as r:
        assert r.status == 200


async def test_long_text_is_one_message(chat: ChatLoop) -> None:
    tab = await chat.connect()
    await tab.text("m-1", "long")
    entry = await tab.agent_entry()
    assert len(entry["text"]) == 5000 and entry["text"].endswith("[end]")


async def test_retry_with_same_id_is_not_a_new_message(chat: ChatLoop) -> None:
    tab = await chat.connect()
    await tab.text("m-1", "hello")
    await tab.expect_type("ack", id="m-1")
    await tab.agent_entry()
    await tab.text("m-1", "hello")  # the ack was lost, say: the widget sends it again
    await tab.expect_type("ack", id="m-1")
    await chat.emulator.wait_idle()
    ids = {r.body["message"]["id"] for r in chat.emulator.received()}
    assert len(ids) == 1
    again = await chat.connect(tab.welcome["visitor"])
    assert [e["id"] for e in again.welcome["history"] if e["sender"] == "visitor"] == ["v:m-1"]


async def test_round_trip_and_retry_over_the_default_durable_queue(tmp_path: object) -> None:
    async with chat_loop(f"sqlite:///{tmp_path}/durable.db", durable=True) as loop:
        tab = await loop.connect()
        await tab.text("m-1", "menu")
        await tab.expect_type("ack", id="m-1")
        keyboard = await tab.agent_entry()
        await tab.press("p-1", keyboard["rows"][0][1]["id"])
        await tab.expect_type("ack", id="p-1")
        assert (await tab.agent_entry())["text"] == "You pressed: No"
        await tab.press("p-1", keyboard["rows"][0][1]["id"])  # a retry after a lost ack
        await tab.expect_type("ack", id="p-1")
        await tab.text("m-2", "hello")
        assert (await tab.agent_entry())["text"] == "You said: hello"
        # The queue recognised the retry: the platform got three messages, not four.
        assert [r.body["message"]["kind"] for r in loop.emulator.received()] == [
            "visitor", "keyboard_response", "visitor"]


async def test_platform_failure_is_reported_and_retry_succeeds(chat: ChatLoop) -> None:
    chat.emulator.add_fault(status=503, count=1)
    tab = await chat.connect()
    await tab.text("m-1", "hello")
    failed = await tab.expect_type("failed", id="m-1")
    assert (failed["error"], failed["retry"]) == ("not_taken_over", True)
    # Not kept either: a visitor who reloads now does not see a message the agent never got.
    assert (await chat.connect(tab.welcome["visitor"])).welcome["history"] == []
    await tab.text("m-1", "hello")
    await tab.expect_type("ack", id="m-1")
    assert (await tab.agent_entry())["text"] == "You said: hello"


async def test_reconnect_replays_history_with_messages_sent_while_away(chat: ChatLoop) -> None:
    tab = await chat.connect()
    visitor = tab.welcome["visitor"]
    await tab.text("m-1", "hello")
    await tab.agent_entry()
    await tab.ws.close()
    await chat.emulator.wait_idle()
    chat_id = await chat.chat_id(visitor)
    await chat.agent_says(chat_id, {"kind": "operator", "text": "Are you still there?"})
    await chat.agent_says(chat_id, {"kind": "keyboard", "buttons": [[{"id": "y", "text": "Yes"}]]})

    back = await chat.connect(visitor)
    assert back.welcome["renewed"] is False
    assert back.welcome["visitor"] == visitor
    history = back.welcome["history"]
    assert [(e["sender"], e["kind"], e.get("text")) for e in history] == [
        ("visitor", "text", "hello"),
        ("agent", "text", "You said: hello"),
        ("agent", "text", "Are you still there?"),
        ("agent", "keyboard", None),
    ]
    # A keyboard from the history still works.
    await back.press("p-1", "y")
    await back.expect_type("ack", id="p-1")
    assert (await back.agent_entry())["text"] == "You pressed: Yes"


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_history_is_bounded_on_each_store(backend: str, tmp_path: object, request: pytest.FixtureRequest,
                                                redis_cleanup: str) -> None:
    if backend == "sqlite":
        store_url = f"sqlite:///{tmp_path}/bridge.db"
    else:
        store_url = f"{request.getfixturevalue('redis_url')}?prefix={redis_cleanup}"
    async with chat_loop(store_url, history_limit=3) as loop:
        tab = await loop.connect()
        for n in range(3):
            await tab.text(f"m-{n}", f"n{n}")
            await tab.expect_type("ack", id=f"m-{n}")
            await tab.agent_entry()
        history = (await loop.connect(tab.welcome["visitor"])).welcome["history"]
        assert [e.get("text") for e in history] == ["You said: n1", "n2", "You said: n2"]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda v: v[:-1] + ("A" if v[-1] != "A" else "B"),  # signature changed
        lambda v: ("f" if v[0] != "f" else "e") + v[1:],  # id changed, signature kept
        lambda v: v.partition(".")[0],  # no signature
        lambda v: "not-a-visitor-id",
    ],
    ids=["signature", "id", "unsigned", "garbage"],
)
async def test_tampered_visitor_id_gets_a_fresh_identity(chat: ChatLoop, mangle: object) -> None:
    tab = await chat.connect()
    visitor = tab.welcome["visitor"]
    await tab.text("m-1", "my secret")
    await tab.agent_entry()
    assert callable(mangle)
    other = await chat.connect(mangle(visitor))
    assert other.welcome["renewed"] is True
    assert other.welcome["visitor"] != visitor
    assert other.welcome["history"] == []
    # The fresh id is a good one.
    again = await chat.connect(other.welcome["visitor"])
    assert again.welcome["renewed"] is False


async def test_other_tabs_of_the_visitor_see_everything(chat: ChatLoop) -> None:
    one = await chat.connect()
    two = await chat.connect(one.welcome["visitor"])
    assert chat.adapter.open_sockets() == 2
    await one.text("m-1", "hello")
    await one.expect_type("ack", id="m-1")
    mine = await two.expect(lambda f: f.get("type") == "message" and f["entry"]["sender"] == "visitor", "echo")
    assert (mine["entry"]["id"], mine["entry"]["text"]) == ("v:m-1", "hello")
    assert (await one.agent_entry())["text"] == (await two.agent_entry())["text"] == "You said: hello"


async def test_redelivered_agent_message_is_shown_once(chat: ChatLoop) -> None:
    tab = await chat.connect()
    visitor = tab.welcome["visitor"]
    chat_id = await chat.chat_id(visitor)
    # The platform repeats a call (same Idempotency-Key): the direct handoff delivers it twice, the adapter
    # recognises the message id.
    for _ in range(2):
        await chat.agent_says(chat_id, {"kind": "operator", "text": "once"}, idempotency_key="k-1")
    # A queue redelivering after a crash hands the adapter the very same message again.
    await chat.adapter.send(Outbound(chat_id, visitor.partition(".")[0], "k-1:0", OutboundText("once")))
    await chat.agent_says(chat_id, {"kind": "operator", "text": "twice"})
    assert (await tab.agent_entry())["text"] == "once"
    assert (await tab.agent_entry())["text"] == "twice"
    history = (await chat.connect(visitor)).welcome["history"]
    assert [e["text"] for e in history] == ["once", "twice"]


async def test_origin_check(tmp_path: object) -> None:
    async with chat_loop(f"sqlite:///{tmp_path}/b.db", allowed_origins=["https://shop.example.com/"]) as loop:
        tab = await loop.connect(origin="https://shop.example.com")
        assert tab.welcome["visitor"]
        for origin in ("https://evil.example.com", "http://shop.example.com", None):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await loop.open(origin)
            assert refused.value.status == 403


async def test_bad_frames(chat: ChatLoop) -> None:
    ws = await chat.open()
    await ws.send_str('{"type": "text", "id": "m-1", "text": "hi"}')  # no hello first
    first = ChatClient(ws)
    error = await first.expect_type("error")
    assert error["error"] == "bad_hello"
    assert await first.closed() == 1008

    tab = await chat.connect()
    for frame in ("{not json", '{"type": "dance"}', '{"type": "text", "id": "bad id!", "text": "x"}',
                  '{"type": "text", "id": "m-2", "text": ""}'):
        await tab.ws.send_str(frame)
        assert (await tab.expect_type("error"))["error"] == "bad_frame"
    too_long = "x" * 10_001
    await tab.text("m-3", too_long)
    assert "10000" in (await tab.expect_type("error"))["desc"]
    # Still usable afterwards.
    await tab.text("m-4", "hello")
    await tab.expect_type("ack", id="m-4")
    assert chat.emulator.received()[-1].body["message"]["text"] == "hello"


async def test_profile_update_reaches_the_platform(chat: ChatLoop) -> None:
    tab = await chat.connect()
    await tab.send({"type": "profile", "name": "Bo", "email": "bo@example.com"})
    await tab.expect_type("profile_saved")
    await tab.text("m-1", "hi")
    await tab.expect_type("ack", id="m-1")
    assert chat.emulator.received()[0].body["visitor"]["fields"] == {"name": "Bo", "email": "bo@example.com"}


async def test_sockets_are_released(chat: ChatLoop) -> None:
    tab = await chat.connect()
    assert chat.adapter.open_sockets(tab.welcome["visitor"].partition(".")[0]) == 1
    await tab.ws.close()
    await chat.emulator.wait_until(lambda: chat.adapter.open_sockets() == 0, what="socket released")


async def test_socket_without_hello_is_closed(chat: ChatLoop) -> None:
    chat.adapter.hello_timeout = 0.05
    silent = ChatClient(await chat.open())
    assert await silent.closed() == 1008
    await chat.emulator.wait_until(lambda: chat.adapter.open_sockets() == 0, what="socket released")
