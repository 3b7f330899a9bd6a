"""The SQLite queue's schema (component `queue` of `bridge.store.migrations`) and row conversions.

Steps are append-only: never edit or reorder a released step, add a new one.
"""

from __future__ import annotations

from collections.abc import Sequence

from bridge.queue.base import DeadLetter
from bridge.store.migrations import Migrations, sql

__all__ = ["DEAD_COLUMNS", "QUEUE_MIGRATIONS", "dead_letter_from_row", "parse_dead_letter_ids"]

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
