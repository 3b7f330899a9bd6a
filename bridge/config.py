"""The bridge's one YAML config file, decoded strictly into Structs.

Key names are public interface (operators' files depend on them): rename nothing. Loading reports every
problem it can find at once, each as one line starting with its key path, so that an operator fixes a file in
one round instead of one error per restart. The machinery lives in `bridge._config`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from bridge._config.checks import LOG_LEVELS, check_config, decode_adapter_block
from bridge._config.decode import decode
from bridge._config.problems import KeyPath, Problem, format_path, is_under
from bridge._config.sensitive import (
    mask_secret,
    masked_webhook_url,
    placeholder_problems,
    reply_base_url,
    reply_urls,
    secret_values,
    webhook_token,
)
from bridge._config.source import YamlProblems, interpolate, read_yaml

__all__ = [
    "AdapterRegistry",
    "ChannelConfig",
    "Config",
    "ConfigError",
    "DeliveryConfig",
    "FilesConfig",
    "LoggingConfig",
    "MetricsConfig",
    "PlatformConfig",
    "ServerConfig",
    "StoreConfig",
    "adapter_settings",
    "load_config",
    "mask_secret",
    "masked_webhook_url",
    "parse_config",
    "reply_base_url",
    "reply_urls",
    "secret_values",
    "webhook_token",
]

# Adapter name (the `adapter.type` value) → Adapter class, as `bridge.plugins.discover_adapters()` returns.
AdapterRegistry = Mapping[str, type[Any]]


class ConfigError(Exception):
    """Invalid configuration. `problems` holds one line per problem, each starting with the key path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ServerConfig(_Strict):
    host: str = "0.0.0.0"
    port: int = 8080
    public_url: str | None = None
    max_body_bytes: int = 1024 * 1024
    # /readyz also asks the platform's webhook host; off by default (see bridge/readiness.py).
    ready_checks_platform: bool = False


class StoreConfig(_Strict):
    url: str = "sqlite:///./data/bridge.db"


class PlatformConfig(_Strict):
    webhook_url: str
    token: str | None = None
    url_secret: str | None = None
    site: str | None = None
    timeout: float = 10.0
    connect_timeout: float = 5.0


class ChannelConfig(_Strict):
    id: str
    platform: PlatformConfig
    # The adapter's own keys are validated by the adapter's own Struct (see `adapter_settings`).
    adapter: dict[str, Any]

    @property
    def adapter_type(self) -> str:
        return str(self.adapter["type"])


class DeliveryConfig(_Strict):
    # Seconds to wait before each retry; the last step repeats until `max_age` is reached.
    retry_schedule: list[float] = msgspec.field(
        default_factory=lambda: [0.0, 5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0]
    )
    max_age: float = 24 * 3600.0
    jitter: float = 0.1
    # Concurrent deliveries; more share each queue write (see config.example.yaml).
    workers: int = 16
    shutdown_grace: float = 10.0
    dedupe_ttl: float = 24 * 3600.0
    # Seconds an item in delivery stays held without its worker renewing the hold (renewed every third of
    # it): how long a crashed process's (or replica's) in-flight items wait before they are delivered again.
    lease: float = 30.0
    # Messages one channel may hold queued in one direction before new ones are refused (0 = no limit): the
    # sender is told to come back later (a messenger redelivers, the platform sees a 503), so a flood cannot
    # grow the queue without bound or starve delivery.
    max_backlog: int = 10000
    # Above this many queued messages of a channel in one direction, a sender waits (up to `high_water_wait`
    # seconds) for deliveries to settle before its message is taken over, so ingest cannot take the event loop
    # from delivery (0 = never wait).
    high_water: int = 500
    high_water_wait: float = 2.0


class FilesConfig(_Strict):
    signing_key: str | None = None
    url_ttl: float = 7 * 24 * 3600.0
    max_size_mb: float = 20.0
    # Networks (CIDR) the bridge may download from although they are not public (see bridge/fetch.py).
    allow_private_networks: list[str] = msgspec.field(default_factory=list)
    # Seconds per network operation, seconds for a whole download, and redirects followed, when the bridge
    # itself downloads a URL (an agent's file to upload).
    fetch_timeout: float = 10.0
    fetch_deadline: float = 120.0
    fetch_max_redirects: int = 5

    def __post_init__(self) -> None:
        if self.fetch_timeout <= 0 or self.fetch_deadline <= 0:
            raise ValueError("fetch_timeout and fetch_deadline must be positive")
        if self.fetch_max_redirects < 0:
            raise ValueError("fetch_max_redirects must not be negative")
        for cidr in self.allow_private_networks:
            try:
                ipaddress.ip_network(cidr.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"allow_private_networks: {cidr!r} is not an IP network in CIDR notation (e.g. 10.0.0.0/8)"
                ) from None


class LoggingConfig(_Strict):
    level: str = "INFO"
    format: str = "json"
    # One INFO line per HTTP request. Off behind a reverse proxy that logs requests already: each line costs
    # ~5 % of the CPU of a message at full load (bench/README.md).
    access_log: bool = True


class MetricsConfig(_Strict):
    token: str | None = None


class Config(_Strict):
    channels: list[ChannelConfig]
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    store: StoreConfig = msgspec.field(default_factory=StoreConfig)
    delivery: DeliveryConfig = msgspec.field(default_factory=DeliveryConfig)
    files: FilesConfig = msgspec.field(default_factory=FilesConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)

    def channel(self, channel_id: str) -> ChannelConfig | None:
        return next((c for c in self.channels if c.id == channel_id), None)


def load_config(
    path: str | Path,
    adapters: AdapterRegistry | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read, interpolate and validate a config file; raise `ConfigError` listing every problem.

    `adapters` (name → Adapter class) enables the checks of `adapter.type` and of each adapter's own keys.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a directory, not a config file"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the file ({exc.strerror or exc})"]) from None
    return parse_config(text, adapters, source=str(path), environ=environ)


def parse_config(
    text: str,
    adapters: AdapterRegistry | None = None,
    *,
    source: str = "<config>",
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Like `load_config`, from YAML text; `source` names the text in messages, `environ` defaults to
    `os.environ`."""
    try:
        data, problems = read_yaml(text, source)
    except YamlProblems as exc:
        raise ConfigError([str(problem) for problem in exc.problems]) from None
    if data is None:
        raise ConfigError([f"{source}: the file is empty (a config needs at least a channels: list)"])
    if not isinstance(data, dict):
        raise ConfigError(
            [f"{source}: expected a mapping of keys (channels:, server:, ...), got {_kind(data)}"]
        )
    resolved = interpolate(data, os.environ if environ is None else environ)
    problems.extend(resolved.problems)
    config, channels, later = _decode_document(resolved.data, resolved.from_env)
    _normalize(config)
    later.extend(check_config(config, channels, adapters, from_env=resolved.from_env))
    later.extend(placeholder_problems(config, channels))
    # A value whose interpolation failed kept its raw `${...}` text; what else is said of it is noise.
    problems.extend(p for p in later if not any(is_under(p.where, failed) for failed in resolved.failed))
    if problems:
        raise ConfigError(list(dict.fromkeys(str(problem) for problem in problems)))
    return config


def adapter_settings(
    channel: ChannelConfig, adapter_cls: type[Any], *, index: int | None = None
) -> msgspec.Struct:
    """The channel's `adapter:` block (minus `type`) decoded strictly into `adapter_cls.config_type`.

    Raises `ConfigError` with paths under `channels[{index}].adapter` (or `channels[id=...]` without `index`).
    """
    prefix: KeyPath = (
        ("channels", index, "adapter") if index is not None else (f"channels[id={channel.id}]", "adapter")
    )
    settings, problems, _ = decode_adapter_block(channel.adapter, adapter_cls, prefix)
    if problems or settings is None:
        raise ConfigError([str(problem) for problem in problems] or [f"{format_path(prefix)}: undecodable"])
    if not isinstance(settings, msgspec.Struct):
        raise ConfigError([f"adapter {adapter_cls.__name__}: config_type is not a msgspec Struct"])
    return settings


def _kind(value: object) -> str:
    """A YAML reader's name for the type of `value`."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "mapping"
    return {list: "list", str: "str", bool: "bool", int: "int", float: "float"}.get(
        type(value), type(value).__name__
    )


def _decode_document(
    data: dict[Any, Any], from_env: set[KeyPath]
) -> tuple[Config, list[tuple[int, ChannelConfig]], list[Problem]]:
    """Decode section by section and channel by channel, so that one broken part does not hide the others'
    problems. Parts that cannot be decoded fall back to defaults (sections) or are left out (channels)."""
    fields = {field.name: field for field in msgspec.structs.fields(Config)}
    problems = [Problem.at((str(key),), "unknown key") for key in data if key not in fields]
    sections: dict[str, Any] = {}
    for name, field in fields.items():
        # An empty section (every key commented out) reads as null: take it as "all defaults".
        if name == "channels" or data.get(name) is None:
            continue
        value, found, _ = decode(data[name], field.type, (name,), from_env=from_env)
        problems.extend(found)
        if value is not None:
            sections[name] = value
    channels: list[tuple[int, ChannelConfig]] = []
    raw = data.get("channels")
    if "channels" not in data:
        problems.append(Problem.at(("channels",), "required key is missing"))
    elif not isinstance(raw, list):
        problems.append(Problem.at(("channels",), f"expected list, got {_kind(raw)}"))
    elif not raw:
        problems.append(Problem.at(("channels",), "at least one channel is required"))
    else:
        for index, item in enumerate(raw):
            channel, found, _ = decode(item, ChannelConfig, ("channels", index), from_env=from_env)
            problems.extend(found)
            if channel is not None:
                channels.append((index, channel))
    return Config(channels=[channel for _, channel in channels], **sections), channels, problems


def _normalize(config: Config) -> None:
    """Empty optional strings mean "not set" (so `${VAR:-}` can leave a key out); no trailing slash."""
    for channel in config.channels:
        platform = channel.platform
        platform.token = platform.token or None
        platform.url_secret = platform.url_secret or None
        platform.site = platform.site or None
    server = config.server
    server.public_url = server.public_url.rstrip("/") if server.public_url else None
    config.files.signing_key = config.files.signing_key or None
    config.metrics.token = config.metrics.token or None
    if config.logging.level.upper() in LOG_LEVELS:
        config.logging.level = config.logging.level.upper()
