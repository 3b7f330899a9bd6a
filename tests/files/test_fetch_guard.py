"""The SSRF guard of `bridge.fetch`: what it refuses before connecting, what it lets through, and how.

Every refusal is checked three ways: the exception's plain reason, the log line, and the file server's record
(nothing reached it). The `loopback_only` fixture fails any test that would reach beyond loopback.
"""

from __future__ import annotations

import logging
from ipaddress import ip_address

import httpx
import pytest

from bridge.fetch import FetchFailed, FetchRefused, SafeFetcher, address_refusal
from tests.files.conftest import OffLoopback, StubResolver
from tests.files.file_server import FileServer

LOOPBACK_ONLY = ["127.0.0.1/32"]


def fetcher(resolver: StubResolver, *, allow: list[str] | None = None, **options: object) -> SafeFetcher:
    return SafeFetcher(allow_networks=allow or [], resolver=resolver, **options)  # type: ignore[arg-type]


def refusal_logged(caplog: pytest.LogCaptureFixture, fragment: str) -> bool:
    return any(
        record.name == "bridge.fetch"
        and record.levelno == logging.WARNING
        and fragment in str(getattr(record, "reason", ""))
        for record in caplog.records
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:{port}/files/a.txt", "loopback"),
        ("http://[::1]:{port}/files/a.txt", "loopback"),
        ("http://10.0.0.1/files/a.txt", "private network"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[fc00::1]/", "private network"),
        ("http://0.0.0.0:{port}/", "unspecified"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://240.0.0.1/", "private network"),
        ("http://[::ffff:127.0.0.1]:{port}/", "loopback"),
        ("http://[::ffff:a9fe:a9fe]/", "link-local"),
        ("http://[2002:a00:1::1]/", "private network"),
        ("http://2130706433:{port}/", "loopback"),
        ("http://0x7f.1:{port}/", "loopback"),
        ("http://127.1:{port}/", "loopback"),
    ],
)
async def test_non_public_addresses_are_refused_before_connecting(
    url: str, why: str, file_server: FileServer, resolver: StubResolver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "bridge.fetch")
    with pytest.raises(FetchRefused, match=why) as info:
        await fetcher(resolver).fetch(url.format(port=file_server.port))
    assert why in info.value.reason
    assert refusal_logged(caplog, why)
    assert file_server.seen == []
    assert resolver.calls == [], "an address literal is judged without any lookup"


async def test_a_name_that_resolves_to_loopback_is_refused(
    file_server: FileServer, resolver: StubResolver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "bridge.fetch")
    resolver.table["files.example.com"] = ["127.0.0.1"]
    with pytest.raises(FetchRefused) as info:
        await fetcher(resolver).fetch(f"http://files.example.com:{file_server.port}/files/a.txt?token=s3cr3t")
    assert info.value.reason == "files.example.com resolves to 127.0.0.1, which is a loopback address"
    assert "s3cr3t" not in str(info.value), "the query may hold a secret: never shown"
    assert refusal_logged(caplog, "resolves to 127.0.0.1")
    assert all("s3cr3t" not in record.getMessage() + str(record.__dict__) for record in caplog.records)
    assert file_server.seen == []


async def test_a_name_with_any_private_address_is_refused_whole(resolver: StubResolver) -> None:
    resolver.table["mixed.example.com"] = ["93.184.216.34", "10.0.0.1"]
    with pytest.raises(FetchRefused, match=r"resolves to 10\.0\.0\.1"):
        await fetcher(resolver).fetch("http://mixed.example.com/")


@pytest.mark.parametrize("url", ["ftp://example.com/file", "file:///etc/passwd", "gopher://example.com/",
                                 "http:///no-host", "not a url"])
async def test_only_http_and_https(url: str, resolver: StubResolver) -> None:
    with pytest.raises(FetchRefused):
        await fetcher(resolver).fetch(url)
    assert resolver.calls == []


async def test_a_public_name_redirecting_to_private_addresses_is_refused_at_the_hop(
    file_server: FileServer, resolver: StubResolver, caplog: pytest.LogCaptureFixture
) -> None:
    """The first hop is "public" (a name the stub resolves to the allow-listed loopback server); each redirect
    target is judged again and refused before any connection to it."""
    caplog.set_level(logging.WARNING, "bridge.fetch")
    port = file_server.port
    resolver.table.update({"files.example.com": ["127.0.0.1"], "metadata.internal": ["169.254.169.254"]})
    guard = fetcher(resolver, allow=LOOPBACK_ONLY)
    start = f"http://files.example.com:{port}/redirect?to="
    targets = {
        f"http://127.0.0.2:{port}/files/a.txt": "127.0.0.2 is a loopback address",
        "http://10.0.0.1/admin": "10.0.0.1 is a private network address",
        "http://metadata.internal/latest/meta-data/": "metadata.internal resolves to 169.254.169.254",
        f"http://[::1]:{port}/files/a.txt": "::1 is a loopback address",
    }
    for target, why in targets.items():
        with pytest.raises(FetchRefused) as info:
            await guard.fetch(start + target)
        assert why in info.value.reason
        assert refusal_logged(caplog, why)
    assert file_server.paths() == [f"/redirect?to={target}" for target in targets]


async def test_redirects_within_allowed_hosts_are_followed(file_server: FileServer, resolver: StubResolver) -> None:
    target = file_server.add("report.pdf", b"%PDF-1.7 report", "application/pdf")
    fetched = await fetcher(resolver, allow=LOOPBACK_ONLY).fetch(f"{file_server.url}/redirect?to={target}")
    assert (fetched.data, fetched.name, fetched.content_type) == (b"%PDF-1.7 report", "report.pdf", "application/pdf")
    assert file_server.paths() == [f"/redirect?to={target}", "/files/report.pdf"]


async def test_redirect_loops_end(file_server: FileServer, resolver: StubResolver) -> None:
    url = f"{file_server.url}/redirect?to=/redirect%3Fto%3D/files/x"
    with pytest.raises(FetchRefused, match="more than 1 redirects"):
        await fetcher(resolver, allow=LOOPBACK_ONLY, max_redirects=1).fetch(f"{file_server.url}/redirect?to={url}")


async def test_connects_to_the_address_it_checked(file_server: FileServer, resolver: StubResolver) -> None:
    """DNS rebinding: the name answers an allowed address to the check and a private one afterwards. The guard
    asks once and connects to what it checked, with the name kept in the Host header."""
    file_server.add("a.txt", b"hello")
    resolver.table["rebind.example.com"] = [["127.0.0.1"], ["10.0.0.1"]]
    guard = fetcher(resolver, allow=LOOPBACK_ONLY)
    fetched = await guard.fetch(f"http://rebind.example.com:{file_server.port}/files/a.txt")
    assert fetched.data == b"hello"
    assert resolver.calls == ["rebind.example.com"]
    assert file_server.seen[0].host == f"rebind.example.com:{file_server.port}"
    with pytest.raises(FetchRefused, match=r"resolves to 10\.0\.0\.1"):
        await guard.fetch(f"http://rebind.example.com:{file_server.port}/files/a.txt")


async def test_allow_list_admits_only_its_networks(file_server: FileServer, resolver: StubResolver) -> None:
    url = file_server.add("a.txt", b"hello", "text/plain")
    assert (await fetcher(resolver, allow=["127.0.0.0/8"]).fetch(url)).data == b"hello"
    with pytest.raises(FetchRefused, match="loopback"):
        await fetcher(resolver, allow=["10.0.0.0/8"]).fetch(url)
    with pytest.raises(ValueError, match="CIDR"):
        fetcher(resolver, allow=["not-a-network"])


async def test_size_limit_by_content_length_and_by_count(
    file_server: FileServer, resolver: StubResolver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "bridge.fetch")
    url = file_server.add("big.bin", b"x" * 5000)
    guard = fetcher(resolver, allow=LOOPBACK_ONLY, max_size=4096)
    with pytest.raises(FetchRefused, match="the file is 5000 bytes; the limit is 4096 bytes"):
        await guard.fetch(url)
    with pytest.raises(FetchRefused, match="larger than the limit of 4096 bytes"):
        await guard.fetch(f"{file_server.url}/chunked/5000")
    assert (await guard.fetch(f"{file_server.url}/chunked/4096")).data == b"x" * 4096
    with pytest.raises(FetchRefused, match="limit is 1000 bytes"):
        await guard.fetch(url, max_size=1000)
    assert refusal_logged(caplog, "4096 bytes")


async def test_timeouts_and_deadline(file_server: FileServer, resolver: StubResolver) -> None:
    guard = fetcher(resolver, allow=LOOPBACK_ONLY, timeout=0.2, deadline=0.5)
    with pytest.raises(FetchFailed) as info:
        await guard.fetch(f"{file_server.url}/hang")
    assert info.value.retryable
    with pytest.raises(FetchFailed, match=r"not downloaded within 0\.5s") as info:
        await guard.fetch(f"{file_server.url}/drip")
    assert info.value.retryable


async def test_error_statuses(file_server: FileServer, resolver: StubResolver) -> None:
    guard = fetcher(resolver, allow=LOOPBACK_ONLY)
    with pytest.raises(FetchFailed, match="HTTP 404") as info:
        await guard.fetch(f"{file_server.url}/files/missing")
    assert (info.value.retryable, info.value.status) == (False, 404)
    with pytest.raises(FetchFailed, match="HTTP 503") as info:
        await guard.fetch(f"{file_server.url}/status/503")
    assert info.value.retryable


async def test_unresolvable_name_is_a_failure_not_a_refusal(resolver: StubResolver) -> None:
    with pytest.raises(FetchFailed, match="does not resolve") as info:
        await fetcher(resolver).fetch("https://nowhere.example.com/file")
    assert info.value.retryable


def test_public_addresses_pass() -> None:
    for address in ("93.184.216.34", "2606:4700::1111", "::ffff:93.184.216.34", "2002:5db8:d822::1"):
        assert address_refusal(ip_address(address)) is None, address


async def test_the_loopback_guard_of_these_tests_works() -> None:
    """Without the SSRF guard, a connection beyond loopback fails the test: so the tests above prove nothing
    was sent anywhere else."""

    def off_loopback(error: BaseException) -> bool:
        if isinstance(error, BaseExceptionGroup):
            return any(off_loopback(inner) for inner in error.exceptions)
        return isinstance(error, OffLoopback)

    async with httpx.AsyncClient(trust_env=False) as client:
        for url in ("http://10.0.0.1/", "http://example.com/"):
            with pytest.raises(BaseException) as info:  # anyio may wrap it in an exception group
                await client.get(url)
            assert off_loopback(info.value), url
