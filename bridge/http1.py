"""A small HTTP/1.1 client for the one request the hot path makes: POST a body, read the answer.

Every visitor message costs one POST to the platform. On the benchmark machine (8 in flight, one core) aiohttp
spends about 320-450 µs of CPU on each, asyncio streams and the few lines of HTTP/1.1 below about 120 µs
(`bench/clients.py` prints both). The platform path needs no more than this: redirects are never followed,
and there are no cookies, no compression, no proxies and no uploads to stream.

What it does: `http` and `https` (TLS with the system's trust store, host name checked), keep-alive connections
pooled per origin and dropped after `idle_timeout`, `Content-Length`, chunked and read-to-close answers, 1xx
answers skipped, an answer body cut at `max_body` (the connection is closed then), a total timeout and a
connect timeout. A request sent on a pooled connection that the server had closed meanwhile (no byte of an
answer came back) is sent once more on a new connection.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlsplit

from bridge._errors import describe_error

__all__ = ["Answer", "ConnectTimeout", "ConnectionFailed", "Http1Client", "HttpError", "InvalidUrl"]

_HEAD_LIMIT = 64 * 1024  # status line and headers of an answer
_NO_BODY = frozenset({204, 304})
_PREPARED_HEADS = 256  # request heads kept (see `Http1Client._heads`)


class HttpError(Exception):
    """The exchange failed: the answer was malformed or broke off."""


class InvalidUrl(HttpError):
    pass


class ConnectionFailed(HttpError):
    """No connection, or it was refused, reset or closed before a whole answer came."""


class ConnectTimeout(HttpError):
    """The connection (TCP and TLS) was not made within the connect timeout."""


@dataclass(frozen=True, slots=True)
class Answer:
    """`headers` has lower-case names (a repeated header keeps its last value). `body` holds at most `max_body`
    bytes; `body_error` says why the body could not be read after the status line came (then it is empty)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    body_error: str | None = None


class _Origin(NamedTuple):
    scheme: str
    host: str
    port: int


class _Connection(NamedTuple):
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float

    def usable(self, now: float, idle_timeout: float) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof() and now - self.idle_since < idle_timeout


class _Stale(Exception):
    """A pooled connection turned out closed before any byte of the answer: safe to send again."""


class Http1Client:
    def __init__(
        self,
        *,
        limit: int = 100,
        idle_timeout: float = 15.0,
        max_body: int = 64 * 1024,
        user_agent: str = "omnichannel-bridge",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if limit < 1 or idle_timeout <= 0 or max_body < 0:
            raise ValueError("limit must be at least 1, idle_timeout positive and max_body not negative")
        self._slots = asyncio.Semaphore(limit)
        self._idle_timeout = idle_timeout
        self._max_body = max_body
        self._user_agent = user_agent
        self._ssl = ssl_context
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._closed = False
        # (url, content type) -> origin and request head up to the Content-Length value: a bridge posts to a
        # handful of URLs, and parsing one costs more than the rest of building the request.
        self._heads: dict[tuple[str, str], tuple[_Origin, bytes]] = {}
        self._deadlines = _Deadlines()

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.writer.close()

    async def post(
        self, url: str, body: bytes, *, content_type: str, timeout: float, connect_timeout: float
    ) -> Answer:
        """POST `body` to `url`. Raises `InvalidUrl`, `ConnectTimeout`, `ConnectionFailed`, `HttpError`, or
        `TimeoutError` when the whole exchange took longer than `timeout`."""
        if self._closed:
            raise RuntimeError("the HTTP client is closed")
        origin, head = self._prepared(url, content_type)
        request = b"%b%d\r\n\r\n%b" % (head, len(body), body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if self._slots.locked():  # all connections busy: wait for one within the timeout
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
        else:
            await self._slots.acquire()  # free: returns at once
        try:
            connection = self._pooled(origin)
            if connection is not None:
                answer = await self._exchange_pooled(origin, connection, request, loop, deadline)
                if answer is not None:
                    return answer
            # A new connection, the rare case: an ordinary timeout covers connecting and the exchange.
            async with asyncio.timeout_at(deadline):
                connection = await self._connect(origin, connect_timeout)
                try:
                    return await self._exchange(origin, connection, request)
                except _Stale:
                    raise ConnectionFailed("the server closed the connection without an answer") from None
        finally:
            self._slots.release()

    def _prepared(self, url: str, content_type: str) -> tuple[_Origin, bytes]:
        key = (url, content_type)
        prepared = self._heads.get(key)
        if prepared is None:
            origin, target = _parse_url(url)
            prepared = origin, self._request_head(origin, target, content_type)
            if len(self._heads) >= _PREPARED_HEADS:
                self._heads.clear()
            self._heads[key] = prepared
        return prepared

    def _request_head(self, origin: _Origin, target: str, content_type: str) -> bytes:
        """The head, ending where the Content-Length value goes."""
        default_port = 443 if origin.scheme == "https" else 80
        host = f"[{origin.host}]" if ":" in origin.host else origin.host
        if origin.port != default_port:
            host = f"{host}:{origin.port}"
        head = (
            f"POST {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {self._user_agent}\r\n"
            f"Content-Type: {content_type}\r\nAccept: */*\r\nContent-Length: "
        )
        try:
            return head.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidUrl("the URL has characters that are not ASCII (percent-encode them)") from None

    # ------------------------------------------------------------------ connections

    def _pooled(self, origin: _Origin) -> _Connection | None:
        connections = self._idle.get(origin)
        now = time.monotonic()
        while connections:
            connection = connections.pop()
            if connection.usable(now, self._idle_timeout):
                return connection
            connection.writer.close()
        return None

    def _release(self, origin: _Origin, connection: _Connection) -> None:
        if self._closed:
            connection.writer.close()
            return
        self._idle.setdefault(origin, []).append(connection._replace(idle_since=time.monotonic()))

    async def _connect(self, origin: _Origin, connect_timeout: float) -> _Connection:
        tls: ssl.SSLContext | None = None
        if origin.scheme == "https":
            tls = self._ssl = self._ssl or ssl.create_default_context()
        try:
            async with asyncio.timeout(connect_timeout) as deadline:
                reader, writer = await asyncio.open_connection(
                    origin.host, origin.port, ssl=tls, server_hostname=origin.host if tls else None,
                    limit=_HEAD_LIMIT,
                )
        except TimeoutError:
            if deadline.expired():
                raise ConnectTimeout(f"no connection within {connect_timeout:g}s") from None
            raise
        except (OSError, ssl.SSLError) as exc:
            raise ConnectionFailed(describe_error(exc)) from None
        return _Connection(reader, writer, time.monotonic())

    # ------------------------------------------------------------------ one exchange

    async def _exchange_pooled(
        self, origin: _Origin, connection: _Connection, request: bytes, loop: asyncio.AbstractEventLoop,
        deadline: float,
    ) -> Answer | None:
        """`_exchange` on a pooled connection, cut (the connection aborted) when `deadline` passes, which raises
        `TimeoutError`; None when the server had closed the connection (the request may be sent again)."""
        watch = self._deadlines.watch(loop, deadline, connection.writer.transport)
        try:
            answer = await self._exchange(origin, connection, request)
        except (_Stale, HttpError) as exc:  # how the read that the abort ended fails
            if watch.expired:
                raise TimeoutError from None
            if isinstance(exc, _Stale):
                return None
            raise
        finally:
            self._deadlines.forget(watch)
        if watch.expired and answer.body_error is not None:  # the abort ended the body's read
            raise TimeoutError
        return answer

    async def _exchange(self, origin: _Origin, connection: _Connection, request: bytes) -> Answer:
        reader, writer = connection.reader, connection.writer
        keep = False
        try:
            try:
                writer.write(request)
                await writer.drain()
                status, version, headers = await _read_head(reader)
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise _Stale() from None
                raise ConnectionFailed("the answer broke off in its headers") from None
            except (ConnectionResetError, BrokenPipeError):
                raise _Stale() from None
            except OSError as exc:
                raise ConnectionFailed(describe_error(exc)) from None
            try:
                body, complete = await _read_body(reader, status, headers, self._max_body)
            except (asyncio.IncompleteReadError, ConnectionError, OSError, HttpError, ValueError) as exc:
                return Answer(status, headers, b"", body_error=describe_error(exc))
            keep = complete and version == b"HTTP/1.1" and headers.get("connection", "").lower() != "close"
            return Answer(status, headers, body)
        finally:
            if keep:
                self._release(origin, connection)
            else:
                writer.close()


class _Watch:
    """One exchange's deadline and the transport to abort when it passes."""

    __slots__ = ("deadline", "expired", "transport")

    def __init__(self, deadline: float, transport: asyncio.WriteTransport) -> None:
        self.deadline = deadline
        self.transport = transport
        self.expired = False


class _Deadlines:
    """The timeouts of exchanges on pooled connections, kept with one timer for all of them.

    `asyncio.timeout` per request (a timer, a task lookup and a cancellation scope each time) was a few per
    cent of the CPU a message costs. Here an exchange is put in a set, one timer is armed for the earliest
    deadline, and an exchange whose deadline passed has its connection aborted: its pending read fails and
    `_exchange_pooled` turns that into `TimeoutError`. Exchanges that end in time only leave the set."""

    # Timers may fire up to the clock's resolution early; a deadline this close counts as passed.
    _SLACK = 0.001

    def __init__(self) -> None:
        self._watches: set[_Watch] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def watch(self, loop: asyncio.AbstractEventLoop, deadline: float, transport: asyncio.WriteTransport) -> _Watch:
        watch = _Watch(deadline, transport)
        self._watches.add(watch)
        if deadline < self._timer_at:
            self._arm(loop, deadline)
        return watch

    def forget(self, watch: _Watch) -> None:
        self._watches.discard(watch)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = loop.call_at(when, self._expire, loop), when

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer, self._timer_at = None, math.inf
        now = loop.time() + self._SLACK
        earliest = math.inf
        for watch in list(self._watches):
            if watch.deadline <= now:
                self._watches.discard(watch)
                watch.expired = True
                watch.transport.abort()
            elif watch.deadline < earliest:
                earliest = watch.deadline
        if earliest < math.inf:
            self._arm(loop, earliest)


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, bytes, dict[str, str]]:
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise HttpError(f"the answer's headers are over {_HEAD_LIMIT} bytes") from None
        lines = head[:-4].split(b"\r\n")
        version, _, rest = lines[0].partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or not code.isdigit():
            raise HttpError(f"not an HTTP/1.x answer: {lines[0][:60]!r}")
        status = int(code)
        if 100 <= status < 200:  # informational (100 Continue, 103 Early Hints): the answer follows
            continue
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                headers[name.strip().decode("latin-1").lower()] = value.strip().decode("latin-1")
        return status, version, headers


async def _read_body(
    reader: asyncio.StreamReader, status: int, headers: Mapping[str, str], max_body: int
) -> tuple[bytes, bool]:
    """The body (at most `max_body` bytes) and whether the connection is left at the end of it."""
    if status in _NO_BODY:
        return b"", True
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await _read_chunked(reader, max_body)
    length = headers.get("content-length")
    if length is not None:
        size = int(length)
        if size < 0:
            raise HttpError(f"Content-Length {length!r}")
        if size <= max_body:
            return await reader.readexactly(size), True
        return await reader.readexactly(max_body), False
    # No length: the body ends when the server closes the connection.
    return await reader.read(max_body) if max_body else b"", False


async def _read_chunked(reader: asyncio.StreamReader, max_body: int) -> tuple[bytes, bool]:
    parts: list[bytes] = []
    kept = 0
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                pass
            return b"".join(parts), True
        if kept + size > max_body:
            parts.append(await reader.readexactly(max_body - kept))
            return b"".join(parts), False
        parts.append(await reader.readexactly(size))
        kept += size
        await reader.readexactly(2)


def _parse_url(url: str) -> tuple[_Origin, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidUrl(str(exc)) from None
    if parts.scheme not in ("http", "https"):
        raise InvalidUrl(f"{parts.scheme or 'no'} scheme: only http and https URLs can be posted to")
    if not parts.hostname:
        raise InvalidUrl("the URL has no host")
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    return _Origin(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)), target
