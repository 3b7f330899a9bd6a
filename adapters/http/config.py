"""The HTTP channel's `adapter:` block, decoded strictly: a typo in a key is an error, not a default."""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["HttpConfig"]

_MIN_SECRET = 16


class HttpConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # How the company's system authenticates its calls to `/channels/{id}/inbound`.
    auth: Literal["bearer", "hmac"]
    # `auth: bearer`: the token expected in `Authorization: Bearer <token>`.
    token: str | None = None
    # `auth: hmac`: the shared secret of the `X-Bridge-Signature` HMAC.
    secret: str | None = None
    # Where the bridge POSTs the agent's replies.
    callback_url: str
    # Signs the callbacks; defaults to `secret` with `auth: hmac` (required with `auth: bearer`).
    callback_secret: str | None = None
    # Seconds a signed inbound request stays valid (older or as far in the future: refused).
    max_skew: float = 300.0
    # Seconds for one callback POST or one file download to answer.
    timeout: float = 10.0
    # Longest inbound request body, in bytes.
    max_body_bytes: int = 64 * 1024
    # Longest text per callback; longer agent replies are split (None = no limit).
    max_text_length: int | None = None
    # How long the bridge keeps a visitor file's URL to serve it from (match `files.url_ttl`).
    file_ttl: float = 7 * 24 * 3600.0

    def __post_init__(self) -> None:
        if self.auth == "bearer":
            if not self.token:
                raise ValueError("auth: bearer needs `token`")
            if len(self.token) < _MIN_SECRET:
                raise ValueError(f"token must be at least {_MIN_SECRET} characters")
            if not self.callback_secret:
                raise ValueError("auth: bearer needs `callback_secret` to sign the callbacks")
        else:
            if not self.secret:
                raise ValueError("auth: hmac needs `secret`")
            if len(self.secret) < _MIN_SECRET:
                raise ValueError(f"secret must be at least {_MIN_SECRET} characters")
        if self.callback_secret is not None and len(self.callback_secret) < _MIN_SECRET:
            raise ValueError(f"callback_secret must be at least {_MIN_SECRET} characters")
        if not self.callback_url.startswith(("http://", "https://")):
            raise ValueError("callback_url must be an http(s) URL")
        for name in ("max_skew", "timeout", "file_ttl"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")
        if self.max_text_length is not None and self.max_text_length < 16:
            raise ValueError("max_text_length must be at least 16 (or left out for no limit)")

    @property
    def signing_secret(self) -> str:
        """The secret the callbacks are signed with."""
        secret = self.callback_secret or self.secret
        if secret is None:  # excluded by __post_init__
            raise ValueError("no callback secret")
        return secret

    def __repr__(self) -> str:
        # Tokens and secrets must not reach logs or tracebacks through a repr.
        return (f"HttpConfig(auth={self.auth!r}, callback_url={self.callback_url!r}, max_skew={self.max_skew!r}, "
                f"timeout={self.timeout!r})")
