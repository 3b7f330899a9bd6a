"""The conformance suite's hooks (what an adapter's author fills in) and the helpers its tests share.

See `bridge.testing.conformance` for the suite itself and docs/adapters.md for each hook.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
import pytest_asyncio

from bridge._config.sensitive import is_secret_key
from bridge.adapter import Adapter, AdapterContext
from bridge.config import ChannelConfig, PlatformConfig, adapter_settings
from bridge.handoff import Handoff
from bridge.messages import Inbound
from bridge.store import open_store
from bridge.store.keyvalue import StoreKeyValue
from bridge.testing.conformance_checks import ConformanceFailure, MessengerRecord
from bridge.testing.conformance_loop import BridgeLoop, free_port, run_bridge_loop

__all__ = ["ConformanceHooks", "FailureKind", "standalone_kv"]

FailureKind = Literal["permanent", "retryable"]
_POLL = 0.02
_TASK_GRACE = 2.0
_SERVER_MODULES = ("aiohttp.web", "uvicorn.")
_SECRET_WORDS = ("password", "passwd", "credential", "private")


def _looks_secret(key: str) -> bool:
    return is_secret_key(key) or any(word in key.lower() for word in _SECRET_WORDS)


class ConformanceHooks:
    """The hooks and fixtures of `AdapterConformance`; subclass that, not this."""

    adapter_class: ClassVar[type[Adapter[Any]]]
    channel_id: ClassVar[str] = "conformance"
    # Seconds to wait for an outcome (a message reaching the platform or the messenger).
    timeout: ClassVar[float] = 10.0
    # False when the messenger never redelivers a message its adapter refused (the redelivery test is skipped).
    messenger_redelivers: ClassVar[bool] = True

    # Set by the suite before any hook runs: the `fake_messenger` fixture's value and the bridge's base URL.
    fake: Any
    bridge_url: str

    # ------------------------------------------------------------------ hooks for the author

    @pytest.fixture
    def fake_messenger(self) -> Any:
        raise ConformanceFailure("define a `fake_messenger` fixture that starts (and stops) a fake of your messenger")

    def adapter_config(self) -> dict[str, Any]:
        """The channel's `adapter:` block without `type`; `self.fake` and `self.bridge_url` are set."""
        raise ConformanceFailure("implement adapter_config(): the adapter block the suite configures the channel with")

    async def send_visitor_text(self, chat: str, text: str) -> None:
        raise ConformanceFailure("implement send_visitor_text(chat, text): make the fake messenger deliver a text")

    async def send_visitor_file(self, chat: str, name: str, content_type: str, content: bytes) -> None:
        raise ConformanceFailure("implement send_visitor_file(chat, name, content_type, content) (or pytest.skip)")

    async def press_button(self, chat: str, message: MessengerRecord, label: str) -> None:
        raise ConformanceFailure("implement press_button(chat, message, label): press a button of a received keyboard")

    async def received_by_messenger(self) -> list[MessengerRecord]:
        raise ConformanceFailure("implement received_by_messenger(): what the fake got from the adapter, in order")

    async def make_messenger_fail(self, kind: FailureKind | None, retry_after: float | None = None) -> None:
        raise ConformanceFailure("implement make_messenger_fail(kind, retry_after): make the fake refuse sends")

    def secret_values(self) -> dict[str, str]:
        """Values that must never be logged, by key: by default the config's strings of at least 8 characters
        (shorter ones would match by accident) under a key named like a secret. The bridge's log redaction
        knows `*token`, `*secret` and `*key`; a secret under `password` or `credentials` is found here and
        fails the check when it is logged, so name secrets the conventional way."""
        found: dict[str, str] = {}

        def walk(value: Any, path: str) -> None:
            if isinstance(value, Mapping):
                for key, item in value.items():
                    here = f"{path}.{key}" if path else str(key)
                    if isinstance(item, str) and _looks_secret(str(key)) and len(item) >= 8:
                        found[here] = item
                    else:
                        walk(item, here)
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    walk(item, f"{path}[{index}]")

        walk(self.adapter_config(), "")
        return found

    def make_handoff(self) -> Handoff | None:
        """The handoff the bridge runs with; None = the bridge's default."""
        return None

    # ------------------------------------------------------------------ the suite's own fixtures and helpers

    @pytest.fixture
    def conformance_setup(self, request: pytest.FixtureRequest, fake_messenger: Any) -> None:
        suite = request.instance if request.instance is not None else self
        suite.fake = fake_messenger
        suite.bridge_url = f"http://127.0.0.1:{free_port()}"

    @pytest_asyncio.fixture
    async def conformance_bridge(self, conformance_setup: None, tmp_path: Path) -> AsyncIterator[BridgeLoop]:
        async with self._bridge(tmp_path) as loop:
            yield loop

    def _bridge(self, state_dir: Path) -> Any:
        port = int(self.bridge_url.rsplit(":", 1)[1])
        return run_bridge_loop(self.adapter_class, self.adapter_config(), channel_id=self.channel_id, port=port,
                               state_dir=state_dir, handoff=self.make_handoff())

    @staticmethod
    def new_chat() -> str:
        return f"conf-{uuid.uuid4().hex[:10]}"

    async def messages_in(self, chat: str, until: Callable[[list[MessengerRecord]], bool]) -> list[MessengerRecord]:
        """The chat's records once `until` holds for them, or whatever arrived when the timeout passes (the
        check that follows then says what is missing)."""
        deadline = asyncio.get_running_loop().time() + self.timeout
        while True:
            records = [r for r in await self.received_by_messenger() if r.chat == chat]
            if until(records) or asyncio.get_running_loop().time() >= deadline:
                return records
            await asyncio.sleep(_POLL)

    async def open_chat(self, loop: BridgeLoop, chat: str) -> tuple[int, str]:
        """Make the chat known to the bridge (a visitor's first message); returns (chat_id, native chat id)."""
        before = len(loop.emulator.received())
        await self.send_visitor_text(chat, "hello")
        received = await loop.platform_received(before + 1, self.timeout, "the visitor's first message")
        chat_id = int(received[before].body["chat_id"])
        return chat_id, await loop.native_chat_of(chat_id)

    def standalone_adapter(self, kv: StoreKeyValue, received: list[Inbound],
                           adapter_class: type[Adapter[Any]] | None = None) -> Adapter[Any]:
        adapter_class = adapter_class or self.adapter_class
        channel = ChannelConfig(id=self.channel_id, platform=PlatformConfig(webhook_url="http://127.0.0.1:9/"),
                                adapter={**self.adapter_config(), "type": adapter_class.name})

        async def submit(inbound: Inbound) -> None:
            received.append(inbound)

        context = AdapterContext(channel_id=self.channel_id, submit=submit, kv=kv, public_url=self.bridge_url,
                                 route_prefix=f"/channels/{self.channel_id}")
        return adapter_class(adapter_settings(channel, adapter_class), context)

    @staticmethod
    async def no_tasks_left(before: set[asyncio.Task[Any]], what: str) -> None:
        current = asyncio.current_task()
        deadline = asyncio.get_running_loop().time() + _TASK_GRACE
        while True:
            left = [t for t in asyncio.all_tasks() - before
                    if t is not current and not t.done() and not _fake_server_task(t)]
            if not left or asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(_POLL)
        if left:
            names = ", ".join(f"{t.get_name()} ({t.get_coro()!r})" for t in left)
            raise ConformanceFailure(f"the adapter left tasks running {what}: {names}; do_stop must end them")


def _fake_server_task(task: asyncio.Task[Any]) -> bool:
    """A task of an HTTP server in this loop (the author's fake answering a request, a long poll it holds):
    the server's, not the adapter's."""
    frame = getattr(task.get_coro(), "cr_frame", None)
    module = str(frame.f_globals.get("__name__", "")) if frame is not None else ""
    return module.startswith(_SERVER_MODULES)


async def standalone_kv(stack: AsyncExitStack, state_dir: Path) -> StoreKeyValue:
    store = open_store(f"sqlite:///{state_dir}/standalone.db")
    await store.open()
    stack.push_async_callback(store.close)
    return StoreKeyValue(store, "adapter:conformance")
