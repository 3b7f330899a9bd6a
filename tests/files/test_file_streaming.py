"""The proxy streams: a file passes through chunk by chunk, never whole, and a stream that breaks its promise
(more bytes than announced, or past the limit) is broken off rather than delivered truncated as if complete.

A small adapter of the test's own serves the files, so the test controls when each chunk becomes available.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import msgspec
import pytest

from bridge import Adapter, AdapterError, FileDownload, Outbound
from bridge.app import create_app
from bridge.config import FilesConfig, LoggingConfig
from bridge.files import FileUrlSigner
from bridge.testing.server import serve
from tests.conftest import free_port
from tests.files.loop_support import SIGNING_KEY
from tests.support import channel, make_config

CHUNK = 64 * 1024
LIMIT = 8 * CHUNK


class GatedConfig(msgspec.Struct, forbid_unknown_fields=True):
    pass


@dataclass
class Gate:
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    first_sent: asyncio.Event = field(default_factory=asyncio.Event)


class GatedAdapter(Adapter[GatedConfig]):
    name = "gated"
    config_type = GatedConfig

    def __init__(self, config: GatedConfig, context: object) -> None:
        super().__init__(config, context)  # type: ignore[arg-type]
        self.gate = Gate()

    async def do_send(self, message: Outbound) -> None:
        return None

    async def do_open_file(self, file_ref: str) -> FileDownload:
        if file_ref == "gated":
            return FileDownload(self._gated(), size=2 * CHUNK, content_type="application/pdf", name="gated.pdf")
        if file_ref == "overrun":
            return FileDownload(self._repeat(2), size=CHUNK)
        if file_ref == "unsized":
            return FileDownload(self._repeat(LIMIT // CHUNK + 2))
        if file_ref == "unsized-small":
            return FileDownload(self._repeat(2))
        raise AdapterError("the messenger is down")

    async def _gated(self) -> AsyncIterator[bytes]:
        yield b"a" * CHUNK
        self.gate.first_sent.set()
        await self.gate.opened.wait()  # the second half exists only once the client has the first
        yield b"b" * CHUNK

    async def _repeat(self, count: int) -> AsyncIterator[bytes]:
        for _ in range(count):
            yield b"r" * CHUNK


@dataclass
class Running:
    url: str
    signer: FileUrlSigner
    adapter: GatedAdapter


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = make_config(
        [
            channel(
                "g",
                "http://127.0.0.1:9/omnichannel_message/unused/bot_api_webhook",
                token="reply-token-streaming",
                adapter={"type": "gated"},
            )
        ],
        store_url=f"sqlite:///{tmp_path}/bridge.db",
        port=port,
        public_url=url,
    )
    config = msgspec.structs.replace(config, files=FilesConfig(signing_key=SIGNING_KEY, max_size_mb=LIMIT / 2**20))
    app = create_app(config, adapters={"gated": GatedAdapter})
    async with serve(app, port=port, logging=LoggingConfig(level="WARNING")):
        adapter = app.state.bridge.channels["g"].adapter
        yield Running(url, FileUrlSigner(SIGNING_KEY, public_url=url, ttl=60), adapter)


async def test_the_client_gets_the_first_chunk_before_the_adapter_has_the_second(running: Running) -> None:
    async with (
        httpx.AsyncClient(trust_env=False, timeout=10) as client,
        client.stream("GET", running.signer.sign("g", "gated")) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-length"] == str(2 * CHUNK)
        received = bytearray()
        chunks = response.aiter_raw()
        async with asyncio.timeout(5):  # a proxy that buffered the whole file would never get here
            while len(received) < CHUNK:
                received.extend(await anext(chunks))
        assert bytes(received) == b"a" * CHUNK
        running.adapter.gate.opened.set()
        async for chunk in chunks:
            received.extend(chunk)
    assert bytes(received) == b"a" * CHUNK + b"b" * CHUNK


async def test_never_more_bytes_than_announced(running: Running, caplog: pytest.LogCaptureFixture) -> None:
    """`Content-Length` went out first: the answer holds exactly that many bytes, whatever the adapter gives."""
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        response = await client.get(running.signer.sign("g", "overrun"))
        assert response.content == b"r" * CHUNK
        again = await client.get(running.signer.sign("g", "unsized-small"))
        assert again.content == b"r" * 2 * CHUNK, "the connection is still sound"
    assert any(r.name == "bridge.files" and getattr(r, "reason", "") == "too_large" for r in caplog.records)


async def test_an_unsized_stream_past_the_limit_is_broken_off(running: Running) -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        with pytest.raises(httpx.HTTPError):
            await client.get(running.signer.sign("g", "unsized"))
        response = await client.get(running.signer.sign("g", "unsized-small"))
        assert response.content == b"r" * 2 * CHUNK


async def test_a_messenger_failure_is_502(running: Running) -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        response = await client.get(running.signer.sign("g", "down"))
    assert response.status_code == 502
    assert response.json()["error"] == "bad_gateway"
