"""The adapter conformance suite: one pytest class an adapter package subclasses to prove it keeps the contract.

```python
class TestMyAdapter(AdapterConformance):
    adapter_class = MyAdapter

    @pytest.fixture
    async def fake_messenger(self) -> AsyncIterator[MyFake]:
        async with MyFake.running() as fake:     # the author's own fake of the messenger, on loopback
            yield fake

    def adapter_config(self) -> dict[str, Any]:  # the channel's `adapter:` block, without `type`
        return {"api_url": self.fake.url, "api_token": "test-token-0123456789"}

    async def send_visitor_text(self, chat: str, text: str) -> None: ...
    async def send_visitor_file(self, chat: str, name: str, content_type: str, content: bytes) -> None: ...
    async def press_button(self, chat: str, message: MessengerRecord, label: str) -> None: ...
    async def received_by_messenger(self) -> list[MessengerRecord]: ...
    async def make_messenger_fail(self, kind: FailureKind | None, retry_after: float | None = None) -> None: ...
```

Every test runs the bridge's real core (`create_app` served on loopback, SQLite in the test's tmp_path) with
the platform emulator behind it, and waits for outcomes rather than assuming that delivery is synchronous, so it
holds with any handoff. Hooks may call `pytest.skip(...)` for what the messenger cannot do. docs/adapters.md
describes each hook.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from bridge.config import secret_values
from bridge.messages import Inbound, Outbound, OutboundText
from bridge.plugins import ENTRY_POINT_GROUP, discover_adapters
from bridge.testing import conformance_checks as checks
from bridge.testing.conformance_base import ConformanceHooks, FailureKind, standalone_kv
from bridge.testing.conformance_checks import ConformanceFailure, LogCapture, MessengerRecord
from bridge.testing.conformance_loop import (
    KEYBOARD_ROWS,
    MENU_BUTTONS,
    REPLY_TEXT,
    SITE,
    BridgeLoop,
    Command,
    Submit,
    long_text,
    sample_file,
)
from bridge.text import split_text

__all__ = ["AdapterConformance", "FailureKind", "MessengerRecord"]

_VISITOR_FILE = (b"%PDF-1.4\n% conformance file \x00\x01\x02\xff\n" * 40, "report.pdf", "application/pdf")


class AdapterConformance(ConformanceHooks):
    """Subclass with `adapter_class`, a `fake_messenger` fixture and the driver hooks (see the module doc)."""

    # ------------------------------------------------------------------ registration

    def test_entry_point_declared(self) -> None:
        found = discover_adapters().get(self.adapter_class.name)
        if found is not self.adapter_class:
            raise ConformanceFailure(
                f"no entry point {self.adapter_class.name!r} in the group {ENTRY_POINT_GROUP!r} loads "
                f"{self.adapter_class.__module__}.{self.adapter_class.__qualname__} (found {found!r}): declare "
                f'`{self.adapter_class.name} = "{self.adapter_class.__module__}:{self.adapter_class.__qualname__}"` '
                'under [project.entry-points."omnichannel_bridge.adapters"] and reinstall the package'
            )

    # ------------------------------------------------------------------ inbound

    @pytest.mark.asyncio
    async def test_inbound_text_reaches_platform(self, conformance_bridge: BridgeLoop) -> None:
        loop, first, other = conformance_bridge, self.new_chat(), self.new_chat()
        texts = ["Hello, bridge! Grüße 👋\nsecond line", "a second message"]
        for index, (chat, text) in enumerate([(first, texts[0]), (first, texts[1]), (other, texts[0])]):
            await self.send_visitor_text(chat, text)
            await loop.platform_received(index + 1, self.timeout, f"visitor text {index + 1}")
        bodies = [r.body for r in loop.emulator.received()[:3]]
        for body, text in zip(bodies, [texts[0], texts[1], texts[0]], strict=True):
            checks.check_platform_message(body, {"kind": "visitor", "text": text}, site=SITE, what="a visitor's text")
        if bodies[0]["chat_id"] != bodies[1]["chat_id"]:
            raise ConformanceFailure("two messages of one messenger chat reached the platform as two chats: "
                                     "native_chat_id must be the same for every message of a chat")
        if bodies[0]["chat_id"] == bodies[2]["chat_id"]:
            raise ConformanceFailure("messages of two messenger chats reached the platform as one chat")
        if bodies[0]["message"]["id"] == bodies[1]["message"]["id"]:
            raise ConformanceFailure("two different messages reached the platform with one message id: "
                                     "native_message_id must differ between messages")

    @pytest.mark.asyncio
    async def test_inbound_file_reaches_platform(self, conformance_bridge: BridgeLoop) -> None:
        loop, chat = conformance_bridge, self.new_chat()
        content, name, content_type = _VISITOR_FILE
        await self.send_visitor_file(chat, name, content_type, content)
        body = (await loop.platform_received(1, self.timeout, "the visitor's file"))[0].body
        url = ((body.get("message") or {}).get("data") or {}).get("url", "")
        expected = {"kind": "file_visitor", "data": {"id": body["message"].get("data", {}).get("id"), "state": "ready",
                                                     "name": name, "content_type": content_type,
                                                     "size": len(content), "url": url}}
        checks.check_platform_message(body, expected, site=SITE, what="a visitor's file")
        if not url.startswith(f"{loop.url}/files/"):
            raise ConformanceFailure(f"the file's URL {url!r} is not the bridge's file proxy: leave InboundFile.url "
                                     "empty and serve the file through do_open_file")
        async with httpx.AsyncClient(trust_env=False, timeout=self.timeout) as client:
            answer = await client.get(url)
        if answer.status_code != 200 or answer.content != content:
            raise ConformanceFailure(
                f"fetching the visitor's file through the bridge gave {answer.status_code} with "
                f"{len(answer.content)} bytes ({answer.content[:60]!r}); expected the {len(content)} bytes sent: "
                "do_open_file must stream the messenger's file for the file_ref it put in InboundFile"
            )

    @pytest.mark.asyncio
    async def test_button_press_reaches_platform(self, conformance_bridge: BridgeLoop) -> None:
        loop, chat = conformance_bridge, self.new_chat()
        if not loop.adapter.capabilities.buttons:
            pytest.skip("the adapter declares buttons=False")
        await self.send_visitor_text(chat, Command.MENU)
        label = "No thanks"
        records = await self.messages_in(chat, lambda rs: any(label in _labels(r) for r in rs))
        keyboard = next((r for r in records if label in _labels(r)), None)
        if keyboard is None:
            raise ConformanceFailure(f"the agent's keyboard with {label!r} never reached the messenger: {records}")
        await self.press_button(chat, keyboard, label)
        received = await loop.platform_received(2, self.timeout, "the button press")
        expected = {"kind": "keyboard_response", "data": {"button": {"id": MENU_BUTTONS[label], "text": label}}}
        checks.check_platform_message(received[1].body, expected, site=SITE, what="a button press")

    @pytest.mark.asyncio
    async def test_refused_inbound_is_redelivered_with_same_id(self, conformance_bridge: BridgeLoop) -> None:
        if not self.messenger_redelivers:
            pytest.skip("the messenger does not redeliver refused messages (messenger_redelivers = False)")
        loop, chat, attempts = conformance_bridge, self.new_chat(), list[Inbound]()

        def refuse_first(accept: Submit) -> Submit:
            async def accept_inbound(channel_id: str, inbound: Inbound) -> None:
                attempts.append(inbound)
                if len(attempts) == 1:
                    raise RuntimeError("conformance: the core refuses this message once, on purpose")
                await accept(channel_id, inbound)

            return accept_inbound

        loop.intercept_inbound(refuse_first)
        await self.send_visitor_text(chat, "please redeliver me")
        try:
            await loop.platform_received(1, self.timeout, "a message the core refused once")
        except ConformanceFailure as exc:
            raise ConformanceFailure(
                f"a visitor's message that the core refused once (context.submit raised NotTakenOver) was lost "
                f"({len(attempts)} attempt(s) reached the core): the adapter must answer its messenger with an "
                f"error (or keep its polling offset) so that the messenger redelivers; {exc}"
            ) from None
        ids = [a.native_message_id for a in attempts]
        if len(set(ids)) != 1:
            raise ConformanceFailure(f"the redelivered message came with another native_message_id ({ids}): the "
                                     "core recognises a redelivery only by a stable id")

    # ------------------------------------------------------------------ outbound

    @pytest.mark.asyncio
    async def test_outbound_text_reaches_messenger(self, conformance_bridge: BridgeLoop) -> None:
        chat, caps = self.new_chat(), conformance_bridge.adapter.capabilities
        await self.send_visitor_text(chat, Command.TEXT)
        records = await self.messages_in(chat, lambda rs: _text_length(rs) >= len(_squash(REPLY_TEXT)))
        texts = [r.text for r in records if r.text is not None]
        if caps.max_text_length is None or len(split_text(REPLY_TEXT, caps.max_text_length, caps.text_unit)) == 1:
            if texts != [REPLY_TEXT]:
                raise ConformanceFailure(f"the agent's text reached the messenger as {texts!r}; expected exactly "
                                         f"[{REPLY_TEXT!r}]")
        checks.check_text_parts(REPLY_TEXT, texts, caps, what="the agent's text")

    @pytest.mark.asyncio
    async def test_outbound_long_text_arrives_whole_and_in_order(self, conformance_bridge: BridgeLoop) -> None:
        chat, caps = self.new_chat(), conformance_bridge.adapter.capabilities
        original = long_text(caps)
        await self.send_visitor_text(chat, Command.LONG)
        records = await self.messages_in(chat, lambda rs: _text_length(rs) >= len(_squash(original)))
        checks.check_text_parts(original, [r.text for r in records if r.text is not None], caps)

    @pytest.mark.asyncio
    async def test_outbound_keyboard_reaches_messenger(self, conformance_bridge: BridgeLoop) -> None:
        chat, caps = self.new_chat(), conformance_bridge.adapter.capabilities
        await self.send_visitor_text(chat, Command.KEYBOARD)
        wanted = [label for row in KEYBOARD_ROWS for label in row]
        if not caps.buttons:
            records = await self.messages_in(chat, lambda rs: all(any(w in (r.text or "") for r in rs) for w in wanted))
            missing = [w for w in wanted if not any(w in (r.text or "") for r in records)]
            if missing:
                raise ConformanceFailure(f"buttons=False: the keyboard's text fallback lacks {missing}: {records}")
            return
        records = await self.messages_in(chat, lambda rs: sum(len(_labels(r)) for r in rs) >= len(wanted))
        keyboards = [r.buttons for r in records if r.buttons]
        checks.check_keyboard(KEYBOARD_ROWS, keyboards, caps)
        if not any("Choose an option:" in (r.text or "") for r in records):
            raise ConformanceFailure(f"the keyboard's text 'Choose an option:' never reached the messenger: {records}")

    @pytest.mark.asyncio
    async def test_outbound_file_reaches_messenger(self, conformance_bridge: BridgeLoop) -> None:
        loop, chat, caps = conformance_bridge, self.new_chat(), conformance_bridge.adapter.capabilities
        await self.send_visitor_text(chat, Command.FILE)
        url = loop.emulator.file_url("sample.txt")
        content, _ = sample_file()
        records = await self.messages_in(chat, lambda rs: any(
            r.file_url is not None or r.file_content is not None or url in (r.text or "") for r in rs))
        checks.check_file(records, url=url, name="sample.txt", content=content, caps=caps)

    # ------------------------------------------------------------------ send errors

    @pytest.mark.asyncio
    async def test_permanent_error_is_classified(self, conformance_bridge: BridgeLoop) -> None:
        chat_id, native = await self.open_chat(conformance_bridge, self.new_chat())
        await self.make_messenger_fail("permanent")
        message = Outbound(chat_id, native, "conformance-permanent:0", OutboundText("refused for good"))
        await checks.check_permanent_failure(conformance_bridge.adapter, message)

    @pytest.mark.asyncio
    async def test_retryable_error_is_classified(self, conformance_bridge: BridgeLoop) -> None:
        loop, chat = conformance_bridge, self.new_chat()
        chat_id, native = await self.open_chat(loop, chat)
        await self.make_messenger_fail("retryable", retry_after=7)
        await checks.check_retryable_failure(loop.adapter, Outbound(chat_id, native, "conf-r:0", OutboundText("a")), 7)
        await self.make_messenger_fail("retryable")
        await checks.check_retryable_failure(loop.adapter, Outbound(chat_id, native, "conf-r:1", OutboundText("b")),
                                             None)
        await self.make_messenger_fail(None)
        await loop.adapter.send(Outbound(chat_id, native, "conf-r:2", OutboundText("healed")))
        records = await self.messages_in(chat, lambda rs: any(r.text == "healed" for r in rs))
        if not any(r.text == "healed" for r in records):
            raise ConformanceFailure("after make_messenger_fail(None) a send succeeded but never reached the "
                                     f"messenger: {records}")

    # ------------------------------------------------------------------ lifecycle

    @pytest.mark.asyncio
    async def test_start_and_stop_are_clean(self, conformance_setup: None, tmp_path: Path) -> None:
        async with AsyncExitStack() as stack:
            kv = await standalone_kv(stack, tmp_path)
            before = asyncio.all_tasks()
            adapter = self.standalone_adapter(kv, [])
            await adapter.start()
            await adapter.start()
            if not adapter.started:
                raise ConformanceFailure("adapter.started is False after start()")
            await adapter.stop()
            await adapter.stop()
            if adapter.started:
                raise ConformanceFailure("adapter.started is True after stop()")
            await self.no_tasks_left(before, "after start, start, stop, stop")

    @pytest.mark.asyncio
    async def test_stop_after_failed_start_is_clean(self, conformance_setup: None, tmp_path: Path) -> None:
        base = self.adapter_class

        class FailingStart(base):  # type: ignore[valid-type,misc]
            async def do_start(self) -> None:
                await super().do_start()
                raise RuntimeError("conformance: start fails here on purpose, after do_start did its work")

        async with AsyncExitStack() as stack:
            kv = await standalone_kv(stack, tmp_path)
            before = asyncio.all_tasks()
            adapter = self.standalone_adapter(kv, [], FailingStart)
            with pytest.raises(RuntimeError, match="on purpose"):
                await adapter.start()
            if adapter.started:
                raise ConformanceFailure("adapter.started is True after a failed start()")
            await adapter.stop()
            await self.no_tasks_left(before, "after a failed start (do_stop runs after it and must release "
                                     "everything do_start took, even half-way)")

    # ------------------------------------------------------------------ secrets

    @pytest.mark.asyncio
    async def test_secrets_stay_out_of_logs(self, conformance_setup: None, tmp_path: Path) -> None:
        secrets = self.secret_values()
        capture = LogCapture()
        root, level = capture.install()
        stored: list[tuple[str, str]] = []
        try:
            async with self._bridge(tmp_path) as loop:
                config_secrets = secret_values(loop.runtime.config)
                chat = self.new_chat()
                chat_id, native = await self.open_chat(loop, chat)
                await self.send_visitor_text(chat, Command.TEXT)
                await self.messages_in(chat, lambda rs: any(r.text for r in rs))
                content, name, content_type = _VISITOR_FILE
                try:
                    before = len(loop.emulator.received())
                    await self.send_visitor_file(chat, name, content_type, content)
                    body = (await loop.platform_received(before + 1, self.timeout, "the visitor's file"))[-1].body
                    async with httpx.AsyncClient(trust_env=False, timeout=self.timeout) as client:
                        await client.get(body["message"]["data"]["url"])
                except pytest.skip.Exception:
                    pass  # the messenger has no files
                kinds: tuple[FailureKind, ...] = ("permanent", "retryable")
                try:
                    for kind in kinds:
                        await self.make_messenger_fail(kind)
                        try:
                            await loop.adapter.send(Outbound(chat_id, native, f"conf-{kind}:0", OutboundText(kind)))
                        except Exception as exc:
                            stored.append((f"the {kind} send error's message, which the bridge stores as the "
                                           "delivery's failure reason", str(exc)))
                    await self.make_messenger_fail(None)
                except pytest.skip.Exception:
                    pass  # sending to this messenger cannot fail
        finally:
            root.removeHandler(capture)
            root.setLevel(level)
        checks.check_no_secrets([*capture.lines(config_secrets), *stored], secrets)


def _labels(record: MessengerRecord) -> list[str]:
    return [label for row in record.buttons or [] for label in row]


def _squash(text: str) -> str:
    return "".join(text.split())


def _text_length(records: list[MessengerRecord]) -> int:
    return sum(len(_squash(r.text or "")) for r in records if not r.buttons)
