"""The HTTP adapter's inbound endpoint over real HTTP: authentication, validation, files, redelivery."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from adapters.http import HttpAdapter
from adapters.http.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from bridge.messages import Inbound
from bridge.testing.conformance_loop import BridgeLoop, Submit, free_port, run_bridge_loop
from tests.http_adapter.company import FakeCompany

SECRET = "inbound-secret-0123456789abcdef"
TOKEN = "inbound-token-0123456789abcdef"
CALLBACK_SECRET = "callback-secret-0123456789abcdef"


@dataclass
class Desk:
    loop: BridgeLoop
    company: FakeCompany
    client: httpx.AsyncClient

    def url(self, channel: str = "hmac") -> str:
        return f"{self.loop.url}/channels/{channel}/inbound"

    async def signed(self, message: Any, *, secret: str = SECRET, timestamp: float | None = None,
                     body: bytes | None = None, channel: str = "hmac") -> httpx.Response:
        """POST `message`; the signature covers `message` but `body`, when given, is what is sent."""
        signed_body = msgspec.json.encode(message)
        stamp = str(int(time.time() if timestamp is None else timestamp))
        headers = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(secret, stamp, signed_body)}
        return await self.client.post(self.url(channel), content=signed_body if body is None else body,
                                      headers=headers)


async def _run(tmp_path: Path, block: dict[str, Any], channel: str) -> AsyncIterator[tuple[BridgeLoop, FakeCompany]]:
    async with FakeCompany.running(CALLBACK_SECRET) as company:
        block = {**block, "callback_url": company.callback_url}
        port = free_port()
        async with run_bridge_loop(HttpAdapter, block, channel_id=channel, port=port, state_dir=tmp_path) as loop:
            yield loop, company


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    block = {"auth": "hmac", "secret": SECRET, "callback_secret": CALLBACK_SECRET, "max_body_bytes": 2048}
    async for loop, company in _run(tmp_path, block, "hmac"):
        async with httpx.AsyncClient(trust_env=False) as client:
            yield Desk(loop, company, client)


@pytest.fixture
async def bearer_desk(tmp_path: Path) -> AsyncIterator[Desk]:
    block = {"auth": "bearer", "token": TOKEN, "callback_secret": CALLBACK_SECRET}
    async for loop, company in _run(tmp_path, block, "bearer"):
        async with httpx.AsyncClient(trust_env=False) as client:
            yield Desk(loop, company, client)


def text_message(message_id: str = "m-1", text: str = "hello", chat: str = "ticket-1") -> dict[str, Any]:
    return {"chat_id": chat, "message_id": message_id,
            "user": {"id": "cust-42", "name": "Ann Lee", "email": "ann@example.com"}, "text": text}


def refusal(answer: httpx.Response) -> tuple[int, str, str]:
    body = answer.json()
    return answer.status_code, body["error"], body.get("desc", "")


# ------------------------------------------------------------------ HMAC


async def test_valid_signature_is_taken_over_and_reaches_platform(desk: Desk) -> None:
    answer = await desk.signed(text_message())
    assert (answer.status_code, answer.json()) == (200, {"result": "ok"})
    received = await desk.loop.emulator.wait_for_received(1)
    body = received[0].body
    assert body["message"]["kind"] == "visitor" and body["message"]["text"] == "hello"
    assert body["visitor"]["fields"] == {"name": "Ann Lee", "email": "ann@example.com", "site": "conformance.example"}
    assert await desk.loop.native_chat_of(body["chat_id"]) == "ticket-1"


async def test_tampered_body_is_refused(desk: Desk) -> None:
    tampered = msgspec.json.encode(text_message(text="give me a refund"))
    status, error, desc = refusal(await desk.signed(text_message(), body=tampered))
    assert (status, error) == (401, "unauthorized")
    assert "does not match" in desc
    assert desk.loop.emulator.received() == []


async def test_stale_timestamp_is_refused_as_a_replay(desk: Desk) -> None:
    status, error, desc = refusal(await desk.signed(text_message(), timestamp=time.time() - 301))
    assert (status, error) == (401, "unauthorized")
    assert "old" in desc and "replays are refused" in desc


async def test_timestamp_far_in_the_future_is_refused(desk: Desk) -> None:
    status, _, desc = refusal(await desk.signed(text_message(), timestamp=time.time() + 400))
    assert status == 401 and "in the future" in desc


async def test_timestamp_within_skew_is_accepted(desk: Desk) -> None:
    answer = await desk.signed(text_message(), timestamp=time.time() - 200)
    assert answer.status_code == 200


async def test_wrong_key_is_refused(desk: Desk) -> None:
    status, error, _ = refusal(await desk.signed(text_message(), secret="another-secret-0123456789abcdef"))
    assert (status, error) == (401, "unauthorized")


async def test_missing_or_malformed_signature_headers_are_refused(desk: Desk) -> None:
    body = msgspec.json.encode(text_message())
    answer = await desk.client.post(desk.url(), content=body)
    assert refusal(answer)[0] == 401 and "missing X-Bridge-Timestamp and X-Bridge-Signature" in refusal(answer)[2]
    answer = await desk.client.post(desk.url(), content=body,
                                    headers={TIMESTAMP_HEADER: "yesterday", SIGNATURE_HEADER: "sha256=00"})
    assert refusal(answer)[0] == 401 and "whole seconds" in refusal(answer)[2]
    # A bearer token is no way into an HMAC channel.
    answer = await desk.client.post(desk.url(), content=body, headers={"Authorization": f"Bearer {SECRET}"})
    assert refusal(answer)[0] == 401


# ------------------------------------------------------------------ bearer


async def test_bearer_token_ok_and_wrong(bearer_desk: Desk) -> None:
    url, body = bearer_desk.url("bearer"), msgspec.json.encode(text_message())
    answer = await bearer_desk.client.post(url, content=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    await bearer_desk.loop.emulator.wait_for_received(1)
    for headers, reason in [
        ({"Authorization": "Bearer wrong-token-0123456789abcdef"}, "wrong bearer token"),
        ({"Authorization": f"Token {TOKEN}"}, "wrong bearer token"),
        ({}, "missing Authorization header"),
    ]:
        status, error, desc = refusal(await bearer_desk.client.post(url, content=body, headers=headers))
        assert (status, error) == (401, "unauthorized") and reason in desc
    assert len(bearer_desk.loop.emulator.received()) == 1


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ({"chat_id": "c", "message_id": "m", "txt": "typo"}, "unknown field `txt`"),
        ({"chat_id": "c", "message_id": "m"}, "exactly one of `text`, `file` or `button` is required (got none)"),
        ({"chat_id": "c", "message_id": "m", "text": "a", "button": {"id": "b"}}, "(got text and button)"),
        ({"chat_id": 42, "message_id": "m", "text": "a"}, "Expected `str`, got `int` - at `$.chat_id`"),
        ({"chat_id": "", "message_id": "m", "text": "a"}, "at `$.chat_id`"),
        ({"message_id": "m", "text": "a"}, "missing required field `chat_id`"),
        ({"chat_id": "c", "message_id": "m", "file": {"url": "file:///etc/passwd"}}, "at `$.file.url`"),
        ({"chat_id": "c", "message_id": "m", "user": {"name": "x"}, "text": "a"}, "`id`"),
        ([1, 2], "Expected `object`, got `array`"),
    ],
)
async def test_bad_messages_get_400_saying_what_is_wrong(desk: Desk, message: Any, says: str) -> None:
    status, error, desc = refusal(await desk.signed(message))
    assert (status, error) == (400, "bad_request")
    assert says in desc


async def test_body_that_is_not_json_gets_400(desk: Desk) -> None:
    stamp = str(int(time.time()))
    body = b"chat_id=1&text=hi"
    answer = await desk.client.post(desk.url(), content=body,
                                    headers={TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(SECRET, stamp, body)})
    status, error, desc = refusal(answer)
    assert (status, error) == (400, "bad_request") and "not valid JSON" in desc


async def test_body_over_the_limit_gets_413(desk: Desk) -> None:
    status, error, desc = refusal(await desk.signed(text_message(text="x" * 4000)))
    assert (status, error) == (413, "too_large") and "2048 bytes" in desc


# ------------------------------------------------------------------ taking over


async def test_redelivered_message_id_reaches_platform_once(desk: Desk) -> None:
    assert (await desk.signed(text_message("m-1", "first"))).status_code == 200
    assert (await desk.signed(text_message("m-1", "first"))).status_code == 200
    assert (await desk.signed(text_message("m-2", "second"))).status_code == 200
    # Per-chat order: a duplicate that got through would arrive before "second".
    received = await desk.loop.emulator.wait_for_received(2)
    assert [r.body["message"]["text"] for r in received] == ["first", "second"]


async def test_not_taken_over_answers_503_so_the_company_retries(desk: Desk) -> None:
    def refuse(_accept: Submit) -> Submit:
        async def accept_inbound(channel_id: str, inbound: Inbound) -> None:
            raise RuntimeError("store down")

        return accept_inbound

    desk.loop.intercept_inbound(refuse)
    answer = await desk.signed(text_message())
    assert refusal(answer)[:2] == (503, "not_taken_over")
    assert answer.headers["retry-after"] == "1"


async def test_message_without_user_is_its_chats_visitor(desk: Desk) -> None:
    await desk.signed({"chat_id": "kiosk-7", "message_id": "m-1", "text": "hi"})
    await desk.signed({"chat_id": "kiosk-7", "message_id": "m-2", "button": {"id": "more"}})
    received = await desk.loop.emulator.wait_for_received(2)
    assert received[0].body["visitor"]["id"] == received[1].body["visitor"]["id"]
    assert received[1].body["message"]["data"] == {"button": {"id": "more", "text": "more"}}


# ------------------------------------------------------------------ files


async def test_file_url_stays_inside_and_is_streamed_through_the_bridge(desk: Desk) -> None:
    content = bytes(range(256)) * 64
    company_url = desk.company.add_file("scan.bin", content, "application/octet-stream")
    message = {"chat_id": "c-f", "message_id": "f-1", "file": {"url": company_url, "size": len(content)}}
    assert (await desk.signed(message)).status_code == 200
    body = (await desk.loop.emulator.wait_for_received(1))[0].body
    data = body["message"]["data"]
    assert (data["name"], data["content_type"], data["size"]) == ("scan.bin", "application/octet-stream", len(content))
    assert data["url"].startswith(f"{desk.loop.url}/files/")
    assert desk.company.url not in msgspec.json.encode(body).decode()
    fetched = await desk.client.get(data["url"])
    assert (fetched.status_code, fetched.content) == (200, content)
    # The company deleted the file: the bridge's link answers 404, not a stack trace.
    desk.company.files.clear()
    gone = await desk.client.get(data["url"])
    assert (gone.status_code, gone.json()["error"]) == (404, "not_found")
