"""Webhook mode: the adapter's route mounted under /channels/tg in a Litestar app on a loopback port."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from litestar import Litestar, Router

from adapters.telegram import TelegramAdapter
from adapters.telegram.adapter import ALLOWED_UPDATES, SECRET_HEADER
from bridge.adapter import AdapterContext, AdapterError
from bridge.messages import InboundButton, InboundText
from bridge.store.keyvalue import StoreKeyValue
from bridge.testing.server import serve
from bridge.testing.telegram import FakeTelegram
from tests.telegram.conftest import Core, telegram_config

StartWebhook = Callable[..., Awaitable[TelegramAdapter]]


@pytest.fixture
async def start_webhook(tg: FakeTelegram, kv: StoreKeyValue, core: Core) -> AsyncIterator[StartWebhook]:
    """Serve a webhook-mode adapter's routes on loopback, with the public URL pointing at that server."""
    adapters: list[TelegramAdapter] = []
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: Any) -> TelegramAdapter:
            context = AdapterContext(channel_id="tg", submit=core.submit, kv=kv, route_prefix="/channels/tg")
            adapter = TelegramAdapter(telegram_config(tg, mode="webhook", **overrides), context)
            routes = [Router(path="/channels/tg", route_handlers=list(adapter.route_handlers()))]
            app = Litestar(route_handlers=routes, logging_config=None)
            server = await stack.enter_async_context(serve(app))
            context.public_url = server.url
            await adapter.start()
            adapters.append(adapter)
            return adapter

        yield start
        for adapter in adapters:
            await adapter.stop()


async def test_set_webhook_with_generated_secret_kept_in_the_store(
    tg: FakeTelegram, start_webhook: StartWebhook, kv: StoreKeyValue
) -> None:
    await start_webhook()
    (call,) = tg.calls_to("setWebhook")
    assert call.params["url"].endswith("/channels/tg/telegram/webhook")
    assert call.params["url"].startswith("http://127.0.0.1:")
    assert call.params["allowed_updates"] == list(ALLOWED_UPDATES)
    secret = call.params["secret_token"]
    assert len(secret) >= 32
    assert await kv.get("webhook_secret") == secret.encode()
    # A second replica (or a restart) on the same store uses the same secret.
    await start_webhook()
    assert tg.calls_to("setWebhook")[1].params["secret_token"] == secret


async def test_configured_secret_is_used(tg: FakeTelegram, start_webhook: StartWebhook, kv: StoreKeyValue) -> None:
    await start_webhook(webhook_secret="my-own_Secret-1")
    assert tg.webhook_secret == "my-own_Secret-1"
    assert await kv.get("webhook_secret") is None


async def test_update_taken_over_answers_200(tg: FakeTelegram, start_webhook: StartWebhook, core: Core) -> None:
    await start_webhook()
    response = await tg.post_webhook(tg.message_update(42, text="via webhook", message_id=11))
    assert response.status_code == 200
    assert core.taken[0].content == InboundText("via webhook")
    assert core.taken[0].native_message_id == "42:11"


@pytest.mark.parametrize("secret", ["wrong-secret", ""])
async def test_wrong_or_missing_secret_is_401(tg: FakeTelegram, start_webhook: StartWebhook, core: Core,
                                              secret: str) -> None:
    await start_webhook()
    response = await tg.post_webhook(tg.message_update(42, text="forged"), secret=secret)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert core.attempts == []


async def test_not_taken_over_is_500_then_redelivery_succeeds(tg: FakeTelegram, start_webhook: StartWebhook,
                                                              core: Core) -> None:
    await start_webhook()
    core.refuse_once()
    update = tg.message_update(42, text="retry me", message_id=12)
    first = await tg.post_webhook(update)
    assert first.status_code == 500
    assert core.taken == []
    second = await tg.post_webhook(update)  # Telegram redelivers the same update
    assert second.status_code == 200
    assert [i.native_message_id for i in core.taken] == ["42:12"]


async def test_body_that_is_not_an_update_is_400(tg: FakeTelegram, start_webhook: StartWebhook, core: Core) -> None:
    await start_webhook()
    assert tg.webhook_url and tg.webhook_secret
    async with httpx.AsyncClient() as client:
        for body in (b"not json", b"[1, 2]", b'{"message": {}}'):
            response = await client.post(tg.webhook_url, content=body, headers={SECRET_HEADER: tg.webhook_secret})
            assert response.status_code == 400, body
    assert core.attempts == []


async def test_unreadable_update_is_acknowledged_and_counted(tg: FakeTelegram, start_webhook: StartWebhook,
                                                             core: Core) -> None:
    adapter = await start_webhook()
    response = await tg.post_webhook(tg.message_update(42, poll={"id": "p", "question": "?", "options": []}))
    assert response.status_code == 200
    assert adapter.stats["unreadable"] == 1
    assert core.attempts == []


async def test_button_press_via_webhook_is_answered(tg: FakeTelegram, start_webhook: StartWebhook,
                                                    core: Core) -> None:
    await start_webhook()
    response = await tg.post_webhook(tg.callback_update(42, "yes", query_id="wq-1"))
    assert response.status_code == 200
    assert core.taken[0].content == InboundButton("yes", "yes")
    assert tg.calls_to("answerCallbackQuery")[0].params["callback_query_id"] == "wq-1"


async def test_webhook_mode_without_public_url_fails_clearly(tg: FakeTelegram, kv: StoreKeyValue,
                                                             core: Core) -> None:
    context = AdapterContext(channel_id="tg", submit=core.submit, kv=kv)
    adapter = TelegramAdapter(telegram_config(tg, mode="webhook"), context)
    with pytest.raises(AdapterError, match="public_url"):
        await adapter.start()
    assert not adapter.started
    assert tg.calls_to("setWebhook") == []


async def test_route_refuses_before_start(tg: FakeTelegram, kv: StoreKeyValue, core: Core) -> None:
    context = AdapterContext(channel_id="tg", submit=core.submit, kv=kv)
    adapter = TelegramAdapter(telegram_config(tg, mode="webhook"), context)
    status, _ = await adapter.handle_webhook("anything", b"{}")
    assert status == 503


async def test_wrong_token_fails_start_clearly(tg: FakeTelegram, kv: StoreKeyValue, core: Core) -> None:
    context = AdapterContext(channel_id="tg", submit=core.submit, kv=kv, public_url="http://127.0.0.1:1")
    config = telegram_config(tg, mode="polling", bot_token="999:WRONG-token-000000000000000")
    adapter = TelegramAdapter(config, context)
    with pytest.raises(AdapterError, match="bot token"):
        await adapter.start()
    assert not adapter.started


async def test_token_and_secret_stay_out_of_library_logs(tg: FakeTelegram, start_webhook: StartWebhook,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await start_webhook()
    assert tg.webhook_secret
    response = await tg.post_webhook(tg.message_update(42, text="hi"))
    assert response.status_code == 200
    token_secret = tg.token.partition(":")[2]
    texts = [record.getMessage() for record in caplog.records]
    assert any("setWebhook" in text for text in texts), "PTB logged its calls (else this test proves nothing)"
    assert any("<redacted>" in text for text in texts)
    assert not [t for t in texts if token_secret in t or tg.webhook_secret in t]


async def test_refused_webhook_fails_start_clearly(tg: FakeTelegram, kv: StoreKeyValue, core: Core) -> None:
    tg.fail("setWebhook", error_code=400, description="Bad Request: bad webhook: HTTPS url must be provided")
    context = AdapterContext(channel_id="tg", submit=core.submit, kv=kv, public_url="http://bridge.example",
                             route_prefix="/channels/tg")
    adapter = TelegramAdapter(telegram_config(tg, mode="webhook"), context)
    with pytest.raises(AdapterError, match=r"refused the webhook http://bridge\.example/channels/tg/telegram/webhook"):
        await adapter.start()
    assert not adapter.started
