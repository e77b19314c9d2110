"""Topic grants and token claims, without a server: auth's pure parts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.auth import LATEST_EXPIRY, Grant, _grant_from
from gateway.errors import ApiError


@pytest.mark.parametrize(
    ("pattern", "topic", "granted"),
    [
        ("chat/*", "chat/room1", True),
        ("chat/*", "chat/a/b", True),  # * crosses "/"
        ("*", "anything/at/all", True),
        ("chat/room?", "chat/room?", True),  # ? is a character, not a wildcard
        ("chat/room?", "chat/roomZ", False),
        ("chat/[ab]", "chat/[ab]", True),  # [...] is text, not a set
        ("chat/[ab]", "chat/a", False),
        ("chat/[!a]", "chat/b", False),
        ("a.c", "abc", False),  # no regex leaks through either
        ("todos", "todos/42", True),  # a table grants its rows
        ("tod?s", "todos/42", False),
        ("todo*", "todos/42", True),
        ("chat/*/x", "chat/1/x", True),
        ("chat/*/x", "chat/1/y", False),
        ("a*a", "a", False),  # prefix and suffix may not overlap
        ("a*a", "aa", True),
        ("ab*ba", "aba", False),
        ("*b*b*", "abab", True),
        ("*b*b*", "ab", False),
        ("**", "", True),
        ("", "", True),
        ("x", "xx", False),
    ],
)
def test_only_star_is_a_wildcard_in_topic_grants(pattern: str, topic: str, granted: bool) -> None:
    assert Grant(topics=(pattern,), write=False).may_read(topic) is granted


def test_a_pattern_with_many_stars_is_matched_in_linear_time() -> None:
    """As a regex of ``.*``s this took hours (each star multiplies the backtracking) with
    the event loop stopped; run in a child process so a regression fails instead of hanging."""
    check = (
        "from gateway.auth import Grant\n"
        "grant = Grant(topics=('*a' * 12 + '*b',), write=False)\n"
        "assert not grant.may_read('a' * 199) and grant.may_read('a' * 198 + 'b')\n"
    )
    subprocess.run([sys.executable, "-c", check], check=True, timeout=20)


@pytest.mark.parametrize("exp", ["1767225600", True, False, None, [1], {"n": 1}])
def test_exp_that_is_not_a_json_number_is_refused(exp: object) -> None:
    with pytest.raises(ApiError) as caught:
        _grant_from({"exp": exp, "topics": ["*"]})
    assert caught.value.status == 401 and "'exp'" in caught.value.message


def test_huge_exp_is_capped_to_a_usable_time() -> None:
    assert _grant_from({"exp": 10**400}).expires_at == LATEST_EXPIRY
    assert _grant_from({"exp": 1767225600.5}).expires_at == 1767225600.5
