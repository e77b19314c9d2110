"""What the exposed tables look like, read from the Postgres catalog at start.

The REST handlers only ever put into SQL the identifiers found here (quoted with
:class:`Identifier`: psycopg2's, with ``%`` escaped); a name from a URL that is not
in the catalog never reaches SQL. Values are never cast to a type named here: they go as untyped
literals, so the column's own type applies as in plain SQL (see ``literals``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from psycopg2 import sql

# A domain's base type, through domains over domains: what decides how a value is
# written (a domain over jsonb takes JSON as jsonb does).
_BASE_TYPE = """
WITH RECURSIVE d(oid, base) AS (
    SELECT {0}.oid, {0}.typbasetype
    UNION ALL
    SELECT x.oid, x.typbasetype FROM pg_type x JOIN d ON x.oid = d.base
) SELECT oid FROM d WHERE base = 0"""

# b: the column's base type; e: the base type of an array's elements, and el.typdelim
# the character between them in an array literal (";" for box, "," for the others).
# Then an enum's labels in their order, and the facts of the column's collation that
# decide whether Python can compare its text as Postgres does (see gateway.predicate):
# the default collation (oid 100) is the database's. Columns that differ between
# versions are read through to_jsonb (datlocprovider since 15, colllocale since 17).
_COLUMNS = f"""
SELECT a.attname,
       format_type(a.atttypid, a.atttypmod),
       t.typname,
       b.typname,
       b.typcategory,
       e.typname,
       coalesce(el.typdelim, ','),
       a.attnotnull,
       a.atthasdef OR a.attidentity <> '',
       a.attidentity = 'a' OR a.attgenerated <> '',
       (SELECT array_agg(x.enumlabel::text ORDER BY x.enumsortorder) FROM pg_enum x WHERE x.enumtypid = b.oid),
       co.collname,
       CASE WHEN co.oid = 100 THEN coalesce(db.d ->> 'datlocprovider', 'c') ELSE to_jsonb(co) ->> 'collprovider' END,
       CASE WHEN co.oid = 100 THEN db.d ->> 'datcollate' ELSE to_jsonb(co) ->> 'collcollate' END,
       CASE WHEN co.oid = 100 THEN db.d ->> 'datctype' ELSE to_jsonb(co) ->> 'collctype' END,
       CASE WHEN co.oid = 100 THEN coalesce(db.d ->> 'datlocale', db.d ->> 'daticulocale')
            ELSE coalesce(to_jsonb(co) ->> 'colllocale', to_jsonb(co) ->> 'colliculocale') END,
       coalesce((to_jsonb(co) ->> 'collisdeterministic')::boolean, true),
       db.encoding
  FROM pg_attribute a
  JOIN pg_type t ON t.oid = a.atttypid
  CROSS JOIN LATERAL ({_BASE_TYPE.format("t")}) AS bt
  JOIN pg_type b ON b.oid = bt.oid
  LEFT JOIN pg_type el ON el.oid = b.typelem AND b.typcategory = 'A'
  LEFT JOIN LATERAL ({_BASE_TYPE.format("el")}) AS et ON true
  LEFT JOIN pg_type e ON e.oid = et.oid
  LEFT JOIN pg_collation co ON co.oid = a.attcollation
  CROSS JOIN (SELECT to_jsonb(d) AS d, pg_encoding_to_char(d.encoding) AS encoding
                FROM pg_database d WHERE d.datname = current_database()) db
 WHERE a.attrelid = %(table)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY a.attnum
"""

# What the OpenAPI document says of a column (gateway.column_schema) beyond what the
# handlers read: an enum's labels, an array's element base type and that type's enum
# labels, the DEFAULT expression, varchar(n)'s n, the comment. A statement of its own,
# so that _COLUMNS stays what the handlers read.
_DESCRIBED = f"""
SELECT a.attname,
       (SELECT array_agg(x.enumlabel::text ORDER BY x.enumsortorder) FROM pg_enum x WHERE x.enumtypid = b.oid),
       coalesce(e.typname, ''),
       (SELECT array_agg(x.enumlabel::text ORDER BY x.enumsortorder) FROM pg_enum x WHERE x.enumtypid = e.oid),
       pg_get_expr(ad.adbin, ad.adrelid),
       CASE WHEN t.typname IN ('varchar', 'bpchar') AND a.atttypmod > 4 THEN a.atttypmod - 4 END,
       col_description(a.attrelid, a.attnum)
  FROM pg_attribute a
  JOIN pg_type t ON t.oid = a.atttypid
  CROSS JOIN LATERAL ({_BASE_TYPE.format("t")}) AS bt
  JOIN pg_type b ON b.oid = bt.oid
  LEFT JOIN pg_type el ON el.oid = b.typelem AND b.typcategory = 'A'
  LEFT JOIN LATERAL ({_BASE_TYPE.format("el")}) AS et ON true
  LEFT JOIN pg_type e ON e.oid = et.oid
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
 WHERE a.attrelid = %(table)s::regclass AND a.attnum > 0 AND NOT a.attisdropped
"""

# Its names, its topic and its key, as the capture trigger has them: triggers.sql
# defines the topic and the key once (gateway.table_topic, gateway.primary_key), for
# the journal and for the URLs and /api/<table>/<pk> alike.
_NAMES = """
SELECT n.nspname, c.relname, gateway.table_topic(c.oid), gateway.primary_key(c.oid),
       obj_description(c.oid, 'pg_class')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = %(table)s::regclass
"""


_JSON_TYPES = ("json", "jsonb")


class Identifier(sql.Identifier):
    """psycopg2's quoted identifier, with each ``%`` doubled.

    Every statement the REST handlers build runs with parameters, and then psycopg2
    reads every ``%`` in its text as the start of a placeholder, inside a quoted name
    too: a column named ``rate%`` made each write naming it a 500. Use it only in a
    statement run with parameters (an empty list counts), where ``%%`` is read as ``%``.
    """

    def as_string(self, context: Any) -> str:
        return str(super().as_string(context)).replace("%", "%%")


def placeholder_safe(text: str) -> str:
    """SQL text from the catalog (a type as format_type prints it), for a statement run
    with parameters: each ``%`` doubled, as in :class:`Identifier`."""
    return text.replace("%", "%%")


@dataclass(frozen=True)
class Collation:
    """A text column's collation, as far as comparing its values outside Postgres goes.

    ``codepoint_order``: the collation sorts by code point, as Python compares ``str``
    (libc's C and POSIX, the builtin provider's C and C.UTF-8, in a UTF8 database:
    UTF-8's byte order is code point order). ``ascii_case``: ``lower()``, and so
    ``ilike``, fold only A-Z (libc's C and POSIX ctype, builtin C). ``deterministic``:
    equal means byte-equal (false only for ICU collations made nondeterministic).
    """

    name: str  # as in COLLATE "name"; "default" for the database's
    provider: str  # "c" libc, "i" ICU, "b" builtin
    locale: str  # its LC_COLLATE, or the ICU/builtin locale
    deterministic: bool
    codepoint_order: bool
    ascii_case: bool


_C_LOCALES = ("C", "POSIX")


def collation_of(
    name: str,
    provider: str,
    collate: str | None,
    ctype: str | None,
    locale: str | None,
    deterministic: bool,
    encoding: str,
) -> Collation:
    """The :class:`Collation` of catalog facts (pg_collation's, or pg_database's for "default")."""
    utf8 = encoding == "UTF8"
    if provider == "b":  # builtin (PostgreSQL 17+): C or C.UTF-8 (code point order), PG_UNICODE_FAST
        where = locale or ""
        order = utf8 and where in ("C", "C.UTF-8")
        ascii_case = utf8 and where == "C"
    elif provider == "c":
        where = collate or ""
        order = utf8 and where in _C_LOCALES
        ascii_case = utf8 and (ctype or "") in _C_LOCALES
    else:
        where, order, ascii_case = locale or collate or "", False, False
    return Collation(name, provider, where, deterministic, order and deterministic, ascii_case)


@dataclass(frozen=True)
class Column:
    name: str
    type_sql: str  # as format_type prints it, modifier included: for messages
    type_name: str  # pg_type.typname: a domain's own name, an array's "_int4"
    is_json: bool  # json or jsonb, or a domain over one
    keeps_text: bool  # json, or a domain over it: stores the member's text as sent (see gateway.members)
    is_array: bool
    json_elements: bool  # an array of json or jsonb (or of domains over one)
    delimiter: str  # between the elements of an array literal
    is_composite: bool  # a row type, or a domain over one (a domain has its base's category)
    not_null: bool  # NOT NULL (the OpenAPI document: required unless it has a default)
    has_default: bool  # a DEFAULT or an identity: an insert may leave it out
    generated: bool  # GENERATED ALWAYS: the database sets it, a client may not
    base_type: str = ""  # pg_type.typname of the base type (a domain's): int4, numeric, text, an enum's name
    enum_labels: tuple[str, ...] | None = None  # an enum's labels in sort order; None for other types
    # For the OpenAPI document (gateway.column_schema); the defaults say nothing more.
    element_type: str = ""  # an array's element base type's typname ("text" for text[]); "" for others
    element_labels: tuple[str, ...] | None = None  # an array of enums: the enum's labels; else None
    default: str | None = None  # the DEFAULT expression as Postgres prints it
    max_length: int | None = None  # varchar(n) and char(n): n
    comment: str | None = None  # COMMENT ON COLUMN
    collation: Collation | None = None  # a collatable type's collation; None for others


@dataclass(frozen=True)
class Table:
    """One exposed table: its URL name, its quoted SQL name, its columns and key."""

    name: str  # as in the URL and the topic: "todos", "audit.events"
    ident: sql.Composable
    columns: dict[str, Column]
    primary_key: tuple[str, ...]
    comment: str | None = None  # COMMENT ON TABLE, for the OpenAPI document

    @property
    def key(self) -> Column | None:
        """The single primary-key column that /api/<table>/<pk> addresses, if any."""
        if len(self.primary_key) != 1:
            return None
        return self.columns[self.primary_key[0]]


async def load_table(cur: Any, name: str) -> Table:
    """Read one table's columns and primary key (``cur``: an aiopg cursor). ``name`` must
    exist, and the gateway's schema must be applied (it asks triggers.sql's functions)."""
    await cur.execute(_NAMES, {"table": name})
    schema, relname, topic, primary_key, comment = await cur.fetchone()
    await cur.execute(_COLUMNS, {"table": name})
    columns = {}
    for row in await cur.fetchall():
        attname, type_sql, typname, base, category, element, delimiter, not_null, has_default, generated = row[:10]
        labels, coll_name, provider, collate, ctype, locale, deterministic, encoding = row[10:]
        columns[attname] = Column(
            name=attname,
            type_sql=type_sql,
            type_name=typname,
            is_json=base in _JSON_TYPES,
            keeps_text=base == "json",
            is_array=category == "A",
            json_elements=element in _JSON_TYPES,
            delimiter=delimiter,
            is_composite=category == "C",
            not_null=not_null,
            has_default=has_default,
            generated=generated,
            base_type=base,
            enum_labels=tuple(labels) if labels is not None else None,
            collation=None
            if coll_name is None
            else collation_of(coll_name, provider, collate, ctype, locale, deterministic, encoding),
        )
    return Table(
        name=topic,
        ident=Identifier(schema, relname),
        columns=await _described(cur, name, columns),
        primary_key=tuple(primary_key or ()),
        comment=comment,
    )


async def _described(cur: Any, name: str, columns: dict[str, Column]) -> dict[str, Column]:
    """``columns`` with what only the OpenAPI document reads (_DESCRIBED) filled in."""
    await cur.execute(_DESCRIBED, {"table": name})
    described = dict(columns)
    for attname, labels, element_type, element_labels, default, max_length, comment in await cur.fetchall():
        described[attname] = replace(
            columns[attname],
            enum_labels=tuple(labels) if labels is not None else None,
            element_type=element_type,
            element_labels=tuple(element_labels) if element_labels is not None else None,
            default=default,
            max_length=max_length,
            comment=comment,
        )
    return described
