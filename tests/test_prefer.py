"""Prefer as PostgREST reads it: comma-separated over one header or several, the first of each kind wins."""

from __future__ import annotations

import pytest

from gateway.errors import ApiError
from gateway.prefer import parse


def test_preferences_of_every_kind_are_read_from_one_or_several_headers() -> None:
    prefs = parse(["return=representation, count=exact", "resolution=merge-duplicates,missing=default", "tx=rollback"])
    assert (prefs.return_, prefs.count, prefs.resolution, prefs.missing, prefs.tx) == (
        "representation",
        "exact",
        "merge-duplicates",
        "default",
        "rollback",
    )
    assert prefs.applied("resolution", "missing", "return", "count", "tx") == (
        "resolution=merge-duplicates, missing=default, return=representation, count=exact, tx=rollback"
    )


def test_the_first_of_a_kind_wins_and_spaces_do_not_matter() -> None:
    prefs = parse(["  return=minimal ,return=representation", "return=headers-only"])
    assert prefs.return_ == "minimal"


def test_unknown_preferences_are_ignored_unless_handling_is_strict() -> None:
    assert parse(["return=everything, foo"]).invalid == ("return=everything", "foo")
    assert parse(["handling=lenient, foo"]).return_ is None
    with pytest.raises(ApiError) as raised:
        parse(["handling=strict, return=representation, foo=bar"])
    assert raised.value.code.code == "PGRST122" and raised.value.status == 400
    assert raised.value.details == "Invalid preferences: foo=bar"
    assert parse(["handling=strict, return=minimal, timezone=UTC"]).return_ == "minimal"


def test_nothing_applied_is_no_header() -> None:
    assert parse([]).applied("return", "count") is None
    assert parse(["count=planned"]).applied("return") is None
