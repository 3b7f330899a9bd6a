"""The SQLite store: one file, shareable by several processes on one host.

Calls run one at a time on a single connection, on the event loop (`bridge.store.sqlite_runner`); writes
return once they are fsynced. Cross-process safety comes from the database itself: WAL, a busy timeout and
`BEGIN IMMEDIATE` around every read-then-write.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import msgspec

from bridge.protocol import VisitorFields
from bridge.queue.batching import GroupCommit
from bridge.store._shared import ChatIdCache, VisitorCache, check_ttl, merge_visitor
from bridge.store.base import ChatRecord, Store, StoreError
from bridge.store.migrations import Migrations, connect, migrate, sql, transaction
from bridge.store.sqlite_runner import SqliteRunner, is_busy

__all__ = ["STORE_MIGRATIONS", "SqliteStore"]

T = TypeVar("T")

# The range of an SQLite INTEGER: a chat id outside it (a platform or a client can send any JSON number) is no
# chat of ours, and sqlite3 would raise OverflowError on it rather than find nothing.
_CHAT_ID_RANGE = range(-(2**63), 2**63)

STORE_MIGRATIONS = Migrations(
    component="store",
    steps=(
        sql(
            # AUTOINCREMENT: a deleted chat's id is never handed out again.
            """
            CREATE TABLE chats (
                chat_id INTEGER PRIMARY KEY AUTOINCREMENT,
                channel_id TEXT NOT NULL,
                native_chat_id TEXT NOT NULL,
                adapter_data TEXT NOT NULL DEFAULT '{}',
                created_at REAL NOT NULL,
                UNIQUE (channel_id, native_chat_id)
            )
            """,
            """
            CREATE TABLE visitors (
                channel_id TEXT NOT NULL,
                native_user_id TEXT NOT NULL,
                fields TEXT NOT NULL,
                updated_at REAL NOT NULL,
                PRIMARY KEY (channel_id, native_user_id)
            ) WITHOUT ROWID
            """,
            """
            CREATE TABLE kv (
                namespace TEXT NOT NULL,
                key TEXT NOT NULL,
                value BLOB NOT NULL,
                expires_at REAL,
                PRIMARY KEY (namespace, key)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX kv_expires_at ON kv (expires_at) WHERE expires_at IS NOT NULL",
        ),
    ),
)

_adapter_data = msgspec.json.Decoder(dict[str, str])
_visitor = msgspec.json.Decoder(VisitorFields)

_VisitorSave = tuple[str, str, VisitorFields]  # channel id, native user id, the fields the message brought


def _merged_visitor(
    conn: sqlite3.Connection, channel_id: str, native_user_id: str, fields: VisitorFields
) -> tuple[VisitorFields, bool]:
    """The stored profile with `fields` merged in, and whether that changes nothing already stored."""
    row = conn.execute(
        "SELECT fields FROM visitors WHERE channel_id = ? AND native_user_id = ?", (channel_id, native_user_id)
    ).fetchone()
    stored = _visitor.decode(row[0]) if row else VisitorFields()
    merged = merge_visitor(stored, fields)
    return merged, row is not None and merged == stored


class SqliteStore(Store):
    """`path` is created with its parent folders on first `open()`.

    `extra_migrations` lets another component keep its tables in the same file and have them migrated
    when the store opens; it can as well call `bridge.store.migrations.migrate` on its own connection.
    Expired key-values are invisible at once and deleted at most every `purge_interval` seconds.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 10.0,
        purge_interval: float = 60.0,
        extra_migrations: Sequence[Migrations] = (),
    ) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.purge_interval = purge_interval
        self.migrations: tuple[Migrations, ...] = (STORE_MIGRATIONS, *extra_migrations)
        self._runner = SqliteRunner(self.path, self._open_sync, busy_timeout=busy_timeout, name="store")
        self._next_purge = 0.0
        self._chat_ids = ChatIdCache()
        self._visitors = VisitorCache()
        self._visitor_saves: GroupCommit[_VisitorSave, VisitorFields] = GroupCommit(self._flush_visitor_saves)

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        if not self._runner.is_open:
            await self._runner.open()

    def _open_sync(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the folder of the SQLite store {str(self.path)!r}: {exc}"
            ) from exc
        try:
            conn = connect(self.path, busy_timeout=self.busy_timeout)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite store {str(self.path)!r}: {exc}") from exc
        try:
            for migrations in self.migrations:
                migrate(conn, migrations)
            self._purge_expired(conn, force=True)
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot prepare the SQLite store {str(self.path)!r}: {exc}") from exc
        return conn

    async def close(self) -> None:
        await self._visitor_saves.wait_idle()
        await self._runner.close()

    async def ping(self) -> None:
        await self._inline(lambda conn: conn.execute("SELECT 1").fetchone())

    async def _durable(self, func: Callable[[sqlite3.Connection], T]) -> T:
        """Writes: returns once they are on disk (a chat id lost to a power cut could be handed to another
        chat after restart)."""
        if not self._runner.is_open:
            raise StoreError(f"{self!r} is not open")
        try:
            return await self._runner.durable(func)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"SQLite store {str(self.path)!r}: {exc}") from exc

    async def _inline(self, func: Callable[[sqlite3.Connection], T]) -> T:
        """On the event loop: reads, which cost less than the hop to the thread."""
        if not self._runner.is_open:
            raise StoreError(f"{self!r} is not open")
        try:
            return await self._runner.inline(func)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {str(self.path)!r}: {exc}") from exc

    # ------------------------------------------------------------------ chat ids

    async def chat_id_for(self, channel_id: str, native_chat_id: str) -> int:
        known = self._chat_ids.get(channel_id, native_chat_id)
        if known is None:
            known = await self._inline(lambda conn: _chat_id(conn, channel_id, native_chat_id))
        if known is not None:
            return self._chat_ids.put(channel_id, native_chat_id, known)

        def allocate(conn: sqlite3.Connection) -> int:
            found = _chat_id(conn, channel_id, native_chat_id)
            if found is not None:
                return found
            with transaction(conn):
                conn.execute(
                    "INSERT OR IGNORE INTO chats (channel_id, native_chat_id, created_at) VALUES (?, ?, ?)",
                    (channel_id, native_chat_id, time.time()),
                )
                allocated = _chat_id(conn, channel_id, native_chat_id)
            if allocated is None:  # pragma: no cover - the row was just written in this transaction
                raise StoreError(f"chat {channel_id}/{native_chat_id} vanished while being allocated")
            return allocated

        return self._chat_ids.put(channel_id, native_chat_id, await self._durable(allocate))

    async def chat_by_id(self, chat_id: int) -> ChatRecord | None:
        if chat_id not in _CHAT_ID_RANGE:
            return None

        def lookup(conn: sqlite3.Connection) -> ChatRecord | None:
            row = conn.execute(
                "SELECT channel_id, native_chat_id, adapter_data FROM chats WHERE chat_id = ?", (chat_id,)
            ).fetchone()
            if row is None:
                return None
            return ChatRecord(
                chat_id=chat_id,
                channel_id=row[0],
                native_chat_id=row[1],
                adapter_data=_adapter_data.decode(row[2]),
            )

        return await self._inline(lookup)

    async def set_chat_data(self, chat_id: int, adapter_data: dict[str, str]) -> None:
        if chat_id not in _CHAT_ID_RANGE:
            raise KeyError(chat_id)
        encoded = msgspec.json.encode(adapter_data).decode()

        def update(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "UPDATE chats SET adapter_data = ? WHERE chat_id = ?", (encoded, chat_id)
            ).rowcount

        if await self._durable(update) == 0:
            raise KeyError(chat_id)

    # ------------------------------------------------------------------ visitors

    async def save_visitor(
        self, channel_id: str, native_user_id: str, fields: VisitorFields
    ) -> VisitorFields:
        # Most messages come from a visitor whose profile has not changed: the profile this process saved or
        # read lately tells (as on Redis), else a read on the loop; then there is nothing to write.
        known = self._visitors.merged(channel_id, native_user_id, fields)
        if known is not None:
            return known
        merged, unchanged = await self._inline(lambda conn: _merged_visitor(conn, channel_id, native_user_id, fields))
        if not unchanged:
            merged = await self._visitor_saves.submit((channel_id, native_user_id, fields))
        return self._visitors.put(channel_id, native_user_id, merged)

    async def _flush_visitor_saves(self, saves: list[_VisitorSave]) -> list[VisitorFields | BaseException]:
        # The saves of concurrent messages share one fsync, while each is still read, merged and written on
        # its own, in arrival order.
        return await self._durable(lambda conn: [self._save_visitor_sync(conn, *save) for save in saves])

    def _save_visitor_sync(
        self, conn: sqlite3.Connection, channel_id: str, native_user_id: str, fields: VisitorFields
    ) -> VisitorFields | BaseException:
        try:
            with transaction(conn):
                merged, _ = _merged_visitor(conn, channel_id, native_user_id, fields)
                conn.execute(
                    "INSERT INTO visitors (channel_id, native_user_id, fields, updated_at) "
                    "VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (channel_id, native_user_id) "
                    "DO UPDATE SET fields = excluded.fields, updated_at = excluded.updated_at",
                    (channel_id, native_user_id, msgspec.json.encode(merged).decode(), time.time()),
                )
            return merged
        except sqlite3.Error as exc:
            if is_busy(exc):  # not this save's fault: the whole batch goes to the thread and waits
                raise
            return StoreError(f"SQLite store {str(self.path)!r}: {exc}")

    async def get_visitor(self, channel_id: str, native_user_id: str) -> VisitorFields | None:
        def lookup(conn: sqlite3.Connection) -> VisitorFields | None:
            row = conn.execute(
                "SELECT fields FROM visitors WHERE channel_id = ? AND native_user_id = ?",
                (channel_id, native_user_id),
            ).fetchone()
            return _visitor.decode(row[0]) if row else None

        return await self._inline(lookup)

    # ------------------------------------------------------------------ key-values

    async def kv_get(self, namespace: str, key: str) -> bytes | None:
        def lookup(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(
                "SELECT value FROM kv "
                "WHERE namespace = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)",
                (namespace, key, time.time()),
            ).fetchone()
            return bytes(row[0]) if row else None

        return await self._inline(lookup)

    async def kv_set(self, namespace: str, key: str, value: bytes, *, ttl: float | None = None) -> None:
        expires_at = _expires_at(check_ttl(ttl))

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO kv (namespace, key, value, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (namespace, key) "
                "DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
                (namespace, key, value, expires_at),
            )
            self._purge_expired(conn)

        await self._durable(write)

    async def kv_set_if_absent(
        self, namespace: str, key: str, value: bytes, *, ttl: float | None = None
    ) -> bool:
        expires_at = _expires_at(check_ttl(ttl))

        def write(conn: sqlite3.Connection) -> bool:
            # One statement, so atomic: insert, or overwrite only a row that has expired.
            changed = conn.execute(
                "INSERT INTO kv (namespace, key, value, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (namespace, key) "
                "DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at "
                "WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= ?",
                (namespace, key, value, expires_at, time.time()),
            ).rowcount
            self._purge_expired(conn)
            return changed > 0

        return await self._durable(write)

    async def kv_delete(self, namespace: str, key: str) -> None:
        await self._durable(
            lambda conn: conn.execute("DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key))
        )

    def _purge_expired(self, conn: sqlite3.Connection, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_purge:
            return
        self._next_purge = now + self.purge_interval
        conn.execute("DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?", (time.time(),))


def _chat_id(conn: sqlite3.Connection, channel_id: str, native_chat_id: str) -> int | None:
    row = conn.execute(
        "SELECT chat_id FROM chats WHERE channel_id = ? AND native_chat_id = ?", (channel_id, native_chat_id)
    ).fetchone()
    return int(row[0]) if row else None


def _expires_at(ttl: float | None) -> float | None:
    # Wall-clock time, not monotonic: other processes compare against it.
    return None if ttl is None else time.time() + ttl
