"""Which rows a read asks for, and Content-Range, as PostgREST's RangeQuery computes them."""

from __future__ import annotations

import pytest

from gateway.errors import ApiError
from gateway.ranges import Page, content_range, page, status


@pytest.mark.parametrize(
    ("limit", "offset", "header", "expected"),
    [
        (None, None, None, Page(0, 1000)),  # the cap, GATEWAY_PAGE_LIMIT
        (20, None, None, Page(0, 20)),
        (20, 40, None, Page(40, 20)),
        (5000, None, None, Page(0, 1000)),
        (0, None, None, Page(0, 0)),
        (None, None, "0-19", Page(0, 20)),
        (None, None, "10-", Page(10, 1000)),
        (None, None, "10-10", Page(10, 1)),
        (5, None, "0-19", Page(0, 5)),  # limit and Range intersect
        (50, None, "0-19", Page(0, 20)),
        (None, 5, "0-19", Page(5, 15)),
        (None, 5, "10-19", Page(10, 10)),
        (5, 15, "10-19", Page(15, 5)),
        (5, 30, "10-19", Page(30, 0)),
        (None, None, "items=0-19", Page(0, 1000)),  # not PostgREST's form: ignored, as RFC 9110 allows
        (None, None, "abc", Page(0, 1000)),
    ],
)
def test_limit_offset_and_range_intersect_within_the_cap(
    limit: int | None, offset: int | None, header: str | None, expected: Page
) -> None:
    assert page(limit, offset, header, cap=1000) == expected


def test_a_range_that_ends_before_it_starts_is_a_416() -> None:
    with pytest.raises(ApiError) as raised:
        page(None, None, "5-2", cap=1000)
    assert (raised.value.status, raised.value.code.code) == (416, "PGRST103")


@pytest.mark.parametrize(
    ("first", "rows", "total", "header", "code"),
    [
        (0, 20, None, "0-19/*", 200),
        (0, 20, 100, "0-19/100", 206),
        (0, 3, 3, "0-2/3", 200),
        (0, 0, 0, "*/0", 200),
        (0, 0, None, "*/*", 200),
        (10, 0, 10, "*/10", 206),
        (95, 5, 100, "95-99/100", 206),
    ],
)
def test_content_range_and_status(first: int, rows: int, total: int | None, header: str, code: int) -> None:
    assert content_range(first, rows, total) == header
    assert status(first, rows, total) == code
