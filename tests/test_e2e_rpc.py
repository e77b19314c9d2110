"""/api/rpc/<function>: the functions named in GATEWAY_RPC, called as PostgREST calls them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.codes import Code
from gateway.functions import Returns
from gateway.state import FUNCTIONS

from .conftest import RunningGateway, run_sql, start_gateway

DEFINITIONS = """
CREATE FUNCTION add(a int, b int DEFAULT 1) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b';
CREATE FUNCTION squares(n int) RETURNS SETOF int LANGUAGE sql IMMUTABLE
    AS 'SELECT g * g FROM generate_series(1, n) AS g';
CREATE FUNCTION add_todo(title text) RETURNS todos LANGUAGE sql
    AS 'INSERT INTO todos (title) VALUES (title) RETURNING *';
CREATE FUNCTION open_todos(prefix text DEFAULT '') RETURNS SETOF todos LANGUAGE sql STABLE
    AS $$ SELECT * FROM todos WHERE NOT done AND title LIKE prefix || '%' ORDER BY id $$;
CREATE FUNCTION stats() RETURNS TABLE (total bigint, finished bigint) LANGUAGE sql STABLE
    AS 'SELECT count(*), count(*) FILTER (WHERE done) FROM todos';
CREATE FUNCTION echo(doc json) RETURNS json LANGUAGE sql IMMUTABLE AS 'SELECT doc';
CREATE FUNCTION whole(jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS 'SELECT $1';
CREATE FUNCTION finish_all() RETURNS void LANGUAGE sql AS 'UPDATE todos SET done = true';
CREATE FUNCTION total(VARIADIC nums int[]) RETURNS int LANGUAGE sql IMMUTABLE
    AS 'SELECT sum(x)::int FROM unnest(nums) AS x';
CREATE FUNCTION tags(t text[]) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT cardinality(t)';
CREATE FUNCTION pick(a int) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'int' $$;
CREATE FUNCTION pick(a text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'text' $$;
CREATE FUNCTION named(x int) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'x' $$;
CREATE FUNCTION named(y text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'y' $$;
CREATE FUNCTION percent("rate%" numeric, "it's" text DEFAULT 'x') RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT "rate%" || '% ' || "it's" $$;
CREATE SCHEMA util;
CREATE FUNCTION util.greet(name text) RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'hi ' || name $$;
"""
RPC = (
    "add",
    "squares",
    "add_todo",
    "open_todos",
    "stats",
    "echo",
    "whole",
    "finish_all",
    "total",
    "tags",
    "pick",
    "named",
    "util.greet",
    "percent",
)


@pytest.fixture
async def gw(database: str) -> AsyncIterator[RunningGateway]:
    await run_sql(database, DEFINITIONS)
    async with start_gateway(database, rpc=RPC) as running:
        yield running


def code_of(body: Any) -> str:
    """The error's code, in the gateway's error shape (flat, or under "error")."""
    return str(body["code"] if "code" in body else body["error"]["code"])


async def post(gw: RunningGateway, fn: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
    async with gw.http.post(f"{gw.url}/api/rpc/{fn}", json=body if body is not None else {}, **kw) as resp:
        return resp.status, (await resp.json() if resp.status != 204 else None)


async def get(gw: RunningGateway, fn: str, query: str = "") -> tuple[int, Any]:
    async with gw.http.get(f"{gw.url}/api/rpc/{fn}{query}") as resp:
        return resp.status, await resp.json()


async def test_scalar_function_answers_its_value_by_post_and_by_get(gw: RunningGateway) -> None:
    assert await post(gw, "add", {"a": 2, "b": 3}) == (200, 5)
    assert await post(gw, "add", {"a": 2}) == (200, 3)  # b has a default
    assert await get(gw, "add", "?a=40&b=2") == (200, 42)
    assert await get(gw, "util.greet", "?name=ann") == (200, "hi ann")
    # Argument names with % and quotes are quoted names, not placeholders or string ends.
    assert await post(gw, "percent", {"rate%": 5, "it's": "ok"}) == (200, "5% ok")


async def test_set_returning_functions_answer_arrays_and_a_row_function_an_object(gw: RunningGateway) -> None:
    assert await get(gw, "squares", "?n=3") == (200, [1, 4, 9])
    assert await get(gw, "squares", "?n=0") == (200, [])
    status, row = await post(gw, "add_todo", {"title": "milk"})
    assert status == 200 and isinstance(row, dict) and row["title"] == "milk" and row["done"] is False
    await post(gw, "add_todo", {"title": "mint"})
    await post(gw, "add_todo", {"title": "bread"})
    status, rows = await get(gw, "open_todos", "?prefix=m")
    assert status == 200 and [r["title"] for r in rows] == ["milk", "mint"]
    assert await post(gw, "stats") == (200, [{"total": 3, "finished": 0}])


async def test_void_function_answers_204_and_only_post_may_call_a_volatile_function(gw: RunningGateway) -> None:
    await post(gw, "add_todo", {"title": "a"})
    status, body = await get(gw, "finish_all")
    assert status == 405 and code_of(body) == Code.METHOD_NOT_ALLOWED.code, body
    assert await gw.sql("SELECT bool_or(done) FROM todos") == [(False,)]
    async with gw.http.post(f"{gw.url}/api/rpc/finish_all", json={}) as resp:
        assert resp.status == 204 and await resp.read() == b""
    assert await gw.sql("SELECT bool_and(done) FROM todos") == [(True,)]


async def test_json_arguments_keep_their_text_and_a_single_unnamed_json_argument_takes_the_body(
    gw: RunningGateway,
) -> None:
    async with gw.http.post(
        f"{gw.url}/api/rpc/echo", data='{"doc": {"b": 1, "a":  2.50}}', headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 200
        assert await resp.text() == '{"b": 1, "a":  2.50}'  # json: the document as sent
    assert await post(gw, "whole", {"x": [1, 2]}) == (200, {"x": [1, 2]})
    assert await post(gw, "whole", [1, 2]) == (200, [1, 2])
    headers = {"Prefer": "params=single-object"}
    assert await post(gw, "echo", {"k": "v"}, headers=headers) == (200, {"k": "v"})


async def test_array_and_variadic_arguments(gw: RunningGateway) -> None:
    assert await post(gw, "tags", {"t": ["a", "b,c", None]}) == (200, 3)
    assert await get(gw, "tags", "?t={a,b}") == (200, 2)
    assert await post(gw, "total", {"nums": [1, 2, 3]}) == (200, 6)
    assert await get(gw, "total", "?nums=1&nums=2&nums=4") == (200, 7)


async def test_overloads_are_chosen_by_argument_names_or_refused_as_ambiguous(gw: RunningGateway) -> None:
    assert await post(gw, "named", {"x": 1}) == (200, "x")
    assert await get(gw, "named", "?y=1") == (200, "y")
    status, body = await post(gw, "pick", {"a": 1})
    assert (status, code_of(body)) == (Code.AMBIGUOUS_FUNCTION.status, Code.AMBIGUOUS_FUNCTION.code), body


async def test_bad_calls_are_4xx_in_the_error_shape(gw: RunningGateway) -> None:
    def refused(answer: tuple[int, Any], code: Code, *words: str) -> bool:
        status, body = answer
        assert (status, code_of(body)) == (code.status, code.code), body
        assert all(word in str(body) for word in words), body
        return True

    assert refused(await post(gw, "no_such_fn", {}), Code.UNKNOWN_FUNCTION, "no_such_fn")
    assert refused(await post(gw, "add", {"a": 1, "c": 2}), Code.BAD_ARGUMENTS, "'c'")
    assert refused(await post(gw, "add", {"b": 2}), Code.BAD_ARGUMENTS, "'a'")
    assert refused(await get(gw, "add", "?a=1&zzz=2"), Code.BAD_ARGUMENTS, "'zzz'")
    assert refused(await get(gw, "add", "?a=1&a=2"), Code.BAD_ARGUMENTS)
    assert refused(await post(gw, "add", [1, 2]), Code.BAD_JSON, "object")
    assert refused(await post(gw, "add", {"a": "one"}), Code.BAD_VALUE)
    assert refused(await post(gw, "add?select=x", {"a": 1}), Code.PARSE_ERROR, "select")
    async with gw.http.post(f"{gw.url}/api/rpc/add", data="{", headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 400
    async with gw.http.post(f"{gw.url}/api/rpc/add", data="a=1") as resp:
        assert resp.status == 415
    # A name that is SQL is only a name that is not exposed.
    status, body = await post(gw, "add(1,2);--", {})
    assert status == 404, body
    assert await gw.sql("SELECT count(*) FROM todos") == [(0,)]


async def test_a_changed_function_is_called_by_its_new_arguments_after_a_reload(gw: RunningGateway) -> None:
    await gw.sql(
        "DROP FUNCTION add(int, int); CREATE FUNCTION add(x int, y int) RETURNS int LANGUAGE sql AS 'SELECT x * y'"
    )
    await gw.sql("NOTIFY gateway_reload")
    from .waiting import until

    async def new_arguments() -> bool:
        return await post(gw, "add", {"x": 6, "y": 7}) == (200, 42)

    await until(new_arguments, what="add(x, y) is called after NOTIFY gateway_reload")


async def test_a_missing_function_stops_the_start_with_its_name(database: str) -> None:
    from gateway.config import ConfigError

    with pytest.raises(ConfigError, match="'nope'"):
        async with start_gateway(database, rpc=("nope",)):
            pass


async def test_the_catalog_has_each_functions_arguments_and_result_columns(gw: RunningGateway) -> None:
    functions = gw.app[FUNCTIONS]
    (add,) = functions["add"]
    assert [(a.name, a.type_sql) for a in add.arguments] == [("a", "integer"), ("b", "integer")]
    assert (add.required, add.returns, add.result) == (frozenset({"a"}), Returns.SCALAR, {})
    (stats,) = functions["stats"]
    assert [(c.name, c.type_sql) for c in stats.result.values()] == [("total", "bigint"), ("finished", "bigint")]
    assert (stats.returns, stats.arguments) == (Returns.ROWS, ())
    (add_todo,) = functions["add_todo"]
    assert add_todo.returns is Returns.ROW and list(add_todo.result)[:3] == ["id", "title", "done"]
    (total,) = functions["total"]
    assert total.variadic and total.arguments[0].is_array
    (echo,) = functions["echo"]
    assert echo.arguments[0].keeps_text and not functions["whole"][0].arguments[0].name
    assert len(functions["pick"]) == 2


async def test_a_scalar_function_that_returns_null_answers_null(gw: RunningGateway) -> None:
    # Found by the schemathesis run: the answer was a 200 with no body at all.
    async with gw.http.post(f"{gw.url}/api/rpc/add", json={"a": None}) as resp:
        assert resp.status == 200 and await resp.text() == "null"
    assert await get(gw, "util.greet", "?name=") == (200, "hi ")
