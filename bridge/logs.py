"""Logging for operators: one JSON object per line (or a readable line with `console`), secrets never shown.

Every record reaching the bridge's handler goes through `RedactingFilter` first: the message is rendered, then
every configured secret (and its URL-encoded forms), every `Authorization` header value, bearer tokens,
Telegram bot tokens, the platform token in webhook paths and signed file links are replaced by `***` in the
message, in the extra fields and in the exception text. Uvicorn's and Litestar's loggers are pointed at the
same handler, because an access log line carries the request path and a secret-URL reply path is a secret.

A correlation id follows each message from its arrival to its delivery: the core generates one when it takes a
message over, carries it on the queued item, and binds it (with channel, chat id and message id) around the
delivery with `log_context`, so every line logged in between carries it without being passed along.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, TextIO
from urllib.parse import quote, quote_plus

import msgspec

from bridge.config import LoggingConfig
from bridge.handoff import InboundItem, Item

__all__ = [
    "CONFIGURED_LOGGERS",
    "LOG_FORMATS",
    "MASK",
    "BridgeLogHandler",
    "ConsoleFormatter",
    "JsonFormatter",
    "RedactingFilter",
    "Redactor",
    "configure_logging",
    "current_correlation_id",
    "item_log_fields",
    "log_context",
    "new_correlation_id",
    "redact_also",
    "uvicorn_logging",
]

LOG_FORMATS: Final = ("json", "console")
MASK: Final = "***"

# A context variable has to live at module level (one per process is what makes it work across tasks); it holds
# an immutable mapping, replaced wholesale on each `log_context`, never mutated.
_CONTEXT: ContextVar[Mapping[str, Any]] = ContextVar("omnichannel_bridge_log_context", default=MappingProxyType({}))

# Loggers that set up handlers of their own elsewhere; ours must see their records too.
_ROUTED_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "litestar")
# Chatty below WARNING (one line per HTTP request to Telegram, including every long poll).
_QUIET_LOGGERS: Final = ("httpx", "httpcore", "hpack", "telegram.ext.ExtBot")
# Every logger `configure_logging` changes (the root first), for code that must put them back afterwards.
CONFIGURED_LOGGERS: Final = ("", *_ROUTED_LOGGERS, *_QUIET_LOGGERS)

_RECORD_FIELDS: Final = frozenset(
    {*logging.LogRecord("", 0, "", 0, "", None, None).__dict__, "message", "asctime", "taskName", "color_message"}
)

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


def new_correlation_id() -> str:
    return os.urandom(16).hex()  # as random as uuid4().hex, without building a UUID object per message


def current_correlation_id() -> str | None:
    value = _CONTEXT.get().get("correlation_id")
    return value if isinstance(value, str) else None


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every record logged inside the block (in this task and the tasks it starts).
    Fields given as None are left out; an explicit `extra=` on a log call wins over the context."""
    merged = {**_CONTEXT.get(), **{key: value for key, value in fields.items() if value is not None}}
    token = _CONTEXT.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def item_log_fields(item: Item) -> dict[str, Any]:
    """What identifies a queued item in logs: direction, channel, chat, message id and correlation id."""
    if isinstance(item, InboundItem):
        direction, message_id = "inbound", item.payload.message.id
    else:
        direction, message_id = "outbound", item.message.message_id
    return {
        "direction": direction,
        "channel": item.channel_id,
        "chat_id": item.chat_id,
        "message_id": message_id,
        "correlation_id": item.correlation_id,
    }


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


def _rendered(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:
        # A broken format string must not lose the line (nor raise inside logging).
        return f"{record.msg!r} % {record.args!r}"


class RedactingFilter(logging.Filter):
    """Adds the context fields, renders the message and redacts it, the extras and the exception text.

    It rewrites the record in place (message rendered, args dropped, exception text cached), so any handler
    formatting the same record afterwards sees only the redacted text."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redact = redactor
        self._exceptions = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _CONTEXT.get().items():
            if key not in record.__dict__:
                setattr(record, key, value)
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, _version, status = record.args
            record.__dict__.update(client=client, method=method, path=path, status=status)
        record.msg, record.args = self.redact(_rendered(record)), None
        record.__dict__.pop("color_message", None)
        for key in _extra_fields(record):
            record.__dict__[key] = self.redact.value(record.__dict__[key])
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = self.redact(self._exceptions.formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def _extra_fields(record: logging.LogRecord) -> list[str]:
    return [key for key in record.__dict__ if key not in _RECORD_FIELDS and not key.startswith("_")]


def _timestamp(created: float) -> str:
    """RFC 3339, UTC, milliseconds: what log pipelines parse without configuration."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `ts`, `level`, `event`, `logger`, the extra fields, then `exception`."""

    def __init__(self) -> None:
        super().__init__()
        self._encoder = msgspec.json.Encoder(enc_hook=str)
        # The date and time up to the second, kept while lines keep coming within the same second.
        self._second = -1
        self._second_text = ""

    def _ts(self, created: float) -> str:
        """`_timestamp(created)` exactly (microseconds rounded as datetime does, then cut to milliseconds)."""
        second = int(created)
        micros = round((created - second) * 1e6)
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        if second != self._second:
            self._second_text = _timestamp(second)[:-5]  # without ".000Z"
            self._second = second
        return f"{self._second_text}.{micros // 1000:03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": self._ts(record.created),
            "level": record.levelname.lower(),
            "event": _rendered(record),
            "logger": record.name,
        }
        for key in _extra_fields(record):
            document.setdefault(key, record.__dict__[key])
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            document["exception"] = record.exc_text
        if record.stack_info:
            document["stack"] = record.stack_info
        return self._encoder.encode(document).decode("utf-8")


class ConsoleFormatter(logging.Formatter):
    """`time LEVEL logger: event key=value ...` and the traceback below, for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{key}={record.__dict__[key]}" for key in _extra_fields(record))
        line = f"{_timestamp(record.created)} {record.levelname:<7} {record.name}: {_rendered(record)}"
        if fields:
            line = f"{line}  {fields}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line = f"{line}\n{record.exc_text}"
        if record.stack_info:
            line = f"{line}\n{record.stack_info}"
        return line


class BridgeLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installs on the root logger (a type of its own, so a second call
    replaces it instead of doubling every line)."""


def configure_logging(
    config: LoggingConfig,
    secrets: Iterable[str] = (),
    *,
    log_format: str | None = None,
    stream: TextIO | None = None,
) -> BridgeLogHandler:
    """Send every log record of the process through one redacting handler on the root logger.

    `log_format` (the `--log-format` flag) overrides `config.format`; `stream` defaults to stderr. Returns the
    handler (tests remove it again)."""
    chosen = log_format or config.format
    if chosen not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {chosen!r}")
    level = logging.getLevelName(config.level.upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {config.level!r}")
    handler = BridgeLogHandler(stream or sys.stderr)
    handler.addFilter(RedactingFilter(Redactor(secrets)))
    formatter: Callable[[], logging.Formatter] = JsonFormatter if chosen == "json" else ConsoleFormatter
    handler.setFormatter(formatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, BridgeLogHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _ROUTED_LOGGERS:
        routed = logging.getLogger(name)
        routed.handlers.clear()
        routed.propagate = True
        routed.setLevel(logging.NOTSET)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if level <= logging.DEBUG else logging.WARNING)
    logging.captureWarnings(True)
    return handler


def redact_also(secrets: Iterable[str]) -> None:
    """Add secrets to the redaction of the handler `configure_logging` installed (none installed: nothing to do)."""
    wanted = list(secrets)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, BridgeLogHandler):
            for log_filter in handler.filters:
                if isinstance(log_filter, RedactingFilter):
                    log_filter.redact.add(wanted)


def uvicorn_logging(config: LoggingConfig) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run`/`uvicorn.Config` that leave logging to `configure_logging`: no
    dictConfig of uvicorn's own (its handlers would print access lines unredacted), access lines as configured."""
    return {"log_config": None, "log_level": config.level.lower(), "access_log": config.access_log}
