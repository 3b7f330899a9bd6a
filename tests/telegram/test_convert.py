"""Pure conversion: Telegram updates (as the Bot API sends them) to inbound messages, and outbound helpers."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from adapters.telegram.convert import (
    CALLBACK_TOKEN_PREFIX,
    Converted,
    ConvertOptions,
    button_rows,
    callback_data_for,
    convert_update,
    file_kind,
    link_text,
)
from adapters.telegram.wire import parse_update
from bridge.messages import Button, Inbound, InboundButton, InboundFile, InboundText, OutboundFile, Sender
from bridge.testing.telegram import DEFAULT_TOKEN, FakeTelegram

ANN = {"id": 42, "is_bot": False, "first_name": "Ann", "last_name": "Lee", "username": "ann"}
DEFAULTS = ConvertOptions()


@pytest.fixture
def tg() -> FakeTelegram:
    """Only the update builders are used here; no server runs."""
    return FakeTelegram()


def convert(data: dict[str, Any], options: ConvertOptions = DEFAULTS) -> Converted:
    data.setdefault("update_id", 1)
    return convert_update(parse_update(data), options)


def only(data: dict[str, Any], options: ConvertOptions = DEFAULTS) -> Inbound:
    converted = convert(data, options)
    assert len(converted.inbounds) == 1, converted
    return converted.inbounds[0]


def test_text_with_sender_profile(tg: FakeTelegram) -> None:
    inbound = only(tg.message_update(42, text="*hi* <b>", message_id=7, from_user=ANN))
    assert inbound == Inbound(
        native_chat_id="42",
        native_message_id="42:7",
        sender=Sender(native_user_id="42", name="Ann Lee", login="ann"),
        content=InboundText("*hi* <b>"),
    )


def test_photo_takes_largest_size_and_caption_follows(tg: FakeTelegram) -> None:
    sizes = [
        {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 60, "file_size": 1000},
        {"file_id": "large", "file_unique_id": "l", "width": 1280, "height": 853, "file_size": 90000},
        {"file_id": "medium", "file_unique_id": "m", "width": 320, "height": 213, "file_size": 9000},
    ]
    converted = convert(tg.message_update(42, message_id=8, photo=sizes, caption="look"))
    file, caption = converted.inbounds
    assert file.native_message_id == "42:8"
    assert file.content == InboundFile(file_ref="large", name="photo_8.jpg", content_type="image/jpeg", size=90000)
    assert caption.native_message_id == "42:8:caption"
    assert caption.content == InboundText("look")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"document": {"file_id": "d1", "file_unique_id": "u", "file_name": "report", "mime_type": "application/pdf",
                       "file_size": 5}}, InboundFile("d1", "report.pdf", "application/pdf", 5)),
        ({"document": {"file_id": "d2", "file_unique_id": "u", "file_name": "notes.txt"}},
         InboundFile("d2", "notes.txt", "text/plain", 0)),
        ({"document": {"file_id": "d3", "file_unique_id": "u"}},
         InboundFile("d3", "document_9.bin", "application/octet-stream", 0)),
        ({"video": {"file_id": "v", "file_unique_id": "u", "width": 1, "height": 1, "duration": 3,
                    "mime_type": "video/mp4", "file_size": 77}}, InboundFile("v", "video_9.mp4", "video/mp4", 77)),
        ({"audio": {"file_id": "a", "file_unique_id": "u", "duration": 3, "performer": "Band", "title": "Song",
                    "mime_type": "audio/mpeg"}}, InboundFile("a", "Band - Song.mp3", "audio/mpeg", 0)),
        ({"voice": {"file_id": "vo", "file_unique_id": "u", "duration": 2, "mime_type": "audio/ogg",
                    "file_size": 12}}, InboundFile("vo", "voice_9.ogg", "audio/ogg", 12)),
        ({"video_note": {"file_id": "vn", "file_unique_id": "u", "length": 240, "duration": 4}},
         InboundFile("vn", "video_note_9.mp4", "video/mp4", 0)),
        # Telegram also sets `document` on animations; the animation wins.
        ({"animation": {"file_id": "an", "file_unique_id": "u", "width": 1, "height": 1, "duration": 1,
                        "file_name": "cat.gif.mp4", "mime_type": "video/mp4"},
          "document": {"file_id": "an", "file_unique_id": "u", "file_name": "cat.gif.mp4"}},
         InboundFile("an", "cat.gif.mp4", "video/mp4", 0)),
        ({"sticker": {"file_id": "st", "file_unique_id": "u", "type": "regular", "width": 512, "height": 512,
                      "is_animated": False, "is_video": False}}, InboundFile("st", "sticker_9.webp", "image/webp", 0)),
        ({"sticker": {"file_id": "st2", "file_unique_id": "u", "type": "regular", "width": 512, "height": 512,
                      "is_animated": True, "is_video": False}},
         InboundFile("st2", "sticker_9.tgs", "application/x-tgsticker", 0)),
        ({"sticker": {"file_id": "st3", "file_unique_id": "u", "type": "regular", "width": 512, "height": 512,
                      "is_animated": False, "is_video": True}}, InboundFile("st3", "sticker_9.webm", "video/webm", 0)),
    ],
)
def test_every_file_type(tg: FakeTelegram, fields: dict[str, Any], expected: InboundFile) -> None:
    inbound = only(tg.message_update(42, message_id=9, **fields))
    assert inbound.content == expected
    assert inbound.native_message_id == "42:9"


def test_inbound_never_carries_the_token_or_a_telegram_url(tg: FakeTelegram) -> None:
    photo = [{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}]
    inbounds = convert(tg.message_update(42, photo=photo, caption="c")).inbounds
    encoded = msgspec.json.encode(inbounds)
    assert DEFAULT_TOKEN.encode() not in encoded
    assert b"api.telegram.org" not in encoded
    assert isinstance(inbounds[0].content, InboundFile)
    assert inbounds[0].content.url is None  # the core signs its own proxy URL


def test_own_contact_sets_phone_other_contact_does_not(tg: FakeTelegram) -> None:
    own = {"phone_number": "+79990001122", "first_name": "Ann", "user_id": 42}
    inbound = only(tg.message_update(42, message_id=3, contact=own, from_user=ANN))
    assert inbound.sender.phone == "+79990001122"
    assert inbound.content == InboundText("contact:+79990001122 Ann")
    other = {"phone_number": "+10000000000", "first_name": "Bob", "last_name": "Roe", "user_id": 77}
    inbound = only(tg.message_update(42, message_id=4, contact=other, from_user=ANN))
    assert inbound.sender.phone is None
    assert inbound.content == InboundText("contact:+10000000000 Bob Roe")


def test_location_and_venue(tg: FakeTelegram) -> None:
    location = {"latitude": 55.75, "longitude": 37.61}
    assert only(tg.message_update(42, location=location)).content == InboundText("location:55.75,37.61")
    venue = {"location": {"latitude": 55.7520233, "longitude": 37.6174994}, "title": "Kremlin", "address": "Moscow"}
    inbound = only(tg.message_update(42, venue=venue, location=venue["location"]))
    assert inbound.content == InboundText("location:55.752023,37.617499\nKremlin, Moscow")


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"poll": {"id": "p", "question": "Tea?", "options": [{"text": "Yes", "voter_count": 0, "persistent_id": "1"},
                                                              {"text": "No", "voter_count": 0, "persistent_id": "2"}],
                   "total_voter_count": 0, "is_closed": False, "is_anonymous": True, "type": "regular",
                   "allows_multiple_answers": False, "allows_revoting": False,
                   "members_only": False}}, "[poll] Tea?: Yes / No"),
        ({"dice": {"emoji": "🎲", "value": 4}}, "[dice] 🎲 4"),
        ({"game": {"title": "Snake", "description": "d", "photo": []}}, "[game] Snake"),
        ({"story": {"chat": {"id": 5, "type": "private"}, "id": 3}}, "[story]"),
        ({"brand_new_content": {"x": 1}}, "[brand_new_content]"),
        ({}, "[message]"),
    ],
)
def test_other_types_are_named_never_dropped(tg: FakeTelegram, fields: dict[str, Any], text: str) -> None:
    assert only(tg.message_update(42, **fields)).content == InboundText(text)


def test_edits_forwarded_with_marker_and_stable_id(tg: FakeTelegram) -> None:
    update = tg.message_update(42, text="fixed", message_id=7, edit_date=1_700_000_000)
    inbound = only(update)
    assert inbound.native_message_id == "42:7:edit:1700000000"
    assert inbound.content == InboundText("(edited) fixed")
    assert convert(update, ConvertOptions(edits="ignore")) == Converted(skipped="edit", dropped="edit")


def test_live_location_updates_are_not_edits(tg: FakeTelegram) -> None:
    update = tg.message_update(42, edit_date=1, location={"latitude": 1.0, "longitude": 2.0, "live_period": 60})
    assert convert(update) == Converted(skipped="edit:live_location")


def test_groups_ignored_or_chatted(tg: FakeTelegram) -> None:
    update = tg.message_update(-100123, text="hi all", message_id=5, from_user=ANN)
    assert convert(update) == Converted(skipped="group", dropped="text")
    photo = [{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}]
    assert convert(tg.message_update(-100123, photo=photo)).dropped == "file"
    assert convert(tg.message_update(-100123, dice={"emoji": "x", "value": 1})).dropped == "other"
    inbound = only(update, ConvertOptions(groups="chat"))
    assert (inbound.native_chat_id, inbound.native_message_id) == ("-100123", "-100123:5")
    assert inbound.sender.native_user_id == "42"


def test_anonymous_group_admin_speaks_as_the_group(tg: FakeTelegram) -> None:
    update = tg.message_update(-100123, text="hi", from_user=None)
    update["message"].pop("from")
    inbound = only(update, ConvertOptions(groups="chat"))
    assert inbound.sender == Sender(native_user_id="-100123", name="Group 100123")


def test_button_press_resolves_button_text_from_the_keyboard(tg: FakeTelegram) -> None:
    message = {"message_id": 50, "date": 1, "chat": tg.chat(42), "text": "Pick",
               "reply_markup": {"inline_keyboard": [[{"text": "Yes please", "callback_data": "yes"},
                                                     {"text": "No", "callback_data": "no"}]]}}
    converted = convert(tg.callback_update(42, "yes", message=message, from_user=ANN, query_id="q77"))
    assert converted.callback_query_id == "q77"
    assert converted.inbounds == [
        Inbound("42", "cb:q77", Sender("42", "Ann Lee", "ann"), InboundButton(button_id="yes", text="Yes please"))
    ]


def test_group_press_ignored_but_still_answered(tg: FakeTelegram) -> None:
    converted = convert(tg.callback_update(-100, "yes", query_id="q1"))
    assert converted == Converted(skipped="group", dropped="button", callback_query_id="q1")


def test_press_on_inaccessible_message_keeps_the_chat(tg: FakeTelegram) -> None:
    message = {"message_id": 50, "date": 0, "chat": tg.chat(42)}
    inbound = only(tg.callback_update(42, "yes", message=message, query_id="q2"))
    assert inbound.content == InboundButton("yes", "yes")


def test_other_update_types_are_skipped_with_a_reason(tg: FakeTelegram) -> None:
    data = {"my_chat_member": {"chat": tg.chat(42), "from": ANN, "date": 1,
                               "old_chat_member": {"status": "member", "user": tg.bot_user},
                               "new_chat_member": {"status": "kicked", "user": tg.bot_user, "until_date": 0}}}
    assert convert(data) == Converted(skipped="update:my_chat_member")


# --------------------------------------------------------------------------- outbound helpers


def test_callback_data_raw_when_it_fits() -> None:
    assert callback_data_for("yes") == ("yes", False)
    exactly_64 = "я" * 32  # 64 bytes in UTF-8
    assert callback_data_for(exactly_64) == (exactly_64, False)


@pytest.mark.parametrize("button_id", ["x" * 65, "я" * 33, CALLBACK_TOKEN_PREFIX + "abc", ""])
def test_callback_data_tokenized_when_too_long_or_ambiguous(button_id: str) -> None:
    data, stored = callback_data_for(button_id)
    assert stored
    assert data.startswith(CALLBACK_TOKEN_PREFIX)
    assert len(data.encode()) <= 64
    assert callback_data_for(button_id) == (data, True), "tokens are deterministic"
    assert callback_data_for(button_id + "!")[0] != data


def test_button_rows_keep_rows_and_wrap_wide_ones() -> None:
    rows = [[Button(f"b{i}", f"B{i}") for i in range(10)], [Button("x", "  ")]]
    (markup,) = button_rows(rows, lambda b: b.id, per_row=8, max_buttons=100)
    layout = [[button.callback_data for button in row] for row in markup.inline_keyboard]
    assert layout == [[f"b{i}" for i in range(8)], ["b8", "b9"], ["x"]]
    assert markup.inline_keyboard[2][0].text == "x", "a blank label falls back to the id"


def test_more_than_100_buttons_spill_into_another_keyboard() -> None:
    rows = [[Button(f"{r}-{c}", "t") for c in range(8)] for r in range(13)]  # 104 buttons
    markups = button_rows(rows, lambda b: b.id, per_row=8, max_buttons=100)
    counts = [sum(len(row) for row in m.inline_keyboard) for m in markups]
    assert counts == [96, 8]


@pytest.mark.parametrize(
    ("content_type", "name", "kind"),
    [
        ("image/jpeg", None, "photo"),
        ("image/png; charset=binary", None, "photo"),
        ("video/mp4", None, "video"),
        ("audio/mpeg", None, "audio"),
        ("application/pdf", None, "document"),
        ("image/svg+xml", None, "document"),
        (None, "song.mp3", "audio"),
        (None, None, "document"),
    ],
)
def test_file_kind_by_content_type(content_type: str | None, name: str | None, kind: str) -> None:
    file = OutboundFile(url="https://files.example/x", name=name, content_type=content_type)
    assert file_kind(file, "native") == kind
    assert file_kind(file, "link") is None


def test_link_text() -> None:
    assert link_text(OutboundFile(url="https://f/x.pdf", name="Invoice.pdf")) == "Invoice.pdf\nhttps://f/x.pdf"
    assert link_text(OutboundFile(url="https://f/x.pdf")) == "https://f/x.pdf"
