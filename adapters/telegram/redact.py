"""Keeping the bot token (and the webhook secret) out of the logs of the libraries the adapter drives.

Telegram puts the token in every URL, and httpx logs each request's URL at INFO, PTB its base URL and request
parameters at DEBUG. A filter on exactly those loggers rewrites such records before any handler sees them,
so operators keep the useful lines without the secret.
"""

from __future__ import annotations

import logging

__all__ = ["SecretRedactor"]

# The loggers that print Telegram URLs or request parameters.
_LOGGERS = ("httpx", "telegram.Bot", "telegram.ext.ExtBot")
_MASK = "<redacted>"


class SecretRedactor(logging.Filter):
    def __init__(self, *secrets: str) -> None:
        super().__init__()
        self.secrets = {s for s in secrets if s}
        self._installed: list[logging.Logger] = []

    def add(self, secret: str) -> None:
        if secret:
            self.secrets.add(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logging system's business, not ours
            return True
        for secret in self.secrets:
            message = message.replace(secret, _MASK)
        # Always frozen: PTB logs dicts it later fills with token-bearing URLs, and handlers format lazily.
        record.msg, record.args = message, None
        return True

    def install(self) -> None:
        if self._installed:
            return
        for name in _LOGGERS:
            logger = logging.getLogger(name)
            logger.addFilter(self)
            self._installed.append(logger)

    def remove(self) -> None:
        for logger in self._installed:
            logger.removeFilter(self)
        self._installed.clear()
