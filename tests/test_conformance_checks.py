"""The conformance checks called directly: right observations pass, each wrong one fails in plain words."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest

from bridge import Adapter, Capabilities, Outbound, OutboundText, PermanentSendError, RetryableSendError
from bridge.adapter import AdapterContext
from bridge.protocol import Button, KeyboardReply
from bridge.shaping import reply_contents
from bridge.testing.conformance_checks import (
    ConformanceFailure,
    LogCapture,
    MessengerRecord,
    check_file,
    check_keyboard,
    check_no_secrets,
    check_permanent_failure,
    check_platform_message,
    check_retryable_failure,
    check_text_parts,
)
from bridge.testing.conformance_loop import KEYBOARD_ROWS, long_text
from bridge.text import split_text

CAPS = Capabilities(max_text_length=300, max_buttons_per_row=3, max_buttons=6)


def fails(says: str) -> Any:
    return pytest.raises(ConformanceFailure, match=says)


# ------------------------------------------------------------------ long texts


def test_the_cores_own_split_passes() -> None:
    original = long_text(CAPS)
    parts = split_text(original, 300, "codepoints")
    assert len(parts) >= 3
    check_text_parts(original, parts, CAPS)


def test_parts_out_of_order_fail() -> None:
    original = long_text(CAPS)
    parts = split_text(original, 300, "codepoints")
    parts[0], parts[1] = parts[1], parts[0]
    with fails(r"parts of a long text arrived out of order: part 2 \('Paragraph 1 .*belongs before part 1"):
        check_text_parts(original, parts, CAPS)


def test_part_over_the_limit_fails_in_the_declared_unit() -> None:
    caps = Capabilities(max_text_length=20, text_unit="utf16")
    # 11 emoji are 11 code points but 22 UTF-16 units.
    with fails("part 1 of 1 of a long text is 22 UTF-16 units long, over the declared max_text_length of 20"):
        check_text_parts("🙂" * 11, ["🙂" * 11], caps)


def test_lost_part_fails() -> None:
    original = long_text(CAPS)
    parts = split_text(original, 300, "codepoints")
    with fails("arrived incomplete: .* the first missing text is 'Paragraph"):
        check_text_parts(original, parts[:-1], CAPS)


def test_changed_or_repeated_or_missing_text_fails() -> None:
    original = long_text(CAPS)
    parts = split_text(original, 300, "codepoints")
    with fails("part 2 of .* is not a piece of the agent's text"):
        check_text_parts(original, [parts[0], parts[1].upper(), *parts[2:]], CAPS)
    with fails("part 2 of a long text arrived twice"):
        check_text_parts(original, [parts[0], parts[0], *parts[1:]], CAPS)
    with fails("never reached the messenger"):
        check_text_parts(original, [], CAPS)


# ------------------------------------------------------------------ keyboards


def labels(rows: list[list[Button]]) -> list[list[str]]:
    return [[b.text for b in row] for row in rows]


def test_the_cores_own_reflow_passes() -> None:
    reply = KeyboardReply(buttons=[[Button(t, t) for t in row] for row in KEYBOARD_ROWS], text="Pick")
    keyboards = [labels(c.rows) for c in reply_contents(reply, CAPS) if hasattr(c, "rows")]
    assert len(keyboards) == 2  # 9 buttons, at most 6 per keyboard
    check_keyboard(KEYBOARD_ROWS, keyboards, CAPS)


def test_keyboard_mistakes_fail() -> None:
    with fails(r"buttons missing .*\['Nine'\]"):
        check_keyboard(KEYBOARD_ROWS, [[["One", "Two"], ["Three"]], [["Four", "Five", "Six"], ["Seven", "Eight"]]],
                       CAPS)
    with fails(r"row \['Two', 'Three'\] joins buttons of the agent's rows \[1, 2\]"):
        check_keyboard([["One", "Two"], ["Three"]], [[["One"], ["Two", "Three"]]], CAPS)
    with fails("holds 4 buttons, over the declared max_buttons_per_row of 3"):
        check_keyboard([["A", "B", "C", "D"]], [[["A", "B", "C", "D"]]], CAPS)
    with fails("keyboard 1 holds 7 buttons, over the declared max_buttons of 6"):
        rows = [["A", "B", "C"], ["D", "E", "F"], ["G"]]
        check_keyboard(rows, [rows], CAPS)
    with fails(r"the agent's row \['One', 'Two'\] was broken into .* although it fits"):
        check_keyboard([["One", "Two"]], [[["One"], ["Two"]]], CAPS)
    with fails("buttons arrived in another order"):
        check_keyboard([["One"], ["Two"]], [[["Two"], ["One"]]], CAPS)
    with fails("no keyboard reached the messenger"):
        check_keyboard([["One"]], [], CAPS)


# ------------------------------------------------------------------ files and inbound


def test_file_checks() -> None:
    url, content = "http://127.0.0.1:1/files/sample.txt", b"sample"
    check_file([MessengerRecord("c", file_url=url)], url=url, name="sample.txt", content=content, caps=CAPS)
    check_file([MessengerRecord("c", file_content=content)], url=url, name="sample.txt", content=content, caps=CAPS)
    check_file([MessengerRecord("c", text=f"sample.txt: {url}")], url=url, name="sample.txt", content=content,
               caps=Capabilities(files=False))
    with fails("the file arrived with another URL"):
        check_file([MessengerRecord("c", file_url=url + "x")], url=url, name="sample.txt", content=content, caps=CAPS)
    with fails("the file's bytes differ"):
        check_file([MessengerRecord("c", file_content=b"other")], url=url, name="s", content=content, caps=CAPS)
    with fails("no file reached the messenger"):
        check_file([MessengerRecord("c", text="hi")], url=url, name="sample.txt", content=content, caps=CAPS)


def test_platform_message_check() -> None:
    body = {"event": "new_message", "chat_id": 3, "visitor": {"id": "v", "fields": {"site": "s"}},
            "message": {"kind": "visitor", "id": "m", "text": "hi"}}
    check_platform_message(body, {"kind": "visitor", "text": "hi"}, site="s", what="a text")
    with fails(r"a text reached the platform as \{'kind': 'visitor', 'text': 'hi'\}; expected"):
        check_platform_message(body, {"kind": "visitor", "text": "hello"}, site="s", what="a text")
    with fails("without an integer chat_id"):
        check_platform_message({**body, "chat_id": "3"}, {}, site="s", what="a text")


# ------------------------------------------------------------------ send errors


class ScriptedConfig(msgspec.Struct):
    pass


class ScriptedAdapter(Adapter[ScriptedConfig]):
    """Does what the test tells it, through the real `Adapter.send`."""

    name = "scripted"
    config_type = ScriptedConfig

    def __init__(self, raises: BaseException | None) -> None:
        async def submit(_: Any) -> None:
            return None

        super().__init__(ScriptedConfig(), AdapterContext(channel_id="c", submit=submit, kv=None))  # type: ignore[arg-type]
        self.raises = raises

    async def do_send(self, message: Outbound) -> None:
        if self.raises is not None:
            raise self.raises


MESSAGE = Outbound(1, "n", "m:0", OutboundText("x"))


async def test_send_error_classification() -> None:
    await check_permanent_failure(ScriptedAdapter(PermanentSendError("blocked")), MESSAGE)
    await check_retryable_failure(ScriptedAdapter(RetryableSendError("busy", retry_after=7)), MESSAGE, 7)
    # Any other exception is retryable: the base class says so.
    await check_retryable_failure(ScriptedAdapter(ConnectionResetError("reset")), MESSAGE, None)
    with fails("the failure was swallowed, so the message would be lost without a dead letter"):
        await check_permanent_failure(ScriptedAdapter(None), MESSAGE)
    with fails("a permanent refusal by the messenger was classified as retryable"):
        await check_permanent_failure(ScriptedAdapter(RetryableSendError("no")), MESSAGE)
    with fails("a passing failure of the messenger was classified as permanent"):
        await check_retryable_failure(ScriptedAdapter(PermanentSendError("no")), MESSAGE, None)
    with fails("asked to retry after 7s but RetryableSendError.retry_after is None"):
        await check_retryable_failure(ScriptedAdapter(RetryableSendError("busy")), MESSAGE, 7)
    with fails("the failure was swallowed, so the message would be lost instead of retried"):
        await check_retryable_failure(ScriptedAdapter(None), MESSAGE, None)


# ------------------------------------------------------------------ secrets


def test_secrets_are_judged_in_the_bridges_own_redacted_log_lines() -> None:
    token, password = "super-secret-token-abcd", "hunter2-hunter2-wxyz"
    secrets = {"api_token": token, "password": password}
    capture = LogCapture()
    logger = logging.getLogger("test.conformance.secrets")
    root, level = capture.install()
    try:
        # A secret under a conventional key (`*token`) is redacted by the bridge wherever it appears.
        logger.info("calling %s", f"https://api.example/bot{token}/send", extra={"url": f"https://x/?t={token}"})
        check_no_secrets(capture.lines([token]), secrets)
        # One the redaction does not know (`password`) leaks: in the message, an extra field, a traceback.
        logger.info("login", extra={"auth": f"user:{password}"})
        with fails(r"the secret `password` \(\*\*\*\*wxyz\) appeared in the bridge's log line of logger "
                   r"'test.conformance.secrets' at INFO: .*user:\*\*\*\*wxyz"):
            check_no_secrets(capture.lines([token]), secrets)
        capture.records.clear()
        try:
            raise ValueError(f"bad password {password}")
        except ValueError:
            logger.exception("failed")
        with fails("`password`.* appeared in the bridge's log line"):
            check_no_secrets(capture.lines([token]), secrets)
    finally:
        root.removeHandler(capture)
        root.setLevel(level)
    with fails(r"the secret `api_token` \(\*\*\*\*abcd\) appeared in the send error: 'POST /bot\*\*\*\*abcd"):
        check_no_secrets([("the send error", f"POST /bot{token}/send failed")], secrets)
