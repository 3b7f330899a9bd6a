"""The conformance suite's judgements, as plain functions over what was observed.

They are separate from the pytest class so that each can be called on its own (and tested against deliberately
wrong observations), and so that every failure is raised as one `ConformanceFailure` whose message says what is
wrong in plain words, with the evidence, rather than a bare `assert a == b`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from bridge.adapter import Adapter, Capabilities, PermanentSendError, RetryableSendError
from bridge.messages import Outbound
from bridge.text import text_length

__all__ = [
    "ConformanceFailure",
    "LogCapture",
    "MessengerRecord",
    "check_file",
    "check_keyboard",
    "check_no_secrets",
    "check_permanent_failure",
    "check_platform_message",
    "check_retryable_failure",
    "check_text_parts",
    "mask",
]

_UNIT_NAMES = {"codepoints": "code points", "utf16": "UTF-16 units"}


class ConformanceFailure(AssertionError):
    """An adapter breaks the plugin contract; the message says how."""


@dataclass(frozen=True, slots=True)
class MessengerRecord:
    """One message the fake messenger received from the adapter, normalised by the author's driver.

    A text message sets `text`; a keyboard sets `buttons` (the labels, row by row) and `text` when it carries
    one; a file sets `file_url` (the adapter passed a link) or `file_content` (the adapter uploaded the bytes),
    and `file_name` when the messenger knows it. `chat` is the chat key the suite used in its driver calls.
    `native` is whatever the driver needs back to press a button of this message.
    """

    chat: str
    text: str | None = None
    buttons: list[list[str]] | None = None
    file_url: str | None = None
    file_name: str | None = None
    file_content: bytes | None = None
    native: Any = field(default=None, compare=False, repr=False)


def fail(message: str) -> NoReturn:
    raise ConformanceFailure(message)


def short(text: str, limit: int = 48) -> str:
    """A recognisable head of `text` for a failure message."""
    flat = text.replace("\n", "\\n")
    return repr(flat if len(flat) <= limit else flat[:limit] + "…")


def mask(secret: str) -> str:
    """A secret as it may appear in a failure message: enough to recognise it, not to use it."""
    return "****" + secret[-4:] if len(secret) >= 12 else "****"


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


# ---------------------------------------------------------------------------------------------- inbound


def check_platform_message(body: Any, expected: Mapping[str, Any], *, site: str, what: str) -> None:
    """One `new_message` the platform got: the documented envelope, and `message` as expected apart from its id
    (which the core derives from the adapter's `native_message_id`)."""
    if not isinstance(body, dict) or body.get("event") != "new_message":
        fail(f"{what} did not reach the platform as a new_message event: {body!r}")
    if not isinstance(body.get("chat_id"), int):
        fail(f"{what} reached the platform without an integer chat_id: {body!r}")
    visitor = body.get("visitor") or {}
    if not isinstance(visitor.get("id"), str) or not visitor["id"]:
        fail(f"{what} reached the platform without a visitor id: {body!r}")
    if (visitor.get("fields") or {}).get("site") != site:
        fail(f"{what} reached the platform without the channel's site field {site!r}: {visitor!r}")
    message = dict(body.get("message") or {})
    if not isinstance(message.pop("id", None), str):
        fail(f"{what} reached the platform without a message id: {body!r}")
    if message != dict(expected):
        fail(f"{what} reached the platform as {message!r}; expected {dict(expected)!r}")


# ---------------------------------------------------------------------------------------------- texts


def check_text_parts(original: str, parts: Sequence[str], caps: Capabilities, *, what: str = "a long text") -> None:
    """The parts that reached the messenger are the agent's text: none over the limit, in order, none lost."""
    if not parts:
        fail(f"{what} never reached the messenger: no text message arrived in the chat")
    limit, unit = caps.max_text_length, caps.text_unit
    for number, part in enumerate(parts, 1):
        if not part.strip():
            fail(f"part {number} of {len(parts)} of {what} is empty: messengers refuse empty messages")
        length = text_length(part, unit)
        if limit is not None and length > limit:
            fail(
                f"part {number} of {len(parts)} of {what} is {length} {_UNIT_NAMES[unit]} long, over the declared "
                f"max_text_length of {limit}: the messenger would refuse it ({short(part)})"
            )
    positions: list[int] = []
    for number, part in enumerate(parts, 1):
        position = original.find(part)
        if position < 0:
            fail(
                f"part {number} of {len(parts)} of {what} is not a piece of the agent's text; it was changed "
                f"on the way: {short(part)}"
            )
        positions.append(position)
    for index in range(1, len(parts)):
        if positions[index] == positions[index - 1]:
            fail(f"part {index + 1} of {what} arrived twice: {short(parts[index])}")
        if positions[index] < positions[index - 1]:
            fail(
                f"parts of {what} arrived out of order: part {index + 1} ({short(parts[index])}) belongs before "
                f"part {index} ({short(parts[index - 1])}); positions in the agent's text, in arrival order: "
                f"{positions}"
            )
    got, want = _squash("".join(parts)), _squash(original)
    if got != want:
        lost_at = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want)))
        fail(
            f"{what} arrived incomplete: {len(parts)} part(s) carry {len(got)} of its {len(want)} non-space "
            f"characters; the first missing text is {short(want[lost_at:])}"
        )


# ---------------------------------------------------------------------------------------------- keyboards


def check_keyboard(agent_rows: Sequence[Sequence[str]], keyboards: Sequence[Sequence[Sequence[str]]],
                   caps: Capabilities) -> None:
    """Every button arrives, in order; rows are only ever broken to fit the declared limits, never joined."""
    if not keyboards:
        fail("no keyboard reached the messenger (no record with `buttons` in the chat)")
    width, most = caps.max_buttons_per_row, caps.max_buttons
    for number, keyboard in enumerate(keyboards, 1):
        count = sum(len(row) for row in keyboard)
        if most is not None and count > most:
            fail(f"keyboard {number} holds {count} buttons, over the declared max_buttons of {most}")
        for row in keyboard:
            if not row:
                fail(f"keyboard {number} has an empty row: {[list(r) for r in keyboard]}")
            if width is not None and len(row) > width:
                fail(
                    f"a row of keyboard {number} holds {len(row)} buttons, over the declared max_buttons_per_row "
                    f"of {width}: {list(row)}"
                )
    expected = [label for row in agent_rows for label in row]
    received = [label for keyboard in keyboards for row in keyboard for label in row]
    missing = [label for label in expected if label not in received]
    if missing:
        fail(f"buttons missing from the keyboard(s) the messenger got: {missing}; received {received}")
    extra = [label for label in received if label not in expected]
    if extra:
        fail(f"the messenger got buttons the agent did not send: {extra}")
    if received != expected:
        fail(f"buttons arrived in another order than the agent's: {received}, expected {expected}")
    row_of = {label: index for index, row in enumerate(agent_rows) for label in row}
    received_rows = [list(row) for keyboard in keyboards for row in keyboard]
    for row in received_rows:
        origins = sorted({row_of[label] + 1 for label in row})
        if len(origins) > 1:
            fail(
                f"row {row} joins buttons of the agent's rows {origins}: rows may be broken to fit "
                "max_buttons_per_row, never joined"
            )
    for agent_row in agent_rows:
        fits = width is None or len(agent_row) <= width
        holding = [row for row in received_rows if row and row_of[row[0]] == row_of[agent_row[0]]]
        if fits and len(holding) > 1:
            fail(
                f"the agent's row {list(agent_row)} was broken into {holding} although it fits the declared "
                f"max_buttons_per_row ({width})"
            )


# ---------------------------------------------------------------------------------------------- files


def check_file(records: Sequence[MessengerRecord], *, url: str, name: str, content: bytes, caps: Capabilities) -> None:
    """The agent's file reaches the messenger as a link to the same URL or as the same bytes; when the adapter
    declares no file support, as a text that carries the link."""
    if not caps.files:
        if not any(url in (record.text or "") for record in records):
            fail(
                "the adapter declares files=False, so the file must arrive as a text carrying its link; no text "
                f"with {url} arrived: {list(records)}"
            )
        return
    files = [r for r in records if r.file_url is not None or r.file_content is not None]
    if not files:
        fail(f"no file reached the messenger (no record with file_url or file_content in the chat): {list(records)}")
    if len(files) > 1:
        fail(f"the agent sent one file; the messenger got {len(files)}: {files}")
    got = files[0]
    if got.file_url is not None and got.file_url != url:
        fail(f"the file arrived with another URL: {got.file_url!r}, expected {url!r}")
    if got.file_content is not None and got.file_content != content:
        fail(
            f"the file's bytes differ from the agent's file: got {len(got.file_content)} bytes starting "
            f"{got.file_content[:24]!r}, expected {len(content)} bytes starting {content[:24]!r}"
        )
    if got.file_name is not None and got.file_name != name:
        fail(f"the file arrived named {got.file_name!r}, expected {name!r}")


# ---------------------------------------------------------------------------------------------- send errors


async def check_permanent_failure(adapter: Adapter[Any], message: Outbound) -> PermanentSendError:
    """`adapter.send` must raise `PermanentSendError` while the messenger refuses the message for good."""
    try:
        await adapter.send(message)
    except PermanentSendError as exc:
        return exc
    except RetryableSendError as exc:
        fail(
            "a permanent refusal by the messenger was classified as retryable "
            f"(RetryableSendError: {exc}): the bridge would retry it for hours instead of dead-lettering it; "
            "raise PermanentSendError for refusals that retrying cannot fix"
        )
    fail(
        "adapter.send returned normally although the messenger refused the message for good: the failure was "
        "swallowed, so the message would be lost without a dead letter; raise PermanentSendError"
    )


async def check_retryable_failure(adapter: Adapter[Any], message: Outbound,
                                  retry_after: float | None) -> RetryableSendError:
    """`adapter.send` must raise `RetryableSendError` for a passing failure, carrying the messenger's wait."""
    try:
        await adapter.send(message)
    except RetryableSendError as exc:
        if retry_after is not None:
            if exc.retry_after is None:
                fail(
                    f"the messenger asked to retry after {retry_after:g}s but RetryableSendError.retry_after is "
                    "None: pass retry_after=... so the bridge waits as long as the messenger asked"
                )
            if not retry_after <= exc.retry_after <= retry_after + 1:
                fail(
                    f"the messenger asked to retry after {retry_after:g}s but RetryableSendError.retry_after is "
                    f"{exc.retry_after:g}"
                )
        return exc
    except PermanentSendError as exc:
        fail(
            f"a passing failure of the messenger was classified as permanent (PermanentSendError: {exc}): the "
            "message would be dead-lettered instead of retried; raise RetryableSendError"
        )
    fail(
        "adapter.send returned normally although the messenger failed to take the message: the failure was "
        "swallowed, so the message would be lost instead of retried; raise RetryableSendError"
    )


# ---------------------------------------------------------------------------------------------- secrets


class LogCapture(logging.Handler):
    """Every log record of every logger while installed; `lines()` renders them as `omnichannel-bridge run`
    writes them: through the bridge's redacting filter (built from the config's secrets) and JSON formatter."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, config_secrets: Iterable[str] = ()) -> Iterable[tuple[str, str]]:
        """(where, line) per record, redacted exactly as in production."""
        from bridge.logs import JsonFormatter, RedactingFilter, Redactor

        redacting, formatter = RedactingFilter(Redactor(config_secrets)), JsonFormatter()
        for original in self.records:
            record = logging.makeLogRecord(dict(vars(original)))
            redacting.filter(record)
            yield f"the bridge's log line of logger {original.name!r} at {original.levelname}", formatter.format(record)

    def install(self) -> tuple[logging.Logger, int]:
        root = logging.getLogger()
        previous = root.level
        root.addHandler(self)
        root.setLevel(logging.DEBUG)
        return root, previous


def check_no_secrets(texts: Iterable[tuple[str, str]], secrets: Mapping[str, str]) -> None:
    """No secret value appears in any of the texts (log lines, error messages the bridge stores); the failure
    names the key and where, masking the value."""
    for where, text in texts:
        for key, value in secrets.items():
            if value and value in text:
                line = next(line for line in text.splitlines() if value in line)
                fail(
                    f"the secret `{key}` ({mask(value)}) appeared in {where}: "
                    f"{short(line.replace(value, mask(value)), 160)}"
                )
