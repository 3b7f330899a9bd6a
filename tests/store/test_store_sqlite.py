"""What only the SQLite store has: a file, WAL, numbered migrations shared by components."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from bridge.store import StoreError
from bridge.store.migrations import (
    MigrationError,
    Migrations,
    applied_versions,
    connect,
    current_version,
    migrate,
    sql,
)
from bridge.store.sqlite import STORE_MIGRATIONS, SqliteStore


def _rows(path: Path, query: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


def _queue_migrations(*extra: str) -> Migrations:
    """A stand-in for another component keeping its tables in the same file."""

    def seed(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO items (body) VALUES ('seeded by step 2')")

    return Migrations(
        "queue",
        [
            sql("CREATE TABLE items (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"),
            seed,
            *(sql(s) for s in extra),
        ],
    )


async def test_open_creates_the_file_and_its_folders_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "bridge.db"
    store = SqliteStore(path, busy_timeout=3)
    await store.open()
    try:
        assert path.is_file()
        assert _rows(path, "PRAGMA journal_mode") == [("wal",)]
        await store.chat_id_for("tg", "1")
    finally:
        await store.close()


async def test_the_store_migrations_run_once_and_are_recorded(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    for _ in range(3):
        store = SqliteStore(path)
        await store.open()
        await store.close()
    rows = _rows(path, "SELECT component, version FROM schema_migrations ORDER BY component, version")
    assert rows == [("store", n) for n in range(1, STORE_MIGRATIONS.latest + 1)]
    tables = {row[0] for row in _rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"chats", "visitors", "kv", "schema_migrations"} <= tables


async def test_another_component_owns_its_own_migration_list(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    for _ in range(2):
        store = SqliteStore(path, extra_migrations=[_queue_migrations()])
        await store.open()
        await store.close()
    assert _rows(path, "SELECT body FROM items") == [("seeded by step 2",)]

    # a later release appends a step: only that one runs
    store = SqliteStore(path, extra_migrations=[_queue_migrations("ALTER TABLE items ADD COLUMN due REAL")])
    await store.open()
    await store.close()
    assert _rows(path, "SELECT body, due FROM items") == [("seeded by step 2", None)]
    assert _rows(path, "SELECT version FROM schema_migrations WHERE component = 'queue'") == [
        (1,),
        (2,),
        (3,),
    ]
    assert _rows(path, "SELECT MAX(version) FROM schema_migrations WHERE component = 'store'") == [
        (STORE_MIGRATIONS.latest,)
    ]


def test_migrate_on_a_connection_of_its_own(tmp_path: Path) -> None:
    conn = connect(tmp_path / "bridge.db", busy_timeout=2)
    try:
        migrations = _queue_migrations()
        assert current_version(conn, "queue") == 0
        assert applied_versions(conn, "queue") == []
        assert migrate(conn, migrations) == 2
        assert migrate(conn, migrations) == 0
        assert applied_versions(conn, "queue") == [1, 2]
        assert current_version(conn, "store") == 0  # components do not see each other's versions
    finally:
        conn.close()


async def test_a_failing_migration_leaves_the_schema_untouched(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    broken = Migrations(
        "queue", [sql("CREATE TABLE items (id INTEGER PRIMARY KEY)"), sql("INSERT INTO missing VALUES (1)")]
    )
    store = SqliteStore(path, extra_migrations=[broken])
    with pytest.raises(MigrationError, match=r"'queue' #2 failed: no such table: missing"):
        await store.open()
    with pytest.raises(StoreError, match="not open"):
        await store.chat_id_for("tg", "1")
    assert _rows(path, "SELECT name FROM sqlite_master WHERE name = 'items'") == []
    assert _rows(path, "SELECT version FROM schema_migrations WHERE component = 'queue'") == []


async def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    store = SqliteStore(path, extra_migrations=[_queue_migrations("SELECT 1")])
    await store.open()
    await store.close()
    older = SqliteStore(path, extra_migrations=[_queue_migrations()])
    with pytest.raises(MigrationError, match="'queue' is at version 3, newer than the 2"):
        await older.open()


async def test_an_unusable_path_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create the folder"):
        await SqliteStore(blocker / "bridge.db").open()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"garbage\.db.*not a database"):
        await SqliteStore(garbage).open()


async def test_expired_key_values_are_purged_lazily(tmp_path: Path) -> None:
    path = tmp_path / "bridge.db"
    store = SqliteStore(path, purge_interval=0)
    await store.open()
    try:
        await store.kv_set("ns", "gone", b"1", ttl=0.05)
        await store.kv_set("ns", "stays", b"2", ttl=60)
        assert _rows(path, "SELECT key FROM kv ORDER BY key") == [("gone",), ("stays",)]
        await asyncio.sleep(0.1)
        await store.kv_set("ns", "other", b"3")
        assert _rows(path, "SELECT key FROM kv ORDER BY key") == [("other",), ("stays",)]
    finally:
        await store.close()
