"""The SQLite queue: the single-node default, in the bridge's own database file.

Tables (component `queue` of `bridge.store.migrations`, so they sit beside the store's in one file):

* `queue_lanes`: one row per lane that has items. `ready_at` is when the lane may next be claimed: the head's
  due time, or while it is held, the end of the lease. Claiming is therefore one indexed lookup
  (`ready_at <= now`), and a claimer that died needs no sweeper: its lease simply runs out.
* `queue_items`: the items, `seq` ascending within a lane is the delivery order.
* `queue_dedupe`: dedupe keys with their expiry; `queue_dead`: the dead letters.

Calls run one at a time on one connection, on the event loop (`bridge.store.sqlite_runner`); other processes
on the same file are kept in step by WAL, the busy timeout and `BEGIN IMMEDIATE`.
Writes that arrive together share one transaction (group commit): puts, made again one by one when one of
them fails, so each stays all-or-none on its own; claims of concurrent workers, each taking the next ready
lane; and acks, retries and dead letters, with the claim a worker makes right after its ack (`ack_and_claim`)
in the same transaction as that ack. Each commit writes every page it changed to the log, so under load this
multiplies the drain rate several times.

Puts and replays return only once the write-ahead log holding them is fsynced (taken over means durable, even
across a power cut; concurrent puts share the fsync); claims, acks and retries do not wait for one, as losing
one of those to a power cut only means delivering an item again, which at-least-once allows.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from secrets import token_hex
from typing import TypeVar, cast

from bridge.handoff import DeliveryStatus, Direction, Item
from bridge.queue.base import (
    DEFAULT_DEDUPE_TTL,
    Claim,
    Clock,
    DeadLetter,
    Entry,
    Queue,
    QueueError,
    entries_for,
)
from bridge.queue.batching import GroupCommit
from bridge.queue.sqlite_tables import (
    DEAD_COLUMNS,
    QUEUE_MIGRATIONS,
    dead_letter_from_row,
    held_lane,
    insert_entries,
    parse_dead_letter_ids,
    read_status,
    release_lane,
    requeue_dead_letters,
)
from bridge.store.base import StoreError
from bridge.store.migrations import connect, migrate, transaction
from bridge.store.sqlite_runner import SqliteRunner, is_busy

__all__ = ["QUEUE_MIGRATIONS", "SqliteQueue"]

T = TypeVar("T")

# A write of the delivery workers, run inside the shared transaction with (connection, now): for a change to a
# claimed item, True when made and False when the claim had lost its lane.
_Change = Callable[[sqlite3.Connection, float], object]

class SqliteQueue(Queue):
    """`path` (and its folders) is created on `open()`; it may be the store's own file."""

    def __init__(
        self,
        path: str | Path,
        *,
        dedupe_ttl: float = DEFAULT_DEDUPE_TTL,
        clock: Clock = time.time,
        busy_timeout: float = 10.0,
        purge_interval: float = 60.0,
    ) -> None:
        super().__init__(dedupe_ttl=dedupe_ttl, clock=clock)
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self.purge_interval = purge_interval
        self._runner = SqliteRunner(self.path, self._connect, busy_timeout=busy_timeout, name="queue")
        # Concurrent writes share a transaction (see the module docstring).
        self._puts: GroupCommit[list[Entry], int] = GroupCommit(self._flush_puts)
        self._claims: GroupCommit[float, Claim | None] = GroupCommit(self._flush_claims)
        self._settles: GroupCommit[_Change, object] = GroupCommit(self._flush_settles)
        self._next_purge = 0.0

    def __repr__(self) -> str:
        return f"SqliteQueue({str(self.path)!r})"

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        if not self._runner.is_open:
            try:
                await self._runner.open()
            except sqlite3.Error as exc:
                raise QueueError(f"the queue database {str(self.path)!r} failed: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise QueueError(f"cannot create the folder of the queue database {str(self.path)!r}: {exc}") from exc
        if sqlite3.sqlite_version_info < (3, 35):  # RETURNING, used by claims
            raise QueueError(f"the queue needs SQLite 3.35 or newer; this Python has {sqlite3.sqlite_version}")
        conn = connect(self.path, busy_timeout=self.busy_timeout)
        try:
            migrate(conn, QUEUE_MIGRATIONS)
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        for group in (self._puts, self._claims, self._settles):
            await group.wait_idle()
        await self._runner.close()

    async def _durable(self, fn: Callable[[], T]) -> T:
        """On the event loop, returning once the commit is on disk: for puts and replays."""
        self._db  # noqa: B018 -- fail fast when not open
        try:
            return await self._runner.durable(lambda _conn: fn())
        except (sqlite3.Error, StoreError, OSError) as exc:
            raise QueueError(f"the queue database {str(self.path)!r} failed: {exc}") from exc

    async def _inline(self, fn: Callable[[], T]) -> T:
        """On the event loop: for the short calls of the delivery workers (see `SqliteRunner`)."""
        self._db  # noqa: B018 -- fail fast when not open
        try:
            return await self._runner.inline(lambda _conn: fn())
        except (sqlite3.Error, StoreError) as exc:
            raise QueueError(f"the queue database {str(self.path)!r} failed: {exc}") from exc

    @property
    def _db(self) -> sqlite3.Connection:
        conn = self._runner.connection
        if conn is None:
            raise QueueError(f"the queue {str(self.path)!r} is not open")
        return conn

    # ------------------------------------------------------------------ producers

    async def put(self, items: Sequence[Item]) -> int:
        if not items:
            return 0
        self._db  # noqa: B018 -- fail fast when not open
        return await self._puts.submit(entries_for(items))

    async def _flush_puts(self, batches: list[list[Entry]]) -> list[int | BaseException]:
        return await self._durable(lambda: self._put_sync(batches))

    def _put_sync(self, batches: list[list[Entry]]) -> list[int | BaseException]:
        """All the puts in one transaction. If one fails, that undid them all: they are then made again one
        transaction each, so that only the failing put fails (SQL errors are rare; savepoints around every
        put cost two statements each on every batch)."""
        conn = self._db
        now = self.clock()
        until = now + self.dedupe_ttl
        try:
            with transaction(conn):
                stored: list[int | BaseException] = [insert_entries(conn, entries, now, until) for entries in batches]
                purge = now >= self._next_purge
                if purge:
                    conn.execute("DELETE FROM queue_dedupe WHERE expires_at <= ?", (now,))
        except sqlite3.Error as exc:
            if is_busy(exc) or len(batches) == 1:  # busy: not this batch's fault, it goes to the thread and waits
                raise
        else:
            if purge:
                self._next_purge = now + self.purge_interval
            return stored
        results: list[int | BaseException] = []
        for entries in batches:
            try:
                with transaction(conn):
                    results.append(insert_entries(conn, entries, now, until))
            except sqlite3.Error as exc:
                if is_busy(exc):
                    raise
                results.append(QueueError(f"the queue database {str(self.path)!r} failed: {exc}"))
        return results

    # ------------------------------------------------------------------ consumers

    async def claim(self, *, lease: float) -> Claim | None:
        self._db  # noqa: B018 -- fail fast when not open
        return await self._claims.submit(lease)

    async def _flush_claims(self, leases: list[float]) -> list[Claim | BaseException | None]:
        return await self._inline(lambda: self._claim_sync(leases))

    def _claim_sync(self, leases: list[float]) -> list[Claim | BaseException | None]:
        """One claim per waiting claimer, all in one transaction: each takes the next ready lane."""
        conn = self._db
        now = self.clock()
        claims: list[Claim | BaseException | None] = [None] * len(leases)
        # The common idle case reads without taking the write lock.
        if conn.execute("SELECT 1 FROM queue_lanes WHERE ready_at <= ? LIMIT 1", (now,)).fetchone() is None:
            return claims
        with transaction(conn):
            for n, lease in enumerate(leases):
                claims[n] = claim = self._claim_one(conn, now, lease)
                if claim is None:
                    break
        return claims

    @staticmethod
    def _claim_one(conn: sqlite3.Connection, now: float, lease: float) -> Claim | None:
        # Two statements (each finds and changes its row, RETURNING what the claim needs) instead of four.
        while True:
            token = token_hex(12)
            lanes = conn.execute(
                "UPDATE queue_lanes SET ready_at = ?, lease_token = ? WHERE lane_id = (SELECT lane_id FROM "
                "queue_lanes WHERE ready_at <= ? ORDER BY ready_at, lane_id LIMIT 1) "
                "RETURNING lane_id, direction, channel_id, chat_id, last_error",
                (now + lease, token, now),
            ).fetchall()
            if not lanes:
                return None
            lane_id, direction, channel_id, chat_id, last_error = lanes[0]
            heads = conn.execute(
                "UPDATE queue_items SET attempts = attempts + 1 WHERE seq = (SELECT seq FROM queue_items "
                "WHERE lane_id = ? ORDER BY seq LIMIT 1) RETURNING seq, dedupe_key, body, enqueued_at, attempts",
                (lane_id,),
            ).fetchall()
            if not heads:  # cannot happen as lanes are deleted when emptied; heal if it does
                conn.execute("DELETE FROM queue_lanes WHERE lane_id = ?", (lane_id,))
                continue
            seq, dedupe_key, body, enqueued_at, attempts = heads[0]
            return Claim(
                item_id=str(seq),
                token=token,
                direction=direction,
                channel_id=channel_id,
                chat_id=chat_id,
                dedupe_key=dedupe_key,
                body=bytes(body),
                enqueued_at=enqueued_at,
                attempts=attempts,
                last_error=last_error,
            )

    async def extend(self, claim: Claim, *, lease: float) -> bool:
        def run() -> bool:
            cursor = self._db.execute(
                "UPDATE queue_lanes SET ready_at = ? WHERE lease_token = ? "
                "AND lane_id = (SELECT lane_id FROM queue_items WHERE seq = ?)",
                (self.clock() + lease, claim.token, int(claim.item_id)),
            )
            return cursor.rowcount == 1

        return await self._inline(run)

    async def ack(self, claim: Claim) -> bool:
        return await self._settle(lambda conn, now: self._ack_sync(conn, now, claim))

    async def ack_and_claim(self, claim: Claim, *, lease: float) -> tuple[bool, Claim | None]:
        # One transaction, so one commit per delivered message instead of two; an SQL error undoes both, so no
        # claim is left held when the ack failed.
        def run(conn: sqlite3.Connection, now: float) -> tuple[bool, Claim | None]:
            return self._ack_sync(conn, now, claim), self._claim_one(conn, now, lease)

        self._db  # noqa: B018 -- fail fast when not open
        return cast(tuple[bool, Claim | None], await self._settles.submit(run))

    def _ack_sync(self, conn: sqlite3.Connection, now: float, claim: Claim) -> bool:
        # Finding the held head and deleting it is one statement: acks are as frequent as messages.
        held = conn.execute(
            "DELETE FROM queue_items WHERE seq = ? AND EXISTS (SELECT 1 FROM queue_lanes l "
            "WHERE l.lane_id = queue_items.lane_id AND l.lease_token = ?) RETURNING lane_id",
            (int(claim.item_id), claim.token),
        ).fetchall()
        if held:
            release_lane(conn, int(held[0][0]), now)
        return bool(held)

    async def retry_at(self, claim: Claim, due: float, reason: str) -> bool:
        def run(conn: sqlite3.Connection, now: float) -> bool:
            lane_id = held_lane(conn, claim)
            if lane_id is not None:
                conn.execute(
                    "UPDATE queue_lanes SET ready_at = ?, lease_token = NULL, last_error = ? WHERE lane_id = ?",
                    (due, reason, lane_id),
                )
            return lane_id is not None

        return await self._settle(run)

    async def dead_letter(self, claim: Claim, reason: str) -> bool:
        def run(conn: sqlite3.Connection, now: float) -> bool:
            lane_id = held_lane(conn, claim)
            if lane_id is None:
                return False
            conn.execute(
                "INSERT INTO queue_dead (direction, channel_id, chat_id, dedupe_key, body, enqueued_at, "
                "attempts, reason, dead_at) SELECT l.direction, l.channel_id, l.chat_id, i.dedupe_key, "
                "i.body, i.enqueued_at, i.attempts, ?, ? FROM queue_items i "
                "JOIN queue_lanes l ON l.lane_id = i.lane_id WHERE i.seq = ?",
                (reason, now, int(claim.item_id)),
            )
            conn.execute("DELETE FROM queue_items WHERE seq = ?", (int(claim.item_id),))
            release_lane(conn, lane_id, now)
            return True

        return await self._settle(run)

    async def _settle(self, change: Callable[[sqlite3.Connection, float], bool]) -> bool:
        self._db  # noqa: B018 -- fail fast when not open
        return cast(bool, await self._settles.submit(change))

    async def _flush_settles(self, batch: list[_Change]) -> list[object | BaseException]:
        return await self._inline(lambda: self._settle_sync(batch))

    def _settle_sync(self, batch: list[_Change]) -> list[object | BaseException]:
        """Apply the writes in one transaction. A change to a claimed item is made only if its claim still
        holds its lane (it returns whether it did). An SQL error undoes the whole batch, and every caller
        gets it."""
        now = self.clock()
        with transaction(self._db) as conn:
            return [change(conn, now) for change in batch]

    async def next_ready_at(self) -> float | None:
        def run() -> float | None:
            row = self._db.execute("SELECT MIN(ready_at) FROM queue_lanes").fetchone()
            return None if row[0] is None else float(row[0])

        return await self._inline(run)

    # ------------------------------------------------------------------ operators

    async def status(self) -> list[DeliveryStatus]:
        return await self._inline(lambda: read_status(self._db, self.clock()))

    async def dead_letters(
        self, *, channel_id: str | None = None, direction: Direction | None = None, limit: int = 100
    ) -> list[DeadLetter]:
        def run() -> list[DeadLetter]:
            rows = self._db.execute(
                f"SELECT {DEAD_COLUMNS} FROM queue_dead WHERE (?1 IS NULL OR channel_id = ?1) "
                "AND (?2 IS NULL OR direction = ?2) ORDER BY id LIMIT ?3",
                (channel_id, direction, limit),
            ).fetchall()
            return [dead_letter_from_row(row) for row in rows]

        return await self._inline(run)

    async def get_dead_letter(self, dead_letter_id: str) -> DeadLetter | None:
        ids = parse_dead_letter_ids([dead_letter_id])
        if not ids:
            return None

        def run() -> DeadLetter | None:
            row = self._db.execute(f"SELECT {DEAD_COLUMNS} FROM queue_dead WHERE id = ?", ids).fetchone()
            return None if row is None else dead_letter_from_row(row)

        return await self._inline(run)

    async def replay(self, dead_letter_ids: Sequence[str]) -> list[str]:
        ids = parse_dead_letter_ids(dead_letter_ids)
        return await self._durable(lambda: self._replay_sync(ids)) if ids else []

    def _replay_sync(self, ids: list[int]) -> list[str]:
        with transaction(self._db) as conn:
            return requeue_dead_letters(conn, ids, self.clock())

    async def drop(self, dead_letter_ids: Sequence[str]) -> list[str]:
        ids = parse_dead_letter_ids(dead_letter_ids)
        if not ids:
            return []

        def run() -> list[str]:
            conn = self._db
            with transaction(conn):
                marks = ",".join("?" * len(ids))
                found = conn.execute(f"SELECT id FROM queue_dead WHERE id IN ({marks}) ORDER BY id", ids)
                dropped = [int(row[0]) for row in found]
                conn.execute(f"DELETE FROM queue_dead WHERE id IN ({marks})", ids)
            return [str(dead_id) for dead_id in dropped]

        return await self._durable(run)
