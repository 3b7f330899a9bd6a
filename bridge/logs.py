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
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, TextIO

import msgspec

from bridge._redaction import MASK, Redactor
from bridge.config import LoggingConfig
from bridge.handoff import InboundItem, Item

__all__ = [
    "ACCESS_FORMAT",
    "ACCESS_LOGGER",
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
]

LOG_FORMATS: Final = ("json", "console")

# A context variable has to live at module level (one per process is what makes it work across tasks); it holds
# an immutable mapping, replaced wholesale on each `log_context`, never mutated.
_CONTEXT: ContextVar[Mapping[str, Any]] = ContextVar("omnichannel_bridge_log_context", default=MappingProxyType({}))

# Loggers that set up handlers of their own elsewhere; ours must see their records too.
_ROUTED_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "litestar")
# Chatty below WARNING (one line per HTTP request to Telegram, including every long poll).
_QUIET_LOGGERS: Final = ("httpx", "httpcore", "hpack", "telegram.ext.ExtBot")
# Every logger `configure_logging` changes (the root first), for code that must put them back afterwards.
CONFIGURED_LOGGERS: Final = ("", *_ROUTED_LOGGERS, *_QUIET_LOGGERS)

# The attributes of a record made by a call that passed no extra fields.
_PLAIN_RECORD: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__)
_RECORD_FIELDS: Final = _PLAIN_RECORD | {"message", "asctime", "taskName", "color_message"}
# What uvicorn's access logger logs, by name and format (`bridge.access_log` writes the same lines).
ACCESS_LOGGER: Final = "uvicorn.access"
ACCESS_FORMAT: Final = '%s - "%s %s HTTP/%s" %d'


def new_correlation_id() -> str:
    return os.urandom(16).hex()  # as random as uuid4().hex, without building a UUID object per message


def current_correlation_id() -> str | None:
    value = _CONTEXT.get().get("correlation_id")
    return value if isinstance(value, str) else None


class _LogContext:
    # A plain class rather than a generator-based context manager: two of these wrap every message, and the
    # generator machinery cost twice what the work inside does.
    __slots__ = ("_fields", "_token")

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields
        self._token: Token[Mapping[str, Any]] | None = None

    def __enter__(self) -> None:
        merged = dict(_CONTEXT.get())
        for key, value in self._fields.items():
            if value is not None:
                merged[key] = value
        self._token = _CONTEXT.set(MappingProxyType(merged))

    def __exit__(self, *_exc: object) -> None:
        if self._token is not None:
            _CONTEXT.reset(self._token)
            self._token = None


def log_context(**fields: Any) -> contextlib.AbstractContextManager[None]:
    """Add `fields` to every record logged inside the block (in this task and the tasks it starts).
    Fields given as None are left out; an explicit `extra=` on a log call wins over the context."""
    return _LogContext(fields)


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
        if record.name == ACCESS_LOGGER and isinstance(record.args, tuple) and len(record.args) == 5:
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

    def access_fields(
        self, client: str, method: str, path: str, version: str, status: int
    ) -> tuple[str, dict[str, Any]] | None:
        """What `filter` makes of an access record with these arguments: the redacted event text and the
        fields it adds. None inside a log context, whose fields only the general way adds."""
        if _CONTEXT.get():
            return None
        redact = self.redact
        event = redact(ACCESS_FORMAT % (client, method, path, version, status))
        return event, {"client": redact(client), "method": redact(method), "path": redact(path), "status": status}


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

    def format_access(self, created: float, event: str, fields: dict[str, Any]) -> str:
        """`format` of an INFO access record made at `created`, given `RedactingFilter.access_fields`."""
        document = {"ts": self._ts(created), "level": "info", "event": event, "logger": ACCESS_LOGGER, **fields}
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

    def format_access(self, created: float, event: str, fields: dict[str, Any]) -> str:
        """`format` of an INFO access record made at `created`, given `RedactingFilter.access_fields`."""
        text = " ".join(f"{key}={value}" for key, value in fields.items())
        return f"{_timestamp(created)} INFO    {ACCESS_LOGGER}: {event}  {text}"


class BridgeLogHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler `configure_logging` installs on the root logger (a type of its own, so a second call
    replaces it instead of doubling every line)."""

    def write_access(self, client: str, method: str, path: str, version: str, status: int) -> bool:
        """Write the line an INFO access record with these arguments would become, without making the record
        (see `bridge.access_log`). False, having written nothing, unless the handler has exactly its own
        filter and formatter, takes INFO lines, and no log context is set: the record must take the general way."""
        if self.level > logging.INFO or len(self.filters) != 1:
            return False
        redacting, formatter = self.filters[0], self.formatter
        if not isinstance(redacting, RedactingFilter) or not isinstance(formatter, JsonFormatter | ConsoleFormatter):
            return False
        found = redacting.access_fields(client, method, path, version, status)
        if found is None:
            return False
        line = formatter.format_access(time.time(), *found)
        with self.lock or contextlib.nullcontext():
            try:
                self.stream.write(line + self.terminator)
                self.flush()
            except RecursionError:
                raise
            except Exception:
                self.handleError(logging.makeLogRecord({"name": ACCESS_LOGGER, "msg": found[0]}))
        return True


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
    _skip_unused_record_fields()
    return handler


def _skip_unused_record_fields() -> None:
    """Stop filling in what neither format shows (the calling file, line and function; thread, process and
    task names): the switches the logging HOWTO gives under "Optimization". Finding the caller walks the
    stack on every call, which was a quarter of what logging a line cost."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if hasattr(logging, "logAsyncioTasks"):  # Python 3.12+
        logging.logAsyncioTasks = False


def redact_also(secrets: Iterable[str]) -> None:
    """Add secrets to the redaction of the handler `configure_logging` installed (none installed: nothing to do)."""
    wanted = list(secrets)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, BridgeLogHandler):
            for log_filter in handler.filters:
                if isinstance(log_filter, RedactingFilter):
                    log_filter.redact.add(wanted)
