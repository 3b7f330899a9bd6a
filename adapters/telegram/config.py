"""The Telegram channel's `adapter:` block, decoded strictly: a typo in a key is an error, not a default."""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from adapters.telegram.limits import RateLimits

__all__ = ["TelegramConfig"]

_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]{20,}$")
_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class TelegramConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    bot_token: str
    # None: a webhook when the bridge has an https public URL (Telegram accepts no other), else polling.
    mode: Literal["webhook", "polling"] | None = None
    # A local Bot API server (`http://host:8081`), which also lifts the 20 MB download limit.
    api_base_url: str | None = None
    # Generated once and kept in the store when absent, so every replica checks the same secret.
    webhook_secret: str | None = None
    groups: Literal["ignore", "chat"] = "ignore"
    edits: Literal["forward", "ignore"] = "forward"
    edit_marker: str = "(edited) "
    # native: Telegram fetches the agent's file URL itself; link: the URL is sent as text; upload: the bridge
    # downloads the file through its SSRF guard (`bridge.fetch`) and uploads it, for URLs Telegram cannot reach.
    files_as: Literal["native", "link", "upload"] = "native"
    # Sent with a keyboard that arrives without text and cannot be attached to the previous message.
    keyboard_prompt: str = "Please choose:"
    # A keyboard without text is attached to the bot's last message when that is at most this old.
    keyboard_attach_window: float = 10.0
    poll_timeout: int = 30
    poll_retry_delay: float = 1.0
    poll_retry_max: float = 30.0
    request_timeout: float = 10.0
    connect_timeout: float = 5.0
    # How long a keyboard's long button ids stay resolvable; presses on older keyboards arrive as text.
    callback_token_ttl: float = 180 * 24 * 3600.0
    # How long the parts already sent of a message are remembered, so a retry does not send them again.
    sent_memory_ttl: float = 2 * 24 * 3600.0
    rate_limits: RateLimits = msgspec.field(default_factory=RateLimits)

    def __post_init__(self) -> None:
        if not _TOKEN.match(self.bot_token):
            raise ValueError("bot_token does not look like a Telegram bot token (<digits>:<secret>)")
        if self.api_base_url is not None:
            if not self.api_base_url.startswith(("http://", "https://")):
                raise ValueError("api_base_url must be an http(s) URL")
            self.api_base_url = self.api_base_url.rstrip("/")
        if self.webhook_secret is not None and not _SECRET.match(self.webhook_secret):
            raise ValueError("webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        if not self.keyboard_prompt.strip():
            raise ValueError("keyboard_prompt must not be empty: Telegram sends no empty messages")
        if self.poll_timeout < 0:
            raise ValueError("poll_timeout must not be negative")
        for name in ("poll_retry_delay", "poll_retry_max", "request_timeout", "connect_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        for name in ("keyboard_attach_window", "callback_token_ttl", "sent_memory_ttl"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    def __repr__(self) -> str:
        # The token and the secret must not end up in logs through a repr.
        return f"TelegramConfig(mode={self.mode!r}, api_base_url={self.api_base_url!r}, groups={self.groups!r})"
