"""Pure translation between Telegram's objects and the bridge's typed messages; no I/O, so it is tested directly.

Inbound: one update (the msgspec Structs of `wire`) becomes zero or more `Inbound`s (a photo with a caption is
two). Every id is derived from the chat and message ids, never from `update_id`, so a redelivered update
dedupes in the core.
Outbound: the bridge's contents become the keyword arguments (and keyboards) of PTB's `Bot` methods.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import msgspec
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from adapters.telegram.wire import Animation, Audio, CallbackQuery, Chat, Document, Message, Update, User, Video
from bridge.messages import (
    Button,
    Inbound,
    InboundButton,
    InboundFile,
    InboundText,
    OutboundFile,
    Sender,
)

__all__ = [
    "CALLBACK_TOKEN_PREFIX",
    "MAX_CALLBACK_BYTES",
    "ConvertOptions",
    "Converted",
    "FileKind",
    "button_rows",
    "callback_data_for",
    "convert_update",
    "file_kind",
    "link_text",
]

MAX_CALLBACK_BYTES = 64
# Prefix of callback data that is a token for a long button id. An id that itself starts with it is always
# tokenized, so the two can never be confused.
CALLBACK_TOKEN_PREFIX = "~t:"

FileKind = Literal["photo", "video", "audio", "document"]

_PHOTO_TYPES = frozenset({"image/jpeg", "image/jpg", "image/png", "image/webp"})
_VIDEO_TYPES = frozenset({"video/mp4"})
_AUDIO_TYPES = frozenset({"audio/mpeg", "audio/mp3", "audio/mp4", "audio/x-m4a", "audio/m4a"})
_GROUP_TYPES = frozenset({"group", "supergroup", "channel"})


@dataclass(frozen=True, slots=True)
class ConvertOptions:
    groups: Literal["ignore", "chat"] = "ignore"
    edits: Literal["forward", "ignore"] = "forward"
    edit_marker: str = "(edited) "


@dataclass(frozen=True, slots=True)
class Converted:
    """What one update yields. `skipped` says why nothing was produced, for the adapter's log and counters;
    `dropped` is the kind of message (`text`, `file`, `button`, `edit`, `other`) when the channel's config said
    not to forward it, for the operator's metrics; `callback_query_id` is set whenever Telegram waits for
    `answerCallbackQuery`, even for skipped presses."""

    inbounds: list[Inbound] = field(default_factory=list)
    skipped: str | None = None
    dropped: str | None = None
    callback_query_id: str | None = None


def convert_update(update: Update, options: ConvertOptions) -> Converted:
    if update.callback_query is not None:
        return _convert_callback(update.callback_query, options)
    if update.message is not None:
        return _convert_message(update.message, options, edited=False)
    if update.edited_message is not None:
        if options.edits == "ignore":
            return Converted(skipped="edit", dropped="edit")
        return _convert_message(update.edited_message, options, edited=True)
    return Converted(skipped=f"update:{update.other_kind or 'unknown'}")


def _is_group(chat: Chat) -> bool:
    return chat.type in _GROUP_TYPES


def _chat_name(chat: Chat) -> str | None:
    if chat.title is not None:
        return chat.title
    if not chat.first_name:
        return None
    return f"{chat.first_name} {chat.last_name}" if chat.last_name else chat.first_name


def _sender(user: User | None, chat: Chat) -> Sender:
    if user is None:  # anonymous group admins and channels post as the chat itself
        return Sender(native_user_id=str(chat.id), name=_chat_name(chat))
    name = " ".join(part for part in (user.first_name, user.last_name) if part) or None
    return Sender(native_user_id=str(user.id), name=name, login=user.username)


def _convert_callback(query: CallbackQuery, options: ConvertOptions) -> Converted:
    message = query.message
    if message is None:  # a press on a message sent in inline mode: no chat to route it to
        return Converted(skipped="callback:inline", callback_query_id=query.id)
    if _is_group(message.chat) and options.groups == "ignore":
        return Converted(skipped="group", dropped="button", callback_query_id=query.id)
    data = query.data
    if data is None:  # a game button
        return Converted(skipped="callback:game", callback_query_id=query.id)
    text = data
    markup = message.reply_markup  # None on the stub of a message too old to be read
    if markup is not None:
        text = next(
            (b.text for row in markup.inline_keyboard for b in row if b.callback_data == data),
            data,
        )
    inbound = Inbound(
        native_chat_id=str(message.chat.id),
        native_message_id=f"cb:{query.id}",
        sender=_sender(query.from_user, message.chat),
        content=InboundButton(button_id=data, text=text),
    )
    return Converted([inbound], callback_query_id=query.id)


def _convert_message(message: Message, options: ConvertOptions, *, edited: bool) -> Converted:
    chat = message.chat
    if _is_group(chat) and options.groups == "ignore":
        kind = "text" if message.text is not None else "file" if _file_of(message) is not None else "other"
        return Converted(skipped="group", dropped="edit" if edited else kind)
    if edited and (message.location is not None and message.venue is None):
        # Live locations arrive as a stream of edits; they are position updates, not corrections.
        return Converted(skipped="edit:live_location")
    base_id = f"{chat.id}:{message.message_id}"
    if edited:
        base_id = f"{base_id}:edit:{message.edit_date or 0}"
    marker = options.edit_marker if edited else ""
    sender = _sender(message.from_user, chat)

    def make(suffix: str, content: InboundText | InboundFile) -> Inbound:
        return Inbound(str(chat.id), base_id + suffix, sender, content)

    if message.text is not None:
        return Converted([make("", InboundText(marker + message.text))])
    file = _file_of(message)
    if file is not None:
        inbounds = [make("", file)]
        if message.caption:
            inbounds.append(make(":caption", InboundText(marker + message.caption)))
        return Converted(inbounds)
    if message.contact is not None:
        contact = message.contact
        own = message.from_user is not None and contact.user_id == message.from_user.id
        if own:  # only the visitor's own number describes the visitor; a forwarded card is just content
            sender = msgspec.structs.replace(sender, phone=contact.phone_number)
        name = " ".join(p for p in (contact.first_name, contact.last_name) if p)
        text = f"contact:{contact.phone_number}" + (f" {name}" if name else "")
        return Converted([Inbound(str(chat.id), base_id, sender, InboundText(marker + text))])
    return Converted([make("", InboundText(marker + _describe(message)))])


def _coordinate(value: float) -> str:
    return f"{round(value, 6):.6f}".rstrip("0").rstrip(".")


def _describe(message: Message) -> str:
    """A text for content the platform has no message kind for, naming it so nothing is dropped silently."""
    if message.venue is not None:
        venue = message.venue
        loc = venue.location
        where = f"location:{_coordinate(loc.latitude)},{_coordinate(loc.longitude)}"
        return f"{where}\n{venue.title}, {venue.address}"
    if message.location is not None:
        loc = message.location
        return f"location:{_coordinate(loc.latitude)},{_coordinate(loc.longitude)}"
    if message.poll is not None:
        options = " / ".join(option.text for option in message.poll.options)
        return f"[poll] {message.poll.question}" + (f": {options}" if options else "")
    if message.dice is not None:
        return f"[dice] {message.dice.emoji} {message.dice.value}"
    if message.game is not None:
        return f"[game] {message.game.title}"
    return f"[{message.other_content or 'message'}]"


def _with_extension(name: str | None, fallback: str, content_type: str) -> str:
    """A file name with an extension: the platform and agents see this name, often with no other hint."""
    name = (name or "").strip() or fallback
    if "." in name.rsplit("/", 1)[-1]:
        return name
    extension = mimetypes.guess_extension(content_type, strict=False) or ".bin"
    return name + extension


def _content_type(given: str | None, name: str | None, default: str) -> str:
    if given:
        return given
    guessed = mimetypes.guess_type(name or "", strict=False)[0]
    return guessed or default


def _named_file(
    file: Animation | Document | Video | Audio, fallback: str, default_type: str
) -> InboundFile:
    ctype = _content_type(file.mime_type, file.file_name, default_type)
    name = _with_extension(file.file_name, fallback, ctype)
    return InboundFile(file.file_id, name, ctype, file.file_size or 0)


def _file_of(message: Message) -> InboundFile | None:
    """The message's file, if any. Animations are checked before documents: Telegram sets both for them."""
    mid = message.message_id
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return InboundFile(largest.file_id, f"photo_{mid}.jpg", "image/jpeg", largest.file_size or 0)
    if message.animation is not None:
        return _named_file(message.animation, f"animation_{mid}", "video/mp4")
    if message.document is not None:
        return _named_file(message.document, f"document_{mid}", "application/octet-stream")
    if message.video is not None:
        return _named_file(message.video, f"video_{mid}", "video/mp4")
    if message.audio is not None:
        audio = message.audio
        fallback = " - ".join(p for p in (audio.performer, audio.title) if p) or f"audio_{mid}"
        return _named_file(audio, fallback, "audio/mpeg")
    if message.voice is not None:
        voice = message.voice
        ctype = voice.mime_type or "audio/ogg"
        name = f"voice_{mid}.ogg" if ctype == "audio/ogg" else _with_extension(None, f"voice_{mid}", ctype)
        return InboundFile(voice.file_id, name, ctype, voice.file_size or 0)
    if message.video_note is not None:
        note = message.video_note
        return InboundFile(note.file_id, f"video_note_{mid}.mp4", "video/mp4", note.file_size or 0)
    if message.sticker is not None:
        sticker = message.sticker
        if sticker.is_animated:
            ext, ctype = ".tgs", "application/x-tgsticker"
        elif sticker.is_video:
            ext, ctype = ".webm", "video/webm"
        else:
            ext, ctype = ".webp", "image/webp"
        return InboundFile(sticker.file_id, f"sticker_{mid}{ext}", ctype, sticker.file_size or 0)
    return None


# --------------------------------------------------------------------------- outbound


def callback_data_for(button_id: str) -> tuple[str, bool]:
    """The `callback_data` for a button and whether it is a token that must be stored to be resolved.

    Tokens are derived from the id, so storing one is idempotent and a retried send reuses it.
    """
    raw = button_id.encode()
    if raw and len(raw) <= MAX_CALLBACK_BYTES and not button_id.startswith(CALLBACK_TOKEN_PREFIX):
        return button_id, False
    digest = base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
    return CALLBACK_TOKEN_PREFIX + digest[:32], True


def button_rows(
    rows: Sequence[Sequence[Button]], data_for: Callable[[Button], str], *, per_row: int, max_buttons: int
) -> list[InlineKeyboardMarkup]:
    """Inline keyboards for `rows`, rows kept; wide rows wrap, and more than `max_buttons` spill into further
    keyboards (each sent as its own message) so no button is dropped."""
    markups: list[InlineKeyboardMarkup] = []
    current: list[list[InlineKeyboardButton]] = []
    count = 0
    for row in rows:
        for start in range(0, len(row), per_row):
            chunk = [
                InlineKeyboardButton(text=b.text.strip() or b.id, callback_data=data_for(b))
                for b in row[start : start + per_row]
            ]
            if count + len(chunk) > max_buttons and current:
                markups.append(InlineKeyboardMarkup(current))
                current, count = [], 0
            current.append(chunk)
            count += len(chunk)
    if current:
        markups.append(InlineKeyboardMarkup(current))
    return markups


def file_kind(file: OutboundFile, files_as: Literal["native", "link", "upload"]) -> FileKind | None:
    """The Bot API method family for a file by URL or uploaded, or None to send it as a link.

    Telegram fetches photos, mp4 videos and mp3/m4a audio by URL; anything else goes as a document (which
    Telegram may still refuse, in which case the adapter falls back to the link). Uploads use the same families.
    """
    if files_as == "link":
        return None
    ctype = (file.content_type or mimetypes.guess_type(file.name or file.url, strict=False)[0] or "").lower()
    ctype = ctype.split(";", 1)[0].strip()
    if ctype in _PHOTO_TYPES:
        return "photo"
    if ctype in _VIDEO_TYPES:
        return "video"
    if ctype in _AUDIO_TYPES:
        return "audio"
    return "document"


def link_text(file: OutboundFile) -> str:
    return f"{file.name}\n{file.url}" if file.name else file.url
