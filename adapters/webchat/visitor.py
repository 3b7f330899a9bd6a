"""Signed visitor ids: a visitor keeps one identity across reloads without any account.

The id the widget stores is `{id}.{signature}`; the signature is an HMAC of the channel and the id, so a
visitor cannot take another visitor's conversation by editing local storage, and an id from one channel means
nothing on another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

__all__ = ["VisitorIds", "new_key"]

_RAW = re.compile(r"^[0-9a-f]{32}$")


def new_key() -> str:
    return secrets.token_urlsafe(32)


class VisitorIds:
    def __init__(self, key: str, channel_id: str) -> None:
        if not key:
            raise ValueError("the visitor signing key must not be empty")
        self._key = key.encode("utf-8")
        self._channel = channel_id

    def _signature(self, raw: str) -> str:
        digest = hmac.new(self._key, f"webchat-visitor\x1f{self._channel}\x1f{raw}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode("ascii")

    def issue(self) -> tuple[str, str]:
        """A fresh visitor: (id, signed id to hand to the widget)."""
        raw = secrets.token_hex(16)
        return raw, f"{raw}.{self._signature(raw)}"

    def verify(self, signed: str) -> str | None:
        """The id inside `signed`, or None when it is malformed or its signature does not match."""
        raw, dot, signature = signed.partition(".")
        if not dot or not _RAW.fullmatch(raw):
            return None
        expected = self._signature(raw)
        if not hmac.compare_digest(signature.encode("ascii", "replace"), expected.encode("ascii")):
            return None
        return raw
