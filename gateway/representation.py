"""What a result looks like on the wire: ``Accept`` negotiated, rows rendered as JSON, one object, or CSV.

Pure. The statements (:mod:`gateway.rest_read`, :mod:`gateway.rest_write`) return
each row already as JSON text (``row_to_json``, so a number or a ``json`` column's
text leaves as Postgres has it) or, for CSV, as one text per column; this module
joins them. ``application/vnd.pgrst.object+json`` asks for exactly one row: any
other count is a 406 PGRST116, and a write that asked for it is rolled back by its
handler. An ``Accept`` this module cannot answer is a 406 PGRST107, as in PostgREST.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from enum import Enum
from typing import Any

from aiohttp import web

from .codes import Code
from .errors import ApiError


class Media(Enum):
    JSON = "application/json"
    OBJECT = "application/vnd.pgrst.object+json"
    CSV = "text/csv"


_TYPES = {
    "*/*": Media.JSON,
    "application/*": Media.JSON,
    "application/json": Media.JSON,
    "application/vnd.pgrst.array+json": Media.JSON,
    "application/vnd.pgrst.object+json": Media.OBJECT,
    "application/vnd.pgrst.object": Media.OBJECT,
    "text/csv": Media.CSV,
    "text/*": Media.CSV,
}


def negotiate(accept: str | None) -> Media:
    """The media type to answer with: the acceptable one of highest ``q``, first listed on a tie."""
    if accept is None or accept.strip() in ("", "*/*", "application/json"):
        return Media.JSON
    choices: list[tuple[float, int, Media]] = []
    for index, part in enumerate(accept.split(",")):
        media_type, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = _TYPES.get(media_type.lower())
        if media is not None and quality > 0:
            choices.append((-quality, index, media))
    if not choices:
        raise ApiError(
            Code.NOT_ACCEPTABLE,
            f"None of these media types are available: {accept[:200]}",
            hint="Accept: application/json, application/vnd.pgrst.object+json or text/csv",
        )
    return min(choices)[2]


def one(rows: Sequence[Any]) -> None:
    """Raise the 406 PGRST116 unless there is exactly one row."""
    if len(rows) != 1:
        raise ApiError(
            Code.NOT_SINGULAR,
            "Cannot coerce the result to a single JSON object",
            details=f"The result contains {len(rows)} rows",
            hint="narrow the filters to one row, or ask for Accept: application/json",
        )


def render(media: Media, rows: Sequence[Sequence[Any]], names: Sequence[str], skip: int = 0) -> tuple[str, str]:
    """The body and its media type; ``skip``: columns in front of each row that are not the payload."""
    if media is Media.OBJECT:
        one(rows)
        return str(rows[0][skip]), media.value
    if media is Media.CSV:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row[skip:]])
        return out.getvalue().rstrip("\n"), media.value
    return "[" + ",".join(row[skip] for row in rows) + "]", media.value


def response(body: str, media_type: str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=body, content_type=media_type, headers=headers)
