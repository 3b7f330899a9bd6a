"""The HTTP adapter's callbacks over real HTTP: exact bodies, signatures the receiver snippet accepts, and how
each answer of the company is classified."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.http import HttpAdapter, HttpConfig
from adapters.http.adapter import retry_after_seconds
from bridge import (
    AdapterContext,
    Button,
    Inbound,
    Outbound,
    OutboundFile,
    OutboundKeyboard,
    OutboundText,
    PermanentSendError,
    RetryableSendError,
)
from bridge.store import open_store
from bridge.store.keyvalue import StoreKeyValue
from bridge.testing.conformance_loop import free_port
from tests.http_adapter.company import FakeCompany
from tests.http_adapter.receiver import verify_bridge_callback

SECRET = "inbound-secret-0123456789abcdef"
CALLBACK_SECRET = "callback-secret-0123456789abcdef"


async def started_adapter(tmp_path: Path, **settings: Any) -> AsyncIterator[HttpAdapter]:
    store = open_store(f"sqlite:///{tmp_path}/kv.db")
    await store.open()
    received: list[Inbound] = []

    async def submit(inbound: Inbound) -> None:
        received.append(inbound)

    config = msgspec.convert({"auth": "hmac", "secret": SECRET, **settings}, HttpConfig)
    adapter = HttpAdapter(config, AdapterContext(channel_id="desk", submit=submit, kv=StoreKeyValue(store, "a:desk")))
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.stop()
        await store.close()


@pytest.fixture
async def company() -> AsyncIterator[FakeCompany]:
    async with FakeCompany.running(CALLBACK_SECRET) as fake:
        yield fake


@pytest.fixture
async def adapter(tmp_path: Path, company: FakeCompany) -> AsyncIterator[HttpAdapter]:
    async for started in started_adapter(tmp_path, callback_url=company.callback_url, callback_secret=CALLBACK_SECRET,
                                         timeout=0.5):
        yield started


def out(content: Any, message_id: str = "id:abc:0") -> Outbound:
    return Outbound(chat_id=7, native_chat_id="ticket-1", message_id=message_id, content=content)


async def test_text_keyboard_and_file_bodies_are_exact_and_signed(adapter: HttpAdapter, company: FakeCompany) -> None:
    await adapter.send(out(OutboundText("Hello ✓")))
    await adapter.send(out(OutboundKeyboard(rows=[[Button("y", "Yes"), Button("n", "No")]], text="Sure?"), "k:1"))
    await adapter.send(out(OutboundFile(url="https://p.example/f.pdf", name="f.pdf", content_type="application/pdf",
                                        size=10), "f:2"))
    base = {"channel_id": "desk", "chat_id": "ticket-1"}
    assert [c.body for c in company.callbacks] == [
        {**base, "message_id": "id:abc:0", "type": "text", "text": "Hello ✓"},
        {**base, "message_id": "k:1", "type": "keyboard", "text": "Sure?",
         "buttons": [[{"id": "y", "text": "Yes"}, {"id": "n", "text": "No"}]]},
        {**base, "message_id": "f:2", "type": "file",
         "file": {"url": "https://p.example/f.pdf", "name": "f.pdf", "content_type": "application/pdf", "size": 10}},
    ]
    assert all(c.verified for c in company.callbacks)
    assert [c.headers["Idempotency-Key"] for c in company.callbacks] == ["id:abc:0", "k:1", "f:2"]


async def test_receiver_snippet_refuses_tampering_wrong_key_and_age(adapter: HttpAdapter, company: FakeCompany) -> None:
    await adapter.send(out(OutboundText("signed")))
    callback = company.callbacks[0]
    raw = callback.raw
    assert verify_bridge_callback(CALLBACK_SECRET, callback.headers, raw)
    assert not verify_bridge_callback(CALLBACK_SECRET, callback.headers, raw.replace(b"signed", b"forged"))
    assert not verify_bridge_callback("another-secret-0123456789abcdef", callback.headers, raw)
    assert not verify_bridge_callback(CALLBACK_SECRET, callback.headers, raw, now=time.time() + 301)


async def test_callback_secret_defaults_to_the_inbound_secret(tmp_path: Path, company: FakeCompany) -> None:
    company.callback_secret = SECRET
    async for adapter in started_adapter(tmp_path, callback_url=company.callback_url):
        await adapter.send(out(OutboundText("x")))
    assert company.callbacks[0].verified


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
async def test_client_errors_are_permanent(adapter: HttpAdapter, company: FakeCompany, status: int) -> None:
    company.answer = (status, None)
    with pytest.raises(PermanentSendError, match=f"answered {status}"):
        await adapter.send(out(OutboundText("x")))


@pytest.mark.parametrize(("status", "retry_after", "expected"), [
    (408, None, None), (429, "12", 12.0), (500, None, None), (502, None, None), (503, "3", 3.0),
])
async def test_passing_failures_are_retryable(adapter: HttpAdapter, company: FakeCompany, status: int,
                                              retry_after: str | None, expected: float | None) -> None:
    company.answer = (status, retry_after)
    with pytest.raises(RetryableSendError) as caught:
        await adapter.send(out(OutboundText("x")))
    assert caught.value.retry_after == expected


async def test_retry_after_as_http_date(adapter: HttpAdapter, company: FakeCompany) -> None:
    company.answer = (429, formatdate(time.time() + 60, usegmt=True))
    with pytest.raises(RetryableSendError) as caught:
        await adapter.send(out(OutboundText("x")))
    assert caught.value.retry_after is not None and 55 <= caught.value.retry_after <= 61


async def test_redirect_is_permanent(adapter: HttpAdapter, company: FakeCompany) -> None:
    company.answer = (301, None)
    with pytest.raises(PermanentSendError, match="answered 301"):
        await adapter.send(out(OutboundText("x")))


async def test_timeout_is_retryable(adapter: HttpAdapter, company: FakeCompany) -> None:
    company.delay = 1.0  # the adapter waits 0.5 s
    with pytest.raises(RetryableSendError, match="timed out"):
        await adapter.send(out(OutboundText("x")))


async def test_refused_connection_is_retryable(tmp_path: Path) -> None:
    async for adapter in started_adapter(tmp_path, callback_url=f"http://127.0.0.1:{free_port()}/cb",
                                         callback_secret=CALLBACK_SECRET):
        with pytest.raises(RetryableSendError, match="could not be delivered"):
            await adapter.send(out(OutboundText("x")))


def test_retry_after_values() -> None:
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("99999999") == 24 * 3600.0
    assert retry_after_seconds(formatdate(1000.0, usegmt=True), now=990.0) == 10.0
    assert retry_after_seconds(formatdate(1000.0, usegmt=True), now=2000.0) == 0.0


@pytest.mark.parametrize(("settings", "says"), [
    ({"auth": "bearer", "callback_url": "http://x/cb", "callback_secret": CALLBACK_SECRET}, "needs `token`"),
    ({"auth": "bearer", "token": SECRET, "callback_url": "http://x/cb"}, "needs `callback_secret`"),
    ({"auth": "hmac", "callback_url": "http://x/cb"}, "needs `secret`"),
    ({"auth": "hmac", "secret": "short", "callback_url": "http://x/cb"}, "at least 16"),
    ({"auth": "hmac", "secret": SECRET, "callback_url": "ftp://x/cb"}, "http(s) URL"),
    ({"auth": "hmac", "secret": SECRET, "callback_url": "http://x/cb", "max_skew": 0}, "max_skew must be positive"),
    ({"auth": "basic", "secret": SECRET, "callback_url": "http://x/cb"}, "Invalid enum value 'basic' - at `$.auth`"),
    ({"auth": "hmac", "secret": SECRET, "callback_url": "http://x/cb", "secert": "x"}, "unknown field `secert`"),
])
def test_config_errors_say_what_is_wrong(settings: dict[str, Any], says: str) -> None:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.convert(settings, HttpConfig)
    assert says in str(caught.value)


def test_config_repr_hides_secrets() -> None:
    config = msgspec.convert({"auth": "hmac", "secret": SECRET, "callback_url": "http://x/cb",
                              "callback_secret": CALLBACK_SECRET}, HttpConfig)
    assert SECRET not in repr(config) and CALLBACK_SECRET not in repr(config)
