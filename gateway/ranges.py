"""Which rows a read asks for (``limit``/``offset``, ``Range``), and ``Content-Range`` (PostgREST's RangeQuery).

Pure. ``Range: 0-19`` (with or without ``Range-Unit: items``, as PostgREST reads it:
``first-[last]``, anything else is ignored, as RFC 9110 lets a server ignore a Range)
and ``?limit=&offset=`` intersect; ``limit=0`` is an empty page, not an error. A
Range whose last row comes before its first is a 416 PGRST103. Every read is capped
at GATEWAY_PAGE_LIMIT rows (PostgREST's ``db-max-rows``): ``Content-Range`` says which
rows came back, so a client sees the cap and asks for the next page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .codes import Code
from .errors import ApiError

_RANGE = re.compile(r"([0-9]{1,18})-([0-9]{0,18})")


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int  # rows at most, after the cap


def page(limit: int | None, offset: int | None, range_header: str | None, cap: int) -> Page:
    """The rows to read: the query's limit/offset within the Range header's, at most ``cap``."""
    first, last = 0, None
    if range_header is not None and (match := _RANGE.fullmatch(range_header.strip())):
        first = int(match[1])
        last = int(match[2]) if match[2] else None
        if last is not None and last < first:
            raise ApiError(
                Code.INVALID_RANGE,
                "Requested range not satisfiable",
                details="The lower boundary must be lower than or equal to the upper boundary in the Range header.",
                hint="Range: 0-19 asks for the first 20 rows",
            )
    start = max(first, offset or 0)
    end = last  # inclusive, None for open
    if limit is not None:
        if limit == 0:
            return Page(offset or 0, 0)  # PostgREST's limit=0: an empty page, whatever the Range
        query_end = (offset or 0) + limit - 1
        end = query_end if end is None else min(end, query_end)
    count = cap if end is None else min(cap, end - start + 1)
    return Page(start, max(count, 0))


def content_range(first: int, rows: int, total: int | None) -> str:
    """``0-19/*``, ``0-19/100``, ``*/0`` (nothing there), ``*/*`` (an empty page, total unasked)."""
    last = first + rows - 1
    shown = f"{first}-{last}" if total != 0 and first <= last else "*"
    return f"{shown}/{'*' if total is None else total}"


def status(first: int, rows: int, total: int | None) -> int:
    """200, or 206 for part of a known total (PostgREST's)."""
    if total is not None and rows < total:
        return 206
    return 200


def out_of_bounds(first: int, total: int) -> ApiError:
    return ApiError(
        Code.INVALID_RANGE,
        "Requested range not satisfiable",
        details=f"An offset of {first} was requested, but there are only {total} rows.",
        hint=f"ask for an offset below {total}",
    )
