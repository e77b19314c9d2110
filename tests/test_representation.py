"""Accept negotiated as PostgREST does, and rows rendered as JSON, one object or CSV."""

from __future__ import annotations

import pytest

from gateway.errors import ApiError
from gateway.representation import Media, negotiate, render


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, Media.JSON),
        ("*/*", Media.JSON),
        ("application/json", Media.JSON),
        ("application/vnd.pgrst.object+json", Media.OBJECT),
        ("application/vnd.pgrst.object+json; nulls=stripped", Media.OBJECT),
        ("text/csv", Media.CSV),
        ("text/html, application/json;q=0.5", Media.JSON),
        ("text/csv;q=0.5, application/json", Media.JSON),
        ("application/json;q=0.1, text/csv;q=0.9", Media.CSV),
        ("text/html, */*;q=0.8", Media.JSON),
    ],
)
def test_the_best_acceptable_media_type_is_chosen(accept: str | None, media: Media) -> None:
    assert negotiate(accept) is media


@pytest.mark.parametrize("accept", ["text/html", "application/xml", "application/json;q=0", "image/*"])
def test_nothing_acceptable_is_a_406(accept: str) -> None:
    with pytest.raises(ApiError) as raised:
        negotiate(accept)
    assert (raised.value.status, raised.value.code.code) == (406, "PGRST107")


def test_rows_render_as_an_array_one_object_or_csv() -> None:
    rows = [('{"id":1}',), ('{"id":2}',)]
    assert render(Media.JSON, rows, []) == ('[{"id":1},{"id":2}]', "application/json")
    assert render(Media.JSON, [], []) == ("[]", "application/json")
    assert render(Media.OBJECT, rows[:1], []) == ('{"id":1}', "application/vnd.pgrst.object+json")
    for wrong in ([], rows):
        with pytest.raises(ApiError) as raised:
            render(Media.OBJECT, wrong, [])
        assert (raised.value.status, raised.value.code.code) == (406, "PGRST116")
        assert raised.value.details == f"The result contains {len(wrong)} rows"
    csv_rows = [("1", 'say "hi", ok', None), ("2", "plain", "x")]
    body, media_type = render(Media.CSV, csv_rows, ["id", "text", "n"])
    assert media_type == "text/csv"
    assert body == 'id,text,n\n1,"say ""hi"", ok",\n2,plain,x'
