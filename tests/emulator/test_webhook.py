"""The emulated webhook answers every row of the platform's error table, over a real loopback socket."""

from __future__ import annotations

import copy
from typing import Any

import aiohttp
import msgspec
import pytest

from bridge.emulator import NO_ACTIVE_CHANNEL, RunningEmulator, file_type
from tests.emulator.conftest import HEADER_TOKEN
from tests.emulator.helpers import FakeBridge, new_message


async def post(http: aiohttp.ClientSession, url: str, body: Any, *, raw: bytes | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else msgspec.json.encode(body)
    async with http.post(url, data=data, headers={"Content-Type": "application/json"}) as response:
        return response.status, msgspec.json.decode(await response.read())


FILE_MESSAGE: dict[str, Any] = {
    "id": "m-file",
    "kind": "file_visitor",
    "data": {
        "id": "f-7",
        "state": "ready",
        "name": "cat.png",
        "content_type": "image/png",
        "size": 1234,
        "url": "http://127.0.0.1:9/files/cat.png",
    },
}
BUTTON_MESSAGE: dict[str, Any] = {
    "id": "m-button",
    "kind": "keyboard_response",
    "data": {"button": {"id": "yes", "text": "Yes"}},
}


def body_with(message: dict[str, Any]) -> dict[str, Any]:
    return new_message(**copy.deepcopy(message))


def without(body: dict[str, Any], path: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    target = body
    for key in parents:
        target = target[key]
    del target[last]
    return body


def replaced(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    target = body
    for key in parents:
        target = target[key]
    target[last] = value
    return body


async def test_valid_text_is_taken_and_recorded(platform: RunningEmulator, http: aiohttp.ClientSession) -> None:
    status, answer = await post(http, platform.webhook_url(HEADER_TOKEN), new_message("hi there"))

    assert (status, answer) == (200, {"result": "ok"})
    [record] = platform.received()
    assert record.outcome == "accepted"
    assert record.status == 200
    assert record.token == HEADER_TOKEN
    assert record.agent_text == "hi there"
    assert record.content_type == "application/json"
    assert record.body["message"]["text"] == "hi there"


async def test_wrong_token_is_no_active_channel(
    platform: RunningEmulator, http: aiohttp.ClientSession, fake_bridge: FakeBridge
) -> None:
    status, answer = await post(http, platform.webhook_url("not-a-channel"), new_message())

    assert (status, answer) == (400, {"error": NO_ACTIVE_CHANNEL})
    assert platform.received()[0].outcome == "rejected"
    await platform.wait_idle()
    assert platform.replies() == [] and fake_bridge.requests == []


@pytest.mark.parametrize(
    ("raw", "why"),
    [(b"{not json", "not valid JSON"), (b"", "not valid JSON"), (b"[1, 2]", "must be a JSON object")],
)
async def test_malformed_json_is_500(
    platform: RunningEmulator, http: aiohttp.ClientSession, raw: bytes, why: str
) -> None:
    status, answer = await post(http, platform.webhook_url(HEADER_TOKEN), None, raw=raw)

    assert status == 500
    assert why in answer["error"]
    assert platform.received()[0].outcome == "rejected"


@pytest.mark.parametrize(
    ("message", "path"),
    [
        (None, "event"),
        (None, "chat_id"),
        (None, "visitor"),
        (None, "visitor.id"),
        (None, "message"),
        (None, "message.id"),
        (None, "message.kind"),
        (None, "message.text"),
        (FILE_MESSAGE, "message.data"),
        *[(FILE_MESSAGE, f"message.data.{key}") for key in ("id", "state", "name", "content_type", "size", "url")],
        (BUTTON_MESSAGE, "message.data"),
        (BUTTON_MESSAGE, "message.data.button"),
        (BUTTON_MESSAGE, "message.data.button.id"),
        (BUTTON_MESSAGE, "message.data.button.text"),
    ],
)
async def test_missing_required_parameter_is_400_naming_it(
    platform: RunningEmulator, http: aiohttp.ClientSession, message: dict[str, Any] | None, path: str
) -> None:
    base = body_with(message) if message else new_message()

    status, answer = await post(http, platform.webhook_url(HEADER_TOKEN), without(base, path))

    assert status == 400
    assert answer == {"error": f"Missing required parameter: {path}"}


async def test_null_counts_as_missing(platform: RunningEmulator, http: aiohttp.ClientSession) -> None:
    status, answer = await post(http, platform.webhook_url(HEADER_TOKEN), replaced(new_message(), "message.text", None))
    assert (status, answer) == (400, {"error": "Missing required parameter: message.text"})


@pytest.mark.parametrize(
    ("message", "path", "value"),
    [
        (None, "event", 5),
        (None, "chat_id", "42"),
        (None, "chat_id", True),
        (None, "chat_id", 4.2),
        (None, "visitor", "v-1"),
        (None, "visitor.id", 7),
        (None, "visitor.fields", ["Ann"]),
        (None, "visitor.fields.name", 3),
        (None, "message", "hello"),
        (None, "message.id", 1),
        (None, "message.kind", ["visitor"]),
        (None, "message.text", {"t": 1}),
        (FILE_MESSAGE, "message.data.size", "1234"),
        (FILE_MESSAGE, "message.data.url", 5),
        (BUTTON_MESSAGE, "message.data.button", "yes"),
        (BUTTON_MESSAGE, "message.data.button.id", 1),
    ],
)
async def test_wrong_type_is_500(
    platform: RunningEmulator,
    http: aiohttp.ClientSession,
    message: dict[str, Any] | None,
    path: str,
    value: Any,
) -> None:
    base = body_with(message) if message else new_message()

    status, answer = await post(http, platform.webhook_url(HEADER_TOKEN), replaced(base, path, value))

    assert status == 500
    assert f"`{path}`" in answer["error"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (replaced(new_message(), "event", "chat_closed"), "unknown event 'chat_closed'"),
        (replaced(new_message(), "message.kind", "sticker"), "unknown message kind 'sticker'"),
        (replaced(body_with(FILE_MESSAGE), "message.data.state", "uploading"), "not 'ready'"),
    ],
)
async def test_ignored_is_200_and_never_reaches_the_agent(
    platform: RunningEmulator,
    http: aiohttp.ClientSession,
    fake_bridge: FakeBridge,
    body: dict[str, Any],
    reason: str,
) -> None:
    status, answer = await post(http, platform.webhook_url(HEADER_TOKEN), body)

    assert (status, answer) == (200, {"result": "ok"})
    [record] = platform.received()
    assert record.outcome == "ignored"
    assert reason in (record.reason or "")
    assert record.agent_text is None
    await platform.wait_idle()
    assert platform.replies() == [] and fake_bridge.requests == []


async def test_ready_file_becomes_file_text(platform: RunningEmulator, http: aiohttp.ClientSession) -> None:
    status, _ = await post(http, platform.webhook_url(HEADER_TOKEN), body_with(FILE_MESSAGE))

    assert status == 200
    assert platform.received()[0].agent_text == "file:image|f-7|http://127.0.0.1:9/files/cat.png"


async def test_button_press_reaches_the_agent_as_its_label(
    platform: RunningEmulator, http: aiohttp.ClientSession
) -> None:
    status, _ = await post(http, platform.webhook_url(HEADER_TOKEN), body_with(BUTTON_MESSAGE))

    assert status == 200
    assert platform.received()[0].agent_text == "Yes"


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("image/jpeg", "image"),
        ("Video/MP4", "video"),
        ("audio/ogg; codecs=opus", "audio"),
        ("application/pdf", "document"),
        ("text/plain", "document"),
        ("", "document"),
    ],
)
def test_file_type_family(content_type: str, expected: str) -> None:
    assert file_type(content_type) == expected


async def test_other_paths_are_404(platform: RunningEmulator, http: aiohttp.ClientSession) -> None:
    wrong = platform.webhook_url(HEADER_TOKEN).replace("omnichannel_message", "omnichannel_messages")
    async with http.post(wrong, json=new_message()) as response:
        assert response.status == 404
    async with http.post(platform.url + "/send_message", json=new_message()) as response:
        assert response.status == 404
    assert platform.received() == []


async def test_records_are_served_as_json(platform: RunningEmulator, http: aiohttp.ClientSession) -> None:
    await post(http, platform.webhook_url(HEADER_TOKEN), new_message("one"))
    await post(http, platform.webhook_url("nope"), new_message("two"))
    await platform.wait_for_replies(1)

    async with http.get(platform.url + "/_emulator/received") as response:
        received = await response.json()
    async with http.get(platform.url + "/_emulator/replies") as response:
        replies = await response.json()

    assert [(r["status"], r["body"]["message"]["text"]) for r in received] == [(200, "one"), (400, "two")]
    assert replies[0]["path"] == "/platform/header/send_message"
    assert replies[0]["status"] == 200
    assert replies[0]["body"]["message"]["text"] == "You said: one"

    async with http.post(platform.url + "/_emulator/reset") as response:
        assert response.status == 200
    assert platform.received() == [] and platform.replies() == []


async def test_sample_files_are_served_on_loopback(platform: RunningEmulator, http: aiohttp.ClientSession) -> None:
    async with http.get(platform.file_url("sample.txt")) as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        assert "sample file" in await response.text()
    async with http.get(platform.file_url("sample.png")) as response:
        assert response.status == 200
        assert (await response.read()).startswith(b"\x89PNG\r\n\x1a\n")
    async with http.get(platform.file_url("../etc/passwd")) as response:
        assert response.status == 404


async def test_wait_for_received_times_out_with_a_clear_message(platform: RunningEmulator) -> None:
    with pytest.raises(TimeoutError, match="waiting for 1 received; recorded 0 received"):
        await platform.wait_for_received(1, timeout=0.05)
