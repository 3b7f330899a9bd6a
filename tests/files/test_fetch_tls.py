"""https through the guard: the connection goes to the checked address, while TLS still speaks to and verifies
the name (SNI and certificate), so pinning the address weakens nothing."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bridge.fetch import FetchFailed, SafeFetcher
from tests.files.conftest import StubResolver
from tests.files.file_server import FileServer, run_file_server

NAME = "files.example.test"


@dataclass
class TlsServer:
    files: FileServer
    client_context: ssl.SSLContext
    server_names: list[str | None]


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[TlsServer]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    await asyncio.to_thread(
        subprocess.run,
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={NAME}",
         "-addext", f"subjectAltName=DNS:{NAME}"],
        check=True, capture_output=True, timeout=30,
    )
    names: list[str | None] = []
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server_context.sni_callback = lambda _sock, name, _ctx: names.append(name)
    client_context = ssl.create_default_context(cafile=str(cert))
    async with run_file_server(ssl_context=server_context) as files:
        yield TlsServer(files, client_context, names)


async def test_https_keeps_the_name_for_sni_and_verification(tls_server: TlsServer) -> None:
    files = tls_server.files
    files.add("a.txt", b"over tls", "text/plain")
    resolver = StubResolver({NAME: ["127.0.0.1"], "other.example.test": ["127.0.0.1"]})
    guard = SafeFetcher(allow_networks=["127.0.0.1/32"], resolver=resolver, verify=tls_server.client_context)
    fetched = await guard.fetch(f"https://{NAME}:{files.port}/files/a.txt")
    assert fetched.data == b"over tls"
    assert tls_server.server_names == [NAME]
    assert files.seen[0].host == f"{NAME}:{files.port}"
    # Same address, another name: the certificate is checked against that name, and does not match it.
    with pytest.raises(FetchFailed, match="could not connect"):
        await guard.fetch(f"https://other.example.test:{files.port}/files/a.txt")
    assert tls_server.server_names[-1] == "other.example.test"
    assert len(files.seen) == 1
