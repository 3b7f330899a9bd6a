"""Items and a hand-moved clock for the queue tests."""

from __future__ import annotations

from bridge.handoff import InboundItem, OutboundItem
from bridge.messages import Outbound, OutboundText
from bridge.protocol import NewMessage, TextVisitorMessage, Visitor

__all__ = ["FakeClock", "inbound", "outbound"]


class FakeClock:
    """A clock the test moves by hand, so due times and leases need no sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def inbound(key: str, *, chat: int = 1, channel: str = "tg", text: str | None = None) -> InboundItem:
    return InboundItem(
        channel_id=channel,
        chat_id=chat,
        dedupe_key=key,
        payload=NewMessage(
            chat_id=chat, visitor=Visitor(id=f"v{chat}"), message=TextVisitorMessage(id=key, text=text or key)
        ),
    )


def outbound(key: str, *, chat: int = 1, channel: str = "tg", text: str | None = None) -> OutboundItem:
    return OutboundItem(
        channel_id=channel,
        chat_id=chat,
        dedupe_key=key,
        message=Outbound(chat_id=chat, native_chat_id=str(chat), message_id=key, content=OutboundText(text or key)),
    )
