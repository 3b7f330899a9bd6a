"""The bridge as operators run it, a real process per replica, and what the fault tests drive it with.

`BridgeProcess` starts `python -m bridge run -c FILE` (waiting for `/readyz`) and can `kill -9` it or stop it
with SIGTERM; its output goes to a file that is shown when a test fails. `Company` is the system behind the
generic HTTP adapter: it posts visitor messages, retries until one is taken over (as the adapter's contract
asks), and records how every answer came back. `check_arrivals` judges what the platform received: complete,
per-chat order, and repeats only where a test allows them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from bridge.config import parse_config, secret_values
from bridge.emulator import EmulatorChannel, EmulatorConfig, ReceivedRecord, Script
from bridge.testing.telegram import FakeTelegram

__all__ = [
    "FAST_DELIVERY",
    "INBOUND_TOKEN",
    "PLATFORM_TOKEN",
    "REPLY_TOKEN",
    "Answer",
    "BridgeProcess",
    "Company",
    "Fleet",
    "accepted_bodies",
    "bridge_config",
    "check_arrivals",
    "eventually",
    "http_channel",
    "silent_platform",
    "telegram_channel",
    "text_of",
    "total",
    "webhook_url",
]

PLATFORM_TOKEN = "platform-token-faults-5d1c"
REPLY_TOKEN = "reply-token-faults-8e2a47"
INBOUND_TOKEN = "inbound-token-faults-0b9d3f61"
CALLBACK_SECRET = "callback-secret-faults-77c0a2"
SIGNING_KEY = "test-signing-key-0123456789"
# Short retries and a short lease: a crashed process's work goes round again within about a second.
FAST_DELIVERY: dict[str, Any] = {"retry_schedule": [0, 0.2, 0.5, 1], "jitter": 0.1, "lease": 2.0, "workers": 4,
                                 "shutdown_grace": 2}
START_TIMEOUT = 30.0
LOG_FORMAT = os.environ.get("BRIDGE_FAULTS_LOG_FORMAT", "json")
_START_MARK = "----- start "


def webhook_url(platform_base: str) -> str:
    """The channel's platform webhook URL ("App.Chatbots webhook: URL") on a platform at `platform_base`."""
    return f"{platform_base}/connector/omnichannel/omnichannel_message/{PLATFORM_TOKEN}/bot_api_webhook"


def silent_platform() -> EmulatorConfig:
    """The emulator with an agent that never replies: these tests watch the inbound direction only."""
    return EmulatorConfig(
        channels=[EmulatorChannel(token=PLATFORM_TOKEN, reply_url="http://127.0.0.1:9/unused")],
        script=Script(rules=[]),
    )


def http_channel(platform_base: str, channel_id: str = "desk") -> dict[str, Any]:
    """A generic HTTP channel taking bearer-authenticated inbound messages; its callbacks go nowhere."""
    return {
        "id": channel_id,
        "platform": {"webhook_url": webhook_url(platform_base), "token": REPLY_TOKEN, "timeout": 10},
        "adapter": {"type": "http", "auth": "bearer", "token": INBOUND_TOKEN, "callback_url": "http://127.0.0.1:9/cb",
                    "callback_secret": CALLBACK_SECRET},
    }


def telegram_channel(platform_base: str, tg: FakeTelegram, *, mode: str, channel_id: str = "tg") -> dict[str, Any]:
    """A Telegram channel on the fake Bot API, polling fast, with send limits too high to matter."""
    return {
        "id": channel_id,
        "platform": {"webhook_url": webhook_url(platform_base), "token": REPLY_TOKEN},
        "adapter": {
            "type": "telegram",
            **tg.adapter_settings(mode=mode, poll_retry_delay=0.05, poll_retry_max=0.2, request_timeout=5),
        },
    }


def bridge_config(
    channels: Sequence[Mapping[str, Any]], *, store_url: str, port: int, public_url: str | None = None,
    **delivery: Any,
) -> dict[str, Any]:
    server: dict[str, Any] = {"host": "127.0.0.1", "port": port}
    if public_url is not None:
        server["public_url"] = public_url
    return {
        "server": server,
        "store": {"url": store_url},
        "delivery": {**FAST_DELIVERY, **delivery},
        "files": {"signing_key": SIGNING_KEY},
        # BRIDGE_FAULTS_LOG_LEVEL=DEBUG shows everything the processes did in a failed test's output. The logs
        # are JSON, as in production, so that `Fleet.close` can check every line; BRIDGE_FAULTS_LOG_FORMAT=console
        # makes them easier to read (and skips that check).
        "logging": {"level": os.environ.get("BRIDGE_FAULTS_LOG_LEVEL", "INFO"), "format": LOG_FORMAT},
        "channels": list(channels),
    }


class BridgeProcess:
    """One `omnichannel-bridge run` process. `start` may be called again after `kill`: a restart on the same
    config, store and port."""

    def __init__(self, config: Mapping[str, Any], workdir: Path, name: str, *, port: int | None = None) -> None:
        self.name = name
        self.workdir = workdir
        self.port = int(port if port is not None else config["server"]["port"])
        self.config_path = workdir / f"{name}.yaml"
        # JSON is YAML: the file is exactly what an operator could have written.
        self.config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        self.log_path = workdir / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"{_START_MARK}{self.starts} -----\n".encode())
            log.flush()
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bridge", "run", "-c", str(self.config_path), "--port", str(self.port),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.workdir,
            )
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.running:
                    raise AssertionError(f"{self.name} exited during startup:\n{self.log_tail()}")
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} was not ready within {START_TIMEOUT:g}s:\n{self.log_tail()}")

    async def kill(self) -> None:
        """`kill -9`: no shutdown code runs, whatever was in flight is cut off."""
        process = self.process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await process.wait()

    async def terminate(
        self, *, timeout: float = 30.0, while_stopping: Callable[[], Awaitable[None]] | None = None
    ) -> int:
        """SIGTERM, as an orchestrator stops a container; returns the exit status. `while_stopping` runs once
        the bridge has logged that it is stopping (it takes no new work from then on), before it exits."""
        process = self.process
        assert process is not None and process.returncode is None, f"{self.name} is not running"
        process.send_signal(signal.SIGTERM)
        if while_stopping is not None:
            await eventually(self._stopping, f"{self.name} to log that it is stopping", timeout=timeout)
            await while_stopping()
        try:
            return await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            tail = self.log_tail()
            raise AssertionError(f"{self.name} did not exit within {timeout:g}s of SIGTERM:\n{tail}") from None

    async def _stopping(self) -> bool:
        starts = self.log_path.read_text(encoding="utf-8", errors="replace").split(_START_MARK)
        return "bridge stopping" in starts[-1]

    async def status(self) -> list[dict[str, Any]]:
        """`omnichannel-bridge status -c FILE --json`, run as an operator runs it."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridge", "status", "-c", str(self.config_path), "--json",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        rows: list[dict[str, Any]] = json.loads(out)
        return rows

    async def metrics(self) -> list[Sample]:
        """Every sample of this process's `/metrics`."""
        async with httpx.AsyncClient(base_url=self.url, timeout=5.0) as client:
            answer = await client.get("/metrics")
        answer.raise_for_status()
        return [sample for family in text_string_to_metric_families(answer.text) for sample in family.samples]

    async def outcomes(self, outcome: str) -> float:
        """Delivery attempts this process counted with `outcome`: delivered, retried, dead_lettered..."""
        return total(await self.metrics(), "omnichannel_bridge_messages_total", outcome=outcome)

    async def wait_drained(self, timeout: float = 20.0) -> None:
        """Until nothing is queued or in flight any more: from then on nothing else can reach the other side,
        so counting what arrived is final. A scrape counts only when the queue's status was read for it (a
        failed read leaves the backlog gauges out, which must not pass for an empty queue)."""
        failed_reads: list[float] = []

        async def drained() -> bool:
            samples = await self.metrics()
            failed_reads.append(total(samples, "omnichannel_bridge_store_errors_total", operation="queue_status"))
            read = len(failed_reads) > 1 and failed_reads[-1] == failed_reads[-2]
            backlog = total(samples, "omnichannel_bridge_queue_depth")
            return read and backlog + total(samples, "omnichannel_bridge_queue_in_flight") == 0

        await eventually(drained, f"{self.name} to drain its queues", timeout=timeout)

    def check_log(self) -> None:
        """What operators' log pipelines rely on: every line of every run is one JSON object, and no secret
        of the config (redacted by the bridge) appears anywhere."""
        config = parse_config(self.config_path.read_text(encoding="utf-8"), source=str(self.config_path))
        secrets = secret_values(config)
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            leaked = sorted(secret for secret in secrets if secret in line)
            for secret in leaked:
                line = line.replace(secret, "<SECRET>")
            assert not leaked, f"{self.name}'s log line {number} shows a configured secret: {line[:300]}"
            if LOG_FORMAT != "json" or line.startswith(_START_MARK):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise AssertionError(f"{self.name}'s log line {number} is not JSON: {line[:300]}") from None
            assert isinstance(record, dict) and {"ts", "level", "event", "logger"} <= record.keys(), line[:300]

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])


class Fleet:
    """Every bridge process of one test, so that none outlives it whatever happens."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.processes: list[BridgeProcess] = []

    def add(self, config: Mapping[str, Any], name: str = "bridge", *, port: int | None = None) -> BridgeProcess:
        process = BridgeProcess(config, self.workdir, name, port=port)
        self.processes.append(process)
        return process

    async def close(self) -> None:
        for process in self.processes:
            await process.kill()
        for process in self.processes:
            # Captured by pytest and shown only when the test failed.
            print(f"===== {process.name} output =====\n{process.log_tail(200)}")
        for process in self.processes:
            process.check_log()


@dataclass(frozen=True, slots=True)
class Answer:
    """One inbound POST as the company saw it: where, what came back (or the transport error) and how fast."""

    url: str
    message_id: str
    status: int | None
    seconds: float
    error: str | None = None


@dataclass
class Company:
    """The company's system behind the HTTP adapter. `send` posts one visitor message and, like any sender
    that honours the adapter's contract, tries again (the next bridge URL first) until it gets a 200."""

    client: httpx.AsyncClient
    channel_id: str = "desk"
    answers: list[Answer] = field(default_factory=list)
    retry_delay: float = 0.05
    give_up_after: float = 30.0

    async def send(self, urls: Sequence[str], chat: str, message_id: str, text: str) -> None:
        body = {"chat_id": chat, "message_id": message_id, "user": {"id": f"user-{chat}"}, "text": text}
        headers = {"Authorization": f"Bearer {INBOUND_TOKEN}"}
        deadline = time.monotonic() + self.give_up_after
        attempt = 0
        while True:
            url = f"{urls[attempt % len(urls)]}/channels/{self.channel_id}/inbound"
            attempt += 1
            started = time.monotonic()
            try:
                answer = await self.client.post(url, json=body, headers=headers)
            except httpx.TransportError as exc:
                self.answers.append(Answer(url, message_id, None, time.monotonic() - started, repr(exc)))
            else:
                self.answers.append(Answer(url, message_id, answer.status_code, time.monotonic() - started))
                if answer.status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"message {message_id} was not taken over in {self.give_up_after:g}s: "
                                     f"{[a for a in self.answers if a.message_id == message_id]}")
            await asyncio.sleep(self.retry_delay)

    async def send_chat(self, urls: Sequence[str], chat: str, texts: Sequence[str]) -> None:
        """One chat's messages one after the other, each sent once the previous one was taken over (the
        order the chat must keep), to the bridge URLs in turn."""
        for n, text in enumerate(texts):
            turn = n % len(urls)
            await self.send([*urls[turn:], *urls[:turn]], chat, f"m-{text}", text)

    def taken_over(self) -> int:
        return sum(1 for answer in self.answers if answer.status == 200)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, *, timeout: float = 20.0) -> None:
    """Poll `check` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)


def total(samples: Sequence[Sample], name: str, **labels: str) -> float:
    """The sum of the `name` samples that carry `labels`."""
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def accepted_bodies(records: Sequence[ReceivedRecord]) -> list[dict[str, Any]]:
    """The `new_message` bodies the emulated platform took over, in the order it took them."""
    return [record.body for record in records if record.outcome == "accepted"]


def text_of(body: Mapping[str, Any]) -> str:
    return str(body["message"]["text"])


def check_arrivals(
    bodies: Sequence[Mapping[str, Any]],
    expected: Mapping[str, Sequence[str]],
    *,
    may_repeat: Collection[str] = (),
) -> Counter[str]:
    """Assert that the platform took over exactly the expected messages: every chat's texts in order, none
    missing, none from elsewhere. A message may come twice only when its text is in `may_repeat`, then with
    the very same body (so the same `message.id`) and right after its first copy: never after a later
    message of its chat. Returns how often each text came."""
    counts: Counter[str] = Counter(text_of(body) for body in bodies)
    first: dict[str, Mapping[str, Any]] = {}
    ids: dict[str, str] = {}
    sequences: dict[int, list[str]] = {}
    for body in bodies:
        text = text_of(body)
        if text in first:
            assert body == first[text], f"{text!r} came again with a different body:\n{first[text]}\n{body}"
        first.setdefault(text, body)
        owner = ids.setdefault(str(body["message"]["id"]), text)
        assert owner == text, f"message.id {body['message']['id']} names both {owner!r} and {text!r}"
        sequences.setdefault(int(body["chat_id"]), []).append(text)
    repeated = {text: n for text, n in counts.items() if n > 1}
    unexpected = {text: n for text, n in repeated.items() if text not in may_repeat}
    assert not unexpected, f"delivered more than once: {unexpected}"
    for chat_id, texts in sequences.items():
        collapsed = [text for i, text in enumerate(texts) if i == 0 or texts[i - 1] != text]
        assert len(collapsed) == len(set(collapsed)), f"chat {chat_id}: a repeat came after a later message: {texts}"
        sequences[chat_id] = collapsed
    got = sorted(sequences.values())
    want = sorted(list(texts) for texts in expected.values())
    assert got == want, f"per-chat arrivals differ from what was sent:\n got {got}\nwant {want}"
    return counts
