"""The conformance suite's world: the bridge's real core served on loopback, wired to the platform emulator.

The emulated agent follows a small script of its own: each `conformance: ...` command a visitor sends makes it
answer with one kind of reply (a text, a long text, a keyboard, a file), sized from the adapter's declared
capabilities so that splitting and keyboard reflow are always exercised.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Litestar

from bridge.adapter import Adapter, Capabilities
from bridge.app import BridgeRuntime, create_app
from bridge.config import ChannelConfig, Config, ConfigError, FilesConfig, PlatformConfig, ServerConfig, StoreConfig
from bridge.emulator import (
    EmulatorChannel,
    EmulatorConfig,
    FileStep,
    KeyboardStep,
    OperatorStep,
    ReceivedRecord,
    Rule,
    RunningEmulator,
    Script,
    ScriptButton,
    run_emulator,
)
from bridge.emulator.app import sample_files
from bridge.handoff import Handoff
from bridge.messages import Inbound
from bridge.testing.conformance_checks import ConformanceFailure
from bridge.testing.server import free_port, serve

__all__ = [
    "FILE_NAME",
    "KEYBOARD_ROWS",
    "MENU_BUTTONS",
    "PLATFORM_TOKEN",
    "REPLY_TEXT",
    "SITE",
    "BridgeLoop",
    "Command",
    "conformance_script",
    "free_port",
    "long_text",
    "run_bridge_loop",
    "sample_file",
]

PLATFORM_TOKEN = "conformance-platform-token"
REPLY_TOKEN = "conformance-reply-token"
SITE = "conformance.example"
SIGNING_KEY = "conformance-file-signing-key-0123456789"

REPLY_TEXT = "Hello from the agent: Grüße, 你好 👋\nA second line."
KEYBOARD_TEXT = "Choose an option:"
# One row of two, one of one, and one wider than most messengers allow, so that reflow is exercised.
KEYBOARD_ROWS: list[list[str]] = [["One", "Two"], ["Three"], ["Four", "Five", "Six", "Seven", "Eight", "Nine"]]
MENU_TEXT = "Pick one:"
MENU_BUTTONS: dict[str, str] = {"Yes please": "conf-yes", "No thanks": "conf-no"}
FILE_NAME = "sample.txt"


class Command:
    """What a visitor types to make the emulated agent answer with one kind of reply."""

    TEXT = "conformance: text"
    LONG = "conformance: long"
    KEYBOARD = "conformance: keyboard"
    MENU = "conformance: menu"
    FILE = "conformance: file"


def sample_file() -> tuple[bytes, str]:
    """The bytes and content type of the file the agent sends (the emulator serves it)."""
    return sample_files()[FILE_NAME]


def long_text(caps: Capabilities) -> str:
    """A text of about three and a half messages, in numbered paragraphs (so every part is recognisable and its
    place known) with characters outside the BMP (so UTF-16 counting matters)."""
    limit = caps.max_text_length
    length = 5000 if limit is None else max(limit * 7 // 2, 600)
    paragraphs: list[str] = []
    while sum(len(p) + 2 for p in paragraphs) < length:
        number = len(paragraphs) + 1
        paragraphs.append(
            f"Paragraph {number} 🙂. This reply is long on purpose, so that it must be split before a messenger "
            f"takes it. Every part must arrive, in order, within the limit. End of paragraph {number}."
        )
    return "\n\n".join(paragraphs)


def conformance_script(caps: Capabilities) -> Script:
    keyboard: list[list[ScriptButton | str]] = [
        [ScriptButton(f"conf-{label.lower()}", label) for label in row] for row in KEYBOARD_ROWS
    ]
    menu: list[list[ScriptButton | str]] = [[ScriptButton(ident, label)] for label, ident in MENU_BUTTONS.items()]
    return Script(
        rules=[
            Rule(on="text", match=Command.TEXT, reply=[OperatorStep(REPLY_TEXT)]),
            Rule(on="text", match=Command.LONG, reply=[OperatorStep(long_text(caps))]),
            Rule(on="text", match=Command.KEYBOARD, reply=[KeyboardStep(text=KEYBOARD_TEXT, buttons=keyboard)]),
            Rule(on="text", match=Command.MENU, reply=[KeyboardStep(text=MENU_TEXT, buttons=menu)]),
            Rule(on="text", match=Command.FILE, reply=[FileStep(name=FILE_NAME, media_type="text/plain")]),
        ]
    )


Submit = Callable[[str, Inbound], Awaitable[None]]


@dataclass
class BridgeLoop:
    """A running bridge with one channel of the adapter under test, and the emulated platform behind it."""

    emulator: RunningEmulator
    app: Litestar
    url: str
    channel_id: str

    @property
    def runtime(self) -> BridgeRuntime:
        runtime: BridgeRuntime = self.app.state.bridge
        return runtime

    @property
    def adapter(self) -> Adapter[Any]:
        return self.runtime.channels[self.channel_id].adapter

    async def platform_received(self, count: int, timeout: float, what: str) -> list[ReceivedRecord]:
        """The first `count` requests the platform got; fails in plain words when fewer arrive in time."""
        try:
            records = await self.emulator.wait_for_received(count, timeout)
        except TimeoutError:
            got = self.emulator.received()
            fail_text = f"{what} never reached the platform within {timeout:g}s"
            if got:
                fail_text += f"; it got {len(got)} message(s): {[r.body for r in got]}"
            raise ConformanceFailure(fail_text) from None
        for record in records[:count]:
            if record.status != 200:
                raise ConformanceFailure(
                    f"the platform refused a message of the adapter ({record.status} {record.reason}): {record.body}"
                )
        return records[:count]

    async def native_chat_of(self, chat_id: int) -> str:
        record = await self.runtime.store.chat_by_id(chat_id)
        if record is None:
            raise ConformanceFailure(f"the platform chat {chat_id} is unknown to the bridge's store")
        return record.native_chat_id

    def intercept_inbound(self, wrapper: Callable[[Submit], Submit]) -> None:
        """Put `wrapper` around the core's acceptance of this bridge's inbound messages (to refuse some)."""
        bridge = self.runtime.bridge
        bridge.accept_inbound = wrapper(bridge.accept_inbound)  # type: ignore[method-assign,assignment]


def make_config(
    adapter_type: str, adapter_block: Mapping[str, Any], *, channel_id: str, webhook_url: str, port: int, store: str
) -> Config:
    return Config(
        channels=[
            ChannelConfig(
                id=channel_id,
                platform=PlatformConfig(webhook_url=webhook_url, token=REPLY_TOKEN, site=SITE, timeout=5.0,
                                        connect_timeout=2.0),
                adapter={**adapter_block, "type": adapter_type},
            )
        ],
        server=ServerConfig(host="127.0.0.1", port=port, public_url=f"http://127.0.0.1:{port}"),
        store=StoreConfig(url=store),
        files=FilesConfig(signing_key=SIGNING_KEY),
    )


@asynccontextmanager
async def run_bridge_loop(
    adapter_class: type[Adapter[Any]],
    adapter_block: Mapping[str, Any],
    *,
    channel_id: str,
    port: int,
    state_dir: Path,
    handoff: Handoff | None = None,
) -> AsyncIterator[BridgeLoop]:
    """The emulator, then the bridge (create_app + serve on `port`), both stopped when the block exits."""
    async with run_emulator(EmulatorConfig()) as emulator:
        config = make_config(
            adapter_class.name,
            adapter_block,
            channel_id=channel_id,
            webhook_url=emulator.webhook_url(PLATFORM_TOKEN),
            port=port,
            store=f"sqlite:///{state_dir}/bridge.db",
        )
        try:
            app = create_app(config, adapters={adapter_class.name: adapter_class}, handoff=handoff)
        except ConfigError as exc:
            raise ConformanceFailure(f"the adapter config given by adapter_config() is invalid: {exc}") from None
        loop = BridgeLoop(emulator, app, f"http://127.0.0.1:{port}", channel_id)
        # Sized from the live instance: an adapter may declare its capabilities per config.
        emulator.set_script(conformance_script(loop.adapter.capabilities))
        async with serve(app, port=port):
            emulator.set_channel(
                EmulatorChannel(token=PLATFORM_TOKEN, reply_url=f"{loop.url}/channels/{channel_id}",
                                reply_token=REPLY_TOKEN)
            )
            yield loop
