"""Where SQLite calls run: the SQL on the event loop, the waiting (fsync, other processes' locks) in a thread.

sqlite3 blocks, and handing a call to a thread is costly on a busy core: the hop itself costs about 120 µs of
CPU, and the thread then needs the interpreter lock back after every statement, which it gets only when the
loop lets go of it (up to the 5 ms switch interval each time). A put of a few rows thus held the connection
for milliseconds while the delivery workers' claims and acks waited. So:

* `inline` runs a call on the loop: a claim, an ack or a read costs 10-50 µs of SQL.
* `durable` also runs the call on the loop, committing with `synchronous=NORMAL` (no fsync), and then waits
  until the write-ahead log has been fsynced by the worker thread. One fsync covers every commit made before
  it started, so concurrent writers share it (group commit), and the connection stays free meanwhile for
  other calls. Taken over still means on disk before the caller answers: the same guarantee as
  `synchronous=FULL`, at a fraction of the cost. Rounds start at most every `sync_interval` seconds (5 ms):
  under load an fsync costs the kernel ~70 µs of CPU whether it covers one commit or twenty, and back-to-back
  rounds each covered only the one batch of puts that arrived during the last; a lone commit after a quiet
  spell is synced at once.
* `in_thread` runs a call in the worker thread, where it may wait for another process's lock: what `inline`
  falls back to (the connection itself is opened and migrated there too, by `open()`).

A lock held by another process (an operator command, another bridge process on the same file) must not stall
the loop: the connection's busy timeout is zero while the loop uses it, and an inline call that finds the
database busy is run again in the thread, where it waits up to `busy_timeout`. A call must therefore be safe
to run again after a busy error, which every call inside `transaction()` is (it rolled back).

Checkpoints (copying the log back into the database file, which fsyncs that file too) run at most every
`checkpoint_interval` seconds, after an fsync, in a second thread on a connection of their own: a checkpoint can
take tens of milliseconds on a busy disk, and the log's fsyncs (which callers wait for) must not queue behind
it. The loop's connection never starts one itself. The log starts over from its beginning only when a
checkpoint has copied all of it, and under steady load a checkpoint running beside the writes never does: the
log grew by tens of megabytes a second, without end. So each checkpoint ends with a second pass while the
loop's calls wait, which copies what was written during the first (little, as the first took the bulk) holding
the database's write lock, so that another runner on the same file (the store's beside the queue's) does not
write meanwhile either; a write that changes nothing, in the worker thread, then starts the log over (which
fsyncs its new header: not on the loop), and `journal_size_limit` gives back what a burst made it grow to.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

__all__ = ["WAL_SIZE_LIMIT", "SqliteRunner", "is_busy"]

T = TypeVar("T")

logger = logging.getLogger("bridge.store")

_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})

# How long the second pass of a checkpoint waits for another connection's write to finish (milliseconds).
_CHECKPOINT_WAIT_MS = 20

# What the log is cut back to when it starts over: above what a second of heavy load writes, so that in steady
# operation its size does not change (see `_sync_data`), while a burst's growth is given back.
WAL_SIZE_LIMIT = 64 * 1024 * 1024


def is_busy(exc: sqlite3.Error) -> bool:
    """Another connection holds a lock this call needed (its extended codes included)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _BUSY_CODES
    return "locked" in str(exc) or "busy" in str(exc)


class SqliteRunner:
    """Runs calls on one connection to the database at `path`; `opener` makes it (in the thread) on `open()`."""

    def __init__(
        self,
        path: Path,
        opener: Callable[[], sqlite3.Connection],
        *,
        busy_timeout: float,
        name: str,
        checkpoint_interval: float = 1.0,
        sync_interval: float = 0.005,
        wal_size_limit: int = WAL_SIZE_LIMIT,
    ) -> None:
        self._path = path
        self._opener = opener
        self._busy_ms = int(busy_timeout * 1000)
        self._name = name
        self._checkpoint_interval = checkpoint_interval
        self._sync_interval = sync_interval
        self._wal_size_limit = wal_size_limit
        self._last_sync = float("-inf")  # when the last fsync round started (monotonic)
        self._conn: sqlite3.Connection | None = None
        self._checkpointer: sqlite3.Connection | None = None
        self._wal_fd: int | None = None
        self._next_checkpoint = 0.0
        # Made by `open()`, in the loop that will use it: an asyncio lock stays bound to its first loop.
        self._lock: asyncio.Lock | None = None
        self._executor: ThreadPoolExecutor | None = None
        # The checkpoints' own thread, and the one running now (at most one at a time).
        self._checkpoints: ThreadPoolExecutor | None = None
        self._checkpoint: asyncio.Future[None] | None = None
        self._closing = False  # no new checkpoint: `close()` waits for the last one before it takes the lock
        # Durable commits made, and how many of them an fsync has covered (see `_sync_wal`).
        self._written = 0
        self._synced = 0
        self._sync_round: asyncio.Future[None] | None = None

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    @property
    def connection(self) -> sqlite3.Connection | None:
        """For calls already running through this runner (they get it as their argument too)."""
        return self._conn

    async def open(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._conn is not None:  # opened by a call that waited for the lock before this one
                return
            self._executor = self._executor or ThreadPoolExecutor(1, thread_name_prefix=self._name)
            self._conn = await _wait_for(self._executor, self._open_sync)
            self._closing = False

    def _open_sync(self) -> sqlite3.Connection:
        conn = self._opener()
        try:
            conn.execute("PRAGMA busy_timeout = 0")  # the loop's setting; the thread raises it per call
            conn.execute("PRAGMA synchronous = NORMAL")  # durability comes from `durable` (see above)
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute(f"PRAGMA journal_size_limit = {int(self._wal_size_limit)}")
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        """Waits for the call and the fsync in flight, then closes the connections and stops the thread."""
        if self._lock is None:
            return
        self._closing = True
        if self._checkpoint is not None:  # before the lock: its second pass needs the lock too
            try:
                await asyncio.gather(asyncio.shield(self._checkpoint), return_exceptions=True)
            except BaseException:  # close() cancelled: the runner stays open, and keeps checkpointing
                self._closing = False
                raise
        async with self._lock:
            if self._sync_round is not None:
                await asyncio.gather(asyncio.shield(self._sync_round), return_exceptions=True)
            checkpoints, self._checkpoints = self._checkpoints, None
            if checkpoints is not None:
                await _wait_for(checkpoints, self._close_checkpointer)
                checkpoints.shutdown(wait=False)
            conn, self._conn = self._conn, None
            executor, self._executor = self._executor, None
            if executor is not None:
                await _wait_for(executor, lambda: self._close_sync(conn))
                executor.shutdown(wait=False)
        self._lock = None

    def _close_sync(self, conn: sqlite3.Connection | None) -> None:
        if conn is not None:
            conn.close()
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None

    # ------------------------------------------------------------------ calls

    async def inline(self, call: Callable[[sqlite3.Connection], T]) -> T:
        """Run `call` on the loop; in the thread instead when the database is locked by someone else."""
        async with self._locked():
            conn = self._require()
            try:
                return call(conn)
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
            return await self._in_thread_locked(conn, call)

    async def durable(self, call: Callable[[sqlite3.Connection], T]) -> T:
        """`inline`, returning only once what `call` committed is on disk."""
        result = await self.inline(call)
        await self._sync_wal()
        return result

    async def in_thread(self, call: Callable[[sqlite3.Connection], T]) -> T:
        """Run `call` in the worker thread, waiting up to the busy timeout for other processes' locks."""
        async with self._locked():
            return await self._in_thread_locked(self._require(), call)

    def _locked(self) -> asyncio.Lock:
        if self._lock is None:
            raise sqlite3.ProgrammingError(f"the {self._name} database is not open")
        return self._lock

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError(f"the {self._name} database is not open")
        return self._conn

    async def _in_thread_locked(self, conn: sqlite3.Connection, call: Callable[[sqlite3.Connection], T]) -> T:
        assert self._executor is not None, "open() made the executor"

        def waiting_call() -> T:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            try:
                return call(conn)
            finally:
                conn.execute("PRAGMA busy_timeout = 0")

        return await _wait_for(self._executor, waiting_call)

    # ------------------------------------------------------------------ durability

    async def _sync_wal(self) -> None:
        """Wait for an fsync of the log that started after this caller's commit."""
        self._written += 1
        mine = self._written
        while self._synced < mine:
            if self._sync_round is None:
                self._sync_round = asyncio.ensure_future(self._fsync_round())
            await asyncio.shield(self._sync_round)

    async def _fsync_round(self) -> None:
        try:
            wait = self._last_sync + self._sync_interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_sync = time.monotonic()
            covers = self._written  # read after the wait: what was committed meanwhile is covered too
            if self._executor is None:
                raise sqlite3.ProgrammingError(f"the {self._name} database is not open")
            await _wait_for(self._executor, self._fsync_sync)
            self._synced = max(self._synced, covers)
        finally:
            self._sync_round = None
        now = time.monotonic()
        if now >= self._next_checkpoint and self._checkpoint is None and not self._closing:
            self._next_checkpoint = now + self._checkpoint_interval
            self._checkpoint = asyncio.ensure_future(self._checkpoint_round())
            self._checkpoint.add_done_callback(self._checkpoint_done)

    async def _checkpoint_round(self) -> None:
        """The two passes of a checkpoint (see the module docstring)."""
        self._checkpoints = self._checkpoints or ThreadPoolExecutor(1, thread_name_prefix=f"{self._name}-ckpt")
        await _wait_for(self._checkpoints, lambda: self._checkpoint_sync("PASSIVE"))
        async with self._locked():
            await _wait_for(self._checkpoints, lambda: self._checkpoint_sync("FULL"))
            # The write that starts the log over fsyncs its new header, even with synchronous=NORMAL.
            await self._in_thread_locked(self._require(), _restart_log)

    def _checkpoint_done(self, future: asyncio.Future[None]) -> None:
        self._checkpoint = None
        if not future.cancelled() and future.exception() is not None:
            # Nothing waits for a checkpoint: the next one copies what this one did not.
            logger.warning("checkpoint of %s failed: %s", self._path, future.exception())

    def _fsync_sync(self) -> None:
        if self._wal_fd is None:
            self._wal_fd = os.open(f"{self._path}-wal", os.O_RDONLY)
            _fsync_folder(self._path.parent)  # the log file's own entry, created by the first write
        _sync_data(self._wal_fd)

    def _checkpoint_sync(self, mode: str) -> None:
        """In the checkpoint thread, which alone uses the checkpointer connection. `FULL` (the second pass)
        holds the database's write lock while it copies, so that another connection to the same file (the
        store's beside the queue's, in one process) cannot write meanwhile either: it waits up to
        `_CHECKPOINT_WAIT_MS` for such a writer to finish (and for readers of older snapshots, which only a
        long read of another process makes; this runner's calls wait that long then), and that writer's next
        call waits in its thread."""
        if self._checkpointer is None:
            self._checkpointer = sqlite3.connect(self._path, timeout=0.0, isolation_level=None)
            self._checkpointer.execute("PRAGMA synchronous = FULL")  # the file synced before the log restarts
        conn = self._checkpointer
        try:
            conn.execute(f"PRAGMA busy_timeout = {_CHECKPOINT_WAIT_MS if mode == 'FULL' else 0}")
            conn.execute(f"PRAGMA wal_checkpoint({mode})")
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):  # another checkpoint or a long writer: the next round copies the rest
                raise

    def _close_checkpointer(self) -> None:
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.close()


# The log's contents and its size, not its times: what SQLite itself uses for the log where it can. The log
# is rewritten in place after each checkpoint, so most syncs have no size change to write either, which
# saves the file system a journal commit per sync.
_sync_data: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


def _restart_log(conn: sqlite3.Connection) -> None:
    """A write that changes nothing: the database header's user version, set to what it is (nothing else in
    the bridge uses it)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    conn.execute(f"PRAGMA user_version = {version}")


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def _wait_for(executor: ThreadPoolExecutor, call: Callable[[], T]) -> T:
    """The call's result. A caller cancelled meanwhile still waits for the thread to finish: until then the
    connection is in use, and the lock must not let another call at it."""
    future = asyncio.get_running_loop().run_in_executor(executor, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            try:
                await asyncio.wait([future])
            except asyncio.CancelledError:
                continue
        if not future.cancelled():
            future.exception()  # retrieved: the cancelled caller will not see it
        raise
