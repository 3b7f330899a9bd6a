"""A bridge run the way `omnichannel-bridge run` runs it (redacting logs, access log on, durable handoff) next
to the platform emulator, with a messenger adapter whose errors name its token, and metric helpers."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
from litestar import get
from prometheus_client.parser import text_string_to_metric_families

from bridge import Adapter, Capabilities, Inbound, InboundText, Outbound, Sender
from bridge.app import BridgeRuntime, create_app
from bridge.config import Config, DeliveryConfig, LoggingConfig, MetricsConfig, secret_values
from bridge.delivery import build_handoff
from bridge.emulator import EmulatorChannel, EmulatorConfig, RunningEmulator, run_emulator
from bridge.testing.server import serve
from tests.conftest import free_port
from tests.support import bridge_logging, channel, make_config

PLATFORM_TOKEN = "platform-token-ops-7f3a9c"
REPLY_TOKEN = "reply-token-ops-51be0d"
URL_SECRET = "url-secret-ops-9d2c4e8a"
BOT_TOKEN = "bot-token-ops-a81f6b2e"
METRICS_TOKEN = "metrics-token-ops-3c7e"
SIGNING_KEY = "test-signing-key-0123456789"
SECRETS = (PLATFORM_TOKEN, REPLY_TOKEN, URL_SECRET, BOT_TOKEN, METRICS_TOKEN, SIGNING_KEY)

MESSAGES = "omnichannel_bridge_messages_total"
ANN = Sender(native_user_id="u-1", name="Ann Lee")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class OpsAdapterConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    bot_token: str
    fail_first: int = 0  # this many sends fail with an error text naming the bot token


class OpsAdapter(Adapter[OpsAdapterConfig]):
    """A messenger whose failures leak its token into exception text, as real client libraries' do."""

    name = "ops"
    config_type = OpsAdapterConfig
    capabilities = Capabilities(max_text_length=2000)

    def __init__(self, config: OpsAdapterConfig, context: Any) -> None:
        super().__init__(config, context)
        self.sent: list[Outbound] = []
        self.failures_left = config.fail_first

    async def do_send(self, message: Outbound) -> None:
        self.log.info("sending to the messenger", extra={"native_chat_id": message.native_chat_id})
        if self.failures_left > 0:
            self.failures_left -= 1
            raise RuntimeError(f"POST https://messenger.invalid/bot{self.config.bot_token}/send: connection reset")
        self.sent.append(message)

    def route_handlers(self) -> Sequence[Any]:
        token = self.config.bot_token

        @get("/boom", name="ops-boom")
        async def boom() -> None:
            raise RuntimeError(f"the messenger refused token {token}")

        return [boom]


def ops_config(emulator: RunningEmulator, store_url: str, *, port: int, **server: Any) -> Config:
    config = make_config(
        [
            channel(
                "web",
                emulator.webhook_url(PLATFORM_TOKEN),
                token=REPLY_TOKEN,
                url_secret=URL_SECRET,
                adapter={"type": "ops", "bot_token": BOT_TOKEN, "fail_first": 1},
            )
        ],
        store_url=store_url,
        port=port,
        public_url=f"http://127.0.0.1:{port}",
    )
    for key, value in server.items():
        setattr(config.server, key, value)
    config.delivery = DeliveryConfig(retry_schedule=[0.02], jitter=0.0, max_age=3600.0, workers=2, shutdown_grace=2.0)
    config.metrics = MetricsConfig(token=METRICS_TOKEN)
    return config


@contextlib.contextmanager
def captured_logs(secrets: Iterable[str], log_format: str = "json", level: str = "INFO") -> Iterator[io.StringIO]:
    """Install the bridge's logging on a string buffer; put the previous logging state back afterwards."""
    stream = io.StringIO()
    with bridge_logging(LoggingConfig(level=level), secrets, stream, log_format=log_format):
        yield stream


def assert_no_secret(text: str, secrets: tuple[str, ...] = SECRETS) -> None:
    leaked = [secret for secret in secrets if secret in text]
    assert not leaked, f"secrets in the logs: {leaked}"


@dataclass
class OpsBridge:
    emulator: RunningEmulator
    runtime: BridgeRuntime
    url: str
    logs: io.StringIO

    @property
    def adapter(self) -> OpsAdapter:
        adapter = self.runtime.channels["web"].adapter
        assert isinstance(adapter, OpsAdapter)
        return adapter

    async def visitor_says(self, chat: str, message: str, text: str) -> None:
        await self.adapter.context.submit(Inbound(chat, message, ANN, InboundText(text)))

    async def scrape(self) -> Samples:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{self.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert response.status_code == 200, response.text
        return parse_samples(response.text)

    async def until(self, condition: Callable[[Samples], bool], timeout: float = 10.0) -> Samples:
        """Scrape until `condition` holds (deliveries finish after the emulator has recorded them)."""
        samples = await self.scrape()
        async with asyncio.timeout(timeout):
            while not condition(samples):
                await asyncio.sleep(0.02)
                samples = await self.scrape()
        return samples


@contextlib.asynccontextmanager
async def ops_bridge(store_url: str, **server: Any) -> AsyncIterator[OpsBridge]:
    port = free_port()
    async with run_emulator(EmulatorConfig()) as emulator:
        config = ops_config(emulator, store_url, port=port, **server)
        with captured_logs(secret_values(config)) as logs:
            handoff = build_handoff(config, poll_interval=0.05)
            app = create_app(config, adapters={"ops": OpsAdapter}, handoff=handoff)
            async with serve(app, port=config.server.port, logging=config.logging) as server:
                url = server.url
                # The emulated agent replies on the secret URL, so those paths are in the access log.
                emulator.set_channel(
                    EmulatorChannel(token=PLATFORM_TOKEN, reply_url=f"{url}/channels/web/{URL_SECRET}")
                )
                yield OpsBridge(emulator, app.state.bridge, url, logs)


def parse_samples(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def messages(samples: Samples, direction: str, outcome: str, kind: str = "text") -> float:
    return value(samples, MESSAGES, channel="web", direction=direction, kind=kind, outcome=outcome)
