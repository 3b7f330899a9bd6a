"""Fixtures of the file tests: a guard that fails any test reaching beyond loopback, a stub resolver, a file
server.

The guard wraps the socket layer itself (every `connect` and every name lookup in the process), so a download
the SSRF guard wrongly lets through fails the test loudly instead of sending a packet to 10.0.0.1 or to a DNS
server.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from tests.files.file_server import FileServer, run_file_server


class OffLoopback(AssertionError):
    pass


def _loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address: Any) -> None:
        if isinstance(address, tuple) and not _loopback(address[0]):
            raise OffLoopback(f"a test tried to connect to {address[0]}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _loopback(host.decode() if isinstance(host, bytes) else host):
            raise OffLoopback(f"a test tried to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


class StubResolver:
    """Answers from a fixed table, no DNS; an unknown name does not resolve. `answers` may list several
    answers for one name, given out in turn (the last repeats), to play DNS rebinding."""

    def __init__(self, table: dict[str, Sequence[str] | list[Sequence[str]]] | None = None) -> None:
        self.table: dict[str, Any] = dict(table or {})
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        answer = self.table.get(host)
        if answer is None:
            raise OSError(f"{host}: no such name (stub resolver)")
        if answer and isinstance(answer[0], list | tuple):
            turn = min(self.calls.count(host), len(answer)) - 1
            return list(answer[turn])
        return list(answer)


@pytest.fixture
def resolver() -> StubResolver:
    return StubResolver()


@pytest.fixture
async def file_server() -> AsyncIterator[FileServer]:
    async with run_file_server() as server:
        yield server
