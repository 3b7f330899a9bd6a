"""The default agent script replies through a (fake) bridge reply endpoint over loopback, in order, with the
channel's auth mode."""

from __future__ import annotations

from typing import Any

import aiohttp
import msgspec

from bridge.emulator import EmulatorChannel, EmulatorConfig, RunningEmulator, long_text, run_emulator
from tests.conftest import free_port
from tests.emulator.conftest import HEADER_TOKEN, REPLY_SECRET, SECRET_TOKEN, channels_for
from tests.emulator.helpers import FakeBridge, SeenRequest, new_message


async def say(
    http: aiohttp.ClientSession, platform: RunningEmulator, body: dict[str, Any], token: str = HEADER_TOKEN
) -> None:
    async with http.post(platform.webhook_url(token), data=msgspec.json.encode(body)) as response:
        assert response.status == 200, await response.text()


async def reply_to(
    text: str,
    http: aiohttp.ClientSession,
    platform: RunningEmulator,
    fake_bridge: FakeBridge,
    expected: int = 1,
) -> list[SeenRequest]:
    await say(http, platform, new_message(text))
    return await fake_bridge.wait_for(expected)


async def test_echo_in_header_mode_sends_the_token(
    platform: RunningEmulator, http: aiohttp.ClientSession, fake_bridge: FakeBridge
) -> None:
    [seen] = await reply_to("hello", http, platform, fake_bridge)

    assert seen.method == "POST"
    assert seen.path == "/platform/header/send_message"
    assert seen.authorization == f"Token {REPLY_SECRET}"
    assert seen.content_type == "application/json"
    assert seen.body == {"chat_id": 42, "message": {"kind": "operator", "text": "You said: hello"}}
    [record] = await platform.wait_for_replies(1)
    assert (record.status, record.authorization, record.error) == (200, f"Token {REPLY_SECRET}", None)
    assert msgspec.json.decode(record.response) == {"result": "ok"}


async def test_secret_url_mode_sends_no_authorization(
    platform: RunningEmulator, http: aiohttp.ClientSession, fake_bridge: FakeBridge
) -> None:
    await say(http, platform, new_message("psst", chat_id=7), token=SECRET_TOKEN)
    [seen] = await fake_bridge.wait_for(1)

    # The trailing slash of the configured URL does not double up.
    assert seen.path == "/platform/secret-abc/send_message"
    assert seen.authorization is None
    assert seen.body == {"chat_id": 7, "message": {"kind": "operator", "text": "You said: psst"}}


async def test_menu_is_a_keyboard_of_two_rows(
    platform: RunningEmulator, http: aiohttp.ClientSession, fake_bridge: FakeBridge
) -> None:
    [seen] = await reply_to("menu", http, platform, fake_bridge)

    message = seen.body["message"]
    assert message["kind"] == "keyboard"
    assert [[button["id"] for button in row] for row in message["buttons"]] == [["yes", "no"], ["human"]]
    assert all(isinstance(button["text"], str) and button["text"] for row in message["buttons"] for button in row)


async def test_button_press_is_answered_with_its_label(
    platform: RunningEmulator, http: aiohttp.ClientSession, fake_bridge: FakeBridge
) -> None:
    press: dict[str, Any] = {
        "id": "m-9",
        "kind": "keyboard_response",
        "data": {"button": {"id": "human", "text": "Talk to a person"}},
    }
    await say(http, platform, new_message(**press))

    [seen] = await fake_bridge.wait_for(1)
    assert seen.body["message"] == {"kind": "operator", "text": "You pressed: Talk to a person"}


async def test_file_reply_links_to_the_emulator_itself(
    platform: RunningEmulator, http: aiohttp.ClientSession, fake_bridge: FakeBridge
) -> None:
    [seen] = await reply_to("file", http, platform, fake_bridge)

    message = seen.body["message"]
    assert message["kind"] == "file_operator"
    data = message["data"]
    assert data["url"] == platform.file_url("sample.txt")
    assert (data["name"], data["media_type"]) == ("sample.txt", "text/plain")
    async with http.get(data["url"]) as response:
        assert response.status == 200
        assert "sample file" in await response.text()


async def test_long_text_is_5000_characters_in_paragraphs(
    platform: RunningEmulator, http: aiohttp.ClientSession, fake_bridge: FakeBridge
) -> None:
    [seen] = await reply_to("long", http, platform, fake_bridge)

    text = seen.body["message"]["text"]
    assert seen.body["message"]["kind"] == "operator"
    assert text == long_text()
    assert len(text) == 5000
    assert text.count("\n\n") >= 3
    assert text.endswith("[end]")


async def test_text_then_buttons_arrive_as_two_calls(
    platform: RunningEmulator, http: aiohttp.ClientSession, fake_bridge: FakeBridge
) -> None:
    first, second = await reply_to("text+buttons", http, platform, fake_bridge, expected=2)

    assert first.body["message"] == {"kind": "operator", "text": "Here are your options:"}
    assert second.body["message"]["kind"] == "keyboard"
    assert "text" not in second.body["message"]
    assert second.body["message"]["buttons"][0][0] == {"id": "yes", "text": "Yes"}


async def test_a_ready_file_is_acknowledged_by_name(
    platform: RunningEmulator, http: aiohttp.ClientSession, fake_bridge: FakeBridge
) -> None:
    data = {
        "id": "f-1",
        "state": "ready",
        "name": "report.pdf",
        "content_type": "application/pdf",
        "size": 10,
        "url": "http://127.0.0.1:9/f",
    }
    await say(http, platform, new_message(id="m-f", kind="file_visitor", data=data))

    [seen] = await fake_bridge.wait_for(1)
    assert seen.body["message"] == {"kind": "operator", "text": "Got your file: report.pdf"}


async def test_one_chat_is_answered_in_order_one_call_at_a_time(
    platform: RunningEmulator, http: aiohttp.ClientSession, fake_bridge: FakeBridge
) -> None:
    # Earlier calls answer slower: concurrent calls would finish, and be recorded, in reverse.
    fake_bridge.delays = [0.05, 0.04, 0.03, 0.02, 0.01]
    for n in range(5):
        await say(http, platform, new_message(f"n{n}", message_id=f"m{n}"))
    await say(http, platform, new_message("other chat", chat_id=43))

    seen = await fake_bridge.wait_for(6)
    chat_42 = [s.body["message"]["text"] for s in seen if s.body["chat_id"] == 42]
    assert chat_42 == [f"You said: n{n}" for n in range(5)]
    assert fake_bridge.max_in_flight == 2  # chat 43 did not wait behind chat 42


async def test_bridge_errors_are_recorded_not_retried(http: aiohttp.ClientSession) -> None:
    async with FakeBridge(status=503).serve() as failing:
        dead = EmulatorChannel(token="dead", reply_url=f"http://127.0.0.1:{free_port()}/x")
        config = EmulatorConfig(channels=[*channels_for(failing), dead], reply_timeout=2)
        async with run_emulator(config) as platform:
            await say(http, platform, new_message("a"))
            await say(http, platform, new_message("b"), token="dead")
            records = await platform.wait_for_replies(2)
            await platform.wait_idle()

    by_token = {r.token: r for r in records}
    assert by_token[HEADER_TOKEN].status == 503
    assert by_token["dead"].status is None
    assert by_token["dead"].error and "Connect" in by_token["dead"].error
    assert len(platform.replies()) == 2


async def test_reset_drops_pending_replies(http: aiohttp.ClientSession, fake_bridge: FakeBridge) -> None:
    config = EmulatorConfig(channels=channels_for(fake_bridge), reply_delay=30)
    async with run_emulator(config) as platform:
        await say(http, platform, new_message("slow"))
        await platform.wait_until(lambda: not platform.emulator.agent.idle, what="the agent to start")

        await platform.reset()

        assert platform.emulator.agent.idle
        assert platform.received() == [] and platform.replies() == []
    assert fake_bridge.requests == []


async def test_set_channel_points_replies_elsewhere_at_runtime(
    platform: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    async with FakeBridge().serve() as other:
        platform.set_channel(EmulatorChannel(token=HEADER_TOKEN, reply_url=other.url + "/moved"))
        await say(http, platform, new_message("where"))
        [seen] = await other.wait_for(1)
    assert seen.path == "/moved/send_message"
    assert seen.authorization is None
