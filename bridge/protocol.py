"""The platform's wire format (Omnichannel public API), both directions.

Inbound (`new_message`, bridge → platform) is encoded by us, so its Structs are exact. The reply direction
(`/send_message`, platform → bridge) is only known from public clients of the same dialect, so it is decoded
leniently: unknown fields are ignored and an unknown `kind` decodes to `UnknownReply` instead of failing.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import msgspec

__all__ = [
    "Button",
    "ButtonPress",
    "ErrorBody",
    "FileOperatorData",
    "FileOperatorReply",
    "FileVisitorData",
    "FileVisitorMessage",
    "KeyboardReply",
    "KeyboardResponseMessage",
    "NewMessage",
    "OkBody",
    "OperatorReply",
    "ProtocolError",
    "Reply",
    "SendMessageRequest",
    "TextVisitorMessage",
    "UnknownReply",
    "Visitor",
    "VisitorFields",
    "VisitorMessage",
    "decode_new_message",
    "decode_send_message",
    "encode",
    "error_body",
]


class ProtocolError(ValueError):
    """A payload that cannot be understood; the message is safe to show to the sender."""


# --------------------------------------------------------------------------- new_message (bridge → platform)


class VisitorFields(msgspec.Struct, omit_defaults=True):
    """Profile fields the platform maps onto its channel variables (`channel_visitor_*`)."""

    name: str | None = None
    login: str | None = None
    phone: str | None = None
    email: str | None = None
    site: str | None = None


class Visitor(msgspec.Struct):
    id: str
    fields: VisitorFields = msgspec.field(default_factory=VisitorFields)


class TextVisitorMessage(msgspec.Struct, tag="visitor", tag_field="kind"):
    id: str
    text: str


class FileVisitorData(msgspec.Struct):
    id: str
    state: str
    name: str
    content_type: str
    size: int
    url: str


class FileVisitorMessage(msgspec.Struct, tag="file_visitor", tag_field="kind"):
    id: str
    data: FileVisitorData


class Button(msgspec.Struct):
    id: str
    text: str


class ButtonPress(msgspec.Struct):
    button: Button


class KeyboardResponseMessage(msgspec.Struct, tag="keyboard_response", tag_field="kind"):
    id: str
    data: ButtonPress


VisitorMessage = TextVisitorMessage | FileVisitorMessage | KeyboardResponseMessage


class NewMessage(msgspec.Struct, kw_only=True):
    event: Literal["new_message"] = "new_message"
    chat_id: int
    visitor: Visitor
    message: VisitorMessage


# --------------------------------------------------------------------------- send_message (platform → bridge)


class OperatorReply(msgspec.Struct, tag="operator", tag_field="kind"):
    text: str


class KeyboardReply(msgspec.Struct, tag="keyboard", tag_field="kind"):
    buttons: list[list[Button]]
    text: str | None = None


class FileOperatorData(msgspec.Struct):
    url: Annotated[str, msgspec.Meta(min_length=1)]
    name: str | None = None
    media_type: str | None = None
    content_type: str | None = None
    size: int | None = None

    @property
    def type(self) -> str | None:
        """`content_type` is accepted as a synonym of `media_type`."""
        return self.media_type or self.content_type


class FileOperatorReply(msgspec.Struct, tag="file_operator", tag_field="kind"):
    data: FileOperatorData


class UnknownReply(msgspec.Struct):
    """A reply kind this bridge does not know; kept whole so it can be logged."""

    kind: str | None
    raw: dict[str, Any]


Reply = OperatorReply | KeyboardReply | FileOperatorReply | UnknownReply
_KnownReply = OperatorReply | KeyboardReply | FileOperatorReply
_KNOWN_KINDS = frozenset({"operator", "keyboard", "file_operator"})


class SendMessageRequest(msgspec.Struct):
    chat_id: int
    message: Reply
    # Not in the documented dialect; when a sender does give a message id, a repeated call is recognised by it.
    message_id: str | None = None


class OkBody(msgspec.Struct):
    result: str = "ok"


class ErrorBody(msgspec.Struct, omit_defaults=True):
    error: str
    desc: str | None = None


def error_body(error: str, desc: str | None = None) -> bytes:
    return encode(ErrorBody(error=error, desc=desc))


# The error code of an answer the bridge itself makes for an HTTP error status (not a handler's own code).
_STATUS_ERRORS: Final = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                         405: "method_not_allowed", 413: "too_large"}


def status_error_body(status: int, desc: str) -> bytes:
    """`error_body` with the code for `status` (`error` for a status without one of its own)."""
    return error_body(_STATUS_ERRORS.get(status, "error"), desc)


# --------------------------------------------------------------------------- codecs, built once

_encoder = msgspec.json.Encoder()
_new_message_decoder = msgspec.json.Decoder(NewMessage)
_envelope_decoder = msgspec.json.Decoder(dict[str, Any])
_known_reply_converter = _KnownReply


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)


def decode_new_message(body: bytes) -> NewMessage:
    return _new_message_decoder.decode(body)


def decode_send_message(body: bytes) -> SendMessageRequest:
    """Decode a `/send_message` body; raise `ProtocolError` with a human reason when it is unusable."""
    try:
        envelope = _envelope_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"body is not a JSON object: {exc}") from None
    if "chat_id" not in envelope:
        raise ProtocolError("missing required field `chat_id`")
    chat_id = envelope["chat_id"]
    if isinstance(chat_id, bool) or not isinstance(chat_id, int):
        # Some clients of this dialect send numbers as strings; accept a decimal string.
        if isinstance(chat_id, str) and chat_id.isdigit():
            chat_id = int(chat_id)
        else:
            raise ProtocolError("`chat_id` must be an integer")
    if "message" not in envelope:
        raise ProtocolError("missing required field `message`")
    raw_message = envelope["message"]
    if not isinstance(raw_message, dict):
        raise ProtocolError("`message` must be an object")
    kind = raw_message.get("kind")
    raw_id = raw_message.get("id")
    message_id = str(raw_id) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
    if kind not in _KNOWN_KINDS:
        unknown = UnknownReply(kind=kind if isinstance(kind, str) else None, raw=raw_message)
        return SendMessageRequest(chat_id=chat_id, message=unknown, message_id=message_id)
    try:
        message: Reply = msgspec.convert(raw_message, _known_reply_converter)
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"invalid `message` of kind {kind!r}: {exc}") from None
    return SendMessageRequest(chat_id=chat_id, message=message, message_id=message_id)
