"""What the functions named in GATEWAY_RPC look like, read from ``pg_proc``.

The /api/rpc handler (:mod:`gateway.rpc`) only ever puts into SQL the names found
here: the function's schema and name, and its arguments' names and types. Each
overload of a name is kept, with its input arguments in order; the handler picks the
one whose arguments fit the call. An argument is described as a
:class:`~gateway.catalog.Column` so that :mod:`gateway.literals` writes its value
exactly as it writes a column's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from psycopg2 import sql

from .catalog import _BASE_TYPE as BASE_TYPE  # one definition of "a domain's base type"
from .catalog import Column, Identifier
from .config import ConfigError

_JSON_TYPES = ("json", "jsonb")


class Returns(enum.Enum):
    """What the function returns, which decides the JSON answer's shape (as in PostgREST)."""

    VOID = "void"  # 204, no body
    SCALAR = "scalar"  # the value itself
    SCALARS = "scalars"  # SETOF a scalar: an array of values
    ROW = "row"  # one composite: an object (null if none)
    ROWS = "rows"  # SETOF a composite, RETURNS TABLE: an array of objects


@dataclass(frozen=True)
class Function:
    """One overload: its quoted name, its input arguments (in call order) and how many
    of the last ones have defaults."""

    ident: sql.Composable
    signature: str  # for messages: "public.add(a integer, b integer)"
    arguments: tuple[Column, ...]  # IN, INOUT and VARIADIC ones; a name may be ""
    defaults: int
    variadic: bool  # the last argument is VARIADIC
    volatile: bool  # neither STABLE nor IMMUTABLE: only POST may call it
    returns: Returns
    # The columns of each row it returns (Returns.ROW and ROWS), for the OpenAPI
    # document and for filters, select and order on its result.
    result: dict[str, Column]
    # The type of the value it returns (Returns.SCALAR) or of each one (SCALARS), for
    # the OpenAPI document; None for the other kinds.
    value: Column | None = None

    @property
    def required(self) -> frozenset[str]:
        """The arguments without a default ("" for an unnamed one: no call by name can give it)."""
        return frozenset(a.name for a in self.arguments[: len(self.arguments) - self.defaults])

    @property
    def names(self) -> frozenset[str]:
        """The arguments a call may name."""
        return frozenset(a.name for a in self.arguments if a.name)

    @property
    def takes_body(self) -> bool:
        """One unnamed json or jsonb argument: a POST's whole body is that argument (PostgREST's rule)."""
        return len(self.arguments) == 1 and not self.arguments[0].name and self.arguments[0].is_json


# Overloads of one name, in the first schema of the search path that has it unless the
# name is qualified. Argument modes: i IN, o OUT, b INOUT, v VARIADIC, t TABLE.
_OVERLOADS = """
SELECT p.oid, n.nspname, p.proname, p.provolatile, p.proretset, rt.typname, rt.typtype,
       p.pronargdefaults, pg_get_function_identity_arguments(p.oid),
       coalesce(p.proargmodes::text[], array_fill('i'::text, ARRAY[p.pronargs])) && ARRAY['o', 'b', 't']
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
  JOIN pg_type rt ON rt.oid = p.prorettype
 WHERE p.proname = %(name)s AND p.prokind = 'f'
   AND CASE WHEN %(schema)s::text IS NULL
            THEN n.nspname = (SELECT s FROM unnest(current_schemas(false)) WITH ORDINALITY AS x(s, ord)
                               WHERE EXISTS (SELECT FROM pg_proc q JOIN pg_namespace m ON m.oid = q.pronamespace
                                              WHERE q.proname = %(name)s AND m.nspname = x.s)
                               ORDER BY ord LIMIT 1)
            ELSE n.nspname = %(schema)s END
 ORDER BY p.oid
"""

# Named, typed fields in order, each with what literals.py needs of its type: from
# {source}, a query of (name, type oid, ord, mode) rows.
_FIELDS = f"""
SELECT coalesce(f.name, ''), f.mode, format_type(f.type, NULL), t.typname, b.typname, b.typcategory,
       e.typname, coalesce(el.typdelim, ','),
       (SELECT array_agg(x.enumlabel::text ORDER BY x.enumsortorder) FROM pg_enum x WHERE x.enumtypid = b.oid),
       (SELECT array_agg(x.enumlabel::text ORDER BY x.enumsortorder) FROM pg_enum x WHERE x.enumtypid = e.oid)
  FROM ({{source}}) AS f(name, type, ord, mode)
  JOIN pg_type t ON t.oid = f.type
 CROSS JOIN LATERAL ({BASE_TYPE.format("t")}) AS bt
  JOIN pg_type b ON b.oid = bt.oid
  LEFT JOIN pg_type el ON el.oid = b.typelem AND b.typcategory = 'A'
  LEFT JOIN LATERAL ({BASE_TYPE.format("el")}) AS et ON true
  LEFT JOIN pg_type e ON e.oid = et.oid
 ORDER BY f.ord
"""
# Every argument of an overload, with its mode.
_ARGUMENTS = _FIELDS.format(
    source="""
SELECT a.name, a.type, a.ord, a.mode
  FROM pg_proc p
 CROSS JOIN LATERAL unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]),
                           coalesce(p.proargmodes::text[], array_fill('i'::text, ARRAY[p.pronargs])),
                           coalesce(p.proargnames, array_fill(NULL::text, ARRAY[p.pronargs])))
       WITH ORDINALITY AS a(type, mode, name, ord)
 WHERE p.oid = %(oid)s"""
)
# The columns of the row type an overload returns (a table's, or a composite type's).
_ROW_COLUMNS = _FIELDS.format(
    source="""
SELECT a.attname::text, a.atttypid, a.attnum, 'o'
  FROM pg_proc p JOIN pg_type rt ON rt.oid = p.prorettype JOIN pg_attribute a ON a.attrelid = rt.typrelid
 WHERE p.oid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped"""
)
# The type of what a scalar function returns (of each value, for SETOF a scalar).
_VALUE_TYPE = _FIELDS.format(
    source="""
SELECT NULL::text, p.prorettype, 1, 'o'
  FROM pg_proc p
 WHERE p.oid = %(oid)s"""
)
_INPUT = ("i", "b", "v")
_OUTPUT = ("o", "b", "t")


def _field(
    name: str,
    type_sql: str,
    typname: str,
    base: str,
    category: str,
    element: str | None,
    delimiter: str,
    labels: list[str] | None,
    element_labels: list[str] | None,
) -> Column:
    return Column(
        name=name,
        type_sql=type_sql,
        type_name=typname,
        is_json=base in _JSON_TYPES,
        keeps_text=base == "json",
        is_array=category == "A",
        json_elements=element in _JSON_TYPES,
        delimiter=delimiter,
        is_composite=category == "C",
        not_null=False,
        has_default=False,
        generated=False,
        base_type=base,
        enum_labels=tuple(labels) if labels is not None else None,
        element_type=element or "",
        element_labels=tuple(element_labels) if element_labels is not None else None,
    )


class UnknownFunction(ConfigError):
    """A name in GATEWAY_RPC that is no function in the database."""


async def load_function(cur: Any, name: str) -> tuple[Function, ...]:
    """Every overload of ``name`` (``fn`` or ``schema.fn``); raises UnknownFunction if none."""
    schema, _, bare = name.rpartition(".")
    await cur.execute(_OVERLOADS, {"name": bare, "schema": schema or None})
    overloads = []
    for oid, nspname, proname, volatility, retset, rettype, rettyptype, ndefaults, identity, has_out in list(
        await cur.fetchall()
    ):
        await cur.execute(_ARGUMENTS, {"oid": oid})
        fields = [(mode, _field(field, *rest)) for field, mode, *rest in await cur.fetchall()]
        arguments = [column for mode, column in fields if mode in _INPUT]
        modes = [mode for mode, _ in fields if mode in _INPUT]
        returns = _returns(retset, rettype, rettyptype, has_out)
        if rettyptype == "c":
            await cur.execute(_ROW_COLUMNS, {"oid": oid})
            result = [_field(field, *rest) for field, _mode, *rest in await cur.fetchall()]
        elif returns in (Returns.ROW, Returns.ROWS):
            result = [column for mode, column in fields if mode in _OUTPUT]
        else:
            result = []
        value = None
        if returns in (Returns.SCALAR, Returns.SCALARS):
            await cur.execute(_VALUE_TYPE, {"oid": oid})
            field, _mode, *rest = await cur.fetchone()
            value = _field(field, *rest)
        overloads.append(
            Function(
                ident=Identifier(nspname, proname),
                signature=f"{nspname}.{proname}({identity})",
                arguments=tuple(arguments),
                defaults=ndefaults,
                variadic=bool(modes) and modes[-1] == "v",
                volatile=volatility == "v",
                returns=returns,
                result={column.name: column for column in result},
                value=value,
            )
        )
    if not overloads:
        where = f"schema {schema!r}" if schema else "the search path"
        raise UnknownFunction(f"GATEWAY_RPC names {name!r}, which is no function in {where}")
    return tuple(overloads)


def _returns(retset: bool, rettype: str, typtype: str, has_out: bool) -> Returns:
    composite = typtype == "c" or (rettype == "record" and has_out)
    if rettype == "void" and not retset:
        return Returns.VOID
    if composite:
        return Returns.ROWS if retset else Returns.ROW
    return Returns.SCALARS if retset else Returns.SCALAR
