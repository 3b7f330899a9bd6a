"""`bridge.http1` against raw servers on loopback that answer byte for byte what each test scripts."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bridge.http1 import ConnectionFailed, Http1Client, HttpError, InvalidUrl

# Reads one request (head and Content-Length body) and returns it; None when the client went away.
Request = bytes
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, list[Request]], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
    )
    return head + await reader.readexactly(length)


@contextlib.asynccontextmanager
async def raw_server(
    handler: Handler, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, list[Request], list[int]]]:
    """Yields (base URL, requests seen, client ports of the connections made)."""
    requests: list[Request] = []
    ports: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ports.append(writer.get_extra_info("peername")[1])
        try:
            await handler(reader, writer, requests)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}", requests, ports
    finally:
        server.close()


def answering(*answers: bytes, stall: bytes | None = None) -> Handler:
    """A handler that answers each request on a connection with the next of `answers`, then keeps it open.
    With `stall`, the request after them gets only that (nothing, or e.g. a head without its whole body)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, requests: list[Request]) -> None:
        for answer in answers:
            request = await read_request(reader)
            if request is None:
                return
            requests.append(request)
            writer.write(answer)
            await writer.drain()
        if stall is not None and await read_request(reader) is not None:
            writer.write(stall)
            await writer.drain()
        await reader.read()  # hold the connection until the client closes it

    return handler


@pytest.fixture
async def client() -> AsyncIterator[Http1Client]:
    http = Http1Client(max_body=1000, user_agent="test-agent")
    yield http
    await http.close()


async def post(http: Http1Client, url: str, body: bytes = b'{"a":1}') -> object:
    return await http.post(url, body, content_type="application/json", timeout=5.0, connect_timeout=2.0)


async def test_request_bytes_and_a_kept_alive_connection(client: Http1Client) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Thing: A\r\n\r\nok"
    async with raw_server(answering(ok, ok, ok)) as (url, requests, ports):
        first = await client.post(f"{url}/hook?x=1", b'{"a":1}', content_type="application/json", timeout=5,
                                  connect_timeout=2)
        second = await client.post(f"{url}/hook?x=1", b"{}", content_type="application/json", timeout=5,
                                   connect_timeout=2)
        await client.post(f"{url}/other", b"plain", content_type="text/plain", timeout=5, connect_timeout=2)
    assert (first.status, first.body, first.headers["x-thing"]) == (200, b"ok", "A")
    assert second.body == b"ok"
    head, _, body = requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /hook?x=1 HTTP/1.1"
    assert b"User-Agent: test-agent" in lines and b"Content-Type: application/json" in lines
    assert b"Content-Length: 7" in lines and body == b'{"a":1}'
    # The head is prepared once per URL and content type; the length is each request's own.
    assert requests[1] == requests[0].replace(b"Content-Length: 7", b"Content-Length: 2").replace(b'{"a":1}', b"{}")
    head, _, body = requests[2].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /other HTTP/1.1"
    assert b"Content-Type: text/plain" in lines and b"Content-Length: 5" in lines and body == b"plain"
    assert len(ports) == 1, "the later requests must reuse the kept-alive connection"


async def test_chunked_and_informational_answers(client: Http1Client) -> None:
    chunked = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n" \
              b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    async with raw_server(answering(chunked, ok)) as (url, _, ports):
        answer = await post(client, url)
        assert await post(client, url) is not None
    assert (answer.status, answer.body) == (201, b"abcde")  # type: ignore[attr-defined]
    assert len(ports) == 1


async def test_an_answer_read_to_the_close_of_the_connection(client: Http1Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, requests: list[Request]) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 7\r\n\r\nback soon")
        await writer.drain()

    async with raw_server(handler) as (url, _, ports):
        answer = await post(client, url)
        await post(client, url)
    assert (answer.status, answer.body, answer.headers["retry-after"]) == (503, b"back soon", "7")  # type: ignore[attr-defined]
    assert len(ports) == 2, "a connection whose answer ended with its close is not reused"


async def test_a_body_over_the_limit_is_cut_and_its_connection_dropped(client: Http1Client) -> None:
    big = b"HTTP/1.1 500 Oops\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000
    async with raw_server(answering(big, big)) as (url, _, ports):
        answer = await post(client, url)
        await post(client, url)
    assert answer.status == 500 and answer.body == b"x" * 1000  # type: ignore[attr-defined]
    assert len(ports) == 2


async def test_a_pooled_connection_the_server_closed_is_replaced(client: Http1Client) -> None:
    received: list[Request] = []

    async def answers_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           requests: list[Request]) -> None:
        # Keep-alive is announced, but after one answer the server drops the connection as soon as the next
        # request arrives, without a byte of answer (as a server whose idle timeout just ran out does).
        first = await read_request(reader)
        if first is None:
            return
        received.append(first)
        requests.append(first)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        second = await read_request(reader)
        if second is not None:
            received.append(second)

    async with raw_server(answers_once) as (url, answered, ports):
        for _ in range(3):
            assert (await post(client, url)).status == 200  # type: ignore[attr-defined]
    assert len(answered) == 3, "every request was answered, on a new connection where the pooled one was dead"
    assert len(received) == 5 and len(ports) == 3


async def test_a_lost_body_after_the_status_line_is_reported(client: Http1Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, requests: list[Request]) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()

    async with raw_server(handler) as (url, _, _):
        answer = await post(client, url)
    assert answer.status == 200 and answer.body == b""  # type: ignore[attr-defined]
    assert "IncompleteReadError" in answer.body_error  # type: ignore[attr-defined]


async def test_no_answer_at_all_is_a_connection_failure(client: Http1Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, requests: list[Request]) -> None:
        await read_request(reader)

    async with raw_server(handler) as (url, _, _):
        with pytest.raises(ConnectionFailed, match="without an answer"):
            await post(client, url)


@pytest.mark.parametrize(
    "answer",
    [b"SMTP ready\r\n\r\n", b"HTTP/1.1 20 OK\r\n\r\n", b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * 70_000 + b"\r\n\r\n"],
)
async def test_malformed_answers_are_http_errors(client: Http1Client, answer: bytes) -> None:
    async with raw_server(answering(answer)) as (url, _, _):
        with pytest.raises(HttpError):
            await post(client, url)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "/relative", "http:///nohost", "http://127.0.0.1:99999/x",
                                 "http://127.0.0.1/päth"])
async def test_unusable_urls(client: Http1Client, url: str) -> None:
    with pytest.raises(InvalidUrl):
        await post(client, url)


async def test_a_slow_answer_is_a_timeout(client: Http1Client) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, requests: list[Request]) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async with raw_server(handler) as (url, _, _):
        with pytest.raises(TimeoutError):
            await client.post(url, b"{}", content_type="application/json", timeout=0.2, connect_timeout=1)


_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.mark.parametrize("stall", [b"", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart"],
                         ids=["no answer", "body stalls"])
async def test_a_slow_answer_on_a_kept_alive_connection_is_a_timeout(client: Http1Client, stall: bytes) -> None:
    async with raw_server(answering(_OK, stall=stall)) as (url, _, ports):
        assert (await post(client, url)).body == b"ok"  # type: ignore[attr-defined]
        with pytest.raises(TimeoutError):  # not a stale connection sent again, nor a lost body
            await client.post(url, b"{}", content_type="application/json", timeout=0.2, connect_timeout=1)
        assert len(ports) == 1, "the timed-out request was not sent again on a new connection"
        assert (await post(client, url)).body == b"ok", "a new connection replaces the one cut"  # type: ignore[attr-defined]
        assert len(ports) == 2


async def test_each_exchange_keeps_its_own_deadline() -> None:
    """A shorter timeout that starts after a longer one still ends first, and the longer one still ends."""
    http = Http1Client()
    try:
        async with raw_server(answering(_OK, stall=b"")) as (url, _, ports):
            await asyncio.gather(post(http, url), post(http, url))  # two kept-alive connections
            assert len(ports) == 2
            ended: list[str] = []

            async def slow(name: str, timeout: float) -> None:
                with pytest.raises(TimeoutError):
                    await http.post(url, b"{}", content_type="application/json", timeout=timeout,
                                    connect_timeout=1)
                ended.append(name)

            loop = asyncio.get_running_loop()
            longer = asyncio.create_task(slow("longer", 2.0))
            await asyncio.sleep(0.05)
            started = loop.time()
            await slow("shorter", 0.2)
            assert loop.time() - started < 1.0, "the shorter timeout waited for the longer one's deadline"
            assert ended == ["shorter"] and not longer.done()
            await longer
            assert ended == ["shorter", "longer"] and len(ports) == 2
    finally:
        await http.close()


async def test_waiting_for_a_free_connection_counts_toward_the_timeout() -> None:
    http = Http1Client(limit=1)
    try:
        async with raw_server(answering(_OK, stall=b"")) as (url, _, ports):
            await post(http, url)
            holder = asyncio.create_task(
                http.post(url, b"{}", content_type="application/json", timeout=1.5, connect_timeout=1)
            )
            await asyncio.sleep(0.05)
            with pytest.raises(TimeoutError):  # the only slot is taken by the stalled request
                await http.post(url, b"{}", content_type="application/json", timeout=0.2, connect_timeout=1)
            assert not holder.done()
            with pytest.raises(TimeoutError):
                await holder
            assert len(ports) == 1
    finally:
        await http.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


async def test_https_checks_the_certificate(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    trusting = ssl.create_default_context(cafile=str(cert))
    async with raw_server(answering(ok), tls=server_tls) as (url, _, _):
        trusted = Http1Client(ssl_context=trusting)
        untrusted = Http1Client()  # the system's trust store does not know this self-signed certificate
        try:
            assert (await post(trusted, url)).body == b"ok"  # type: ignore[attr-defined]
            with pytest.raises(ConnectionFailed, match="CERTIFICATE_VERIFY_FAILED"):
                await post(untrusted, url)
        finally:
            await trusted.close()
            await untrusted.close()
