"""A minimal Redis connection for the queue's hot path: pipelines of script calls.

Under load, redis-py's pipeline machinery cost about a fifth of the bridge's CPU: every argument of every
command went through its encoder, every reply through `read_response` with a timeout context of its own. A
pipeline of script calls needs none of that: its arguments are str or bytes already and its replies come
back in order. Here a pipeline is packed by hiredis's C `pack_command`, written in one transport write and
parsed by a `hiredis.Reader` fed straight from `data_received`, so it costs one await however many commands
it carries.

It takes the same URL as redis-py and honours what matters for a connection (host or socket path, TLS
options, credentials, database, client name, timeouts). It speaks RESP2, as redis-py does by default, so
replies have the same shape. Everything that is not on the hot path stays on redis-py.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import AuthenticationError, NoScriptError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["Command", "RespConnection", "RespOptions", "reply_error"]

Command = Sequence[str | bytes]

# hiredis's stub types the argument as a 1-tuple; it takes a tuple of any length.
_pack: Callable[[tuple[str | bytes, ...]], bytes] = hiredis.pack_command  # type: ignore[assignment]
_NO_REPLY = object()  # what `Reader.gets` returns while a reply is incomplete (False could be a RESP3 reply)
_CLOSE_GRACE = 1.0  # seconds `close` waits for a TLS shutdown before it drops the connection
_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def reply_error(message: str) -> ResponseError:
    """An error reply as a value in the results: one failed command must not hide its neighbours' replies.
    NOSCRIPT gets its own class because the queue reloads its scripts and reruns exactly those calls."""
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    return ResponseError(message)


@dataclass(frozen=True, slots=True)
class RespOptions:
    """Where and how to connect, read once from the URL so that reconnecting parses nothing."""

    host: str = "localhost"
    port: int = 6379
    path: str | None = None  # a unix socket, instead of host and port
    db: int = 0
    username: str | None = None
    password: str | None = None
    client_name: str | None = None
    ssl_context: ssl.SSLContext | None = None
    connect_timeout: float | None = 5.0
    reply_timeout: float | None = 10.0
    health_check_interval: float = 30.0  # idle seconds after which a PING checks the connection first

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        connect_timeout: float | None = 5.0,
        reply_timeout: float | None = 10.0,
        health_check_interval: float = 30.0,
    ) -> RespOptions:
        """The values given here are defaults: as in redis-py's `from_url`, the URL's query string wins
        (`socket_connect_timeout`, `socket_timeout`, `health_check_interval`)."""
        options = cast(dict[str, Any], parse_url(url))
        connection_class = options.get("connection_class")
        return cls(
            host=options.get("host", "localhost"),
            port=options.get("port", 6379),
            path=options.get("path", "") if connection_class is UnixDomainSocketConnection else None,
            db=options.get("db", 0),
            username=options.get("username"),
            password=options.get("password"),
            client_name=options.get("client_name"),
            ssl_context=_ssl_context(options) if connection_class is SSLConnection else None,
            connect_timeout=options.get("socket_connect_timeout", connect_timeout),
            reply_timeout=options.get("socket_timeout", reply_timeout),
            health_check_interval=options.get("health_check_interval", health_check_interval),
        )

    @property
    def where(self) -> str:
        """The server, for error messages (never the credentials)."""
        if self.path is not None:
            return f"unix:{self.path}"
        return f"{self.host}:{self.port}{' (TLS)' if self.ssl_context is not None else ''}"


def _ssl_context(options: dict[str, Any]) -> ssl.SSLContext:
    """A context built as redis-py builds one for rediss://, so a URL that works there verifies the same here:
    certificates required and host names checked unless the URL says otherwise."""
    cert_reqs = options.get("ssl_cert_reqs", "required")
    if cert_reqs not in _CERT_REQS:
        raise ValueError(f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}, not {cert_reqs!r}")
    context = ssl.create_default_context()
    context.check_hostname = bool(options.get("ssl_check_hostname", True)) and cert_reqs != "none"
    context.verify_mode = _CERT_REQS[cert_reqs]
    for flag in options.get("ssl_include_verify_flags") or ():
        context.verify_flags |= flag
    for flag in options.get("ssl_exclude_verify_flags") or ():
        context.verify_flags &= ~flag
    if options.get("ssl_certfile") or options.get("ssl_keyfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"), options.get("ssl_password"))
    if options.get("ssl_ca_certs") or options.get("ssl_ca_path") or options.get("ssl_ca_data"):
        context.load_verify_locations(
            options.get("ssl_ca_certs"), options.get("ssl_ca_path"), options.get("ssl_ca_data")
        )
    if options.get("ssl_min_version") is not None:
        context.minimum_version = ssl.TLSVersion(options["ssl_min_version"])
    if options.get("ssl_ciphers"):
        context.set_ciphers(options["ssl_ciphers"])
    return context


@dataclass(slots=True)
class _Pipeline:
    """One pipeline's place in the reply stream: how many replies it owns, and who waits for them."""

    future: asyncio.Future[list[Any]]
    expected: int
    replies: list[Any] = field(default_factory=list)


class _ReplyProtocol(asyncio.Protocol):
    """Parses replies as the bytes arrive and hands each pipeline its replies in the order they were sent.

    Redis answers a connection's commands in order, so pipelines written one after the other own consecutive
    runs of the reply stream: matching them first in, first out lets concurrent pipelines share the connection
    without a lock held across round trips. A pipeline whose caller stopped waiting still takes its replies
    off the stream (they are dropped), so the ones after it stay matched.
    """

    def __init__(self, where: str) -> None:
        self._where = where
        self._reader = hiredis.Reader(replyError=reply_error, notEnoughData=_NO_REPLY)
        self._waiting: deque[_Pipeline] = deque()
        self._transport: asyncio.Transport | None = None
        self._failed = False
        self._loop = asyncio.get_running_loop()
        self.last_reply_at = self._loop.time()
        self.lost: asyncio.Future[None] = self._loop.create_future()

    @property
    def usable(self) -> bool:
        return self._transport is not None and not self._failed and not self._transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def send(self, payload: bytes, expected: int) -> asyncio.Future[list[Any]]:
        # No flow control: the caller waits for every reply before it sends more, which bounds the buffer.
        assert self._transport is not None
        future: asyncio.Future[list[Any]] = self._loop.create_future()
        self._waiting.append(_Pipeline(future, expected))
        self._transport.write(payload)
        return future

    def data_received(self, data: bytes) -> None:
        if self._failed:
            return
        self.last_reply_at = self._loop.time()
        reader = self._reader
        reader.feed(data)
        try:
            reply = reader.gets()
            while reply is not _NO_REPLY:
                if not self._waiting:
                    raise hiredis.ProtocolError("a reply to no command")
                pipeline = self._waiting[0]
                pipeline.replies.append(reply)
                if len(pipeline.replies) == pipeline.expected:
                    self._waiting.popleft()
                    if not pipeline.future.done():
                        pipeline.future.set_result(pipeline.replies)
                reply = reader.gets()
        except hiredis.ProtocolError as exc:
            self.fail(RedisConnectionError(f"protocol error from Redis at {self._where} ({exc}); connection closed"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        cause = f": {exc}" if exc else ""
        self.fail(RedisConnectionError(f"the connection to Redis at {self._where} was closed{cause}"))
        if not self.lost.done():
            self.lost.set_result(None)

    def fail(self, error: RedisError, *, abort: bool = True) -> None:
        """Fail every pipeline in flight and drop the connection: after a timeout or a parse error nobody can
        tell which reply belongs to whom any more. Nothing is resent, as a script may or may not have run."""
        self._failed = True
        waiting, self._waiting = self._waiting, deque()
        for pipeline in waiting:
            if not pipeline.future.done():
                pipeline.future.set_exception(type(error)(*error.args))
        if self._transport is None:
            return
        if abort:
            self._transport.abort()
        else:
            self._transport.close()


class RespConnection:
    """One connection for pipelines, opened on the first `execute` and again after it was lost.

    Error replies are returned in place (see `reply_error`); a lost connection, a reply timeout or a protocol
    error fail the pipelines in flight with a `ConnectionError` or `TimeoutError` of redis-py.
    """

    def __init__(self, target: RespOptions | str) -> None:
        """`target`: options, or a URL to read them from with the default timeouts."""
        self.options = RespOptions.from_url(target) if isinstance(target, str) else target
        self._protocol: _ReplyProtocol | None = None
        self._connecting = asyncio.Lock()

    def __repr__(self) -> str:
        return f"RespConnection({self.options.where})"

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Send `commands` in one write and return one reply per command, in order."""
        if not commands:
            return []
        protocol = self._protocol
        if protocol is None or not protocol.usable or self._idle_too_long(protocol):
            protocol = await self._connect()
        return await self._round_trip(protocol, commands)

    def _idle_too_long(self, protocol: _ReplyProtocol) -> bool:
        interval = self.options.health_check_interval
        return bool(interval) and asyncio.get_running_loop().time() - protocol.last_reply_at > interval

    async def close(self) -> None:
        """Close the connection, failing any pipeline still in flight; a later `execute` opens a new one."""
        protocol, self._protocol = self._protocol, None
        if protocol is None:
            return
        protocol.fail(RedisConnectionError(f"{self!r} was closed by its owner"), abort=False)
        try:
            async with asyncio.timeout(_CLOSE_GRACE):
                await asyncio.shield(protocol.lost)
        except TimeoutError:
            protocol.fail(RedisConnectionError(f"{self!r} was closed by its owner"))

    async def _round_trip(self, protocol: _ReplyProtocol, commands: Sequence[Command]) -> list[Any]:
        payload = b"".join([_pack(tuple(command)) for command in commands])
        future = protocol.send(payload, len(commands))
        timeout = self.options.reply_timeout
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            error = RedisTimeoutError(
                f"no reply from Redis at {self.options.where} within {timeout:g} s; the connection is closed "
                "(the commands may or may not have run)"
            )
            protocol.fail(error)
            raise error from None

    async def _connect(self) -> _ReplyProtocol:
        # A lock, not a shared task: concurrent first pipelines wait for one connection instead of each
        # opening their own; the hot path never takes it once connected.
        async with self._connecting:
            current = self._protocol
            if current is not None and current.usable:
                if await self._healthy(current):
                    return current
                current.fail(RedisConnectionError(f"the connection to {self.options.where} failed a health check"))
            options = self.options
            loop = asyncio.get_running_loop()
            protocol = _ReplyProtocol(options.where)
            try:
                async with asyncio.timeout(options.connect_timeout):
                    if options.path is not None:
                        await loop.create_unix_connection(lambda: protocol, options.path)
                    else:
                        await loop.create_connection(
                            lambda: protocol, options.host, options.port, ssl=options.ssl_context
                        )
            except TimeoutError:
                raise RedisTimeoutError(
                    f"connecting to Redis at {options.where} took more than {options.connect_timeout:g} s"
                ) from None
            except OSError as exc:
                raise RedisConnectionError(f"cannot connect to Redis at {options.where}: {exc}") from exc
            try:
                await self._handshake(protocol)
            except BaseException:
                protocol.fail(RedisConnectionError(f"the set-up of the connection to {options.where} failed"))
                raise
            self._protocol = protocol
            return protocol

    async def _healthy(self, protocol: _ReplyProtocol) -> bool:
        """After an idle spell, a PING first (as redis-py's health check): a connection a firewall dropped
        silently fails the PING, not the pipeline, which then goes over a new connection."""
        if not self._idle_too_long(protocol):
            return True
        try:
            return await self._round_trip(protocol, [("PING",)]) == [b"PONG"]
        except RedisError:
            return False

    async def _handshake(self, protocol: _ReplyProtocol) -> None:
        """AUTH, CLIENT SETNAME and SELECT in one round trip, as the URL asks; refused ones raise."""
        options = self.options
        steps: list[tuple[str, ...]] = []
        if options.password is not None:
            user = (options.username,) if options.username else ()
            steps.append(("AUTH", *user, options.password))
        if options.client_name:
            steps.append(("CLIENT", "SETNAME", options.client_name))
        if options.db:
            steps.append(("SELECT", str(options.db)))
        if not steps:
            return
        for step, reply in zip(steps, await self._round_trip(protocol, steps), strict=True):
            if not isinstance(reply, ResponseError):
                continue
            if step[0] == "AUTH":
                user_text = f" for user {options.username!r}" if options.username else ""
                raise AuthenticationError(f"Redis at {options.where} refused the password{user_text}: {reply}")
            raise RedisConnectionError(f"Redis at {options.where} refused {' '.join(step[:2])}: {reply}")
