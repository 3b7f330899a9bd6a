"""Test-only pieces: a small adapter that records what it is asked to send, and config builders."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

import msgspec

from bridge import Adapter, Capabilities, Outbound, PermanentSendError, RetryableSendError
from bridge.config import ChannelConfig, Config, FilesConfig, LoggingConfig, PlatformConfig, ServerConfig, StoreConfig
from bridge.logs import CONFIGURED_LOGGERS, configure_logging


class RecordingConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    max_text_length: int | None = None
    buttons: bool = True
    files: bool = True
    fail: str | None = None  # "permanent" | "retryable" for every send
    fail_start: bool = False


class RecordingAdapter(Adapter[RecordingConfig]):
    """Sends nowhere: keeps each outbound message, so tests can assert what the core handed over."""

    name = "recording"
    config_type = RecordingConfig

    def __init__(self, config: RecordingConfig, context: Any) -> None:
        super().__init__(config, context)
        self.sent: list[Outbound] = []
        self.arrived = asyncio.Event()
        self.events: list[str] = []
        self.capabilities = Capabilities(  # type: ignore[misc]
            max_text_length=config.max_text_length, buttons=config.buttons, files=config.files
        )

    async def do_start(self) -> None:
        self.events.append("start")
        if self.config.fail_start:
            raise ConnectionError("messenger unreachable")

    async def do_stop(self) -> None:
        self.events.append("stop")

    async def do_send(self, message: Outbound) -> None:
        if self.config.fail == "permanent":
            raise PermanentSendError("recipient refused")
        if self.config.fail == "retryable":
            raise RetryableSendError("try later", retry_after=0.1)
        self.sent.append(message)
        self.arrived.set()

    async def wait_sent(self, count: int, timeout: float = 10.0) -> list[Outbound]:
        async def _wait() -> None:
            while len(self.sent) < count:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(_wait(), timeout)
        return self.sent


def channel(
    channel_id: str,
    webhook_url: str,
    *,
    token: str | None = None,
    url_secret: str | None = None,
    site: str | None = None,
    adapter: dict[str, Any] | None = None,
) -> ChannelConfig:
    return ChannelConfig(
        id=channel_id,
        platform=PlatformConfig(
            webhook_url=webhook_url, token=token, url_secret=url_secret, site=site, timeout=5.0, connect_timeout=2.0
        ),
        adapter=adapter or {"type": "recording"},
    )


def make_config(
    channels: Sequence[ChannelConfig],
    *,
    store_url: str,
    port: int = 8080,
    public_url: str | None = None,
    max_body_bytes: int = 1024 * 1024,
) -> Config:
    return Config(
        channels=list(channels),
        server=ServerConfig(host="127.0.0.1", port=port, public_url=public_url, max_body_bytes=max_body_bytes),
        store=StoreConfig(url=store_url),
        files=FilesConfig(signing_key="test-signing-key-0123456789"),
    )


# The logging module's switches `configure_logging` turns off (what records carry).
_RECORD_SWITCHES = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing", "logAsyncioTasks")


@contextlib.contextmanager
def bridge_logging(
    logging_config: LoggingConfig, secrets: Iterable[str], stream: TextIO, *, log_format: str | None = None
) -> Iterator[None]:
    """The process's logging as `omnichannel-bridge run` sets it up, writing to `stream`, for the block; then
    every logger it touched is put back as it was."""
    saved = {
        name: (logger.level, list(logger.handlers), logger.propagate)
        for name in CONFIGURED_LOGGERS
        for logger in [logging.getLogger(name)]
    }
    switches = {name: getattr(logging, name) for name in _RECORD_SWITCHES if hasattr(logging, name)}
    handler = configure_logging(logging_config, secrets, log_format=log_format, stream=stream)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        for name, value in switches.items():
            setattr(logging, name, value)
        logging.getLogger().removeHandler(handler)
        for name, (level, handlers, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate = propagate
