"""Checks that a schema cannot express: value ranges, URL shapes, unique ids, known adapter types."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bridge._config.decode import Decoded, decode
from bridge._config.problems import KeyPath, Problem

if TYPE_CHECKING:
    from bridge.config import ChannelConfig, Config

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "STORE_SCHEMES",
    "check_adapter",
    "check_config",
    "decode_adapter_block",
    "http_url_problem",
]

CHANNEL_ID = re.compile(r"[a-z0-9-]+")
URL_SECRET = re.compile(r"[A-Za-z0-9._~-]+")
MIN_URL_SECRET_LENGTH = 16
STORE_SCHEMES = ("sqlite", "redis", "rediss")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "console")


def http_url_problem(url: str) -> str | None:
    """Why `url` is not a usable absolute http(s) URL, or None. Never quotes the URL: it may hold a token."""
    if not url or any(c.isspace() for c in url):
        return "must be an http:// or https:// URL without spaces"
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        shown = f"got scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        return f"must be an http:// or https:// URL ({shown})"
    if not parts.hostname:
        return "must be an http:// or https:// URL with a host name"
    return None


def _store_url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    examples = "sqlite:///./data/bridge.db, redis://host:6379/0 or rediss://host:6380/0"
    if parts.scheme not in STORE_SCHEMES:
        shown = f"scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        return f"unsupported {shown}: use one of {', '.join(STORE_SCHEMES)} ({examples})"
    if parts.scheme == "sqlite":
        if parts.path in ("", "/") or parts.netloc:
            return "a sqlite URL needs a file path, e.g. sqlite:///./data/bridge.db (relative) or sqlite:////var/lib/bridge.db"
        return None
    if not parts.hostname:
        return f"a {parts.scheme} URL needs a host, e.g. {parts.scheme}://127.0.0.1:6379/0"
    database = parts.path.strip("/")
    if database and not database.isdigit():
        return f"the {parts.scheme} database number must be an integer, got {database!r}"
    return None


class _Collector:
    """Gathers problems; the small range helpers keep every check a single readable line."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: KeyPath, message: str) -> None:
        self.problems.append(Problem.at(path, message))

    def positive(self, path: KeyPath, value: float) -> None:
        if not (math.isfinite(value) and value > 0):
            self.add(path, f"must be a positive number, got {value}")

    def non_negative(self, path: KeyPath, value: float) -> None:
        if not (math.isfinite(value) and value >= 0):
            self.add(path, f"must be a number >= 0, got {value}")

    def between(self, path: KeyPath, value: float, low: float, high: float) -> None:
        if not (math.isfinite(value) and low <= value <= high):
            self.add(path, f"must be between {low:g} and {high:g}, got {value}")


def check_config(
    config: Config,
    channels: Sequence[tuple[int, ChannelConfig]],
    adapters: Mapping[str, type[Any]] | None,
    *,
    from_env: Collection[KeyPath] = (),
) -> list[Problem]:
    """Semantic problems of a decoded config. `channels` pairs each decoded channel with its index in the
    file, since channels that failed to decode are left out but the others must keep their true key paths."""
    out = _Collector()
    server = config.server
    if not server.host.strip():
        out.add(("server", "host"), "must not be empty")
    out.between(("server", "port"), server.port, 1, 65535)
    out.positive(("server", "max_body_bytes"), server.max_body_bytes)
    if server.public_url is not None:
        problem = http_url_problem(server.public_url)
        if problem is None and (urlsplit(server.public_url).query or urlsplit(server.public_url).fragment):
            problem = "must not have a query (?...) or fragment (#...): the bridge appends paths to it"
        if problem is not None:
            out.add(("server", "public_url"), problem)
    if (problem := _store_url_problem(config.store.url)) is not None:
        out.add(("store", "url"), problem)
    _check_delivery(config, out)
    out.positive(("files", "url_ttl"), config.files.url_ttl)
    out.positive(("files", "max_size_mb"), config.files.max_size_mb)
    if config.logging.level.upper() not in LOG_LEVELS:
        out.add(("logging", "level"), f"must be one of {', '.join(LOG_LEVELS)}, got {config.logging.level!r}")
    if config.logging.format not in LOG_FORMATS:
        out.add(
            ("logging", "format"), f"must be one of {', '.join(LOG_FORMATS)}, got {config.logging.format!r}"
        )
    first_use: dict[str, int] = {}
    for index, channel in channels:
        _check_channel(index, channel, first_use, out)
        out.problems.extend(check_adapter(index, channel, adapters, from_env=from_env))
    return out.problems


def _check_delivery(config: Config, out: _Collector) -> None:
    delivery = config.delivery
    if not delivery.retry_schedule:
        out.add(("delivery", "retry_schedule"), "must list at least one delay (seconds)")
    for step, delay in enumerate(delivery.retry_schedule):
        out.non_negative(("delivery", "retry_schedule", step), delay)
    out.positive(("delivery", "max_age"), delivery.max_age)
    out.between(("delivery", "jitter"), delivery.jitter, 0, 1)
    if delivery.workers < 1:
        out.add(("delivery", "workers"), f"must be at least 1, got {delivery.workers}")
    out.non_negative(("delivery", "shutdown_grace"), delivery.shutdown_grace)
    out.positive(("delivery", "dedupe_ttl"), delivery.dedupe_ttl)
    out.positive(("delivery", "lease"), delivery.lease)
    out.non_negative(("delivery", "max_backlog"), delivery.max_backlog)
    out.non_negative(("delivery", "high_water"), delivery.high_water)
    out.non_negative(("delivery", "high_water_wait"), delivery.high_water_wait)


def _check_channel(index: int, channel: ChannelConfig, first_use: dict[str, int], out: _Collector) -> None:
    here: KeyPath = ("channels", index)
    if not CHANNEL_ID.fullmatch(channel.id):
        out.add(
            (*here, "id"), f"must use only lowercase letters, digits and '-' ([a-z0-9-]+), got {channel.id!r}"
        )
    elif channel.id in first_use:
        out.add(
            (*here, "id"),
            f"duplicate channel id {channel.id!r} (also used by channels[{first_use[channel.id]}])",
        )
    else:
        first_use[channel.id] = index
    platform = channel.platform
    if (problem := http_url_problem(platform.webhook_url)) is not None:
        out.add((*here, "platform", "webhook_url"), problem)
    if platform.token is None and platform.url_secret is None:
        out.add(
            (*here, "platform"),
            "needs token (the platform sends it as 'Authorization: Token ...') or url_secret "
            "(a secret reply URL), or both",
        )
    if platform.token is not None and any(c.isspace() or not c.isprintable() for c in platform.token):
        out.add((*here, "platform", "token"), "must not contain spaces or control characters")
    if platform.url_secret is not None:
        if not URL_SECRET.fullmatch(platform.url_secret):
            out.add(
                (*here, "platform", "url_secret"),
                "may only use letters, digits and . _ ~ - (it is part of a URL)",
            )
        elif len(platform.url_secret) < MIN_URL_SECRET_LENGTH:
            out.add(
                (*here, "platform", "url_secret"),
                f"is too short to be secret: use at least {MIN_URL_SECRET_LENGTH} random characters",
            )
    out.positive((*here, "platform", "timeout"), platform.timeout)
    out.positive((*here, "platform", "connect_timeout"), platform.connect_timeout)


def check_adapter(
    index: int,
    channel: ChannelConfig,
    adapters: Mapping[str, type[Any]] | None,
    *,
    from_env: Collection[KeyPath] = (),
) -> list[Problem]:
    """The adapter block: `type` present and, given the installed adapters, known and its keys valid."""
    here: KeyPath = ("channels", index, "adapter")
    if "type" not in channel.adapter:
        return [Problem.at((*here, "type"), "required key is missing (the adapter to use, e.g. telegram)")]
    kind = channel.adapter["type"]
    if not isinstance(kind, str) or not kind:
        return [Problem.at((*here, "type"), f"expected a non-empty str, got {type(kind).__name__}")]
    if adapters is None:
        return []
    adapter_cls = adapters.get(kind)
    if adapter_cls is None:
        installed = ", ".join(sorted(adapters)) or "none"
        return [Problem.at((*here, "type"), f"unknown adapter type {kind!r} (installed: {installed})")]
    decoded = decode_adapter_block(channel.adapter, adapter_cls, here, from_env=from_env)
    if decoded.value is not None and not decoded.problems:
        # Keep the values read from `${VAR}` as numbers or booleans, so that `adapter_settings` at start-up
        # decodes the block as it was checked here.
        channel.adapter.update(decoded.data)
    return decoded.problems


def decode_adapter_block(
    block: Mapping[str, Any],
    adapter_cls: type[Any],
    prefix: KeyPath,
    *,
    from_env: Collection[KeyPath] = (),
) -> Decoded:
    config_type = getattr(adapter_cls, "config_type", None)
    if config_type is None:
        problem = Problem.at((*prefix, "type"), f"adapter {adapter_cls.__name__} declares no config_type")
        return Decoded(None, [problem], block)
    settings = {key: value for key, value in block.items() if key != "type"}
    return decode(settings, config_type, prefix, from_env=from_env)
