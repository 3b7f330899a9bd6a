"""The web chat channel's `adapter:` block."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import msgspec

__all__ = ["WebchatConfig"]

MIN_SECRET_LENGTH = 16


def _origin(value: str) -> str:
    """`scheme://host[:port]` as browsers send it in `Origin`, lower-cased; ValueError otherwise."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") \
            or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(
            f"`allowed_origins` entry {value!r} is not an origin like https://www.example.com "
            "(scheme, host and optional port; no path)"
        )
    return f"{parts.scheme}://{parts.netloc}".lower()


class WebchatConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`secret` signs visitor ids (default: a key generated once and kept in the store); `history_limit`
    messages per visitor are kept for `history_ttl` seconds after the last one; `allowed_origins`, when not
    empty, are the only pages whose scripts may open the chat's socket (the widget embedded elsewhere). An open
    list is safe for visitors: their identity lives in the page's local storage, not in a cookie, so another
    site's script cannot act as them; the list limits who may embed the chat."""

    secret: str | None = None
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] = "Chat"
    history_limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    history_ttl: Annotated[float, msgspec.Meta(gt=0)] | None = 30 * 24 * 3600.0
    allowed_origins: list[str] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.secret is not None and len(self.secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"`secret` must be at least {MIN_SECRET_LENGTH} characters long")
        self.allowed_origins = [_origin(value) for value in self.allowed_origins]
