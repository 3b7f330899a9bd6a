"""What the emulator saw and did, kept in memory for tests, and the faults it was told to answer with."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, Literal

import msgspec

__all__ = ["FaultBook", "FaultRule", "ReceivedOutcome", "ReceivedRecord", "Recorder", "ReplyRecord"]

ReceivedOutcome = Literal["accepted", "ignored", "rejected", "fault"]


class ReceivedRecord(msgspec.Struct, kw_only=True):
    """One request to the webhook, as received and as answered."""

    seq: int
    token: str
    # The decoded JSON, or the raw text when the body was not JSON.
    body: Any
    content_type: str | None
    status: int
    response: Any
    outcome: ReceivedOutcome
    reason: str | None = None
    # What the agent was handed (`file:...` for files); None when it was not handed anything.
    agent_text: str | None = None


class ReplyRecord(msgspec.Struct, kw_only=True):
    """One call the agent made to the bridge's reply endpoint, and what the bridge answered."""

    seq: int
    token: str
    chat_id: int
    url: str
    path: str
    authorization: str | None
    body: Any
    status: int | None
    response: str
    error: str | None = None


class FaultRule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Answer the webhook with `status` instead of processing the message.

    `count` requests (None = until cleared), only those whose text contains `match_text` (the visitor's text,
    the button label or the file name) and only for `token` when given. `body` is the JSON answered (default
    `{"error": "emulated fault <status>"}`), `headers` extra headers (e.g. `Retry-After`), `delay` seconds to
    wait before answering (longer than the client's timeout = a timeout). A faulted message is not handed to
    the agent, whatever the status: the emulated platform did not take it.
    """

    status: Annotated[int, msgspec.Meta(ge=100, le=599)]
    count: Annotated[int, msgspec.Meta(ge=1)] | None = None
    match_text: str | None = None
    token: str | None = None
    body: Any = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    delay: Annotated[float, msgspec.Meta(ge=0)] = 0.0

    def answer_body(self) -> Any:
        return self.body if self.body is not None else {"error": f"emulated fault {self.status}"}


class FaultBook:
    """The active fault rules; the first that applies answers, and uses up one of its `count`."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._left: list[int | None] = []

    def add(self, rule: FaultRule) -> None:
        self._rules.append(rule)
        self._left.append(rule.count)

    def clear(self) -> None:
        self._rules.clear()
        self._left.clear()

    def active(self) -> list[FaultRule]:
        return [msgspec.structs.replace(rule, count=left) for rule, left in zip(self._rules, self._left, strict=True)]

    def take(self, token: str, text: str | None) -> FaultRule | None:
        for index, rule in enumerate(self._rules):
            if rule.token is not None and rule.token != token:
                continue
            if rule.match_text is not None and (text is None or rule.match_text not in text):
                continue
            left = self._left[index]
            if left is not None:
                if left <= 1:
                    del self._rules[index], self._left[index]
                else:
                    self._left[index] = left - 1
            return rule
        return None


class Recorder:
    """The received and reply lists, with waiting for them to grow (tests run in the emulator's loop)."""

    def __init__(self) -> None:
        self.received: list[ReceivedRecord] = []
        self.replies: list[ReplyRecord] = []
        self._seq = 0
        self._changed = asyncio.Event()

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def add_received(self, record: ReceivedRecord) -> None:
        self.received.append(record)
        self._notify()

    def add_reply(self, record: ReplyRecord) -> None:
        self.replies.append(record)
        self._notify()

    def clear(self) -> None:
        self.received.clear()
        self.replies.clear()
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_until(
        self,
        condition: Callable[[], bool],
        timeout: float,
        what: str,
    ) -> None:
        """Return once `condition()` holds; raise TimeoutError naming `what` and what was recorded so far."""
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(
                f"timed out after {timeout:g}s waiting for {what}; recorded {len(self.received)} received "
                f"and {len(self.replies)} replies"
            ) from None
