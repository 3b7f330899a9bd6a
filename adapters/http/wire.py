"""The HTTP adapter's JSON, both ways: what the company's system POSTs to the bridge, and the callbacks.

Inbound bodies are decoded strictly (unknown keys refused), so that a misspelt `txt` is a 400 the company sees
while integrating, not a message that silently arrives empty.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from bridge import (
    InboundButton,
    InboundContent,
    InboundFile,
    InboundText,
    Outbound,
    OutboundFile,
    OutboundKeyboard,
    OutboundText,
    Sender,
)

__all__ = ["InboundBody", "InboundError", "callback_body", "content_of", "decode_inbound", "file_name", "sender_of"]

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
_Url = Annotated[str, msgspec.Meta(pattern=r"^https?://", max_length=4096)]
_Field = Annotated[str, msgspec.Meta(max_length=1024)]


class InboundError(ValueError):
    """The body is not a valid inbound message; the text says what to fix."""


class User(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: _Id
    name: _Field | None = None
    login: _Field | None = None
    phone: _Field | None = None
    email: _Field | None = None


class File(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: _Url
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)] | None = None
    content_type: _Field = "application/octet-stream"
    size: Annotated[int, msgspec.Meta(ge=0)] = 0


class Button(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: _Id
    text: Annotated[str, msgspec.Meta(max_length=4096)] | None = None


class InboundBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    chat_id: _Id
    message_id: _Id
    user: User | None = None
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=65536)] | None = None
    file: File | None = None
    button: Button | None = None


_decoder = msgspec.json.Decoder(InboundBody)


def decode_inbound(body: bytes) -> InboundBody:
    try:
        message = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise InboundError(_plain(str(exc))) from None
    given = [name for name in ("text", "file", "button") if getattr(message, name) is not None]
    if len(given) != 1:
        got = " and ".join(given) if given else "none"
        raise InboundError(f"exactly one of `text`, `file` or `button` is required (got {got})")
    return message


def _plain(error: str) -> str:
    if error.startswith("JSON is malformed") or error.startswith("Input data was truncated"):
        return f"the body is not valid JSON: {error}"
    return error


def sender_of(message: InboundBody) -> Sender:
    user = message.user
    if user is None:
        # Without a user, the chat is the visitor: one profile per chat.
        return Sender(native_user_id=message.chat_id)
    return Sender(native_user_id=user.id, name=user.name, login=user.login, phone=user.phone, email=user.email)


def file_name(file: File) -> str:
    if file.name:
        return file.name
    tail = file.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return tail or "file"


def content_of(message: InboundBody, file_ref: str | None) -> InboundContent:
    if message.text is not None:
        return InboundText(message.text)
    if message.button is not None:
        return InboundButton(button_id=message.button.id, text=message.button.text or message.button.id)
    file = message.file
    if file is None or file_ref is None:  # excluded by decode_inbound and the caller
        raise InboundError("no content")
    return InboundFile(file_ref=file_ref, name=file_name(file), content_type=file.content_type, size=file.size)


def callback_body(channel_id: str, message: Outbound) -> dict[str, Any]:
    """The JSON POSTed to `callback_url` for one agent message (one part of a split reply)."""
    body: dict[str, Any] = {
        "channel_id": channel_id,
        "chat_id": message.native_chat_id,
        "message_id": message.message_id,
    }
    match message.content:
        case OutboundText(text=text):
            body.update(type="text", text=text)
        case OutboundKeyboard(rows=rows, text=text):
            body.update(type="keyboard", text=text,
                        buttons=[[{"id": b.id, "text": b.text} for b in row] for row in rows])
        case OutboundFile(url=url, name=name, content_type=content_type, size=size):
            body.update(type="file", file={"url": url, "name": name, "content_type": content_type, "size": size})
    return body
