"""The queue's own pipeline client against real servers: the shared test Redis, throw-away `redis-server`
processes for what the shared one must not be put through (passwords, kills, TLS), and raw loopback servers
that never answer or answer nonsense."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, NoScriptError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bridge.queue import QueueError
from bridge.queue.redis import RedisQueue
from bridge.queue.resp import RespConnection, RespOptions
from bridge.testing.server import free_port
from tests.faults.harness import eventually
from tests.queue.helpers import inbound

PASSWORD = "s3cret-for-tests"
_REDIS_SERVER = ("redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
_SELF_SIGNED = (
    *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"),
    *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),  # the name only, not 127.0.0.1
)


class ThrowawayRedis:
    """A `redis-server` process of one test, keeping nothing on disk; restartable on the same port."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, listening_on: Callable[[], bool] | None = None) -> None:
        log = self.workdir / "redis.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [*_REDIS_SERVER, "--port", str(self.port), "--dir", str(self.workdir), *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        ready = listening_on or (lambda: _accepts(("127.0.0.1", self.port)))
        deadline = time.monotonic() + 10
        while not ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server {' '.join(self.args)} did not start: {log.read_text()[-2000:]}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def _accepts(address: tuple[str, int] | str) -> bool:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(address)
        except OSError:
            return False
        return True


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ThrowawayRedis]]:
    """Starts throw-away servers (with extra `redis-server` arguments) and kills them after the test."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not on PATH and CI=true: these tests must run")
        pytest.skip("redis-server is not on PATH")
    started: list[ThrowawayRedis] = []

    def start(*args: str, listening_on: Callable[[], bool] | None = None) -> ThrowawayRedis:
        server = ThrowawayRedis(tmp_path_factory.mktemp("redis"), *args)
        started.append(server)
        server.start(listening_on)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
async def conn(redis_url: str) -> AsyncIterator[RespConnection]:
    connection = RespConnection(redis_url)
    yield connection
    await connection.close()


@pytest.fixture
async def admin(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


# ---------------------------------------------------------------------------------------------- replies


async def test_an_error_reply_stays_in_place_and_the_others_are_untouched(
    conn: RespConnection, redis_cleanup: str
) -> None:
    key = f"{redis_cleanup}:k"
    sha = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"  # SHA1 of "return 1"
    replies = await conn.execute(
        [
            ("SET", key, "abc"),
            ("INCR", key),  # not an integer: an error reply
            ("GET", key),
            ("SET", f"{key}:n", "41"),
            ("INCR", f"{key}:n"),
            ("EVAL", "return {KEYS[1], ARGV[1], 7}", "1", key, "arg"),
            ("SCRIPT", "LOAD", "return 1"),
            ("EVALSHA", sha, "0"),
            ("GET", f"{key}:missing"),
        ]
    )
    assert len(replies) == 9
    assert replies[0] == b"OK"
    assert isinstance(replies[1], ResponseError) and not isinstance(replies[1], NoScriptError)
    assert "not an integer" in str(replies[1])
    assert replies[2:] == [b"abc", b"OK", 42, [key.encode(), b"arg", 7], sha.encode(), 1, None]


async def test_noscript_is_a_noscript_error(conn: RespConnection) -> None:
    replies = await conn.execute([("PING",), ("EVALSHA", "0" * 40, "0"), ("ECHO", "after")])
    assert replies[0] == b"PONG"
    assert isinstance(replies[1], NoScriptError) and str(replies[1]).startswith("NOSCRIPT")
    assert replies[2] == b"after"


async def test_replies_are_raw_bytes(conn: RespConnection, redis_cleanup: str) -> None:
    key = f"{redis_cleanup}:raw"
    body = bytes(range(256)) + "é".encode()
    replies = await conn.execute(
        [
            ("HSET", key, "b", body, "t", "1.5"),
            ("HGETALL", key),
            ("EVAL", "return redis.call('HGET', KEYS[1], 'b')", "1", key),
        ]
    )
    assert replies[0] == 2
    assert dict(zip(replies[1][::2], replies[1][1::2], strict=True)) == {b"b": body, b"t": b"1.5"}
    assert replies[2] == body


async def test_concurrent_pipelines_share_one_connection_and_get_their_own_replies(
    conn: RespConnection, redis_cleanup: str
) -> None:
    async def one(n: int) -> None:
        commands: list[tuple[str, ...]] = [("SET", f"{redis_cleanup}:{n}", f"v{n}"), ("CLIENT", "ID")]
        commands += [("ECHO", f"{n}-{i}") for i in range(n % 7)]
        commands.append(("GET", f"{redis_cleanup}:{n}"))
        replies = await conn.execute(commands)
        assert replies[0] == b"OK"
        ids.add(replies[1])
        assert replies[2:-1] == [f"{n}-{i}".encode() for i in range(n % 7)]
        assert replies[-1] == f"v{n}".encode()

    ids: set[int] = set()
    await asyncio.gather(*(one(n) for n in range(200)))
    assert len(ids) == 1


async def test_a_pipeline_whose_caller_gave_up_does_not_shift_the_replies(
    conn: RespConnection, redis_cleanup: str
) -> None:
    blocked = asyncio.create_task(conn.execute([("BLPOP", f"{redis_cleanup}:empty", "0.3")]))
    await asyncio.sleep(0.05)
    blocked.cancel()
    # Sent after the BLPOP on the same connection: answered once it times out, after its nil reply.
    assert await conn.execute([("ECHO", "mine")]) == [b"mine"]
    assert blocked.cancelled()


async def test_select_puts_keys_in_the_url_database(
    conn: RespConnection, redis_url: str, redis_cleanup: str, admin: aioredis.Redis
) -> None:
    db = RespOptions.from_url(redis_url).db
    if db == 0:
        pytest.skip("the test Redis URL names database 0")
    key = f"{redis_cleanup}:selected"
    replies = await conn.execute([("SET", key, "here"), ("CLIENT", "INFO")])
    assert f" db={db} ".encode() in replies[1]
    assert await admin.get(key) == b"here"
    parts = urlsplit(redis_url)
    db0 = aioredis.Redis.from_url(urlunsplit((parts.scheme, parts.netloc, "/0", "", "")))
    try:
        assert await db0.exists(key) == 0
    finally:
        await db0.aclose()


# ---------------------------------------------------------------------------------------------- set-up


def test_url_options_win_over_the_default_timeouts(tmp_path: Path) -> None:
    defaults = RespOptions.from_url("redis://:pw@cache.internal:6380/3")
    assert (defaults.host, defaults.port, defaults.db, defaults.password) == ("cache.internal", 6380, 3, "pw")
    assert (defaults.connect_timeout, defaults.reply_timeout, defaults.health_check_interval) == (5.0, 10.0, 30.0)
    query = "socket_timeout=0.5&socket_connect_timeout=1.5&health_check_interval=7&client_name=q"
    given = RespOptions.from_url(f"redis://h/0?{query}", connect_timeout=2, reply_timeout=3, health_check_interval=4)
    assert (given.connect_timeout, given.reply_timeout, given.health_check_interval) == (1.5, 0.5, 7)
    assert given.client_name == "q"
    assert RespOptions.from_url("redis://h/0", reply_timeout=3).reply_timeout == 3
    socket_path = RespOptions.from_url(f"unix://{tmp_path}/r.sock?db=2")
    assert (socket_path.path, socket_path.db) == (f"{tmp_path}/r.sock", 2)
    assert "pw" not in repr(RespConnection(defaults))
    with pytest.raises(ValueError, match="ssl_cert_reqs"):
        RespOptions.from_url("rediss://h/0?ssl_cert_reqs=maybe")


async def test_auth_select_and_client_name_on_a_password_protected_server(
    redis_server: Callable[..., ThrowawayRedis],
) -> None:
    server = redis_server("--requirepass", PASSWORD)
    for url in (
        f"redis://:{PASSWORD}@127.0.0.1:{server.port}/3?client_name=queue-hot-path",
        f"redis://default:{PASSWORD}@127.0.0.1:{server.port}/3?client_name=queue-hot-path",
    ):
        connection = RespConnection(url)
        try:
            replies = await connection.execute([("SET", "k", "v"), ("CLIENT", "INFO")])
            assert replies[0] == b"OK"
            assert b" db=3 " in replies[1] and b" name=queue-hot-path " in replies[1]
        finally:
            await connection.close()
    check = aioredis.Redis(port=server.port, password=PASSWORD, db=3)
    try:
        assert await check.get("k") == b"v"
    finally:
        await check.aclose()


async def test_a_wrong_password_is_refused_clearly(redis_server: Callable[..., ThrowawayRedis]) -> None:
    server = redis_server("--requirepass", PASSWORD)
    connection = RespConnection(f"redis://:not-the-password@127.0.0.1:{server.port}/0")
    with pytest.raises(AuthenticationError, match=f"127.0.0.1:{server.port} refused the password") as refused:
        await connection.execute([("PING",)])
    assert "not-the-password" not in str(refused.value)
    # Refused again on the next call (it tries to connect again), never half-connected.
    with pytest.raises(AuthenticationError):
        await connection.execute([("PING",)])
    await connection.close()
    # Without a password the server answers each command with NOAUTH, in place.
    anonymous = RespConnection(f"redis://127.0.0.1:{server.port}/0")
    try:
        [reply] = await anonymous.execute([("PING",)])
        assert isinstance(reply, ResponseError) and str(reply).startswith("NOAUTH")
    finally:
        await anonymous.close()


async def test_a_unix_socket_url(
    redis_server: Callable[..., ThrowawayRedis], tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = str(tmp_path_factory.mktemp("sock") / "r.sock")
    redis_server("--unixsocket", path, listening_on=lambda: _accepts(path))
    connection = RespConnection(f"unix://{path}?db=1")
    try:
        assert (await connection.execute([("SET", "k", "v"), ("CLIENT", "INFO")]))[1].count(b" db=1 ") == 1
    finally:
        await connection.close()


async def test_close_is_safe_twice_and_before_any_connection(conn: RespConnection) -> None:
    await conn.close()
    await conn.close()
    assert await conn.execute([("PING",)]) == [b"PONG"]
    await conn.close()
    await conn.close()
    assert await conn.execute([]) == []
    assert await conn.execute([("PING",)]) == [b"PONG"]  # a later execute opens a new connection


async def test_close_ends_the_connection_and_fails_what_is_in_flight(
    conn: RespConnection, admin: aioredis.Redis, redis_cleanup: str
) -> None:
    [client_id] = await conn.execute([("CLIENT", "ID")])
    in_flight = asyncio.create_task(conn.execute([("BLPOP", f"{redis_cleanup}:empty", "5")]))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(conn.close(), 2)
    with pytest.raises(RedisConnectionError, match="closed by its owner"):
        await in_flight

    async def gone() -> bool:
        return all(int(client["id"]) != client_id for client in await admin.client_list())

    await eventually(gone, "the server to stop listing the closed connection", timeout=1.0)


# ---------------------------------------------------------------------------------------------- failures


async def test_a_connection_killed_mid_pipeline_fails_it_and_the_next_call_reconnects(
    conn: RespConnection, admin: aioredis.Redis, redis_cleanup: str
) -> None:
    [first_id] = await conn.execute([("CLIENT", "ID")])
    in_flight = asyncio.create_task(conn.execute([("BLPOP", f"{redis_cleanup}:empty", "5")]))
    await asyncio.sleep(0.05)
    assert await admin.client_kill_filter(_id=first_id) == 1
    with pytest.raises(RedisConnectionError, match="was closed"):
        await asyncio.wait_for(in_flight, 2)
    [second_id] = await conn.execute([("CLIENT", "ID")])
    assert second_id != first_id


async def test_an_idle_connection_killed_by_the_server_is_replaced(conn: RespConnection, admin: aioredis.Redis) -> None:
    [first_id] = await conn.execute([("CLIENT", "ID")])
    assert await admin.client_kill_filter(_id=first_id) == 1
    await asyncio.sleep(0.1)  # the close reaches the client before it sends again: nothing in flight is lost
    [second_id] = await conn.execute([("CLIENT", "ID")])
    assert second_id != first_id


@contextlib.asynccontextmanager
async def _relay(port: int) -> AsyncIterator[tuple[int, Callable[[], None]]]:
    """A loopback relay to 127.0.0.1:`port`; yields its own port and `freeze`, which makes the connections
    relayed so far go silent without closing them, like a firewall that forgot them."""
    connections: list[list[bool]] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, alive: list[bool]) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if alive[0]:
                    writer.write(data)
        writer.close()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        alive = [True]
        connections.append(alive)
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(pipe(client_reader, upstream_writer, alive), pipe(upstream_reader, client_writer, alive))

    def freeze() -> None:
        for alive in connections:
            alive[0] = False

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], freeze
    finally:
        server.close()


async def test_an_idle_connection_is_pinged_first_and_replaced_when_it_went_silent(
    redis_server: Callable[..., ThrowawayRedis],
) -> None:
    server = redis_server()
    admin = aioredis.Redis(port=server.port)

    async def pings() -> int:
        stats = await admin.info("commandstats")
        return int(stats.get("cmdstat_ping", {}).get("calls", 0))

    async with _relay(server.port) as (relay_port, freeze):
        url = f"redis://127.0.0.1:{relay_port}/0?socket_timeout=0.3"
        connection = RespConnection(RespOptions.from_url(url, health_check_interval=0.2))
        try:
            [first_id] = await connection.execute([("CLIENT", "ID")])
            assert await connection.execute([("SET", "k", "v")]) == [b"OK"]
            assert await pings() == 0  # a busy connection is not checked
            await asyncio.sleep(0.3)
            assert await connection.execute([("CLIENT", "ID"), ("GET", "k")]) == [first_id, b"v"]
            assert await pings() == 1  # an idle one is, first
            freeze()
            await asyncio.sleep(0.3)
            # The PING goes unanswered, not the pipeline: it is sent over a new connection.
            [second_id, value] = await asyncio.wait_for(connection.execute([("CLIENT", "ID"), ("GET", "k")]), 2)
            assert value == b"v" and second_id != first_id
        finally:
            await connection.close()
            await admin.aclose()


async def test_a_server_that_went_away_fails_the_call_and_a_restarted_one_is_used_again(
    redis_server: Callable[..., ThrowawayRedis],
) -> None:
    server = redis_server()
    connection = RespConnection(f"redis://127.0.0.1:{server.port}/0")
    try:
        assert await connection.execute([("SET", "k", "v")]) == [b"OK"]
        server.stop()
        with pytest.raises(RedisConnectionError, match=f"127.0.0.1:{server.port}"):
            await connection.execute([("GET", "k")])
        server.start()
        assert await connection.execute([("GET", "k")]) == [None]  # a new server, empty
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def _raw_server(answer: bytes | None) -> AsyncIterator[tuple[int, list[asyncio.Event]]]:
    """A loopback server that never answers (`answer` None) or answers every read with `answer`; yields its
    port and one event per accepted connection, set when the client closed it."""
    closed: list[asyncio.Event] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        event = asyncio.Event()
        closed.append(event)
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if answer is not None and data:
                    writer.write(answer)
        event.set()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], closed
    finally:
        server.close()


async def test_a_silent_server_times_out_quickly_and_the_connection_is_replaced() -> None:
    async with _raw_server(None) as (port, closed):
        connection = RespConnection(f"redis://127.0.0.1:{port}/0?socket_timeout=0.2")
        started = time.monotonic()
        with pytest.raises(RedisTimeoutError, match=r"no reply from Redis at 127\.0\.0\.1:\d+ within 0\.2 s"):
            await asyncio.wait_for(connection.execute([("PING",), ("PING",)]), 2)  # bounded, should it hang
        assert 0.15 < time.monotonic() - started < 1.0
        await asyncio.wait_for(closed[0].wait(), 1)  # the stuck connection was dropped
        with pytest.raises(RedisTimeoutError):
            await asyncio.wait_for(connection.execute([("PING",)]), 2)
        assert len(closed) == 2
        await connection.close()


async def test_a_garbled_reply_fails_the_pipeline_and_the_connection_is_replaced() -> None:
    async with _raw_server(b"?this is not RESP\r\n") as (port, closed):
        connection = RespConnection(f"redis://127.0.0.1:{port}/0?socket_timeout=2")
        with pytest.raises(RedisConnectionError, match="protocol error"):
            await connection.execute([("PING",)])
        await asyncio.wait_for(closed[0].wait(), 1)
        with pytest.raises(RedisConnectionError, match="protocol error"):
            await connection.execute([("PING",)])
        assert len(closed) == 2
        await connection.close()


async def test_an_unreachable_server_is_a_connection_error() -> None:
    connection = RespConnection(f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0")
    with pytest.raises(RedisConnectionError, match="cannot connect to Redis") as refused:
        await connection.execute([("PING",)])
    assert PASSWORD not in str(refused.value)


# ---------------------------------------------------------------------------------------------- the queue


async def test_the_queue_authenticates_reloads_flushed_scripts_and_replaces_a_killed_connection(
    redis_server: Callable[..., ThrowawayRedis],
) -> None:
    server = redis_server("--requirepass", PASSWORD)
    url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/2"
    queue = RedisQueue(url, prefix="q")
    admin = aioredis.Redis.from_url(url)
    await queue.open()
    try:
        assert await queue.put([inbound("m1")]) == 1
        await admin.script_flush()
        assert await queue.put([inbound("m2")]) == 1  # NOSCRIPT: reloaded and run again
        hot_path = [client["id"] for client in await admin.client_list() if client["cmd"] == "evalsha"]
        assert len(hot_path) == 1 and await admin.client_kill_filter(_id=hot_path[0]) == 1
        await asyncio.sleep(0.1)
        claim = await queue.claim(lease=10)
        assert claim is not None and claim.dedupe_key == "m1"
        assert await queue.ack(claim)
        assert [row.queued for row in await queue.status()] == [1]  # m2 left
        await queue.close()

        async def only_admin_left() -> bool:  # both of the queue's connections go; only this test's own stays
            return len(await admin.client_list()) == 1

        await eventually(only_admin_left, "the queue's connections to close", timeout=1.0)
    finally:
        await queue.close()
        await admin.aclose()


async def test_the_queue_fails_a_call_cut_off_mid_flight_and_works_again_once_redis_is_back(
    redis_server: Callable[..., ThrowawayRedis],
) -> None:
    server = redis_server("--requirepass", PASSWORD, "--enable-debug-command", "yes")
    url = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"
    queue = RedisQueue(url, prefix="q")
    admin = RespConnection(url)
    await queue.open()
    try:
        assert await queue.put([inbound("m1")]) == 1
        stall = asyncio.create_task(admin.execute([("DEBUG", "SLEEP", "2")]))  # the server stops answering
        await asyncio.sleep(0.1)
        put = asyncio.create_task(queue.put([inbound("m2")]))
        await asyncio.sleep(0.1)
        server.stop()
        with pytest.raises(QueueError, match=r"the queue's Redis failed: the connection to Redis at \S+ was closed"):
            await asyncio.wait_for(put, 2)
        with contextlib.suppress(RedisError):
            await stall
        server.start()  # empty, without the scripts
        assert await queue.put([inbound("m3")]) == 1
        claim = await queue.claim(lease=10)
        assert claim is not None and claim.dedupe_key == "m3"
    finally:
        await queue.close()
        await admin.close()


# ---------------------------------------------------------------------------------------------- TLS


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for the name localhost only (not 127.0.0.1), made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not on PATH")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [*_SELF_SIGNED, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def _tls_server(start: Callable[..., ThrowawayRedis], cert: Path, key: Path, *args: str) -> tuple[ThrowawayRedis, int]:
    port = free_port()
    tls = ["--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    try:
        server = start(*tls, "--tls-ca-cert-file", str(cert), *args, listening_on=lambda: _accepts(("127.0.0.1", port)))
    except RuntimeError as exc:
        if "tls" in str(exc).lower():
            pytest.skip(f"this redis-server has no TLS: {exc}")
        raise
    return server, port


async def _outcome(url: str) -> bool:
    """Whether our client and redis-py both get PONG (True) or both fail (False): they must agree."""
    ours = RespConnection(url)
    theirs = aioredis.Redis.from_url(url, socket_timeout=5)
    try:
        try:
            ours_ok = await ours.execute([("PING",)]) == [b"PONG"]
        except RedisConnectionError:
            ours_ok = False
        try:
            theirs_ok = bool(await theirs.ping())
        except RedisConnectionError:
            theirs_ok = False
    finally:
        await ours.close()
        await theirs.aclose()
    assert ours_ok == theirs_ok, url
    return ours_ok


async def test_rediss_verifies_the_server_as_redis_py_does(
    redis_server: Callable[..., ThrowawayRedis], tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    _, port = _tls_server(redis_server, cert, key, "--tls-auth-clients", "no")
    assert await _outcome(f"rediss://localhost:{port}/0?ssl_ca_certs={cert}")
    assert await _outcome(f"rediss://localhost:{port}/0?ssl_cert_reqs=required&ssl_ca_certs={cert}")
    # Certificates are required by default, and this one is nobody's CA.
    assert not await _outcome(f"rediss://localhost:{port}/0")
    assert await _outcome(f"rediss://localhost:{port}/0?ssl_cert_reqs=none")
    # The certificate names localhost, not 127.0.0.1: host names are checked unless the URL says not to.
    assert not await _outcome(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}")
    assert await _outcome(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}&ssl_check_hostname=false")
    assert await _outcome(
        f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=optional&ssl_ca_certs={cert}&ssl_check_hostname=false"
    )


async def test_rediss_presents_a_client_certificate_when_asked(
    redis_server: Callable[..., ThrowawayRedis], tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    _, port = _tls_server(redis_server, cert, key, "--tls-auth-clients", "yes", "--requirepass", PASSWORD)
    base = f"rediss://:{PASSWORD}@localhost:{port}/1?ssl_ca_certs={cert}"
    assert await _outcome(f"{base}&ssl_certfile={cert}&ssl_keyfile={key}")
    assert not await _outcome(base)
