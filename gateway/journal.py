"""Reading the journal: events, snapshots, and the two questions asked of them.

Theory of operation. Journal ids come from a sequence at insert time, so they do
not arrive in commit order: transaction A can take id 5, B take id 6 and commit,
and A commit later. Two readers must never skip A:

* The listener (one per process) asks "what became visible since my last look?".
  It keeps the Postgres snapshot of its last look, P. A row is new iff its writer
  was invisible to P (tx >= P.xmax, or tx in P's in-progress list) and is visible
  to the new snapshot S. This is exact: every committed row is delivered once, no
  matter how ids and commits interleave, and after a reconnect the same question
  catches up on everything committed while the listener was away.

* A resuming client only has an event id N. Each journal row records its writer's
  snapshot xmin; a transaction that could still commit an id below N has a
  transaction id at or above row N's tx_xmin (it was either running when row N's
  writer took its snapshot, or started after). So resume replays rows with id > N
  plus rows below N whose tx >= tx_xmin(N). The second set may repeat events the
  client had: duplicates across a resume carry the same id, as promised.

* Pruning deletes rows a resume might need: everything above a cursor below
  pruned_through, and, for any cursor, a late row (lower id, committed after the
  cursor was delivered) that went with older ones. gateway.prune() records what
  it deleted in gateway.retention; resume_verdict() refuses (refetch) any cursor
  for which a deleted row could be one the replay rule above would send, and
  resumes every other, including a cursor whose own row was the last one pruned.

Everything here is pure data and SQL text except the reads at the end: the
listener's (begin_read, newly_visible, end_read) and a resume's (Replay), which
share one page loop (_pages).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

PAGE_ROWS = 2000

_COLUMNS = 'id, tx::text, topic, table_name, op, pk, "row"::text, old::text'

# The newest id: a journal that pruning emptied keeps its place in pruned_through.
CURRENT_POSITION = """
SELECT pg_current_snapshot()::text,
       greatest((SELECT max(id) FROM gateway.journal), (SELECT pruned_through FROM gateway.retention), 0)"""

# The listener's read runs in one REPEATABLE READ transaction: its snapshot S (the
# first statement's) is the one returned, and every row the cursor yields is visible
# to S. Rows whose writer was invisible to the previous read's snapshot P are the
# new ones; they all have tx >= xmin(P), a range the index on tx finds without
# touching older rows however long the journal is. The cursor hands them over in id
# order, a page at a time, so a million-row statement never sits in memory whole.
BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT pg_current_snapshot()::text"

NEWLY_VISIBLE = f"""
SELECT {_COLUMNS}
  FROM gateway.journal
 WHERE tx >= pg_snapshot_xmin(%(prev)s::pg_snapshot)
   AND (tx >= pg_snapshot_xmax(%(prev)s::pg_snapshot)
        OR tx IN (SELECT pg_snapshot_xip(%(prev)s::pg_snapshot)))
   AND pg_visible_in_snapshot(tx, %(upto)s::pg_snapshot)
   AND id > %(after)s
 ORDER BY id"""

# CLOSE ALL: a read may open the cursor twice (to finish a slice a broken read left);
# otherwise the read's COMMIT closes it, one round trip fewer per read.
OPEN_NEWLY_VISIBLE = (
    f"CLOSE ALL; DECLARE newly_visible NO SCROLL CURSOR FOR {NEWLY_VISIBLE}; FETCH {PAGE_ROWS} FROM newly_visible"
)

FETCH_NEWLY_VISIBLE = f"FETCH {PAGE_ROWS} FROM newly_visible"

END_READ = "COMMIT"

# A resume reads one snapshot from its verdict to its last row.
BEGIN_REPLAY = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

# What resume_verdict() decides on, read in the replay's snapshot (see ResumePoint).
RESUME_POINT = """
SELECT pg_current_snapshot()::text, r.pruned_through,
       greatest((SELECT max(id) FROM gateway.journal), r.pruned_through),
       r.boundary_tx::text, r.boundary_xmin::text, r.late_tx::text, r.second_late_tx::text, r.pruned_snapshot::text,
       below.id, below.tx::text, below.tx_xmin::text
  FROM gateway.retention r
  LEFT JOIN LATERAL (SELECT id, tx, tx_xmin FROM gateway.journal
                      WHERE id <= %(cursor)s ORDER BY id DESC LIMIT 1) below ON true
"""

_TOPIC_FILTER = "(topic = ANY(%(topics)s) OR (pk IS NOT NULL AND topic || '/' || pk = ANY(%(topics)s)))"

# Rows below the cursor that may have committed after it was delivered.
REPLAY_LATE = f"""
SELECT {_COLUMNS}
  FROM gateway.journal
 WHERE tx >= %(tx_xmin)s::xid8 AND id < %(cursor)s AND id > %(after)s
   AND pg_visible_in_snapshot(tx, %(snap)s::pg_snapshot)
   AND {_TOPIC_FILTER}
 ORDER BY id
 LIMIT {PAGE_ROWS}
"""

REPLAY_AFTER = f"""
SELECT {_COLUMNS}
  FROM gateway.journal
 WHERE id > %(after)s
   AND pg_visible_in_snapshot(tx, %(snap)s::pg_snapshot)
   AND {_TOPIC_FILTER}
 ORDER BY id
 LIMIT {PAGE_ROWS}
"""


@dataclass(frozen=True, slots=True)
class Event:
    """One committed change or publish, as the journal holds it (JSON kept as text)."""

    id: int
    tx: int
    topic: str
    table: str | None
    op: str
    pk: str | None
    row: str | None
    old: str | None

    @property
    def topics(self) -> tuple[str, ...]:
        """The topics it is delivered on: the table topic and, for a row, the row topic."""
        if self.pk is None:
            return (self.topic,)
        return (self.topic, f"{self.topic}/{self.pk}")

    @property
    def main_topic(self) -> str:
        """The most specific topic: "todos/42" for a row change, else the topic itself."""
        return self.topics[-1]


def event_from_row(row: Sequence[Any]) -> Event:
    id_, tx, topic, table, op, pk, row_json, old_json = row
    return Event(int(id_), int(tx), topic, table, op, pk, row_json, old_json)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A Postgres ``pg_snapshot``: which transactions had committed when it was taken."""

    xmin: int
    xmax: int
    xip: frozenset[int]
    text: str

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        xmin, xmax, xip = text.split(":")
        return cls(int(xmin), int(xmax), frozenset(int(x) for x in xip.split(",") if x), text)

    def sees(self, tx: int) -> bool:
        """True if transaction ``tx`` (known to have committed) is visible to this snapshot."""
        return tx < self.xmin or (tx < self.xmax and tx not in self.xip)


CURSOR_EXPIRED = "cursor_expired"
CURSOR_UNKNOWN = "cursor_unknown"


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """The facts a resume from a cursor is decided on (RESUME_POINT's row).

    ``below_*`` is the newest journal row at or below the cursor: the cursor's own
    row when it is kept. The rest is gateway.retention (schema.sql says what each
    column means); ``newest`` is the highest id, kept or pruned.
    """

    snapshot: Snapshot
    pruned_through: int
    newest: int
    boundary_tx: int | None
    boundary_xmin: int | None
    late_tx: int | None
    second_late_tx: int | None
    pruned_snapshot: Snapshot | None
    below_id: int | None
    below_tx: int | None
    below_xmin: int | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> ResumePoint:
        snap, pruned, newest, b_tx, b_xmin, late, second_late, pruned_snap, below_id, below_tx, below_xmin = row
        return cls(
            Snapshot.parse(snap),
            int(pruned),
            int(newest),
            _int(b_tx),
            _int(b_xmin),
            _int(late),
            _int(second_late),
            Snapshot.parse(pruned_snap) if pruned_snap is not None else None,
            _int(below_id),
            _int(below_tx),
            _int(below_xmin),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """Resume (``refetch`` is None: replay rows below the cursor with tx >= ``tx_xmin``)
    or refetch, for the reason given."""

    refetch: str | None
    tx_xmin: int = 0


def resume_verdict(cursor: int, point: ResumePoint) -> Verdict:
    """Whether a resume from ``cursor`` can send everything after it, or must refetch.

    Refused: a cursor below pruned_through (events after it were deleted), above
    every id (not from this database), or one for which a deleted row could be a
    late row: its tx at or above the cursor row's tx_xmin, another transaction than
    the cursor's, and the cursor's row committed before that prune (a row the
    prune's snapshot does not see committed after everything it deleted). The
    largest deleted tx other than the cursor's own is late_tx or, when late_tx is
    the cursor's, second_late_tx; so the cursor that names the last pruned row
    resumes: after a quiet period that emptied the journal, that is every
    up-to-date client.
    """
    if cursor < point.pruned_through:
        return Verdict(CURSOR_EXPIRED)
    if cursor > point.newest:
        return Verdict(CURSOR_UNKNOWN)
    pruned = point.pruned_through > 0
    tx: int | None
    xmin: int | None
    if point.below_id == cursor:
        tx, xmin = point.below_tx, point.below_xmin
    elif pruned and cursor == point.pruned_through:
        tx, xmin = point.boundary_tx, point.boundary_xmin
    else:  # an id no committed row has: bound it by the rows around it
        bounds = [x for x in (point.below_xmin, point.boundary_xmin) if x is not None]
        tx, xmin = None, min(bounds) if bounds else (None if pruned else 0)
    risk = point.late_tx if tx is None or tx != point.late_tx else point.second_late_tx
    if risk is not None:
        before_prune = tx is None or point.pruned_snapshot is None or point.pruned_snapshot.sees(tx)
        if before_prune and (xmin is None or risk >= xmin):
            return Verdict(CURSOR_EXPIRED)
    return Verdict(None, xmin or 0)


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))


async def begin_read(cur: Any) -> Snapshot:
    """Open the listener's read transaction on ``cur``'s connection; return its snapshot."""
    await cur.execute(BEGIN_READ)
    (snap_text,) = await cur.fetchone()
    return Snapshot.parse(snap_text)


async def newly_visible(cur: Any, prev: Snapshot, upto: Snapshot, after: int = 0) -> AsyncIterator[list[Event]]:
    """Inside a read begun with begin_read(): pages (id order) of what committed after
    ``prev`` and by ``upto`` (the read's own snapshot, or an older one whose read broke
    off), with ids above ``after``. Iterate to the end; end the read with end_read().
    """
    params = {"prev": prev.text, "upto": upto.text, "after": after}
    async for page in _pages(cur, OPEN_NEWLY_VISIBLE, params, lambda _last: (FETCH_NEWLY_VISIBLE, None)):
        yield page


async def end_read(cur: Any) -> None:
    await cur.execute(END_READ)


@dataclass(frozen=True, slots=True)
class Refetch:
    """A resume that cannot send everything after its cursor: the client must refetch."""

    reason: str  # CURSOR_EXPIRED or CURSOR_UNKNOWN
    cursor: int
    resume_from: int  # the newest id: where a client that refetched resumes


class Replay:
    """A resume from ``cursor``, read in one REPEATABLE READ snapshot on one connection.

    A prune that runs meanwhile cannot delete rows out from under it: its
    pruned_through check and the rows it sends agree. Use::

        replay = await Replay.begin(cur, cursor, topics)
        if replay.refetch is None:
            async for page in replay.pages():  # the rows it sends, a page at a time
                ...
        await replay.end()

    then ``replay.snapshot`` is what the replay saw (Subscriber.go_live).
    """

    __slots__ = ("_cur", "_topics", "cursor", "refetch", "snapshot", "verdict")

    def __init__(self, cur: Any, cursor: int, topics: Sequence[str], point: ResumePoint) -> None:
        self._cur = cur
        self._topics = list(topics)
        self.cursor = cursor
        self.snapshot = point.snapshot
        self.verdict = resume_verdict(cursor, point)
        self.refetch = None if self.verdict.refetch is None else Refetch(self.verdict.refetch, cursor, point.newest)

    @classmethod
    async def begin(cls, cur: Any, cursor: int, topics: Sequence[str]) -> Replay:
        """Open the replay's snapshot on ``cur``'s connection and decide resume or refetch."""
        await cur.execute(BEGIN_REPLAY)
        await cur.execute(RESUME_POINT, {"cursor": cursor})
        return cls(cur, cursor, topics, ResumePoint.from_row(await cur.fetchone()))

    async def pages(self) -> AsyncIterator[list[Event]]:
        """The events to send, in order: the late rows below the cursor, then those after it."""
        params: dict[str, Any] = {
            "cursor": self.cursor,
            "tx_xmin": str(self.verdict.tx_xmin),
            "snap": self.snapshot.text,
            "topics": self._topics,
        }
        for query, after in ((REPLAY_LATE, 0), (REPLAY_AFTER, self.cursor)):

            def next_page(last: int, query: str = query) -> tuple[str, dict[str, Any]]:
                return query, {**params, "after": last}  # keyset paging: the rows after the last one sent

            async for page in _pages(self._cur, query, {**params, "after": after}, next_page):
                yield page

    async def end(self) -> None:
        await self._cur.execute(END_READ)


async def _pages(
    cur: Any, query: str, params: dict[str, Any] | None, next_page: Callable[[int], tuple[str, dict[str, Any] | None]]
) -> AsyncIterator[list[Event]]:
    """Pages of up to PAGE_ROWS events: run ``query``, then ``next_page(last id)``'s, until a short page."""
    while True:
        await cur.execute(query, params)
        rows = await cur.fetchall()
        if rows:
            page = [event_from_row(row) for row in rows]
            yield page
        if len(rows) < PAGE_ROWS:
            return
        query, params = next_page(page[-1].id)
