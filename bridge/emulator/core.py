"""The emulated platform, free of any web framework: one webhook request in, one answer out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from bridge.emulator.agent import ScriptedAgent
from bridge.emulator.config import EmulatorChannel, EmulatorConfig
from bridge.emulator.inbound import Ignored, Rejected, decode_json, examine_new_message, subject_text
from bridge.emulator.records import FaultBook, FaultRule, ReceivedOutcome, ReceivedRecord, Recorder
from bridge.emulator.script import Script

__all__ = ["NO_ACTIVE_CHANNEL", "Answer", "Emulator"]

NO_ACTIVE_CHANNEL = "There is no active channel for received event."


class Answer(msgspec.Struct, kw_only=True):
    """The webhook's answer, and what to do once it is sent."""

    status: int
    body: Any
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    # Run after the answer went out, as the platform processes a message after taking it over.
    after: Callable[[], Awaitable[None]] | None = None


class Emulator:
    """State and behaviour of one emulated platform; `create_emulator_app` puts HTTP in front of it."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.recorder = Recorder()
        self.faults = FaultBook()
        self.agent = ScriptedAgent(lambda: self.config, self.recorder)

    async def start(self) -> None:
        await self.agent.start()

    async def stop(self) -> None:
        await self.agent.stop()

    async def reset(self) -> None:
        """Forget everything recorded, clear the faults and drop pending replies."""
        await self.agent.cancel_all()
        self.faults.clear()
        self.recorder.clear()

    def set_script(self, script: Script) -> None:
        self.config = msgspec.structs.replace(self.config, script=script)

    def set_channel(self, channel: EmulatorChannel) -> None:
        """Add a channel, or replace the one with the same token (e.g. once the bridge's port is known)."""
        others = [c for c in self.config.channels if c.token != channel.token]
        self.config = msgspec.structs.replace(self.config, channels=[*others, channel])

    async def receive(self, token: str, body: bytes, content_type: str | None, base_url: str) -> Answer:
        """Handle one `new_message` POST for `token` the way the platform does."""
        not_json: Rejected | None = None
        try:
            data: Any = decode_json(body)
        except Rejected as exc:
            # Recorded as text; answered 500 below, unless a fault or the token decides first.
            data, not_json = body.decode("utf-8", errors="replace"), exc

        fault = self.faults.take(token, subject_text(data) if not_json is None else None)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            answer = Answer(status=fault.status, body=fault.answer_body(), headers=dict(fault.headers))
            self._record(token, data, content_type, answer, "fault", f"fault rule {self._describe(fault)}")
            return answer

        channel = self.config.channel(token)
        if channel is None:
            answer = Answer(status=400, body={"error": NO_ACTIVE_CHANNEL})
            self._record(token, data, content_type, answer, "rejected", "unknown token")
            return answer
        try:
            if not_json is not None:
                raise not_json
            result = examine_new_message(data)
        except Rejected as exc:
            answer = Answer(status=exc.status, body={"error": exc.error})
            self._record(token, data, content_type, answer, "rejected", exc.error)
            return answer

        if isinstance(result, Ignored):
            answer = Answer(status=200, body={"result": "ok"})
            self._record(token, data, content_type, answer, "ignored", result.reason)
            return answer

        emulator_url = (self.config.public_url or base_url).rstrip("/")

        async def hand_to_agent() -> None:
            await self.agent.submit(channel, result, emulator_url)

        answer = Answer(status=200, body={"result": "ok"}, after=hand_to_agent)
        self._record(token, data, content_type, answer, "accepted", None, agent_text=result.text)
        return answer

    @staticmethod
    def _describe(fault: FaultRule) -> str:
        return msgspec.json.encode(fault).decode()

    def _record(
        self,
        token: str,
        data: Any,
        content_type: str | None,
        answer: Answer,
        outcome: ReceivedOutcome,
        reason: str | None,
        *,
        agent_text: str | None = None,
    ) -> None:
        self.recorder.add_received(
            ReceivedRecord(
                seq=self.recorder.next_seq(),
                token=token,
                body=data,
                content_type=content_type,
                status=answer.status,
                response=answer.body,
                outcome=outcome,
                reason=reason,
                agent_text=agent_text,
            )
        )
