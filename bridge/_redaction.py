"""Masking secrets in log text: configured secrets in every encoded form, and the kinds of secret any line may
carry whoever configured what (`Authorization` values, bearer and Telegram bot tokens, the platform token in
webhook paths, signed file links). Used by `bridge.logs` for every record the bridge writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "Redactor"]

MASK: Final = "***"

# `Authorization: Token x`, `"authorization": "Bearer x"`, `(b'authorization', b'Token x')`, `authorization=x`.
_HEADER_VALUE = re.compile(
    r"(?i)\b((?:proxy-)?authorization|x-telegram-bot-api-secret-token)(['\"]?\s*[:=,]\s*(?:b(?=['\"]))?['\"]?)([^\r\n'\",}\])]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)[^\s'\",;]+")
_TELEGRAM_TOKEN = re.compile(r"(?<![0-9])\d{5,}:[A-Za-z0-9_-]{30,}")
_PLATFORM_TOKEN_PATH = re.compile(r"(/omnichannel_message/)[^/?#\s\"']+")
# Signed file links are capabilities: whoever has one can fetch the visitor's file until it expires.
_FILE_LINK = re.compile(r"(/files/)[^/?#\s\"']+")
# What any of the patterns above needs to match somewhere: most texts (an access line, a field value) contain
# none of it, and one search for it costs a fraction of running every substitution.
_TRIGGERS: Final = (
    r"(?i:authorization|x-telegram-bot-api-secret-token|bearer\s)",
    _TELEGRAM_TOKEN.pattern,
    "/omnichannel_message/",
    "/files/",
)


# Bounds of the redactor's memory of clean texts: how long a text may be, and how many are kept.
_CLEAN_TEXT_MAX: Final = 512
_CLEAN_TEXTS: Final = 4096


class Redactor:
    """Replaces secrets in text by `***`. Built once from the config's secrets; cheap to call per record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._forms: set[str] = set()
        self._secrets: re.Pattern[str] | None = None
        self._anything = re.compile("|".join(_TRIGGERS))
        # Short texts found clean, as keys: the same method, route, client and line come back on every request.
        self._clean: dict[str, None] = {}
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Mask these too from now on: secrets the bridge only learns at start (a generated signing key)."""
        for secret in secrets:
            if secret:
                self._forms.update({secret, quote(secret, safe=""), quote_plus(secret)})
        # Longest first, so a secret containing another is masked whole.
        ordered = sorted(self._forms, key=len, reverse=True)
        self._secrets = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._anything = re.compile("|".join([*map(re.escape, ordered), *_TRIGGERS]))
        self._clean = {}  # a text clean before may hold the new secret

    def __call__(self, text: str) -> str:
        if text in self._clean:
            return text
        if self._anything.search(text) is None:
            if len(text) <= _CLEAN_TEXT_MAX:
                if len(self._clean) >= _CLEAN_TEXTS:
                    self._clean = {}
                self._clean[text] = None
            return text
        if self._secrets is not None:
            text = self._secrets.sub(MASK, text)
        text = _HEADER_VALUE.sub(rf"\1\2{MASK}", text)
        text = _BEARER.sub(rf"\1{MASK}", text)
        text = _TELEGRAM_TOKEN.sub(MASK, text)
        text = _PLATFORM_TOKEN_PATH.sub(rf"\1{MASK}", text)
        return _FILE_LINK.sub(rf"\1{MASK}", text)

    def value(self, value: Any, depth: int = 0) -> Any:
        """A JSON-ready copy of an extra field's value with every string in it redacted."""
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return self(value)
        if depth < 4 and isinstance(value, Mapping):
            return {self(str(key)): self.value(item, depth + 1) for key, item in value.items()}
        if depth < 4 and isinstance(value, list | tuple | set | frozenset):
            return [self.value(item, depth + 1) for item in value]
        return self(str(value))
