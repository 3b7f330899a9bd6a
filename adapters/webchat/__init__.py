"""The built-in web chat: a page at `/channels/{channel_id}/chat` and an embeddable `widget.js`."""

from adapters.webchat.adapter import WebchatAdapter
from adapters.webchat.config import WebchatConfig

__all__ = ["WebchatAdapter", "WebchatConfig"]
