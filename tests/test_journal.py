"""Journal data: snapshot visibility, event topics, rows read back, and resume verdicts."""

from __future__ import annotations

import pytest

from gateway.journal import Event, ResumePoint, Snapshot, Verdict, event_from_row, resume_verdict


def row_event(op: str, row: str | None, old: str | None = None, pk: str | None = "42") -> Event:
    return Event(id=10, tx=500, topic="todos", table="todos", op=op, pk=pk, row=row, old=old)


# Snapshot


def test_snapshot_parse_reads_xmin_xmax_and_in_progress_list() -> None:
    snap = Snapshot.parse("100:110:102,105")

    assert (snap.xmin, snap.xmax, snap.xip) == (100, 110, frozenset({102, 105}))
    assert snap.text == "100:110:102,105"


def test_snapshot_parse_with_nothing_in_progress_has_empty_xip() -> None:
    snap = Snapshot.parse("731:731:")

    assert (snap.xmin, snap.xmax, snap.xip) == (731, 731, frozenset())


@pytest.mark.parametrize(
    ("tx", "visible"),
    [
        (1, True),  # long committed
        (99, True),  # just below xmin
        (100, False),  # xmin is itself in progress (it is in xip)
        (101, True),  # between xmin and xmax, not in progress
        (102, False),  # in progress when the snapshot was taken
        (104, True),
        (105, False),
        (109, True),  # just below xmax, not in progress
        (110, False),  # xmax: not yet started when the snapshot was taken
        (5000, False),
    ],
)
def test_snapshot_sees_only_transactions_committed_before_it(tx: int, visible: bool) -> None:
    snap = Snapshot.parse("100:110:100,102,105")

    assert snap.sees(tx) is visible


def test_snapshot_with_empty_xip_sees_everything_below_xmax() -> None:
    snap = Snapshot.parse("50:50:")

    assert snap.sees(49)
    assert not snap.sees(50)


def test_snapshot_parses_64_bit_xid8_values() -> None:
    big = 2**40  # xid8 values carry an epoch and exceed 32 bits
    snap = Snapshot.parse(f"{big}:{big + 3}:{big + 1}")

    assert snap.sees(big - 1) and snap.sees(big + 2)
    assert not snap.sees(big + 1) and not snap.sees(big + 3)


# Event topics


def test_row_event_is_delivered_on_table_and_row_topics() -> None:
    event = row_event("insert", '{"id":42}')

    assert event.topics == ("todos", "todos/42")
    assert event.main_topic == "todos/42"


def test_publish_event_has_only_its_own_topic() -> None:
    event = Event(id=1, tx=2, topic="chat/room-1", table=None, op="publish", pk=None, row='{"m":1}', old=None)

    assert event.topics == ("chat/room-1",)
    assert event.main_topic == "chat/room-1"


def test_truncate_event_without_pk_is_table_topic_only() -> None:
    event = row_event("truncate", None, pk=None)

    assert event.topics == ("todos",)
    assert event.main_topic == "todos"


# Rows from the database


def test_event_from_row_maps_journal_columns_and_converts_ids() -> None:
    # psycopg2 returns id as int and tx::text as a string
    row = (7, "123456", "todos", "todos", "update", "42", '{"id":42}', '{"id":41}')

    event = event_from_row(row)

    assert event == Event(
        id=7, tx=123456, topic="todos", table="todos", op="update", pk="42", row='{"id":42}', old='{"id":41}'
    )
    assert isinstance(event.tx, int)


def test_event_from_row_keeps_nulls_of_a_publish() -> None:
    event = event_from_row((8, "99", "chat", None, "publish", None, None, None))

    assert (event.table, event.pk, event.row, event.old) == (None, None, None, None)
    assert event.topics == ("chat",)


# Resume verdicts: cursor 100 is the client's; rows 90 (pruned_through) and below are gone.

SNAP = Snapshot.parse("900:900:")


def point(**changes: object) -> ResumePoint:
    base = {
        "snapshot": SNAP,
        "pruned_through": 90,
        "newest": 120,
        "boundary_tx": 600,
        "boundary_xmin": 590,
        "late_tx": 600,
        "second_late_tx": 580,
        "pruned_snapshot": Snapshot.parse("700:700:"),
        "below_id": 100,
        "below_tx": 650,
        "below_xmin": 640,
    }
    return ResumePoint(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cursor", "facts", "verdict"),
    [
        # nothing pruned yet: replay from the cursor row's xmin
        (
            100,
            {
                "pruned_through": 0,
                "boundary_tx": None,
                "boundary_xmin": None,
                "late_tx": None,
                "second_late_tx": None,
                "pruned_snapshot": None,
            },
            Verdict(None, 640),
        ),
        # a fresh database: cursor 0, no rows
        (
            0,
            {
                "pruned_through": 0,
                "newest": 0,
                "boundary_tx": None,
                "boundary_xmin": None,
                "late_tx": None,
                "second_late_tx": None,
                "pruned_snapshot": None,
                "below_id": None,
                "below_tx": None,
                "below_xmin": None,
            },
            Verdict(None, 0),
        ),
        # every deleted row committed before the cursor's writer looked: resume
        (100, {}, Verdict(None, 640)),
        (89, {}, Verdict("cursor_expired")),  # events after it were deleted
        (121, {}, Verdict("cursor_unknown")),  # not from this database
        # the cursor names the last pruned row: its recorded xmin bounds the replay
        (90, {"below_id": 80, "below_tx": 500, "below_xmin": 400}, Verdict(None, 590)),
        # ...unless another deleted transaction could have committed after it
        (90, {"below_id": None, "second_late_tx": 595}, Verdict("cursor_expired")),
        # the boundary row could be late for the cursor (item 7: it committed after the
        # cursor's row was delivered, then went with older rows)
        (100, {"boundary_tx": 645, "late_tx": 645}, Verdict("cursor_expired")),
        (100, {"late_tx": 640, "second_late_tx": 600}, Verdict("cursor_expired")),
        # the same, but the cursor's row committed after that prune: nothing deleted is late for it
        (
            100,
            {"boundary_tx": 645, "late_tx": 645, "pruned_snapshot": Snapshot.parse("600:650:")},
            Verdict(None, 640),
        ),
        # deleted rows of the cursor's own transaction are never late for it, the
        # boundary row or not; the largest other deleted tx decides
        (100, {"boundary_tx": 650, "late_tx": 650}, Verdict(None, 640)),
        (100, {"late_tx": 650, "second_late_tx": 600}, Verdict(None, 640)),
        (100, {"late_tx": 650, "second_late_tx": 645}, Verdict("cursor_expired")),
        # the journal emptied: the position is pruned_through, and it resumes
        (90, {"newest": 90, "below_id": None, "below_tx": None, "below_xmin": None}, Verdict(None, 590)),
        # a journal pruned before the prune kept these facts: its old cursors refetch once
        (
            90,
            {"boundary_tx": None, "boundary_xmin": None, "late_tx": 700, "second_late_tx": 700, "below_id": None},
            Verdict("cursor_expired"),
        ),
        (
            100,
            {"boundary_tx": None, "boundary_xmin": None, "late_tx": 700, "second_late_tx": 700},
            Verdict("cursor_expired"),
        ),
        # an id no row has (rolled back, never sent): bounded by the row below it...
        (
            95,
            {
                "pruned_through": 0,
                "boundary_tx": None,
                "boundary_xmin": None,
                "late_tx": None,
                "second_late_tx": None,
                "below_id": 80,
                "below_xmin": 400,
            },
            Verdict(None, 400),
        ),
        # the cursor names the last pruned row, row 1: its own transaction is never late for it
        (
            1,
            {"pruned_through": 1, "newest": 5, "late_tx": 600, "second_late_tx": None, "below_id": None},
            Verdict(None, 590),
        ),
        # ...and, not knowing its transaction, refused once anything was pruned
        (95, {"below_id": 80, "below_tx": 500, "below_xmin": 400}, Verdict("cursor_expired")),
    ],
)
def test_resume_verdict(cursor: int, facts: dict[str, object], verdict: Verdict) -> None:
    assert resume_verdict(cursor, point(**facts)) == verdict


def test_resume_point_reads_the_row_of_resume_point() -> None:
    row = ("900:900:", 90, 120, "600", "590", "600", None, "700:700:", 100, "650", "640")

    assert ResumePoint.from_row(row) == point(second_late_tx=None)


def test_resume_point_reads_second_late_tx_and_a_journal_never_pruned() -> None:
    row = ("900:900:", 0, 120, None, None, None, "580", None, None, None, None)

    assert ResumePoint.from_row(row) == point(
        pruned_through=0,
        boundary_tx=None,
        boundary_xmin=None,
        late_tx=None,
        pruned_snapshot=None,
        below_id=None,
        below_tx=None,
        below_xmin=None,
    )
