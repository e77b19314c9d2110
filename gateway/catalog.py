"""What the exposed tables look like, read from the Postgres catalog at start.

The REST handlers only ever put into SQL the identifiers found here (quoted with
``psycopg2.sql.Identifier``); a name from a URL that is not in the catalog never
reaches SQL. Values are never cast to a type named here: they go as untyped
literals, so the column's own type applies as in plain SQL (see ``literals``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg2 import sql

_COLUMNS = """
SELECT a.attname,
       format_type(a.atttypid, a.atttypmod),
       t.typname,
       t.typcategory,
       a.attnotnull,
       a.atthasdef OR a.attidentity <> '',
       a.attidentity = 'a' OR a.attgenerated <> ''
  FROM pg_attribute a
  JOIN pg_type t ON t.oid = a.atttypid
 WHERE a.attrelid = %(table)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum
"""

_PRIMARY_KEY = """
SELECT a.attname
  FROM pg_index i
  CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
 WHERE i.indrelid = %(table)s::regclass AND i.indisprimary
 ORDER BY k.ord
"""

_NAMES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = %(table)s::regclass
"""


@dataclass(frozen=True)
class Column:
    name: str
    type_sql: str  # as format_type prints it, modifier included: for messages
    type_name: str  # pg_type.typname, for messages and JSON handling
    is_json: bool
    is_array: bool
    is_composite: bool  # a row type, or a domain over one (a domain has its base's category)
    not_null: bool
    has_default: bool
    generated: bool  # GENERATED ALWAYS: the database sets it, a client may not


@dataclass(frozen=True)
class Table:
    """One exposed table: its URL name, its quoted SQL name, its columns and key."""

    name: str  # as in the URL and the topic: "todos", "audit.events"
    ident: sql.Composable
    columns: dict[str, Column]
    primary_key: tuple[str, ...]

    @property
    def key(self) -> Column | None:
        """The single primary-key column that /api/<table>/<pk> addresses, if any."""
        if len(self.primary_key) != 1:
            return None
        return self.columns[self.primary_key[0]]


async def load_table(cur: Any, name: str) -> Table:
    """Read one table's columns and primary key (``cur``: an aiopg cursor). ``name`` must exist."""
    await cur.execute(_NAMES, {"table": name})
    schema, relname = await cur.fetchone()
    await cur.execute(_COLUMNS, {"table": name})
    columns = {}
    for attname, type_sql, typname, category, not_null, has_default, generated in await cur.fetchall():
        columns[attname] = Column(
            name=attname,
            type_sql=type_sql,
            type_name=typname,
            is_json=typname in ("json", "jsonb"),
            is_array=category == "A",
            is_composite=category == "C",
            not_null=not_null,
            has_default=has_default,
            generated=generated,
        )
    await cur.execute(_PRIMARY_KEY, {"table": name})
    primary_key = tuple(row[0] for row in await cur.fetchall())
    url_name = relname if schema == "public" else f"{schema}.{relname}"
    return Table(
        name=url_name,
        ident=sql.Identifier(schema, relname),
        columns=columns,
        primary_key=primary_key,
    )
