"""Where SQLite calls run: on the event loop when they cannot wait, in a worker thread when they can.

sqlite3 blocks, and handing a call to a thread costs about 120 µs of CPU (two context switches and a wake-up
on a busy core), several times what a claim, an ack or a read costs in SQL. So a call that neither fsyncs nor
waits for a lock runs right on the loop (`inline`), and only commits that must reach the disk
(`synchronous=FULL`), migrations and the like go to the thread (`in_thread`).

A lock held by another process (an operator command, another bridge process on the same file) must not stall
the loop: the connection's busy timeout is zero while the loop uses it, and an inline call that finds the
database busy is run again in the thread, where it waits up to `busy_timeout` as before. A call must
therefore be safe to run again after a busy error, which every call inside `transaction()` is (it rolled
back).

One connection, one call at a time, on the loop or in the thread, in the order they were asked for.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

__all__ = ["SqliteRunner", "is_busy"]

T = TypeVar("T")

_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})


def is_busy(exc: sqlite3.Error) -> bool:
    """Another connection holds a lock this call needed (its extended codes included)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _BUSY_CODES
    return "locked" in str(exc) or "busy" in str(exc)


class SqliteRunner:
    """Runs calls on one connection; `opener` makes the connection (in the thread) on `open()`."""

    def __init__(self, opener: Callable[[], sqlite3.Connection], *, busy_timeout: float, name: str) -> None:
        self._opener = opener
        self._busy_ms = int(busy_timeout * 1000)
        self._name = name
        self._conn: sqlite3.Connection | None = None
        # Made by `open()`, in the loop that will use it: an asyncio lock stays bound to its first loop.
        self._lock: asyncio.Lock | None = None
        self._executor: ThreadPoolExecutor | None = None

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
            conn = await self._wait_for(self._executor, self._open_sync)
            self._conn = conn

    def _open_sync(self) -> sqlite3.Connection:
        conn = self._opener()
        conn.execute("PRAGMA busy_timeout = 0")  # the loop's setting; the thread raises it per call
        return conn

    async def close(self) -> None:
        """Waits for the call in flight, then closes the connection and stops the thread."""
        if self._lock is None:
            return
        async with self._lock:
            conn, self._conn = self._conn, None
            executor, self._executor = self._executor, None
            if executor is not None:
                if conn is not None:
                    await self._wait_for(executor, conn.close)
                executor.shutdown(wait=False)
        self._lock = None

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

        return await self._wait_for(self._executor, waiting_call)

    @staticmethod
    async def _wait_for(executor: ThreadPoolExecutor, call: Callable[[], T]) -> T:
        """The call's result. A caller cancelled meanwhile still waits for the thread to finish: until then
        the connection is in use, and the lock must not let another call at it."""
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
