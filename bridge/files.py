"""Signed, expiring URLs for visitors' files.

The platform never gets a messenger's own file URL (Telegram's embeds the bot token): it gets
`{public_url}/files/{token}`, where the token binds channel, the adapter's file reference and an expiry, signed
with HMAC-SHA256. The file itself is fetched from the adapter only when someone GETs the URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

import msgspec

__all__ = ["FileClaim", "FileUrlSigner", "TokenExpired", "TokenInvalid", "new_signing_key"]


class TokenInvalid(Exception):
    """Tampered, truncated or signed with another key."""


class TokenExpired(Exception):
    """A genuine link past its expiry; `claim` says whose file it was (for logs and metrics)."""

    def __init__(self, message: str, claim: FileClaim | None = None) -> None:
        super().__init__(message)
        self.claim = claim


class FileClaim(msgspec.Struct, array_like=True, frozen=True):
    channel_id: str
    file_ref: str
    expires_at: int
    name: str = ""
    content_type: str = ""
    # The size the messenger announced (0: unknown), so a file over the limit is refused without fetching it.
    size: int = 0


_encode_claim = msgspec.msgpack.Encoder().encode
_decode_claim = msgspec.msgpack.Decoder(FileClaim).decode


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_signing_key() -> str:
    return secrets.token_urlsafe(32)


class FileUrlSigner:
    def __init__(
        self, key: str | bytes, *, public_url: str, ttl: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = key.encode() if isinstance(key, str) else key
        self._base = public_url.rstrip("/")
        self._ttl = ttl
        self._clock = clock

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()

    def sign(
        self, channel_id: str, file_ref: str, *, name: str = "", content_type: str = "", size: int = 0
    ) -> str:
        """The public URL of one file; valid for the configured TTL."""
        claim = FileClaim(channel_id, file_ref, int(self._clock() + self._ttl), name, content_type, size)
        body = _encode_claim(claim)
        return f"{self._base}/files/{_b64(body)}.{_b64(self._mac(body))}"

    def verify(self, token: str) -> FileClaim:
        body_text, _, mac_text = token.partition(".")
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (ValueError, TypeError):
            raise TokenInvalid("malformed token") from None
        if not mac or not hmac.compare_digest(mac, self._mac(body)):
            raise TokenInvalid("bad signature")
        try:
            claim = _decode_claim(body)
        except msgspec.DecodeError:
            raise TokenInvalid("malformed token") from None
        if claim.expires_at < self._clock():
            raise TokenExpired("link expired", claim)
        return claim
