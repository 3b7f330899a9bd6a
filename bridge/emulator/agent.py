"""The emulated agent: turns accepted visitor messages into calls to the bridge's reply endpoint.

Like the real platform it replies later, over its own HTTP requests, never in the webhook answer. Calls for
one chat are made one after another in arrival order (one worker task per busy chat); chats do not wait for
each other. A failed call is recorded and not retried: the emulator shows what the bridge answered, it does
not hide it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx
import msgspec

from bridge._errors import describe_error
from bridge.emulator.config import EmulatorChannel, EmulatorConfig
from bridge.emulator.inbound import VisitorEvent
from bridge.emulator.records import Recorder, ReplyRecord
from bridge.emulator.script import ReplyCall

__all__ = ["ScriptedAgent"]

logger = logging.getLogger("bridge.emulator.agent")

_ChatKey = tuple[str, int]


class _Job(msgspec.Struct, frozen=True):
    channel: EmulatorChannel
    event: VisitorEvent
    emulator_url: str


class ScriptedAgent:
    def __init__(self, config: Callable[[], EmulatorConfig], recorder: Recorder) -> None:
        # A getter, not a value: tests swap the script or a channel's reply URL while the emulator runs.
        self._config = config
        self._recorder = recorder
        self._client: httpx.AsyncClient | None = None
        self._chats: dict[_ChatKey, deque[_Job]] = {}
        self._workers: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._config().reply_timeout, trust_env=False)

    async def stop(self) -> None:
        await self.cancel_all()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def cancel_all(self) -> None:
        """Drop pending replies and stop the workers (used by reset, so no reply leaks into the next test)."""
        workers = list(self._workers)
        self._chats.clear()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    @property
    def idle(self) -> bool:
        return not self._workers

    async def submit(self, channel: EmulatorChannel, event: VisitorEvent, emulator_url: str) -> None:
        """Queue the agent's answer to `event`; returns at once."""
        key = (channel.token, event.chat_id)
        job = _Job(channel, event, emulator_url)
        queue = self._chats.get(key)
        if queue is not None:
            queue.append(job)
            return
        self._chats[key] = deque([job])
        task = asyncio.create_task(self._work(key), name=f"emulator-agent-{channel.token}-{event.chat_id}")
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)

    async def _work(self, key: _ChatKey) -> None:
        while True:
            queue = self._chats.get(key)
            if not queue:
                # No await between the check and the removal: a submit cannot slip in and be lost.
                self._chats.pop(key, None)
                return
            job = queue.popleft()
            try:
                await self._answer(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("emulated agent failed on chat %s", job.event.chat_id)

    async def _answer(self, job: _Job) -> None:
        config = self._config()
        for call in config.script.calls_for(job.event, job.emulator_url):
            if config.reply_delay:
                await asyncio.sleep(config.reply_delay)
            await self._send(job.channel, job.event.chat_id, call)

    async def _send(self, channel: EmulatorChannel, chat_id: int, call: ReplyCall) -> None:
        client = self._client
        if client is None:
            raise RuntimeError("the emulated agent is not started")
        url = f"{channel.base_reply_url}/{call.method}"
        body: dict[str, Any] = {"chat_id": chat_id}
        if call.message is not None:
            body["message"] = call.message
        headers = {"Content-Type": "application/json"}
        if channel.reply_token is not None:
            headers["Authorization"] = f"Token {channel.reply_token}"
        status: int | None = None
        response_text = ""
        error: str | None = None
        try:
            response = await client.post(url, content=msgspec.json.encode(body), headers=headers)
            status = response.status_code
            response_text = response.text
        except httpx.HTTPError as exc:
            error = describe_error(exc)
            logger.warning("emulated agent could not reach %s: %s", url, error)
        self._recorder.add_reply(
            ReplyRecord(
                seq=self._recorder.next_seq(),
                token=channel.token,
                chat_id=chat_id,
                url=url,
                path=httpx.URL(url).path,
                authorization=headers.get("Authorization"),
                body=body,
                status=status,
                response=response_text,
                error=error,
            )
        )
