"""Rules both backends must apply identically, kept in one place so they cannot drift apart."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from bridge.protocol import VisitorFields

__all__ = ["ChatIdCache", "VisitorCache", "check_ttl", "merge_visitor", "redact_url"]

_SECRET_PARAMS = frozenset({"password", "pass", "passwd", "token", "secret"})


class ChatIdCache:
    """Chat ids this process already looked up, so a known chat costs no store round trip.

    Safe to keep without expiry because a chat's id never changes and is never reused (see `Store`). Bounded:
    beyond `size` chats the oldest entry is forgotten and simply looked up again when needed.
    """

    def __init__(self, size: int = 50_000) -> None:
        if size < 1:
            raise ValueError("the chat id cache needs room for at least one chat")
        self._size = size
        self._ids: dict[tuple[str, str], int] = {}

    def get(self, channel_id: str, native_chat_id: str) -> int | None:
        return self._ids.get((channel_id, native_chat_id))

    def put(self, channel_id: str, native_chat_id: str, chat_id: int) -> int:
        if len(self._ids) >= self._size:
            del self._ids[next(iter(self._ids))]
        self._ids[(channel_id, native_chat_id)] = chat_id
        return chat_id


class VisitorCache:
    """Visitor profiles this process saved lately, so a message from a visitor whose profile it brings is
    already stored costs no round trip (almost every message: names rarely change between two messages).

    A profile another replica changed meanwhile is seen here only once the entry is `ttl` seconds old (or the
    visitor's own fields change): profiles are informational, and a round trip per message is not worth a
    fresher one. Bounded like `ChatIdCache`.
    """

    def __init__(self, *, ttl: float = 60.0, size: int = 50_000, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl <= 0 or size < 1:
            raise ValueError("the visitor cache needs a positive ttl and room for at least one visitor")
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._profiles: dict[tuple[str, str], tuple[VisitorFields, float]] = {}

    def merged(self, channel_id: str, native_user_id: str, fields: VisitorFields) -> VisitorFields | None:
        """The stored profile when `fields` would change nothing in it, else None (then save and `put`)."""
        cached = self._profiles.get((channel_id, native_user_id))
        if cached is None or self._clock() - cached[1] > self._ttl:
            return None
        profile = cached[0]
        return profile if merge_visitor(profile, fields) == profile else None

    def put(self, channel_id: str, native_user_id: str, profile: VisitorFields) -> VisitorFields:
        key = (channel_id, native_user_id)
        if key not in self._profiles and len(self._profiles) >= self._size:
            del self._profiles[next(iter(self._profiles))]
        self._profiles[key] = (profile, self._clock())
        return profile


def merge_visitor(stored: VisitorFields, update: VisitorFields) -> VisitorFields:
    """`update` over `stored`, where a None in `update` keeps the stored value."""
    changes = {
        name: value for name in update.__struct_fields__ if (value := getattr(update, name)) is not None
    }
    return msgspec.structs.replace(stored, **changes)


def check_ttl(ttl: float | None) -> float | None:
    """The TTL itself, refused when it would make no sense (a zero or negative TTL is a caller's bug)."""
    if ttl is not None and (not math.isfinite(ttl) or ttl <= 0):
        raise ValueError(f"ttl must be a positive number of seconds, not {ttl!r}")
    return ttl


def redact_url(url: str) -> str:
    """The URL with any password (in the authority or the query) replaced by `***`, safe for messages."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            user, has_password, _ = userinfo.partition(":")
            # A lone userinfo may well be a token (many services put it there): hide it too.
            netloc = f"{user}:***@{host}" if has_password else f"***@{host}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode([(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparsable URL>"
