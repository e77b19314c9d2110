"""Resuming after pruning, checked against a model: a property test on a real Postgres.

Writers open transactions, publish journal rows, take a transaction id without a
row, commit or roll back, in any order. A model listener reads what committed
since its last read, in id order, as gateway/listener.py delivers (the test runs
every step in turn, so the commit order it drives is the order Postgres saw).
Prunes run with any row limit and batch size; rows are aged by moving created_at
back, which is all the age limit reads. A client's history is any prefix of the
delivery: up to a delivered event (its cursor is that id) or up to a read (its
cursor is the hub's position then, the preamble of a fresh client). A resume runs
the real SQL as gateway/journal.py's Replay does (RESUME_POINT, resume_verdict,
REPLAY_LATE and REPLAY_AFTER in one REPEATABLE READ transaction).

Properties: every resume is a refetch or replays every committed event the client
had not seen (never a silent gap), and no cursor a client was given is unknown; the
position after a read is the newest delivered id, pruned or not; with only the age
limit pruning and no writer open, an up-to-date client resumes, or is refetched
once and then resumes from the refetch's cursor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.db import SQL_FILES, read_sql
from gateway.journal import (
    BEGIN_REPLAY,
    CURRENT_POSITION,
    END_READ,
    PAGE_ROWS,
    REPLAY_AFTER,
    REPLAY_LATE,
    RESUME_POINT,
    ResumePoint,
    resume_verdict,
)

TOPIC = "t"
WRITERS = 3
NO_ROW_LIMIT = 10**9

Op = tuple[object, ...]


@dataclass
class Resumed:
    refetch: str | None
    resume_from: int
    ids: list[int]


def resume(conn: psycopg2.extensions.connection, cursor: int) -> Resumed:
    """What a resume from ``cursor`` sends, decided and read as journal.Replay does."""
    with conn.cursor() as cur:
        cur.execute(BEGIN_REPLAY)
        cur.execute(RESUME_POINT, {"cursor": cursor})
        point = ResumePoint.from_row(cur.fetchone())
        verdict = resume_verdict(cursor, point)
        ids: list[int] = []
        if verdict.refetch is None:
            params = {"cursor": cursor, "tx_xmin": str(verdict.tx_xmin), "snap": point.snapshot.text, "topics": [TOPIC]}
            for query, after in ((REPLAY_LATE, 0), (REPLAY_AFTER, cursor)):
                while True:
                    cur.execute(query, {**params, "after": after})
                    rows = cur.fetchall()
                    ids += [int(row[0]) for row in rows]
                    if len(rows) < PAGE_ROWS:
                        break
                    after = int(rows[-1][0])
        cur.execute(END_READ)
    return Resumed(verdict.refetch, point.newest, ids)


@dataclass
class Writer:
    conn: psycopg2.extensions.connection
    rows: list[int] = field(default_factory=list)
    open: bool = False


class Run:
    """One example: the database's writers and the model of what was delivered."""

    def __init__(self, conns: list[psycopg2.extensions.connection]) -> None:
        self.row_limited = False  # a prune had a row limit: up-to-date clients may refetch again
        self.admin, *writers = conns
        with self.admin.cursor() as cur:
            cur.execute(
                "TRUNCATE gateway.journal RESTART IDENTITY;"
                "DELETE FROM gateway.retention; INSERT INTO gateway.retention DEFAULT VALUES"
            )
        self.writers = [Writer(conn) for conn in writers]
        self.committed: set[int] = set()
        self.unread: list[int] = []  # committed since the last read
        self.lost: set[int] = set()  # committed, and pruned before any read: delivered to no one
        self.delivered: list[int] = []  # in delivery order
        self.position = 0  # the hub's: highest id delivered
        self.reads: list[tuple[int, int]] = [(0, 0)]  # (events delivered, position) after each read

    def sql(self, query: str, params: object = None) -> list[tuple[object, ...]]:
        with self.admin.cursor() as cur:
            cur.execute(query, params)
            return list(cur.fetchall()) if cur.description is not None else []

    def apply(self, op: Op) -> None:
        kind = op[0]
        if kind in ("write", "write_commit"):
            _, w, n = op
            writer = self.writers[int(w)]  # type: ignore[call-overload]
            with writer.conn.cursor() as cur:
                cur.execute("SELECT gateway.publish(%s, NULL) FROM generate_series(1, %s)", (TOPIC, n))
                writer.rows += [int(row[0]) for row in cur.fetchall()]
            writer.open = True
            if kind == "write_commit":
                self.apply(("commit", w))
        elif kind == "xid":  # a transaction that has written, but not to the journal
            writer = self.writers[int(op[1])]  # type: ignore[call-overload]
            with writer.conn.cursor() as cur:
                cur.execute("SELECT pg_current_xact_id()")
            writer.open = True
        elif kind in ("commit", "rollback"):
            writer = self.writers[int(op[1])]  # type: ignore[call-overload]
            if not writer.open:
                return
            if kind == "commit":
                writer.conn.commit()
                self.committed.update(writer.rows)
                self.unread += writer.rows
            else:
                writer.conn.rollback()
            writer.rows, writer.open = [], False
        elif kind == "read":
            self.read()
        elif kind == "restart":  # a gateway (re)started now: its listener's first position
            self.read()
            self.position = int(self.sql(CURRENT_POSITION)[0][1])
        elif kind == "age":  # the rows at offset .. offset+count in id order become old
            _, offset, count = op
            self.sql(
                "UPDATE gateway.journal SET created_at = created_at - interval '1 day'"
                " WHERE id IN (SELECT id FROM gateway.journal ORDER BY id OFFSET %s LIMIT %s)",
                (offset, count),
            )
        elif kind == "prune":
            _, max_rows, batch, rounds, quiet = op
            if quiet:  # a quiet period longer than the retention: every committed row is old
                self.sql("UPDATE gateway.journal SET created_at = created_at - interval '1 day'")
            rows = NO_ROW_LIMIT if max_rows is None else max_rows
            self.row_limited |= max_rows is not None
            for _ in range(int(rounds)):  # type: ignore[call-overload]
                (deleted,) = self.sql("SELECT gateway.prune(interval '1 hour', %s, %s)", (rows, batch))[0]
                if deleted == 0:
                    break
        elif kind == "resume":
            self.check_resume(int(op[1]))  # type: ignore[call-overload]
        elif kind == "up_to_date":
            self.check_up_to_date()
        else:  # pragma: no cover
            raise AssertionError(op)

    def read(self) -> None:
        """The listener's read: what committed since the last one and is still there, in id order."""
        kept = {int(id_) for (id_,) in self.sql("SELECT id FROM gateway.journal WHERE id = ANY(%s)", (self.unread,))}
        self.lost.update(set(self.unread) - kept)
        self.delivered += sorted(kept)
        self.unread = []
        if self.delivered:
            self.position = max(self.position, max(self.delivered))
        self.reads.append((len(self.delivered), self.position))
        # what a listener started now would take as its position: the newest committed id
        (_, current) = self.sql(CURRENT_POSITION)[0]
        newest = max(self.committed, default=0)
        assert int(current) == newest, f"a listener started now would take position {current}, not {newest}"

    def histories(self) -> list[tuple[int, set[int]]]:
        """Every (cursor, events seen) a client can have: up to an event, or up to a read."""
        events = [(self.delivered[i], set(self.delivered[: i + 1])) for i in range(len(self.delivered))]
        preambles = [(position, set(self.delivered[:n])) for n, position in self.reads]
        return events + preambles

    def check_resume(self, pick: int) -> None:
        histories = self.histories()
        cursor, seen = histories[pick % len(histories)]
        self.assert_resume(cursor, seen)

    def assert_resume(self, cursor: int, seen: set[int]) -> Resumed:
        got = resume(self.admin, cursor)
        missing = self.committed - self.lost - seen - set(got.ids)
        assert got.refetch != "cursor_unknown", f"cursor {cursor} came from this journal"
        if got.refetch is None:
            assert not missing, f"resume from {cursor} silently skipped {sorted(missing)}"
            assert set(got.ids) <= self.committed
        return got

    def check_up_to_date(self) -> None:
        """With no writer open, a client that saw everything resumes or is refetched once."""
        if any(writer.open for writer in self.writers):
            return
        self.read()
        everything = set(self.delivered)
        cursors = {self.position, self.delivered[-1]} if self.delivered else {0}
        for cursor in sorted(cursors):
            got = self.assert_resume(cursor, everything)
            if got.refetch is not None and not self.row_limited:
                again = self.assert_resume(got.resume_from, everything)
                assert again.refetch is None, (
                    f"an up-to-date client with cursor {cursor} is refetched on every reconnect"
                    f" (resume_from {got.resume_from}: {again.refetch})"
                )

    def finish(self) -> None:
        """End every writer, then check an up-to-date client, before and after a quiet period."""
        for writer in self.writers:
            if writer.open:
                writer.conn.rollback()
                writer.open = False
        self.check_up_to_date()
        self.apply(("prune", None, 5000, 100, True))
        self.check_up_to_date()


WRITER = st.integers(0, WRITERS - 1)

WRITE = st.tuples(st.sampled_from(["write", "write_commit"]), WRITER, st.integers(1, 3))
END = st.tuples(st.sampled_from(["commit", "commit", "rollback"]), WRITER)
QUIET_PRUNE = st.tuples(st.just("prune"), st.none(), st.just(5000), st.just(100), st.just(True))

OPS = st.one_of(
    WRITE,
    WRITE,
    WRITE,
    st.tuples(st.just("xid"), WRITER),
    END,
    END,
    st.tuples(st.just("read")),
    st.tuples(st.just("restart")),
    st.tuples(st.just("age"), st.integers(0, 6), st.integers(1, 20)),
    st.tuples(
        st.just("prune"),
        st.one_of(st.none(), st.none(), st.integers(0, 4)),  # no row limit, or one of a few rows
        st.sampled_from([1, 2, 3, 5000]),  # batch size
        st.sampled_from([1, 100]),  # one round (a gateway stopped in between), or to the end
        st.booleans(),  # after a quiet period: everything is old
    ),
    QUIET_PRUNE,
    QUIET_PRUNE,
    st.tuples(st.just("resume"), st.integers(0, 10**6)),
    st.tuples(st.just("up_to_date")),
)


@pytest.fixture
def schema_dsn(empty_database: str) -> str:
    """A database with the gateway's schema and nothing else."""
    with contextlib.closing(psycopg2.connect(empty_database)) as conn, conn.cursor() as cur:
        conn.autocommit = True
        cur.execute("SET client_min_messages = warning")
        for name in SQL_FILES:
            cur.execute(read_sql(name))
    return empty_database


@pytest.fixture
def conns(schema_dsn: str) -> Iterator[list[psycopg2.extensions.connection]]:
    """An autocommit connection (prunes, resumes, the model's reads) and one per writer."""
    conns = [psycopg2.connect(schema_dsn) for _ in range(1 + WRITERS)]
    conns[0].autocommit = True
    try:
        yield conns
    finally:
        for conn in conns:
            conn.close()


def play(conns: list[psycopg2.extensions.connection], ops: list[Op]) -> None:
    example = Run(conns)
    try:
        for op in ops:
            example.apply(op)
        example.finish()
    finally:
        for conn in conns[1:]:
            conn.rollback()


def test_resume_never_skips_an_event_and_an_up_to_date_client_is_refetched_at_most_once(
    conns: list[psycopg2.extensions.connection],
) -> None:
    @settings(
        max_examples=400,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(ops=st.lists(OPS, min_size=8, max_size=20))
    def check(ops: list[Op]) -> None:
        play(conns, ops)

    check()


# The property test's minimal examples (writers 0, 1, 2; rows are numbered from 1). A
# row's tx_xmin is at or below its own transaction's xid (Postgres counts its own
# xid in its snapshot's xmin), so a transaction's deleted rows count against its
# own cursor unless the prune's record leaves them out.

NEWEST_TX_ROW_PRUNED_BELOW_ANOTHER = [
    ("xid", 0),  # W: an xid below T's
    ("write", 1, 1),  # T: row 1
    ("write_commit", 0, 1),  # W: row 2
    ("write_commit", 1, 1),  # T: row 3, the newest
    ("age", 0, 2),
    ("prune", None, 5000, 100, False),  # rows 1 and 2 go: T's row 1 is not the boundary row (2)
]

WRITER_OPEN_ACROSS_A_QUIET_PERIOD = [
    ("write", 0, 1),  # X: row 1, open
    ("write_commit", 1, 1),  # T: row 2
    ("prune", None, 5000, 100, True),  # row 2 goes (row 1 is not committed): T's row is the boundary
    ("write_commit", 0, 1),  # X: row 3; the quiet period at the end deletes rows 1 and 3
]

EARLIER_BOUNDARY_ABOVE_THE_NEWEST_XMIN = [
    ("xid", 0),  # X: open across two quiet periods, below every later row's xmin
    ("write_commit", 1, 1),  # T: row 1
    ("read",),
    ("prune", None, 5000, 100, True),  # the journal empties: row 1 is the boundary
    ("write_commit", 1, 1),  # U: row 2
    ("read",),
    ("prune", None, 5000, 100, True),  # empties again: T's xid is among the deleted
    ("rollback", 0),
]


@pytest.mark.parametrize(
    "ops",
    [NEWEST_TX_ROW_PRUNED_BELOW_ANOTHER, WRITER_OPEN_ACROSS_A_QUIET_PERIOD, EARLIER_BOUNDARY_ABOVE_THE_NEWEST_XMIN],
    ids=["newest_tx_row_pruned_below_another_tx", "writer_open_across_a_quiet_period", "earlier_boundary"],
)
def test_up_to_date_client_is_not_refetched_on_every_reconnect_after_age_prunes(
    conns: list[psycopg2.extensions.connection], ops: list[Op]
) -> None:
    """A deleted row of another transaction than the newest row's, with an xid at or
    above the newest row's xmin, committed before the newest row: the age limit must
    not leave the newest cursor refused, or each reconnect of an up-to-date client is
    a refetch until a new event is written."""
    play(conns, ops)
