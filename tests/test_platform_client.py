"""PlatformClient over real loopback sockets: every row of the platform's answer table, against the emulator
and against a tiny aiohttp server for the answers the emulator never gives; and the token never shows."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import email.utils
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
from aiohttp import web

from bridge.emulator import NO_ACTIVE_CHANNEL, EmulatorChannel, EmulatorConfig, RunningEmulator, run_emulator
from bridge.handoff import Delivered, Outcome, Permanent, Retry
from bridge.platform import PlatformClient, classify_response, parse_retry_after, redact, redact_url
from bridge.protocol import Button as WireButton
from bridge.protocol import (
    ButtonPress,
    FileVisitorData,
    FileVisitorMessage,
    KeyboardResponseMessage,
    NewMessage,
    TextVisitorMessage,
    Visitor,
    VisitorFields,
)
from tests.conftest import free_port
from tests.emulator.helpers import FakeBridge, loopback_server, new_message

TOKEN = "s3cr3t-T0KEN-9f8e7d"
WEBHOOK_PATH = f"/connector/omnichannel/omnichannel_message/{TOKEN}/bot_api_webhook"


def text(value: str = "hello", chat_id: int = 42) -> NewMessage:
    return NewMessage(
        chat_id=chat_id,
        visitor=Visitor(id="v-1", fields=VisitorFields(name="Ann")),
        message=TextVisitorMessage(id="m-1", text=value),
    )


@pytest.fixture
async def client() -> AsyncIterator[PlatformClient]:
    async with PlatformClient(timeout=0.3, connect_timeout=0.3) as platform_client:
        yield platform_client


@pytest.fixture
async def emulator() -> AsyncIterator[RunningEmulator]:
    async with FakeBridge().serve() as bridge:
        channel = EmulatorChannel(token=TOKEN, reply_url=bridge.url + "/reply")
        async with run_emulator(EmulatorConfig(channels=[channel])) as running:
            yield running


@pytest.fixture
def no_token_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG, logger="bridge.platform")
    yield
    for record in caplog.records:
        assert TOKEN not in record.getMessage(), record.getMessage()


# --------------------------------------------------------------------------- against the emulator


async def test_every_message_kind_is_delivered(client: PlatformClient, emulator: RunningEmulator) -> None:
    url = emulator.webhook_url(TOKEN)
    visitor = Visitor(id="v-1")
    file = FileVisitorData(
        id="f-1", state="ready", name="a.png", content_type="image/png", size=3, url="http://127.0.0.1:9/a.png"
    )
    payloads = [
        text("hi"),
        NewMessage(chat_id=42, visitor=visitor, message=FileVisitorMessage(id="m-2", data=file)),
        NewMessage(
            chat_id=42,
            visitor=visitor,
            message=KeyboardResponseMessage(id="m-3", data=ButtonPress(button=WireButton(id="yes", text="Yes"))),
        ),
    ]

    assert [await client.post_new_message(url, p) for p in payloads] == [Delivered()] * 3

    received = emulator.received()
    assert [r.outcome for r in received] == ["accepted"] * 3
    assert received[0].content_type == "application/json"
    assert received[0].body == msgspec.json.decode(msgspec.json.encode(payloads[0]))
    assert received[1].agent_text == "file:image|f-1|http://127.0.0.1:9/a.png"


async def test_wrong_token_is_permanent_with_the_platform_text(
    client: PlatformClient, emulator: RunningEmulator, no_token_in_logs: None
) -> None:
    outcome = await client.post_new_message(emulator.webhook_url("wrong-token"), text())
    assert outcome == Permanent(f"platform 400: {NO_ACTIVE_CHANNEL}")


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda b: b["message"].pop("text"), Permanent("platform 400: Missing required parameter: message.text")),
        (lambda b: b.pop("chat_id"), Permanent("platform 400: Missing required parameter: chat_id")),
        (lambda b: b.update(chat_id="42"), Retry("platform 500: Malformed request: `chat_id` must be an integer")),
        (lambda b: b.update(event="chat_closed"), Delivered()),
        (lambda b: b["message"].update(kind="sticker"), Delivered()),
    ],
)
async def test_raw_bodies_follow_the_error_table(
    client: PlatformClient, emulator: RunningEmulator, mutate: Any, expected: Outcome, no_token_in_logs: None
) -> None:
    body = copy.deepcopy(new_message())
    mutate(body)

    assert await client.post_json(emulator.webhook_url(TOKEN), msgspec.json.encode(body)) == expected


async def test_malformed_json_is_retried(client: PlatformClient, emulator: RunningEmulator) -> None:
    outcome = await client.post_json(emulator.webhook_url(TOKEN), b"{oops")
    assert isinstance(outcome, Retry)
    assert outcome.reason.startswith("platform 500: Malformed request: body is not valid JSON")


async def test_a_file_not_ready_is_taken_but_ignored(client: PlatformClient, emulator: RunningEmulator) -> None:
    file = FileVisitorData(id="f", state="uploading", name="a", content_type="text/plain", size=1, url="http://x/a")
    payload = NewMessage(chat_id=1, visitor=Visitor(id="v"), message=FileVisitorMessage(id="m", data=file))

    assert await client.post_new_message(emulator.webhook_url(TOKEN), payload) == Delivered()
    assert emulator.received()[0].outcome == "ignored"


async def test_wrong_url_is_permanent_404(
    client: PlatformClient, emulator: RunningEmulator, no_token_in_logs: None
) -> None:
    url = emulator.webhook_url(TOKEN).replace("/bot_api_webhook", "/bot_api_webhook_v2")

    outcome = await client.post_new_message(url, text())

    assert isinstance(outcome, Permanent)
    assert outcome.reason.startswith("platform 404: ")
    assert TOKEN not in outcome.reason


# --------------------------------------------------------------------------- answers the emulator never gives


@contextlib.asynccontextmanager
async def serve(handler: Any) -> AsyncIterator[str]:
    async with loopback_server(handler) as base:
        yield base + WEBHOOK_PATH


def answering(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, body=body, headers=headers)

    return handler


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (200, b"", None, Delivered()),
        (200, b"<html>ok</html>", None, Delivered()),
        (202, b'{"result": "ok"}', None, Delivered()),
        (204, b"", None, Delivered()),
        (503, b"", None, Retry("platform 503: (empty body)")),
        (503, b"busy", {"Retry-After": "12"}, Retry("platform 503: busy", retry_after=12.0)),
        (502, b"<h1>Bad Gateway</h1>", None, Retry("platform 502: <h1>Bad Gateway</h1>")),
        (429, b'{"error": "too_many"}', {"Retry-After": "3"}, Retry("platform 429: too_many", retry_after=3.0)),
        (408, b"", None, Retry("platform 408: (empty body)")),
        (401, b'{"error": "unauthorized"}', None, Permanent("platform 401: unauthorized")),
        (403, b"forbidden", None, Permanent("platform 403: forbidden")),
        (413, b"", None, Permanent("platform 413: (empty body)")),
        (400, b'{"error": "bad_request", "desc": "no chat"}', None, Permanent("platform 400: bad_request: no chat")),
    ],
)
async def test_status_table_over_a_socket(
    client: PlatformClient,
    status: int,
    body: bytes,
    headers: dict[str, str] | None,
    expected: Outcome,
    no_token_in_logs: None,
) -> None:
    async with serve(answering(status, body, headers)) as url:
        assert await client.post_new_message(url, text()) == expected


async def test_a_200_error_body_is_delivered_with_a_warning(
    client: PlatformClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bridge.platform")
    async with serve(answering(200, b'{"error": "ignored_event", "desc": "kind ' + TOKEN.encode() + b'"}')) as url:
        assert await client.post_new_message(url, text()) == Delivered()
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    message = warning.getMessage()
    assert "ignored_event" in message and "treated as delivered" in message
    assert TOKEN not in message
    assert "/omnichannel_message/***/bot_api_webhook" in message


async def test_retry_after_as_an_http_date(client: PlatformClient) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    async with serve(answering(429, b"", {"Retry-After": when})) as url:
        outcome = await client.post_new_message(url, text())
    assert isinstance(outcome, Retry)
    assert outcome.retry_after is not None and 0 < outcome.retry_after <= 31


async def test_redirects_are_not_followed(client: PlatformClient, no_token_in_logs: None) -> None:
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.method)
        return web.Response(status=302, headers={"Location": f"http://127.0.0.1:9{WEBHOOK_PATH}"})

    async with serve(handler) as url:
        outcome = await client.post_new_message(url, text())

    assert isinstance(outcome, Permanent)
    assert outcome.reason.startswith("platform 302: redirect to http://127.0.0.1:9/connector/omnichannel/")
    assert "/omnichannel_message/***/bot_api_webhook" in outcome.reason
    assert TOKEN not in outcome.reason
    assert hits == ["POST"]


async def test_an_error_page_echoing_the_url_is_redacted_and_cut(
    client: PlatformClient, no_token_in_logs: None
) -> None:
    async def handler(request: web.Request) -> web.Response:
        page = f"<p>No route for {request.path}; token {TOKEN}</p>" + "x" * 500
        return web.Response(status=400, text=page)

    async with serve(handler) as url:
        outcome = await client.post_new_message(url, text())

    assert isinstance(outcome, Permanent)
    assert TOKEN not in outcome.reason
    assert "/omnichannel_message/***/bot_api_webhook; token ***" in outcome.reason
    assert len(outcome.reason) <= len("platform 400: ") + 200


async def test_request_is_json_encoded_once_and_the_connection_pooled(client: PlatformClient) -> None:
    seen: list[tuple[str | None, bytes, int]] = []

    async def handler(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else ("", 0)
        seen.append((request.headers.get("Content-Type"), await request.read(), peer[1]))
        return web.json_response({"result": "ok"})

    async with serve(handler) as url:
        for n in range(2):
            assert await client.post_new_message(url, text(f"m{n}")) == Delivered()

    assert [content_type for content_type, _, _ in seen] == ["application/json"] * 2
    assert msgspec.json.decode(seen[0][1]) == msgspec.to_builtins(text("m0"))
    assert seen[0][2] == seen[1][2]  # same client port: one pooled keep-alive connection


async def test_a_slow_answer_is_a_timeout(client: PlatformClient, no_token_in_logs: None) -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"result": "ok"})

    async with serve(handler) as url:
        try:
            outcome = await client.post_new_message(url, text())
        finally:
            release.set()
    assert outcome == Retry("timeout after 0.3s")


async def test_per_request_timeout_overrides_the_clients(client: PlatformClient) -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"result": "ok"})

    async with serve(handler) as url:
        try:
            outcome = await client.post_new_message(url, text(), timeout=0.05)
        finally:
            release.set()
    assert outcome == Retry("timeout after 0.05s")


async def test_a_connect_that_never_completes_is_a_connect_timeout() -> None:
    # A listener that never accepts, its backlog filled: the kernel drops further SYNs, so connect() hangs.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
            async with PlatformClient(timeout=5, connect_timeout=0.1) as platform_client:
                outcome = await platform_client.post_new_message(f"http://127.0.0.1:{port}{WEBHOOK_PATH}", text())
        finally:
            for filler in fillers:
                filler.close()
    assert outcome == Retry("timeout after 0.1s (connecting)")


async def test_a_closed_port_is_a_connection_error(client: PlatformClient, no_token_in_logs: None) -> None:
    url = f"http://127.0.0.1:{free_port()}{WEBHOOK_PATH}"

    outcome = await client.post_new_message(url, text())

    assert isinstance(outcome, Retry)
    assert outcome.reason.startswith("connection error: ")
    assert TOKEN not in outcome.reason


@pytest.mark.parametrize("url", ["not a url", f"ftp://127.0.0.1{WEBHOOK_PATH}", f"/relative{WEBHOOK_PATH}"])
async def test_an_unusable_url_is_permanent(client: PlatformClient, url: str, no_token_in_logs: None) -> None:
    outcome = await client.post_new_message(url, text())

    assert isinstance(outcome, Permanent)
    assert outcome.reason.startswith("invalid webhook URL")
    assert TOKEN not in outcome.reason


async def test_use_before_start_is_a_clear_error() -> None:
    platform_client = PlatformClient()
    with pytest.raises(RuntimeError, match="not started"):
        await platform_client.post_new_message("http://127.0.0.1:9/x", text())
    await platform_client.close()  # closing an unstarted client is harmless


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        PlatformClient(timeout=0)
    with pytest.raises(ValueError, match="limit"):
        PlatformClient(limit=-1)


# --------------------------------------------------------------------------- pure helpers


def test_redaction() -> None:
    url = f"https://platform.example/connector/omnichannel/omnichannel_message/{TOKEN}/bot_api_webhook?x=1"

    assert redact_url(url) == (
        "https://platform.example/connector/omnichannel/omnichannel_message/***/bot_api_webhook?x=1"
    )
    assert redact(f"failed {url}: token {TOKEN} rejected", url) == (
        "failed https://platform.example/connector/omnichannel/omnichannel_message/***/bot_api_webhook?x=1: "
        "token *** rejected"
    )
    assert redact("nothing to hide", "http://x/other") == "nothing to hide"
    short = "http://x/connector/omnichannel/omnichannel_message/ab/bot_api_webhook"
    assert redact(f"tab stop at {short}", short) == (
        "tab stop at http://x/connector/omnichannel/omnichannel_message/***/bot_api_webhook"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("5", 5.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("soon", None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_date_in_the_future() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0 - 60) == 60.0


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (299, b"", Delivered()),
        (
            404,
            b'{"status_code": 404, "detail": "Not Found"}',
            Permanent('platform 404: {"status_code": 404, "detail": "Not Found"}'),
        ),
        (425, b"", Retry("platform 425: (empty body)")),
        (500, b'{"error": {"code": 1}}', Retry('platform 500: {"code":1}')),
        (418, b"   teapot\n\n  here ", Permanent("platform 418: teapot here")),
        (301, b"", Permanent("platform 301: redirect not followed; set webhook_url to the final address")),
    ],
)
def test_classify_response_rows(status: int, body: bytes, expected: Outcome) -> None:
    assert classify_response(status, {}, body) == expected
