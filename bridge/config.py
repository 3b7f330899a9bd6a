"""The bridge's one YAML config file, decoded strictly into Structs.

Key names are public interface (operators' files depend on them): rename nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

__all__ = [
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
    "load_config",
]


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
    workers: int = 8
    shutdown_grace: float = 10.0
    dedupe_ttl: float = 24 * 3600.0


class FilesConfig(_Strict):
    signing_key: str | None = None
    url_ttl: float = 7 * 24 * 3600.0
    max_size_mb: float = 20.0


class LoggingConfig(_Strict):
    level: str = "INFO"
    format: str = "json"


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


def load_config(path: str | Path, adapters: dict[str, type[Any]] | None = None) -> Config:
    """Read, interpolate and validate a config file; raise `ConfigError` listing every problem."""
    raise NotImplementedError


def parse_config(text: str, adapters: dict[str, type[Any]] | None = None, *, source: str = "<config>") -> Config:
    """Like `load_config`, from YAML text."""
    raise NotImplementedError


def adapter_settings(channel: ChannelConfig, adapter_cls: type[Any]) -> msgspec.Struct:
    """The channel's `adapter:` block (minus `type`) decoded strictly into `adapter_cls.config_type`."""
    raise NotImplementedError
