"""The SQLite queue's tables: their schema (component `queue` of `bridge.store.migrations`), the statements
shared by several operations, and the operators' reads and moves. Every function runs on the caller's
connection, inside the caller's transaction where it writes.

Schema steps are append-only: never edit or reorder a released step, add a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from bridge.handoff import DeliveryStatus
from bridge.queue.base import Claim, DeadLetter, Entry
from bridge.store.migrations import Migrations, sql

__all__ = [
    "DEAD_COLUMNS",
    "QUEUE_MIGRATIONS",
    "dead_letter_from_row",
    "held_lane",
    "insert_entries",
    "lane_id_for",
    "parse_dead_letter_ids",
    "read_status",
    "release_lane",
    "requeue_dead_letters",
]

QUEUE_MIGRATIONS = Migrations(
    component="queue",
    steps=(
        sql(
            """
            CREATE TABLE queue_lanes (
                lane_id INTEGER PRIMARY KEY,
                direction TEXT NOT NULL,
                channel_id TEXT NOT NULL,
                chat_id INTEGER NOT NULL,
                ready_at REAL NOT NULL,
                lease_token TEXT,
                last_error TEXT,
                UNIQUE (direction, channel_id, chat_id)
            )
            """,
            "CREATE INDEX queue_lanes_ready ON queue_lanes (ready_at)",
            """
            CREATE TABLE queue_items (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                lane_id INTEGER NOT NULL,
                dedupe_key TEXT NOT NULL,
                body BLOB NOT NULL,
                enqueued_at REAL NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX queue_items_lane ON queue_items (lane_id, seq)",
            """
            CREATE TABLE queue_dedupe (
                direction TEXT NOT NULL,
                channel_id TEXT NOT NULL,
                dedupe_key TEXT NOT NULL,
                expires_at REAL NOT NULL,
                PRIMARY KEY (direction, channel_id, dedupe_key)
            ) WITHOUT ROWID
            """,
            "CREATE INDEX queue_dedupe_expires ON queue_dedupe (expires_at)",
            """
            CREATE TABLE queue_dead (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                direction TEXT NOT NULL,
                channel_id TEXT NOT NULL,
                chat_id INTEGER NOT NULL,
                dedupe_key TEXT NOT NULL,
                body BLOB NOT NULL,
                enqueued_at REAL NOT NULL,
                attempts INTEGER NOT NULL,
                reason TEXT NOT NULL,
                dead_at REAL NOT NULL
            )
            """,
            "CREATE INDEX queue_dead_channel ON queue_dead (channel_id, direction)",
        ),
    ),
)

DEAD_COLUMNS = (
    "id, direction, channel_id, chat_id, dedupe_key, body, enqueued_at, dead_at, attempts, reason"
)


def parse_dead_letter_ids(values: Sequence[str]) -> list[int]:
    """The dead-letter ids that can exist here (decimal numbers); anything else is simply not found."""
    return sorted({int(value) for value in values if value.isascii() and value.isdigit() and len(value) <= 18})


def dead_letter_from_row(row: tuple[object, ...]) -> DeadLetter:
    dead_id, direction, channel_id, chat_id, dedupe_key, body, enqueued_at, dead_at, attempts, reason = row
    return DeadLetter(
        id=str(dead_id),
        direction=direction,  # type: ignore[arg-type]
        channel_id=str(channel_id),
        chat_id=int(chat_id),  # type: ignore[call-overload]
        dedupe_key=str(dedupe_key),
        body=bytes(body),  # type: ignore[call-overload]
        enqueued_at=float(enqueued_at),  # type: ignore[arg-type]
        dead_at=float(dead_at),  # type: ignore[arg-type]
        attempts=int(attempts),  # type: ignore[call-overload]
        reason=str(reason),
    )


def insert_entries(conn: sqlite3.Connection, entries: list[Entry], now: float, dedupe_until: float) -> int:
    """Store one put's entries at their lanes' tails, skipping those whose dedupe key was seen; how many."""
    stored = 0
    for (direction, channel_id, chat_id), dedupe_key, body in entries:
        seen = conn.execute(
            """
            INSERT INTO queue_dedupe (direction, channel_id, dedupe_key, expires_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (direction, channel_id, dedupe_key) DO UPDATE SET expires_at = excluded.expires_at
            WHERE queue_dedupe.expires_at <= ?
            """,
            (direction, channel_id, dedupe_key, dedupe_until, now),
        )
        if seen.rowcount == 0:
            continue
        lane_id = lane_id_for(conn, direction, channel_id, chat_id, now)
        conn.execute(
            "INSERT INTO queue_items (lane_id, dedupe_key, body, enqueued_at) VALUES (?, ?, ?, ?)",
            (lane_id, dedupe_key, body, now),
        )
        stored += 1
    return stored


def lane_id_for(conn: sqlite3.Connection, direction: str, channel_id: str, chat_id: int, now: float) -> int:
    """The lane's row, created ready at `now` when the lane had no items."""
    # One statement either way: the no-op update of a column no index holds makes RETURNING give the id of a
    # lane that exists already.
    row = conn.execute(
        "INSERT INTO queue_lanes (direction, channel_id, chat_id, ready_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (direction, channel_id, chat_id) DO UPDATE SET last_error = queue_lanes.last_error "
        "RETURNING lane_id",
        (direction, channel_id, chat_id, now),
    ).fetchone()
    return int(row[0])


def requeue_dead_letters(conn: sqlite3.Connection, ids: list[int], now: float) -> list[str]:
    """Move dead letters back to their lanes' tails in id order (see `Queue.replay`); the ids moved."""
    marks = ",".join("?" * len(ids))
    rows = conn.execute(
        f"SELECT id, direction, channel_id, chat_id, dedupe_key, body FROM queue_dead "
        f"WHERE id IN ({marks}) ORDER BY id",
        ids,
    ).fetchall()
    for dead_id, direction, channel_id, chat_id, dedupe_key, body in rows:
        lane_id = lane_id_for(conn, direction, channel_id, chat_id, now)
        conn.execute(
            "INSERT INTO queue_items (lane_id, dedupe_key, body, enqueued_at) VALUES (?, ?, ?, ?)",
            (lane_id, dedupe_key, body, now),
        )
        conn.execute("DELETE FROM queue_dead WHERE id = ?", (dead_id,))
    return [str(row[0]) for row in rows]


def read_status(conn: sqlite3.Connection, now: float) -> list[DeliveryStatus]:
    rows: dict[tuple[str, str], dict[str, float | int | None]] = {}
    conn.execute("BEGIN")  # one snapshot for the three reads
    try:
        for direction, channel_id, count, oldest in conn.execute(
            "SELECT l.direction, l.channel_id, COUNT(*), MIN(i.enqueued_at) FROM queue_items i "
            "JOIN queue_lanes l ON l.lane_id = i.lane_id GROUP BY l.direction, l.channel_id"
        ):
            rows.setdefault((channel_id, direction), {}).update(queued=count, oldest_age=now - oldest)
        for direction, channel_id, count in conn.execute(
            "SELECT direction, channel_id, COUNT(*) FROM queue_lanes "
            "WHERE lease_token IS NOT NULL AND ready_at > ? GROUP BY direction, channel_id",
            (now,),
        ):
            rows.setdefault((channel_id, direction), {})["in_flight"] = count
        for direction, channel_id, count in conn.execute(
            "SELECT direction, channel_id, COUNT(*) FROM queue_dead GROUP BY direction, channel_id"
        ):
            rows.setdefault((channel_id, direction), {})["dead_letters"] = count
    finally:
        conn.execute("COMMIT")
    result = []
    for (channel_id, direction), values in sorted(rows.items()):
        total = int(values.get("queued") or 0)
        in_flight = int(values.get("in_flight") or 0)
        oldest = values.get("oldest_age")
        result.append(
            DeliveryStatus(
                channel_id=channel_id,
                direction=direction,  # type: ignore[arg-type]
                queued=total - in_flight,
                in_flight=in_flight,
                oldest_age=None if oldest is None else max(0.0, float(oldest)),
                dead_letters=int(values.get("dead_letters") or 0),
            )
        )
    return result


def release_lane(conn: sqlite3.Connection, lane_id: int, now: float) -> None:
    """After the head left: the lane is gone if empty, else ready at once (behind lanes already waiting).
    Most lanes hold one message at a time, so the delete comes first: one statement in the common case."""
    gone = conn.execute(
        "DELETE FROM queue_lanes WHERE lane_id = ? AND NOT EXISTS (SELECT 1 FROM queue_items WHERE lane_id = ?)",
        (lane_id, lane_id),
    ).rowcount
    if not gone:
        conn.execute(
            "UPDATE queue_lanes SET ready_at = ?, lease_token = NULL, last_error = NULL WHERE lane_id = ?",
            (now, lane_id),
        )


def held_lane(conn: sqlite3.Connection, claim: Claim) -> int | None:
    """The lane of the claimed item while the claim still holds it, else None."""
    row = conn.execute(
        "SELECT l.lane_id FROM queue_items i JOIN queue_lanes l ON l.lane_id = i.lane_id "
        "WHERE i.seq = ? AND l.lease_token = ?",
        (int(claim.item_id), claim.token),
    ).fetchone()
    return None if row is None else int(row[0])
