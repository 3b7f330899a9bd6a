"""`SqliteRunner`: short calls on the loop, waiting calls in the thread, a locked database never stalls the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bridge.store import sqlite_runner
from bridge.store.migrations import connect
from bridge.store.sqlite_runner import SqliteRunner


@pytest.fixture
async def runner(tmp_path: Path) -> AsyncIterator[SqliteRunner]:
    path = tmp_path / "runner.db"

    def opener() -> sqlite3.Connection:
        conn = connect(path, busy_timeout=5.0)
        conn.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
        return conn

    opened = SqliteRunner(path, opener, busy_timeout=5.0, name="test")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def insert(n: int, threads: list[int]) -> Callable[[sqlite3.Connection], int]:
    def call(conn: sqlite3.Connection) -> int:
        threads.append(threading.get_ident())
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (n) VALUES (?)", (n,))
        conn.execute("COMMIT")
        return n

    return call


async def test_inline_runs_on_the_loop_and_in_thread_does_not(runner: SqliteRunner) -> None:
    threads: list[int] = []
    assert await runner.inline(insert(1, threads)) == 1
    assert await runner.in_thread(insert(2, threads)) == 2
    assert threads[0] == threading.get_ident()
    assert threads[1] != threading.get_ident()
    rows = await runner.inline(lambda conn: conn.execute("SELECT n FROM t ORDER BY n").fetchall())
    assert rows == [(1,), (2,)]


async def test_a_database_locked_by_another_process_moves_the_call_to_the_thread(
    runner: SqliteRunner, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "runner.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write lock
    threads: list[int] = []
    try:
        call = asyncio.create_task(runner.inline(insert(7, threads)))
        began = time.monotonic()
        await asyncio.sleep(0.2)
        # The loop was free meanwhile (the sleep ended on time) and the call waits in the thread.
        assert time.monotonic() - began < 0.5
        assert not call.done()
        assert threads[0] == threading.get_ident() and threads[-1] != threading.get_ident()
    finally:
        other.execute("COMMIT")
        other.close()
    assert await asyncio.wait_for(call, 5.0) == 7


async def test_a_cancelled_thread_call_keeps_the_connection_until_it_is_done(runner: SqliteRunner) -> None:
    order: list[str] = []

    def slow(conn: sqlite3.Connection) -> None:
        time.sleep(0.3)
        order.append("thread call done")

    task = asyncio.create_task(runner.in_thread(slow))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.sleep(0)
    await runner.inline(lambda conn: order.append("next call"))
    assert order == ["thread call done", "next call"]
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_calls_on_a_closed_runner_fail_clearly(runner: SqliteRunner) -> None:
    await runner.close()
    with pytest.raises(sqlite3.ProgrammingError, match="not open"):
        await runner.inline(lambda conn: None)


async def test_durable_writes_share_fsyncs_and_leave_the_connection_free_meanwhile(
    runner: SqliteRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs: list[int] = []
    real_sync = sqlite_runner._sync_data

    def slow_fsync(fd: int) -> None:
        time.sleep(0.2)  # a slow disk
        real_sync(fd)
        fsyncs.append(fd)

    monkeypatch.setattr(sqlite_runner, "_sync_data", slow_fsync)
    threads: list[int] = []
    writes = [asyncio.create_task(runner.durable(insert(n, threads))) for n in range(20)]
    await asyncio.sleep(0.05)
    # Committed on the loop, waiting for the disk: reads go on meanwhile.
    count = await runner.inline(lambda conn: conn.execute("SELECT COUNT(*) FROM t").fetchone()[0])
    assert count == 20
    assert not any(write.done() for write in writes), "a durable write returns only after its fsync"
    assert sorted(await asyncio.gather(*writes)) == list(range(20))
    # The first write's fsync covers it alone; the other 19 committed meanwhile and share the next one.
    assert 1 <= len(fsyncs) <= 3


async def test_fsync_rounds_are_spaced_but_a_lone_write_is_synced_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "spaced.db"

    def opener() -> sqlite3.Connection:
        conn = connect(path, busy_timeout=5.0)
        conn.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
        return conn

    fsyncs: list[float] = []
    real_sync = sqlite_runner._sync_data

    def counted(fd: int) -> None:
        real_sync(fd)
        fsyncs.append(time.monotonic())

    monkeypatch.setattr(sqlite_runner, "_sync_data", counted)
    runner = SqliteRunner(path, opener, busy_timeout=5.0, name="test", sync_interval=1.0)
    await runner.open()
    try:
        started = time.monotonic()
        await runner.durable(insert(0, []))
        assert len(fsyncs) == 1
        assert fsyncs[0] - started < 0.5, "the first write after a quiet spell does not wait for the interval"

        async def later(n: int) -> int:
            await asyncio.sleep(n * 0.02)
            return await runner.durable(insert(n, []))

        # Ten writes spread over 0.2 s, all within the interval after the first round: one more fsync covers
        # them all, and it starts only once the interval has passed.
        assert sorted(await asyncio.gather(*(later(n) for n in range(1, 11)))) == list(range(1, 11))
        assert len(fsyncs) == 2
        assert fsyncs[1] - fsyncs[0] >= 0.9
    finally:
        await runner.close()


async def checkpoint_ended(runner: SqliteRunner) -> None:
    for _ in range(500):
        if runner._checkpoint is None:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the checkpoint did not end")


async def test_checkpoints_copy_the_log_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "checkpointed.db"

    def opener() -> sqlite3.Connection:
        conn = connect(path, busy_timeout=5.0)
        conn.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER)")
        return conn

    runner = SqliteRunner(path, opener, busy_timeout=5.0, name="test", checkpoint_interval=0.0)
    await runner.open()
    try:
        for n in range(20):
            await runner.durable(insert(n, []))
        await checkpoint_ended(runner)
        # Read the database file alone, as if the log were lost: the checkpoints put the rows there.
        main_file = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
        try:
            assert main_file.execute("SELECT COUNT(*) FROM t").fetchone()[0] >= 19
        finally:
            main_file.close()
    finally:
        await runner.close()


def blob_opener(path: Path) -> Callable[[], sqlite3.Connection]:
    def opener() -> sqlite3.Connection:
        conn = connect(path, busy_timeout=5.0)
        conn.execute("CREATE TABLE IF NOT EXISTS blobs (id INTEGER PRIMARY KEY, data BLOB)")
        return conn

    return opener


def write_blob(size: int) -> Callable[[sqlite3.Connection], None]:
    def call(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO blobs (data) VALUES (?)", (b"x" * size,))
        conn.execute("DELETE FROM blobs WHERE id < (SELECT MAX(id) FROM blobs) - 50")
        conn.execute("COMMIT")

    return call


def wal_size(path: Path) -> int:
    try:
        return Path(f"{path}-wal").stat().st_size
    except FileNotFoundError:
        return 0


def steady_runner(path: Path, name: str = "test") -> SqliteRunner:
    return SqliteRunner(
        path, blob_opener(path), busy_timeout=5.0, name=name, checkpoint_interval=0.05, sync_interval=0.001
    )


async def write_without_pause(path: Path, writers: list[SqliteRunner]) -> tuple[int, int]:
    """Each writer (a runner, once per writer it stands for) makes 500 writes of 8000 bytes back to back:
    the bytes written, and the largest the log grew to meanwhile."""
    written = 0
    largest = 0

    async def writer(runner: SqliteRunner) -> None:
        nonlocal written, largest
        for _ in range(500):
            await runner.durable(write_blob(8000))
            written += 8000
            largest = max(largest, wal_size(path))

    await asyncio.gather(*(writer(runner) for runner in writers))
    return written, largest


async def test_the_log_starts_over_while_writes_go_on(tmp_path: Path) -> None:
    # Writers that never pause: a checkpoint running beside them never covers the whole log. Before the
    # second pass with the calls held, the log grew to about four times the bytes written here (each commit
    # writes whole pages); with it, to about a quarter of them.
    path = tmp_path / "steady.db"
    runner = steady_runner(path)
    await runner.open()
    try:
        written, largest = await write_without_pause(path, [runner] * 8)
    finally:
        await runner.close()
    assert written == 8 * 500 * 8000
    assert largest < written, f"the log grew to {largest} bytes for {written} written"


async def test_the_log_starts_over_with_two_runners_on_one_file(tmp_path: Path) -> None:
    # The store and the queue share the database file by default, each with its own runner: a second pass
    # that held only its own runner's calls let the other write meanwhile (~125 MB of log for 40 MB written).
    path = tmp_path / "shared.db"
    queue_runner, store_runner = steady_runner(path, "queue"), steady_runner(path, "store")
    await queue_runner.open()
    await store_runner.open()
    try:
        written, largest = await write_without_pause(path, [queue_runner] * 8 + [store_runner] * 2)
    finally:
        await queue_runner.close()
        await store_runner.close()
    assert written == 10 * 500 * 8000
    assert largest < written, f"the log grew to {largest} bytes for {written} written"


async def test_a_log_grown_behind_a_long_reader_is_cut_back(tmp_path: Path) -> None:
    path = tmp_path / "burst.db"
    limit = 256 * 1024
    runner = SqliteRunner(
        path,
        blob_opener(path),
        busy_timeout=5.0,
        name="test",
        checkpoint_interval=0.0,
        sync_interval=0.001,
        wal_size_limit=limit,
    )
    await runner.open()
    try:
        await runner.durable(write_blob(100))
        # Another process holds an old snapshot: no checkpoint may copy past it, so the log grows.
        reader = sqlite3.connect(path, isolation_level=None)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT COUNT(*) FROM blobs").fetchone()
            for _ in range(200):
                await runner.durable(write_blob(8000))
            assert wal_size(path) > 4 * limit
            reader.execute("COMMIT")
        finally:
            reader.close()
        # Once the reader is gone, a checkpoint covers the whole log, and the next write starts it over and
        # gives back what it had grown to beyond the limit.
        for _ in range(500):
            await runner.durable(write_blob(100))
            if wal_size(path) <= limit:
                break
            await asyncio.sleep(0.01)
        assert wal_size(path) <= limit
    finally:
        await runner.close()


async def test_close_waits_for_a_checkpoint_under_way(tmp_path: Path) -> None:
    path = tmp_path / "closing.db"
    runner = SqliteRunner(path, blob_opener(path), busy_timeout=5.0, name="test", checkpoint_interval=0.0)
    await runner.open()
    for _ in range(5):
        await runner.durable(write_blob(8000))
    assert runner._checkpoint is not None  # started after the last fsync, not finished yet
    await asyncio.wait_for(runner.close(), 10.0)
    assert runner._checkpoint is None
    main_file = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        assert main_file.execute("SELECT COUNT(*) FROM blobs").fetchone()[0] == 5
    finally:
        main_file.close()


async def test_the_log_starts_over_in_the_thread_not_on_the_next_call(tmp_path: Path) -> None:
    # Starting the log over fsyncs its new header; the checkpoint's own small write in the worker thread does
    # it, so the log is already short when the round ends, before the loop writes again.
    path = tmp_path / "restart.db"
    runner = SqliteRunner(path, blob_opener(path), busy_timeout=5.0, name="test", checkpoint_interval=0.0)
    await runner.open()
    try:
        for _ in range(20):
            await runner.durable(write_blob(8000))
        await checkpoint_ended(runner)
        await runner.durable(write_blob(100_000))  # ~25 pages, then a round of its own
        await checkpoint_ended(runner)
        other = sqlite3.connect(path, isolation_level=None)
        try:
            busy, log_frames, _copied = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            version = other.execute("PRAGMA user_version").fetchone()[0]
        finally:
            other.close()
        assert busy == 0
        assert log_frames <= 2, f"the log still holds {log_frames} frames"  # the last write's ~25 before
        assert version == 0
    finally:
        await runner.close()
