"""Incoming Telegram updates as msgspec Structs: the part of the Bot API `Update` the converter reads.

Building PTB objects (`Update.de_json`) took about 280 µs for a plain text update in isolation and about 15% of
the bridge's CPU per message under load; decoding into these Structs takes about 3 µs (see
bench/telegram_parse.py). Outbound calls still go through PTB's `Bot`.

Decoding is lenient, as for every wire message in this project: fields not modeled here are ignored. Each
Struct still declares the fields the Bot API (and PTB) mark required on that object, with their types, so a
structurally wrong update (a message without `chat`, a poll without its counters, a string where a number
belongs) is refused as `UnreadableUpdate` instead of being half read.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

__all__ = [
    "CONTENT_FIELDS",
    "Animation",
    "Audio",
    "CallbackQuery",
    "Chat",
    "Contact",
    "Dice",
    "Document",
    "Game",
    "InlineKeyboardButton",
    "InlineKeyboardMarkup",
    "Location",
    "Message",
    "PhotoSize",
    "Poll",
    "PollOption",
    "Sticker",
    "UnreadableUpdate",
    "Update",
    "User",
    "Venue",
    "Video",
    "VideoNote",
    "Voice",
    "parse_update",
]

# Message fields that carry content (Bot API 10.0), in the order PTB's `MessageType` lists them: when a message
# has none of the contents the converter translates, the first of these present names it. Fields that say how
# a message was sent rather than what it is (effect_id, business_connection_id, sender_boost_count,
# sender_business_bot, reply_to_story) are left out, so a message is never named after them.
CONTENT_FIELDS: Final = tuple(
    """
    animation audio boost_added channel_chat_created chat_background_set chat_owner_changed chat_owner_left
    chat_shared checklist checklist_tasks_added checklist_tasks_done connected_website contact delete_chat_photo
    dice direct_message_price_changed document forum_topic_created forum_topic_closed forum_topic_edited
    forum_topic_reopened game general_forum_topic_hidden general_forum_topic_unhidden gift gift_upgrade_sent
    giveaway giveaway_created giveaway_winners giveaway_completed group_chat_created invoice left_chat_member
    live_photo location managed_bot_created message_auto_delete_timer_changed migrate_to_chat_id
    new_chat_members new_chat_title new_chat_photo paid_media paid_message_price_changed poll_option_added
    poll_option_deleted suggested_post_approval_failed suggested_post_approved suggested_post_declined
    suggested_post_info suggested_post_paid suggested_post_refunded passport_data photo pinned_message poll
    proximity_alert_triggered refunded_payment sticker story supergroup_chat_created successful_payment text
    unique_gift users_shared venue video video_chat_scheduled video_chat_started video_chat_ended
    video_chat_participants_invited video_note voice web_app_data write_access_allowed
    """.split()
)
# Every other message field of the same Bot API version, and the deprecated duplicates Telegram still sends.
# A field in neither list is newer than this module: a message whose only content it is gets named after it.
_ENVELOPE_FIELDS: Final = frozenset(
    """
    message_id date chat from reply_to_message edit_date entities caption_entities caption migrate_from_chat_id
    author_signature media_group_id reply_markup via_bot sender_chat is_automatic_forward has_protected_content
    is_topic_message message_thread_id has_media_spoiler link_preview_options external_reply quote
    forward_origin is_from_offline show_caption_above_media paid_star_count is_paid_post direct_messages_topic
    reply_to_checklist_task_id sender_tag reply_to_poll_option_id guest_bot_caller_user guest_bot_caller_chat
    guest_query_id effect_id business_connection_id sender_boost_count sender_business_bot reply_to_story
    user_shared forward_from forward_from_chat forward_from_message_id forward_signature forward_sender_name
    forward_date
    """.split()
)
_KNOWN_FIELDS: Final = _ENVELOPE_FIELDS.union(CONTENT_FIELDS)
# The JSON names of the fields `parse_update` computes. Bot API names are lowercase snake_case, so no update
# can carry these keys and set the fields itself.
_COMPUTED: Final = "bridge:"


class UnreadableUpdate(ValueError):
    """The body is not an update this module can read: not JSON, or a structure the Bot API never sends."""


class User(msgspec.Struct, frozen=True):
    id: int
    is_bot: bool
    first_name: str
    last_name: str | None = None
    username: str | None = None


class Chat(msgspec.Struct, frozen=True):
    id: int
    type: str
    title: str | None = None
    first_name: str | None = None
    last_name: str | None = None


class PhotoSize(msgspec.Struct, frozen=True):
    file_id: str
    file_unique_id: str
    width: int
    height: int
    file_size: int | None = None


class Animation(msgspec.Struct, frozen=True):
    file_id: str
    file_unique_id: str
    width: int
    height: int
    duration: int
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None


class Document(msgspec.Struct, frozen=True):
    file_id: str
    file_unique_id: str
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None


class Video(msgspec.Struct, frozen=True):
    file_id: str
    file_unique_id: str
    width: int
    height: int
    duration: int
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None


class Audio(msgspec.Struct, frozen=True):
    file_id: str
    file_unique_id: str
    duration: int
    performer: str | None = None
    title: str | None = None
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None


class Voice(msgspec.Struct, frozen=True):
    file_id: str
    file_unique_id: str
    duration: int
    mime_type: str | None = None
    file_size: int | None = None


class VideoNote(msgspec.Struct, frozen=True):
    file_id: str
    file_unique_id: str
    length: int
    duration: int
    file_size: int | None = None


class Sticker(msgspec.Struct, frozen=True):
    file_id: str
    file_unique_id: str
    type: str
    width: int
    height: int
    is_animated: bool
    is_video: bool
    file_size: int | None = None


class Contact(msgspec.Struct, frozen=True):
    phone_number: str
    first_name: str
    last_name: str | None = None
    user_id: int | None = None


class Location(msgspec.Struct, frozen=True):
    latitude: float
    longitude: float


class Venue(msgspec.Struct, frozen=True):
    location: Location
    title: str
    address: str


class PollOption(msgspec.Struct, frozen=True):
    text: str
    voter_count: int


class Poll(msgspec.Struct, frozen=True):
    id: str
    question: str
    options: tuple[PollOption, ...]
    total_voter_count: int
    is_closed: bool
    is_anonymous: bool
    type: str
    allows_multiple_answers: bool


class Dice(msgspec.Struct, frozen=True):
    emoji: str
    value: int


class Game(msgspec.Struct, frozen=True):
    title: str
    description: str
    photo: tuple[PhotoSize, ...]


class InlineKeyboardButton(msgspec.Struct, frozen=True):
    text: str
    callback_data: str | None = None


class InlineKeyboardMarkup(msgspec.Struct, frozen=True):
    """A message's `reply_markup` as received: read to give a pressed button its text."""

    inline_keyboard: tuple[tuple[InlineKeyboardButton, ...], ...]


class Message(msgspec.Struct, frozen=True, rename={"from_user": "from"}):
    """A message, or the inaccessible stub (`date` 0) a button press on an old message carries.

    `other_content` is not a Bot API field: for a message with none of the contents modeled here,
    `parse_update` sets it to the Bot API name of what the message holds instead (`story`,
    `new_chat_members`, or a field newer than this module), so the message can still be named; None otherwise.
    """

    message_id: int
    date: int
    chat: Chat
    from_user: User | None = None
    edit_date: int | None = None
    text: str | None = None
    caption: str | None = None
    photo: tuple[PhotoSize, ...] = ()
    animation: Animation | None = None
    document: Document | None = None
    video: Video | None = None
    audio: Audio | None = None
    voice: Voice | None = None
    video_note: VideoNote | None = None
    sticker: Sticker | None = None
    contact: Contact | None = None
    location: Location | None = None
    venue: Venue | None = None
    poll: Poll | None = None
    dice: Dice | None = None
    game: Game | None = None
    reply_markup: InlineKeyboardMarkup | None = None
    other_content: str | None = msgspec.field(default=None, name=_COMPUTED + "other_content")

    def has_modeled_content(self) -> bool:
        """Whether the message holds a content modeled here (text first: it is by far the most common)."""
        return (
            self.text is not None
            or bool(self.photo)
            or self.animation is not None
            or self.document is not None
            or self.video is not None
            or self.audio is not None
            or self.voice is not None
            or self.video_note is not None
            or self.sticker is not None
            or self.contact is not None
            or self.location is not None
            or self.venue is not None
            or self.poll is not None
            or self.dice is not None
            or self.game is not None
        )


class CallbackQuery(msgspec.Struct, frozen=True, rename={"from_user": "from"}):
    id: str
    from_user: User
    chat_instance: str
    message: Message | None = None
    data: str | None = None


class Update(msgspec.Struct, frozen=True):
    """One update. The bridge asks only for messages, edits and button presses (`allowed_updates`), but a
    webhook set by another tool may deliver any kind: `other_kind` is not a Bot API field, `parse_update` sets
    it to the name of that kind (e.g. `my_chat_member`) when the update is none of the three."""

    update_id: int
    message: Message | None = None
    edited_message: Message | None = None
    callback_query: CallbackQuery | None = None
    other_kind: str | None = msgspec.field(default=None, name=_COMPUTED + "other_kind")


_DECODER: Final = msgspec.json.Decoder(Update)


def parse_update(data: bytes | dict[str, Any]) -> Update:
    """The update in `data`: the raw JSON body (a webhook request) or the object already decoded from a
    `getUpdates` batch. Raises `UnreadableUpdate` when it is not an update or its structure is wrong.

    The field names `other_kind` and `other_content` need are taken from the raw object only when the update
    is one that needs them, which keeps the common case to a single typed decode."""
    try:
        update = msgspec.convert(data, Update) if isinstance(data, dict) else _DECODER.decode(data)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError too
        raise UnreadableUpdate(str(exc)) from None
    if update.callback_query is not None:
        return update
    message = update.message if update.message is not None else update.edited_message
    if message is not None and message.has_modeled_content():
        return update
    raw: dict[str, Any] = data if isinstance(data, dict) else msgspec.json.decode(data)
    if message is None:
        kind = next((key for key, value in raw.items() if key != "update_id" and value is not None), None)
        return msgspec.structs.replace(update, other_kind=kind)
    key = "message" if update.message is not None else "edited_message"
    named = msgspec.structs.replace(message, other_content=_content_name(raw[key]))
    return msgspec.structs.replace(update, **{key: named})


def _content_name(message: dict[str, Any]) -> str | None:
    """The first content field present, else the first field unknown to this module, else None. An object
    counts even when empty (`video_chat_started: {}`); an empty list, false or zero does not, as with PTB."""
    for name in CONTENT_FIELDS:
        value = message.get(name)
        if isinstance(value, dict) or value:
            return name
    return next((name for name in message if name not in _KNOWN_FIELDS), None)
