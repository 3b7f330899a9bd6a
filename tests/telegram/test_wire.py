"""Parsing Telegram updates into the wire Structs: lenient on what is not modeled, strict on structure."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
import telegram
from telegram.constants import MessageType

from adapters.telegram import wire
from adapters.telegram.wire import CONTENT_FIELDS, UnreadableUpdate, Update, parse_update
from bridge.testing.telegram import FakeTelegram


@pytest.fixture
def tg() -> FakeTelegram:
    """Only the update builders are used here; no server runs."""
    return FakeTelegram()


def both(data: dict[str, Any]) -> Update:
    """Parse `data` as a webhook body and as an item of a getUpdates batch; both must agree."""
    data.setdefault("update_id", 1)
    from_body = parse_update(json.dumps(data).encode())
    assert parse_update(data) == from_body
    return from_body


def test_text_update(tg: FakeTelegram) -> None:
    update = both(tg.message_update(42, text="hi", message_id=7, from_user=tg.user(42, "Ann", "Lee", "ann")))
    assert update.message is not None
    assert (update.message.chat.id, update.message.message_id, update.message.text) == (42, 7, "hi")
    assert update.message.from_user == wire.User(id=42, is_bot=False, first_name="Ann", last_name="Lee",
                                                 username="ann")
    assert update.other_kind is None
    assert update.message.other_content is None


def test_fields_not_modeled_are_ignored_at_every_level(tg: FakeTelegram) -> None:
    data = tg.message_update(42, text="hi", entities=[{"type": "bold", "offset": 0, "length": 2}],
                             brand_new_flag={"x": 1})
    data["message"]["chat"]["is_forum"] = False
    data["message"]["from"]["language_code"] = "en"
    data["future_top_level"] = 1
    update = both(data)
    assert update.message is not None
    assert update.message.text == "hi"


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("channel_post", {"message_id": 1, "date": 1, "chat": {"id": -1001, "type": "channel", "title": "News"},
                          "text": "hello channel"}),
        ("my_chat_member", {"chat": {"id": 42, "type": "private"}, "date": 1}),
        ("brand_new_update_kind", {"x": 1}),
    ],
)
def test_update_kinds_the_bridge_does_not_forward_are_named(kind: str, payload: dict[str, Any]) -> None:
    update = both({"update_id": 9, kind: payload})
    assert (update.message, update.edited_message, update.callback_query) == (None, None, None)
    assert update.other_kind == kind


def test_an_update_with_nothing_in_it_has_no_kind() -> None:
    assert both({"update_id": 9, "message": None}).other_kind is None


@pytest.mark.parametrize(
    ("content", "name"),
    [
        ({"story": {"chat": {"id": 5, "type": "private"}, "id": 3}}, "story"),
        # Empty values name nothing (PTB read them as empty); an object does, even an empty one.
        ({"new_chat_members": [], "video_chat_started": {}}, "video_chat_started"),
        # MessageType's order decides, not the order of the JSON keys.
        ({"pinned_message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}},
          "delete_chat_photo": True}, "delete_chat_photo"),
        ({"effect_id": "5104841245755180586", "brand_new_content": {}}, "brand_new_content"),
        ({"forward_date": 1, "forward_origin": {"type": "hidden_user", "date": 1, "sender_user_name": "X"}}, None),
        ({}, None),
    ],
)
def test_content_not_modeled_is_named(tg: FakeTelegram, content: dict[str, Any], name: str | None) -> None:
    update = both(tg.message_update(42, **content))
    assert update.message is not None
    assert update.message.other_content == name


def test_an_edit_is_named_too(tg: FakeTelegram) -> None:
    update = both(tg.message_update(42, edit_date=1_700_000_000, story={"chat": tg.chat(42), "id": 1}))
    assert update.edited_message is not None
    assert update.edited_message.edit_date == 1_700_000_000
    assert update.edited_message.other_content == "story"


def test_fields_the_bridge_computes_cannot_come_from_telegram(tg: FakeTelegram) -> None:
    data = tg.message_update(42, text="hi")
    data["other_kind"] = "spoofed"
    data["message"]["other_content"] = "spoofed"
    update = both(data)
    assert update.other_kind is None
    assert update.message is not None
    assert update.message.other_content is None


@pytest.mark.parametrize(
    "change",
    [
        lambda u: u["message"].pop("chat"),
        lambda u: u["message"].pop("date"),
        lambda u: u["message"]["chat"].update(id="42"),
        lambda u: u["message"]["from"].pop("first_name"),
        lambda u: u["message"].update(text=5),
        lambda u: u["message"].update(photo={"file_id": "p"}),
        lambda u: u["message"].update(poll={"id": "p", "question": "?", "options": []}),
        lambda u: u["message"].update(sticker={"file_id": "s", "file_unique_id": "u"}),
        lambda u: u["message"].update(location={"latitude": "north", "longitude": 1.0}),
        lambda u: u.update(update_id="1"),
        lambda u: u.update(callback_query={"id": "q", "chat_instance": "c", "data": "x"}),
    ],
)
def test_wrong_structure_is_unreadable(tg: FakeTelegram, change: Any) -> None:
    data = tg.message_update(42, text="hi")
    data["update_id"] = 1
    change(data)
    with pytest.raises(UnreadableUpdate):
        parse_update(data)
    with pytest.raises(UnreadableUpdate):
        parse_update(json.dumps(data).encode())


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b"{}", b'{"message": {}}', b""])
def test_a_body_that_is_no_update_is_unreadable(body: bytes) -> None:
    with pytest.raises(UnreadableUpdate):
        parse_update(body)


def test_press_on_a_message_too_old_to_read(tg: FakeTelegram) -> None:
    update = both(tg.callback_update(42, "yes", message={"message_id": 5, "date": 0, "chat": tg.chat(42)}))
    assert update.callback_query is not None
    assert update.callback_query.message is not None
    assert update.callback_query.message.reply_markup is None


def test_field_lists_agree_with_ptb() -> None:
    """The lists were taken from PTB's `MessageType` (order included) and `Message`. A newer PTB may know more
    fields (a message whose only content is one of them is named after it anyway); what must hold is that the
    lists name no field PTB does not know, in PTB's order, so a message is named as PTB would name it."""
    not_content = {"effect_id", "business_connection_id", "sender_boost_count", "sender_business_bot",
                   "reply_to_story"}
    ptb_order = [t.value for t in MessageType if t.value not in not_content]
    assert [name for name in ptb_order if name in CONTENT_FIELDS] == list(CONTENT_FIELDS)
    ptb_fields = {"from" if p == "from_user" else p for p in inspect.signature(telegram.Message).parameters}
    deprecated = {name for name in wire._KNOWN_FIELDS if name.startswith("forward_")} | {"user_shared"}
    assert wire._KNOWN_FIELDS - deprecated <= ptb_fields
