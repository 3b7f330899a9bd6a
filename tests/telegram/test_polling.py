"""Polling mode against the fake Bot API: the getUpdates loop, offsets moved only after taking over."""

from __future__ import annotations

import pytest

from adapters.telegram import TelegramAdapter
from adapters.telegram.adapter import ALLOWED_UPDATES
from bridge.adapter import AdapterContext
from bridge.messages import InboundButton, InboundFile, InboundText, Outbound, OutboundKeyboard
from bridge.protocol import Button
from bridge.testing.telegram import FakeTelegram
from tests.telegram.conftest import Core, MakeAdapter, telegram_config

PHOTO = [{"file_id": "ph-1", "file_unique_id": "u1", "width": 10, "height": 10, "file_size": 100}]


async def test_start_clears_webhook_and_takes_text_over(tg: FakeTelegram, adapter: TelegramAdapter,
                                                        core: Core) -> None:
    assert [c.method for c in tg.calls[:2]] == ["getMe", "deleteWebhook"]
    update_id = tg.push_update(tg.message_update(42, text="hello", message_id=7))
    taken = await core.wait_taken(1)
    assert taken[0].content == InboundText("hello")
    assert taken[0].native_message_id == "42:7"
    await tg.wait_confirmed(update_id + 1)
    poll = tg.calls_to("getUpdates")[0]
    assert poll.params["allowed_updates"] == list(ALLOWED_UPDATES)
    assert poll.params["timeout"] == 1


async def test_refused_update_is_fetched_again(tg: FakeTelegram, adapter: TelegramAdapter, core: Core) -> None:
    core.refuse_once()
    update_id = tg.push_update(tg.message_update(42, text="again", message_id=3))
    taken = await core.wait_taken(1)
    assert [i.native_message_id for i in core.attempts] == ["42:3", "42:3"]
    assert taken[0].content == InboundText("again")
    # Redelivery proves the offset had not moved: the fake drops confirmed updates.
    await tg.wait_confirmed(update_id + 1)


async def test_offset_waits_for_every_message_of_an_update(tg: FakeTelegram, adapter: TelegramAdapter,
                                                           core: Core) -> None:
    core.refuse_once(lambda inbound: inbound.native_message_id.endswith(":caption"))
    tg.push_update(tg.message_update(42, message_id=5, photo=PHOTO, caption="look"))
    await core.wait_taken(3)
    # The file is submitted again with the caption; the core recognises it by its id.
    assert [i.native_message_id for i in core.attempts] == ["42:5", "42:5:caption", "42:5", "42:5:caption"]
    assert [i.native_message_id for i in core.taken] == ["42:5", "42:5", "42:5:caption"]
    assert isinstance(core.taken[0].content, InboundFile)
    assert core.taken[2].content == InboundText("look")


async def test_batch_stops_at_the_refused_update_and_keeps_order(tg: FakeTelegram, adapter: TelegramAdapter,
                                                                 core: Core) -> None:
    core.refuse_once(lambda inbound: inbound.content == InboundText("two"))
    await adapter.stop()  # queue three updates so they arrive in one batch
    for text in ("one", "two", "three"):
        tg.push_update(tg.message_update(42, text=text))
    await adapter.start()
    await core.wait_taken(3)
    assert [i.content for i in core.taken] == [InboundText("one"), InboundText("two"), InboundText("three")]
    assert [i.content for i in core.attempts].count(InboundText("one")) == 1


async def test_polling_survives_telegram_errors(tg: FakeTelegram, make_adapter: MakeAdapter, core: Core) -> None:
    tg.fail("getUpdates", error_code=500, times=2)
    tg.fail("getUpdates", error_code=409, description="Conflict: terminated by other getUpdates request")
    await make_adapter()
    tg.push_update(tg.message_update(42, text="still here"))
    taken = await core.wait_taken(1)
    assert taken[0].content == InboundText("still here")
    assert len(tg.calls_to("getUpdates")) >= 4


@pytest.mark.filterwarnings("ignore:Please use 'Bot.getUpdates'")
async def test_unreadable_update_is_skipped_not_blocking(tg: FakeTelegram, adapter: TelegramAdapter,
                                                         core: Core) -> None:
    # A poll without the fields this PTB version requires: PTB cannot build an Update from it.
    bad = tg.message_update(42, poll={"id": "p", "question": "?", "options": []})
    bad_id = tg.push_update(bad)
    tg.push_update(tg.message_update(42, text="after"))
    taken = await core.wait_taken(1)
    assert taken[0].content == InboundText("after")
    assert adapter.stats["unreadable"] == 1
    await tg.wait_confirmed(bad_id + 2)


async def test_button_press_resolves_long_id_and_is_answered(tg: FakeTelegram, adapter: TelegramAdapter,
                                                             core: Core) -> None:
    long_id = "order:" + "x" * 80
    await adapter.send(Outbound(1, "42", "m1", OutboundKeyboard(rows=[[Button(long_id, "Buy")]], text="Menu")))
    sent = tg.sent_to(42)[-1]
    data = sent["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    assert data != long_id
    tg.push_update(tg.callback_update(42, data, message=sent, query_id="q-1"))
    taken = await core.wait_taken(1)
    assert taken[0].content == InboundButton(button_id=long_id, text="Buy")
    assert taken[0].native_message_id == "cb:q-1"
    answered = await tg.wait_for("answerCallbackQuery")
    assert answered[0].params["callback_query_id"] == "q-1"


async def test_press_with_unknown_token_arrives_as_text(tg: FakeTelegram, adapter: TelegramAdapter,
                                                        core: Core) -> None:
    message = {"message_id": 9, "date": 1, "chat": tg.chat(42), "text": "Menu",
               "reply_markup": {"inline_keyboard": [[{"text": "Old offer", "callback_data": "~t:gone"}]]}}
    tg.push_update(tg.callback_update(42, "~t:gone", message=message, query_id="q-2"))
    taken = await core.wait_taken(1)
    assert taken[0].content == InboundText("Old offer")
    await tg.wait_for("answerCallbackQuery")
    assert adapter.stats["expired_button"] == 1


async def test_refused_press_is_still_answered_and_redelivered(tg: FakeTelegram, adapter: TelegramAdapter,
                                                               core: Core) -> None:
    core.refuse_once()
    tg.push_update(tg.callback_update(42, "yes", query_id="q-3"))
    await core.wait_taken(1)
    answers = await tg.wait_for("answerCallbackQuery", 2)
    assert {a.params["callback_query_id"] for a in answers} == {"q-3"}


async def test_ignored_group_is_counted_and_confirmed(tg: FakeTelegram, adapter: TelegramAdapter,
                                                      core: Core) -> None:
    group_id = tg.push_update(tg.message_update(-100200, text="hi all"))
    tg.push_update(tg.message_update(42, text="private"))
    taken = await core.wait_taken(1)
    assert taken[0].content == InboundText("private")
    assert adapter.stats["skipped:group"] == 1
    assert core.dropped == ["text"]
    await tg.wait_confirmed(group_id + 2)


async def test_group_chat_mode_forwards_groups(tg: FakeTelegram, make_adapter: MakeAdapter, core: Core) -> None:
    await make_adapter(groups="chat")
    tg.push_update(tg.message_update(-100200, text="hi all", from_user=tg.user(7, "Bo")))
    taken = await core.wait_taken(1)
    assert (taken[0].native_chat_id, taken[0].sender.native_user_id) == ("-100200", "7")
    assert core.dropped == []


async def test_ignored_edits_are_counted(tg: FakeTelegram, make_adapter: MakeAdapter, core: Core) -> None:
    await make_adapter(edits="ignore")
    tg.push_update(tg.message_update(42, text="typo fixed", edit_date=1_700_000_000))
    tg.push_update(tg.message_update(42, text="next"))
    taken = await core.wait_taken(1)
    assert taken[0].content == InboundText("next")
    assert core.dropped == ["edit"]


async def test_stop_confirms_the_offset(tg: FakeTelegram, adapter: TelegramAdapter, core: Core) -> None:
    update_id = tg.push_update(tg.message_update(42, text="bye"))
    await core.wait_taken(1)
    await adapter.stop()
    last = tg.calls_to("getUpdates")[-1]
    assert last.params["offset"] == update_id + 1
    assert tg.confirmed_offset == update_id + 1
    assert not adapter.started


async def test_mode_follows_the_public_url(tg: FakeTelegram, core: Core, kv: object) -> None:
    def mode(public_url: str | None) -> str:
        context = AdapterContext(channel_id="tg", submit=core.submit, kv=kv, public_url=public_url)  # type: ignore[arg-type]
        adapter = TelegramAdapter(telegram_config(tg, mode=None), context)
        assert bool(adapter.route_handlers()) == (adapter.mode == "webhook")
        return adapter.mode

    assert mode(None) == "polling"
    assert mode("http://bridge.example") == "polling"
    assert mode("https://bridge.example") == "webhook"
