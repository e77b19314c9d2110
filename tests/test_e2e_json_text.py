"""A json column keeps the text a client sent, byte for byte, as it does for plain SQL.

Found by the fuzz (tests/test_fuzz.py): the gateway parsed the body and serialised
each json value again, so spacing, escapes and number literals were rewritten
(``[ ]`` stored as ``[]``, ``"\\u00e9"`` as ``"é"``) while psql stores them as sent.
"""

from __future__ import annotations

from .conftest import run_sql, start_gateway

SENT = '{ "b" : [ 1 , "\\u00e9", 1182751036259450098810.880 ] , "a":{} }'


async def test_post_and_patch_store_a_json_value_byte_for_byte(database: str) -> None:
    await run_sql(
        database, "CREATE DOMAIN json_doc AS json; CREATE TABLE notes (id int PRIMARY KEY, raw json, doc json_doc)"
    )
    async with start_gateway(database, expose=("notes",)) as gw:
        body = '{"id": 1, "raw": ' + SENT + ', "doc": ' + SENT + "}"
        headers = {"Content-Type": "application/json"}
        rows = {**headers, "Prefer": "return=representation"}
        async with gw.http.post(gw.url + "/api/notes", data=body, headers=rows) as resp:
            assert resp.status == 201, await resp.text()
            assert SENT in await resp.text()  # row_to_json embeds a json value's text as stored
        assert await gw.sql("SELECT raw::text, doc::text FROM notes") == [(SENT, SENT)]  # a domain too

        patched = '[1,  "x"\n]'
        async with gw.http.patch(gw.url + "/api/notes/1", data='{"raw":' + patched + "}", headers=headers) as resp:
            assert resp.status == 204, await resp.text()
        assert await gw.sql("SELECT raw::text FROM notes") == [(patched,)]

        async with gw.http.patch(gw.url + "/api/notes/1", data='{"raw": null}', headers=headers) as resp:
            assert resp.status == 204, await resp.text()
        assert await gw.sql("SELECT raw IS NULL FROM notes") == [(True,)]  # JSON null: SQL NULL, as before


async def test_a_json_value_with_a_number_of_thousands_of_digits_is_kept_not_a_500(database: str) -> None:
    """Finding each member's text parsed its numbers with int(), which refuses more than 4,300 digits."""
    await run_sql(database, "CREATE TABLE notes (id int PRIMARY KEY, raw json)")
    async with start_gateway(database, expose=("notes",)) as gw:
        sent = "[1" + "0" * 5000 + ", 2" + "0" * 5000 + ".5]"
        headers = {"Content-Type": "application/json"}
        async with gw.http.post(gw.url + "/api/notes", data='{"id": 1, "raw": ' + sent + "}", headers=headers) as resp:
            assert resp.status == 201, await resp.text()
        assert await gw.sql("SELECT raw::text FROM notes") == [(sent,)]
