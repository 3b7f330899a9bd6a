"""The whole loop for the file tests, over real sockets: fake Telegram → a running bridge → platform emulator.

`run_loop` starts the fake Telegram Bot API (and, with `second_channel`, a second bot on its own fake), the
platform emulator and the bridge under uvicorn with the bridge's own logging settings (access log included),
so what the tests capture is what an operator's bridge would write.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import msgspec

from adapters.telegram import TelegramAdapter
from bridge.app import BridgeRuntime, create_app
from bridge.config import Config, FilesConfig, LoggingConfig, MetricsConfig, secret_values
from bridge.emulator import EmulatorChannel, EmulatorConfig, RunningEmulator, Script, run_emulator
from bridge.emulator.script import default_script
from bridge.files import FileUrlSigner
from bridge.testing.server import serve
from bridge.testing.telegram import FakeTelegram, run_fake_telegram
from tests.conftest import free_port
from tests.support import bridge_logging, channel, make_config

PLATFORM_TOKEN = "platform-token-files-4f81c2d9"
PLATFORM_TOKEN_2 = "platform-token-files-second-93ab"
REPLY_TOKEN = "reply-token-files-7d2e55a1"
URL_SECRET = "url-secret-files-0c3b9e77d1"
SIGNING_KEY = "signing-key-files-5a9d0e3c7b21"
SECOND_BOT_TOKEN = "987654321:SECOND-fake-telegram-token_xyz123"
ANN = {"id": 42, "is_bot": False, "first_name": "Ann", "last_name": "Lee", "username": "ann"}
# Where app.py keeps a generated signing key.
SIGNING_KEY_ENTRY = ("bridge", "file-signing-key")


@dataclass
class Loop:
    tg: FakeTelegram
    emulator: RunningEmulator
    runtime: BridgeRuntime
    url: str
    config: Config
    tg2: FakeTelegram | None = None

    async def signing_key(self) -> str:
        configured = self.config.files.signing_key
        if configured:
            return configured
        stored = await self.runtime.store.kv_get(*SIGNING_KEY_ENTRY)
        assert stored is not None
        return stored.decode()

    async def signer(self, *, ttl: float = 3600.0) -> FileUrlSigner:
        """A signer with the bridge's own key (to make links the bridge would have made, expired ones too)."""
        return FileUrlSigner(await self.signing_key(), public_url=self.url, ttl=ttl)


def telegram_block(tg: FakeTelegram, **overrides: Any) -> dict[str, Any]:
    return {"type": "telegram", **tg.adapter_settings(**overrides)}


@contextlib.asynccontextmanager
async def run_loop(
    tmp_path: Path,
    *,
    files: FilesConfig | None = None,
    telegram: dict[str, Any] | None = None,
    script: Script | None = None,
    second_channel: bool = False,
    metrics_token: str | None = None,
    logging_config: LoggingConfig | None = None,
    log_stream: TextIO | None = None,
) -> AsyncIterator[Loop]:
    """The loop; with `log_stream`, the bridge's logging is configured as in production, writing there."""
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    async with contextlib.AsyncExitStack() as stack:
        tg = await stack.enter_async_context(run_fake_telegram())
        tg2 = await stack.enter_async_context(run_fake_telegram(token=SECOND_BOT_TOKEN)) if second_channel else None
        emulator = await stack.enter_async_context(run_emulator(EmulatorConfig(script=script or default_script())))
        channels = [
            channel(
                "tg",
                emulator.webhook_url(PLATFORM_TOKEN),
                token=REPLY_TOKEN,
                url_secret=URL_SECRET,
                site="example.com",
                adapter=telegram_block(tg, **(telegram or {})),
            )
        ]
        if tg2 is not None:
            channels.append(
                channel("tg2", emulator.webhook_url(PLATFORM_TOKEN_2), token=REPLY_TOKEN, adapter=telegram_block(tg2))
            )
        config = make_config(channels, store_url=f"sqlite:///{tmp_path}/bridge.db", port=port, public_url=public_url)
        config = msgspec.structs.replace(
            config,
            files=files or FilesConfig(signing_key=SIGNING_KEY),
            metrics=MetricsConfig(token=metrics_token),
            logging=logging_config or LoggingConfig(level="INFO"),
        )
        if log_stream is not None:
            stack.enter_context(bridge_logging(config.logging, secret_values(config), log_stream))
        app = create_app(config, adapters={"telegram": TelegramAdapter})
        await stack.enter_async_context(serve(app, port=port, logging=config.logging))
        # The agent answers over the secret URL (no header): that secret travels on every reply.
        emulator.set_channel(EmulatorChannel(token=PLATFORM_TOKEN, reply_url=f"{public_url}/channels/tg/{URL_SECRET}"))
        if tg2 is not None:
            emulator.set_channel(
                EmulatorChannel(token=PLATFORM_TOKEN_2, reply_url=f"{public_url}/channels/tg2", reply_token=REPLY_TOKEN)
            )
        yield Loop(tg, emulator, app.state.bridge, public_url, config, tg2)
