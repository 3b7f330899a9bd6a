"""Numbered SQLite schema migrations, one list per component, sharing one database file.

Several parts of the bridge keep tables in the same SQLite file (the chat-id store now, the durable queue
later). Each owns a `Migrations` list under its own component name, so none has to know the others' schema
versions. Versions are recorded in `schema_migrations`, one row per applied step: a database tells which steps
ran and when, and the primary key refuses a step applied twice. Pending steps of a component run in one
`BEGIN IMMEDIATE` transaction that re-reads the version first, so processes opening the file together apply
each step exactly once and a failing step leaves the schema as it was.

Steps are append-only: never edit or reorder a released step, add a new one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bridge.store.base import StoreError

__all__ = [
    "Migration",
    "MigrationError",
    "Migrations",
    "applied_versions",
    "connect",
    "current_version",
    "migrate",
    "sql",
    "transaction",
]

Migration = Callable[[sqlite3.Connection], None]
"""One schema step; it runs inside the migration transaction and must not commit."""

_HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL,
    version INTEGER NOT NULL,
    applied_at REAL NOT NULL,
    PRIMARY KEY (component, version)
)
"""


class MigrationError(StoreError):
    """A schema step failed, or the database is newer than this code."""


@dataclass(frozen=True, slots=True)
class Migrations:
    """The ordered schema steps of one component; step `i` (0-based) brings it to version `i + 1`."""

    component: str
    steps: Sequence[Migration]

    def __post_init__(self) -> None:
        if not self.component:
            raise ValueError("a migration list needs a component name")

    @property
    def latest(self) -> int:
        return len(self.steps)


def sql(*statements: str) -> Migration:
    """A step made of plain SQL statements, executed one by one (never `executescript`, which commits)."""

    def step(conn: sqlite3.Connection) -> None:
        for statement in statements:
            conn.execute(statement)

    return step


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE` … `COMMIT`, rolled back on any error.

    IMMEDIATE takes the write lock up front, so a read-then-write inside cannot be overtaken by another
    process between the read and the write (the busy timeout makes waiters queue instead of failing).
    The connection must be in autocommit mode (`isolation_level=None`).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:  # some errors (disk full, I/O) have rolled back already
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def connect(path: str | Path, *, busy_timeout: float = 10.0) -> sqlite3.Connection:
    """Open the shared database file the way every component should: WAL, a busy timeout, autocommit.

    WAL lets readers in other processes proceed during a write; `synchronous=FULL` because a chat id lost
    to a power cut could be handed to another chat after restart, and allocations are rare enough to afford
    the fsync. The connection may be used from any thread, one call at a time.
    """
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        _enable_wal(conn, busy_timeout)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _enable_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """Switch to WAL, retrying: the switch can report "locked" without waiting while another process
    creates the same file."""
    deadline = time.monotonic() + busy_timeout
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def applied_versions(conn: sqlite3.Connection, component: str) -> list[int]:
    """The versions recorded for a component, oldest first (empty on a fresh database)."""
    if not _history_exists(conn):
        return []
    rows = conn.execute(
        "SELECT version FROM schema_migrations WHERE component = ? ORDER BY version", (component,)
    ).fetchall()
    return [int(row[0]) for row in rows]


def current_version(conn: sqlite3.Connection, component: str) -> int:
    if not _history_exists(conn):
        return 0
    row = conn.execute(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = ?", (component,)
    ).fetchone()
    return int(row[0])


def migrate(conn: sqlite3.Connection, migrations: Migrations) -> int:
    """Apply the pending steps of one component; returns how many ran (0 when already up to date)."""
    if _history_exists(conn) and current_version(conn, migrations.component) == migrations.latest:
        return 0  # the common case: no write lock taken
    with transaction(conn):
        conn.execute(_HISTORY_DDL)
        version = current_version(conn, migrations.component)
        if version > migrations.latest:
            raise MigrationError(
                f"the database schema of {migrations.component!r} is at version {version}, newer than the "
                f"{migrations.latest} this version of the bridge knows; upgrade the bridge"
            )
        for number in range(version + 1, migrations.latest + 1):
            try:
                migrations.steps[number - 1](conn)
            except sqlite3.Error as exc:
                raise MigrationError(
                    f"schema migration {migrations.component!r} #{number} failed: {exc}"
                ) from exc
            conn.execute(
                "INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, ?, ?)",
                (migrations.component, number, time.time()),
            )
        return migrations.latest - version


def _history_exists(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    return row is not None
