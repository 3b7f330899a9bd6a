"""Typed messages inside the bridge, independent of any messenger and of the platform's wire format.

Adapters produce `Inbound` and consume `Outbound`; the core translates to and from `bridge.protocol`.
Both are msgspec Structs so they can be stored in a durable queue as they are.
"""

from __future__ import annotations

import msgspec

from bridge.protocol import Button

__all__ = [
    "Button",
    "Inbound",
    "InboundButton",
    "InboundContent",
    "InboundFile",
    "InboundText",
    "Outbound",
    "OutboundContent",
    "OutboundFile",
    "OutboundKeyboard",
    "OutboundText",
    "Sender",
]


class Sender(msgspec.Struct, omit_defaults=True):
    """Who wrote: the messenger's own user id and whatever profile it tells us."""

    native_user_id: str
    name: str | None = None
    login: str | None = None
    phone: str | None = None
    email: str | None = None


class InboundText(msgspec.Struct, tag="text", tag_field="type"):
    text: str


class InboundFile(msgspec.Struct, tag="file", tag_field="type"):
    """A visitor's file. `file_ref` is the messenger's own handle, resolved again when the file is fetched.

    `url` is a URL the platform may fetch. Adapters leave it empty and the core signs a URL to the bridge's
    own file proxy, so a messenger URL that embeds a secret (Telegram's does) never leaves the bridge.
    """

    file_ref: str
    name: str
    content_type: str
    size: int = 0
    url: str | None = None


class InboundButton(msgspec.Struct, tag="button", tag_field="type"):
    button_id: str
    text: str


InboundContent = InboundText | InboundFile | InboundButton


class Inbound(msgspec.Struct, omit_defaults=True):
    """One message from a visitor, as an adapter hands it to the core.

    `native_message_id` must be stable for redeliveries of the same native message: the core derives the
    platform's `message.id` from it and recognises duplicates by it. When one native message yields several
    inbound messages (a photo with a caption), give each its own suffix (`"812"`, `"812:caption"`).
    """

    native_chat_id: str
    native_message_id: str
    sender: Sender
    content: InboundContent


class OutboundText(msgspec.Struct, tag="text", tag_field="type"):
    text: str


class OutboundKeyboard(msgspec.Struct, tag="keyboard", tag_field="type"):
    rows: list[list[Button]]
    text: str | None = None


class OutboundFile(msgspec.Struct, tag="file", tag_field="type"):
    url: str
    name: str | None = None
    content_type: str | None = None
    size: int | None = None


OutboundContent = OutboundText | OutboundKeyboard | OutboundFile


class Outbound(msgspec.Struct):
    """One agent message for a messenger chat.

    `message_id` is stable for one `/send_message` call, so an adapter that is asked to send the same message
    twice (after a crash) can recognise it if its messenger allows.
    """

    chat_id: int
    native_chat_id: str
    message_id: str
    content: OutboundContent
