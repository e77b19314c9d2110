"""PostgREST's query grammar, read the way PostgREST reads it: tables of query text and trees.

Cases come from PostgREST (github.com/PostgREST/postgrest) and say where:
  docs:   docs/references/api/tables_views.rst ("Horizontal Filtering", "Logical
          operators", "Operator Modifiers", "JSON Columns", "Ordering") and
          docs/references/api/url_grammar.rst ("Reserved characters")
  qp:     the doctests of src/library/PostgREST/ApiRequest/QueryParams.hs
  spec:   test/spec/Feature/Query/{QuerySpec,AndOrParamsSpec,JsonOperatorSpec}.hs
An error case's message and details are PostgREST's own text where PostgREST has one
(its PGRST100 body); a hint is ours, PostgREST sends none.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.grammar import (
    RESERVED,
    Condition,
    Field,
    GrammarError,
    IsValue,
    JsonStep,
    Logic,
    Operator,
    OrderTerm,
    Query,
    SelectItem,
    like_pattern,
    parse_filter,
    parse_filters,
    parse_order,
    parse_query,
    parse_select,
)

Op = Operator


def c(column: str | Field, op: Operator, value: str | tuple[str, ...] | IsValue, **more: object) -> Condition:
    field = column if isinstance(column, Field) else Field(column)
    return Condition(field, op, value, **more)  # type: ignore[arg-type]


def j(column: str, *steps: tuple[str | int, bool]) -> Field:
    """``j("data", ("a", False), ("b", True))`` is ``data->a->>b``."""
    return Field(column, tuple(JsonStep(key, as_text) for key, as_text in steps))


FILTERS = [
    # docs, Horizontal Filtering and the operator table
    ("age", "lt.13", c("age", Op.LT, "13")),
    ("age", "gte.18", c("age", Op.GTE, "18")),
    ("student", "is.true", c("student", Op.IS, IsValue.TRUE)),
    ("a", "in.(1,2,3)", c("a", Op.IN, ("1", "2", "3"))),
    ("a", 'in.("hi,there","yes,you")', c("a", Op.IN, ("hi,there", "yes,you"))),
    ("a", "not.eq.2", c("a", Op.EQ, "2", negated=True)),
    ("tags", "cs.{example, new}", c("tags", Op.CS, "{example, new}")),
    ("values", "cd.{1,2,3}", c("values", Op.CD, "{1,2,3}")),
    ("period", "ov.[2017-01-01,2017-06-30]", c("period", Op.OV, "[2017-01-01,2017-06-30]")),
    ("range", "sl.(1,10)", c("range", Op.SL, "(1,10)")),
    ("range", "sr.(1,10)", c("range", Op.SR, "(1,10)")),
    ("range", "nxr.(1,10)", c("range", Op.NXR, "(1,10)")),
    ("range", "nxl.(1,10)", c("range", Op.NXL, "(1,10)")),
    ("range", "adj.(1,10)", c("range", Op.ADJ, "(1,10)")),
    # docs, Operator Modifiers
    ("last_name", "like(any).{O*,P*}", c("last_name", Op.LIKE, "{O*,P*}", quantifier="any")),
    ("last_name", "like(all).{O*,*n}", c("last_name", Op.LIKE, "{O*,*n}", quantifier="all")),
    ("id", "not.eq(all).{1,2}", c("id", Op.EQ, "{1,2}", negated=True, quantifier="all")),  # qp
    # docs, Full-Text Search
    ("my_tsv", "fts(french).amusant", c("my_tsv", Op.FTS, "amusant", language="french")),
    ("my_tsv", "plfts.The Fat Cats", c("my_tsv", Op.PLFTS, "The Fat Cats")),
    (
        "my_tsv",
        "not.phfts(english).The Fat Cats",
        c("my_tsv", Op.PHFTS, "The Fat Cats", negated=True, language="english"),
    ),
    ("my_tsv", "not.wfts(french).amusant", c("my_tsv", Op.WFTS, "amusant", negated=True, language="french")),
    # docs, JSON Columns and Composite / Array Columns
    ("json_data->>blood_type", "eq.A-", c(j("json_data", ("blood_type", True)), Op.EQ, "A-")),
    ("json_data->age", "gt.20", c(j("json_data", ("age", False)), Op.GT, "20")),
    ("location->lat", "gte.19", c(j("location", ("lat", False)), Op.GTE, "19")),
    ("data->a->>b", "eq.x", c(j("data", ("a", False), ("b", True)), Op.EQ, "x")),
    ("data->0", "eq.1", c(j("data", (0, False)), Op.EQ, "1")),
    ("data->>-1", "eq.1", c(j("data", (-1, True)), Op.EQ, "1")),  # qp: an index may be negative
    ("data->12abc", "eq.1", c(j("data", ("12abc", False)), Op.EQ, "1")),  # digits then text: a key
    ("data->a-b->c d", "eq.1", c(j("data", ("a-b", False), ("c d", False)), Op.EQ, "1")),
    # docs, url_grammar: names with reserved characters are quoted; spaces need not be
    ('"information.cpe"', "like.*MS*", c("information.cpe", Op.LIKE, "*MS*")),
    ("Unit Price", "lt.200", c("Unit Price", Op.LT, "200")),
    ("name", 'in.("Hebdon,John","Williams,Mary")', c("name", Op.IN, ("Hebdon,John", "Williams,Mary"))),
    ("name", 'in.("Quote:\\"","Backslash:\\\\")', c("name", Op.IN, ('Quote:"', "Backslash:\\"))),
    # spec, QuerySpec "Filtering response"
    ("id", "eq.5", c("id", Op.EQ, "5")),
    ("id", "not.lt.14", c("id", Op.LT, "14", negated=True)),
    ("id", "not.in.(2,4,6)", c("id", Op.IN, ("2", "4", "6"), negated=True)),
    ("a", "not.is.null", c("a", Op.IS, IsValue.NULL, negated=True)),
    ("a", "is.not_null", c("a", Op.IS, IsValue.NOT_NULL)),
    ("done", "is.unknown", c("done", Op.IS, IsValue.UNKNOWN)),
    ("done", "is.NULL", c("done", Op.IS, IsValue.NULL)),
    ("done", "is.NoT_NuLl", c("done", Op.IS, IsValue.NOT_NULL)),
    ("done", "is.FAlSe", c("done", Op.IS, IsValue.FALSE)),
    ("k", "like.*yx", c("k", Op.LIKE, "*yx")),  # raw: the compiler maps * to % (like_pattern)
    ("k", "not.ilike.xy*", c("k", Op.ILIKE, "xy*", negated=True)),
    ("k", "match.^xy", c("k", Op.MATCH, "^xy")),
    ("k", "imatch..*YY.*", c("k", Op.IMATCH, ".*YY.*")),
    ("a", "isdistinct.2", c("a", Op.ISDISTINCT, "2")),
    ("a", "not.isdistinct.2", c("a", Op.ISDISTINCT, "2", negated=True)),
    ("text_search_vector", "fts.fun&possible", c("text_search_vector", Op.FTS, "fun&possible")),
    ("filename", "eq.autoexec.bat", c("filename", Op.EQ, "autoexec.bat")),
    ("field-with_sep", "eq.1", c("field-with_sep", Op.EQ, "1")),
    ("a$num$", "eq.100", c("a$num$", Op.EQ, "100")),
    ('"*id*"', "eq.1", c("*id*", Op.EQ, "1")),
    ("Just A Server Model", "like.*91*", c("Just A Server Model", Op.LIKE, "*91*")),
    # spec, QuerySpec "values with quotes in IN and NOT IN" / "IN values without quotes"
    ("name", 'in.("Hebdon, John")', c("name", Op.IN, ("Hebdon, John",))),
    ("name", 'in.(David White,"Hebdon, John")', c("name", Op.IN, ("David White", "Hebdon, John"))),
    ("name", 'in.("Double O Seven(007)")', c("name", Op.IN, ("Double O Seven(007)",))),
    ("name", 'in.("Double\\"Quote\\"McGraw\\"")', c("name", Op.IN, ('Double"Quote"McGraw"',))),
    ("name", 'in.("\\\\")', c("name", Op.IN, ("\\",))),
    ("name", 'in.("/\\\\Slash/\\\\Beast/\\\\")', c("name", Op.IN, ("/\\Slash/\\Beast/\\",))),
    ("name", 'in.("D\\a\\vid W\\h\\ite")', c("name", Op.IN, ("David White",))),
    ("name", 'in.(")', c("name", Op.IN, ('"',))),
    ("name", 'in.(Double"Quote"McGraw")', c("name", Op.IN, ('Double"Quote"McGraw"',))),
    ("name", "in.(\\)", c("name", Op.IN, ("\\",))),
    ("name", 'in.("ab"cd)', c("name", Op.IN, ('"ab"cd',))),  # quotes count only when they end the value
    # spec, QuerySpec "IN and NOT IN empty set"
    ("int_data", "in.()", c("int_data", Op.IN, ())),
    ("int_data", "not.in.()", c("int_data", Op.IN, (), negated=True)),
    ("int_data", "in.(    )", c("int_data", Op.IN, ())),
    ("int_data", "in.( ,3,4)", c("int_data", Op.IN, ("", "3", "4"))),  # Postgres refuses "" for int
    ("int_data", 'in.("")', c("int_data", Op.IN, ("",))),  # quoted: the empty string (PostgREST: no value)
    # spec, AndOrParamsSpec "operators inside and/or" at the top level: values taken literally
    ("range", "eq.[1,3]", c("range", Op.EQ, "[1,3]")),
    ("range", "adj.(3,10]", c("range", Op.ADJ, "(3,10]")),
    ("arr", "isdistinct.{1,2}", c("arr", Op.ISDISTINCT, "{1,2}")),
    # The issue: after the operator a top-level value is everything, quotes included
    ("a", "eq.a,b(c)", c("a", Op.EQ, "a,b(c)")),
    ("a", 'eq."quoted"', c("a", Op.EQ, '"quoted"')),
    ("a", "eq.", c("a", Op.EQ, "")),
    ("a", "eq.not.x", c("a", Op.EQ, "not.x")),
    ("not", "eq.1", c("not", Op.EQ, "1")),  # a column named not
    ("a", "in.(1,2) ", c("a", Op.IN, ("1", "2"))),
    ("a", "is.true ", c("a", Op.IS, IsValue.TRUE)),
]


@pytest.mark.parametrize(("key", "value", "tree"), FILTERS, ids=[f"{k}={v}" for k, v, _ in FILTERS])
def test_filter_reads_as_postgrest(key: str, value: str, tree: Condition) -> None:
    assert parse_filter(key, value) == tree


LOGIC = [
    # docs, Logical operators
    ("or", "(age.lt.18,age.gt.21)", Logic("or", (c("age", Op.LT, "18"), c("age", Op.GT, "21")))),
    ("not.and", "(a.gte.0,a.lte.100)", Logic("and", (c("a", Op.GTE, "0"), c("a", Op.LTE, "100")), negated=True)),
    (
        "or",
        "(age.eq.14,not.and(age.gte.11,age.lte.17))",
        Logic("or", (c("age", Op.EQ, "14"), Logic("and", (c("age", Op.GTE, "11"), c("age", Op.LTE, "17")), True))),
    ),
    (
        "or",
        '(age_range.adj."[18,21)",age_range.cs."[30,35]")',
        Logic("or", (c("age_range", Op.ADJ, "[18,21)"), c("age_range", Op.CS, "[30,35]"))),
    ),
    # spec, AndOrParamsSpec
    ("not.or", "(id.eq.1,id.eq.2)", Logic("or", (c("id", Op.EQ, "1"), c("id", Op.EQ, "2")), True)),
    ("or", "(id.eq.1)", Logic("or", (c("id", Op.EQ, "1"),))),
    ("and", "(id.eq.1)", Logic("and", (c("id", Op.EQ, "1"),))),
    (
        "or",
        "(and(name.eq.entity 2,id.eq.2),and(name.eq.entity 1,id.eq.1))",
        Logic(
            "or",
            (
                Logic("and", (c("name", Op.EQ, "entity 2"), c("id", Op.EQ, "2"))),
                Logic("and", (c("name", Op.EQ, "entity 1"), c("id", Op.EQ, "1"))),
            ),
        ),
    ),
    (
        "or",
        "(not.and(name.eq.entity 2,id.eq.2),not.and(name.eq.entity 1,id.eq.1))",
        Logic(
            "or",
            (
                Logic("and", (c("name", Op.EQ, "entity 2"), c("id", Op.EQ, "2")), True),
                Logic("and", (c("name", Op.EQ, "entity 1"), c("id", Op.EQ, "1")), True),
            ),
        ),
    ),
    (
        "or",
        "(name.like.*1,name.ilike.*ENTITY 2)",
        Logic("or", (c("name", Op.LIKE, "*1"), c("name", Op.ILIKE, "*ENTITY 2"))),
    ),
    ("or", "(id.in.(1,2),id.in.(3,4))", Logic("or", (c("id", Op.IN, ("1", "2")), c("id", Op.IN, ("3", "4"))))),
    (
        "and",
        "(name.is.null,arr.is.null)",
        Logic("and", (c("name", Op.IS, IsValue.NULL), c("arr", Op.IS, IsValue.NULL))),
    ),
    (
        "or",
        "(text_search_vector.plfts(german).Art Spass, text_search_vector.fts(english).impossible)",
        Logic(
            "or",
            (
                c("text_search_vector", Op.PLFTS, "Art Spass", language="german"),
                c("text_search_vector", Op.FTS, "impossible", language="english"),
            ),
        ),
    ),
    (
        "and",
        "(text_search.not.plfts(german).Art Spass)",
        Logic("and", (c("text_search", Op.PLFTS, "Art Spass", negated=True, language="german"),)),
    ),
    ("and", "(id.gte.2,arr.isdistinct.{1,2})", Logic("and", (c("id", Op.GTE, "2"), c("arr", Op.ISDISTINCT, "{1,2}")))),
    ("or", "(arr.cs.{1,2,3},arr.cd.{1})", Logic("or", (c("arr", Op.CS, "{1,2,3}"), c("arr", Op.CD, "{1}")))),
    (
        "and",
        "(arr.not.cs.{1,2,3},and(id.not.eq.2,name.not.like.*3))",
        Logic(
            "and",
            (
                c("arr", Op.CS, "{1,2,3}", negated=True),
                Logic("and", (c("id", Op.EQ, "2", negated=True), c("name", Op.LIKE, "*3", negated=True))),
            ),
        ),
    ),
    (
        "and",
        "(id.not.in.(1,3),and(name.not.is.null,text_search_vector.not.fts.foo))",
        Logic(
            "and",
            (
                c("id", Op.IN, ("1", "3"), negated=True),
                Logic(
                    "and",
                    (
                        c("name", Op.IS, IsValue.NULL, negated=True),
                        c("text_search_vector", Op.FTS, "foo", negated=True),
                    ),
                ),
            ),
        ),
    ),
    (
        "or",
        '(name.eq."(grandchild,entity,4)",name.eq."(grandchild,entity,5)")',
        Logic("or", (c("name", Op.EQ, "(grandchild,entity,4)"), c("name", Op.EQ, "(grandchild,entity,5)"))),
    ),
    (
        "or",
        '(name.like."*ity,4*",name.ilike."*ITY,5)")',
        Logic("or", (c("name", Op.LIKE, "*ity,4*"), c("name", Op.ILIKE, "*ITY,5)"))),
    ),
    ("or", '(id.in.("1","2"),id.in.("3","4"))', Logic("or", (c("id", Op.IN, ("1", "2")), c("id", Op.IN, ("3", "4"))))),
    # spec: spaces around the punctuation are allowed; a value keeps the ones inside it
    (
        "and",
        "( and ( id.in.( 1, 2, 3 ) , id.eq.3 ) , or ( id.eq.2 , id.eq.3 ) )",
        Logic(
            "and",
            (
                Logic("and", (c("id", Op.IN, ("1", " 2", " 3 ")), c("id", Op.EQ, "3 "))),
                Logic("or", (c("id", Op.EQ, "2 "), c("id", Op.EQ, "3 "))),
            ),
        ),
    ),
    ("or", "(id.eq.1, id.eq.2)", Logic("or", (c("id", Op.EQ, "1"), c("id", Op.EQ, "2")))),
    (
        "and",
        "( id.eq.1, not.or(id.eq.2, id.eq.3), id.in.(1,4) )",
        Logic(
            "and",
            (
                c("id", Op.EQ, "1"),
                Logic("or", (c("id", Op.EQ, "2"), c("id", Op.EQ, "3")), True),
                c("id", Op.IN, ("1", "4")),
            ),
        ),
    ),
    (
        "or",
        "(and_starting_col.eq.smth, or_starting_col.eq.smth)",
        Logic("or", (c("and_starting_col", Op.EQ, "smth"), c("or_starting_col", Op.EQ, "smth"))),
    ),
    # The example, in PostgREST's spelling: inside a tree a condition is negated
    # after its column (d.not.is.null); not. before an item negates only and()/or().
    (
        "or",
        "(a.eq.1,b.gt.2,and(c.eq.3,d.not.is.null))",
        Logic(
            "or",
            (
                c("a", Op.EQ, "1"),
                c("b", Op.GT, "2"),
                Logic("and", (c("c", Op.EQ, "3"), c("d", Op.IS, IsValue.NULL, negated=True))),
            ),
        ),
    ),
    # Columns named like the reserved words are filtered through a tree (RESERVED's note)
    ("and", "(select.eq.x,or.eq.y)", Logic("and", (c("select", Op.EQ, "x"), c("or", Op.EQ, "y")))),
    # JSON paths and quoted names inside trees
    (
        "or",
        "(data->a->>b.eq.1,data->0.gt.2)",
        Logic("or", (c(j("data", ("a", False), ("b", True)), Op.EQ, "1"), c(j("data", (0, False)), Op.GT, "2"))),
    ),
    ("or", '("a.b".eq.1,"x,y".is.true)', Logic("or", (c("a.b", Op.EQ, "1"), c("x,y", Op.IS, IsValue.TRUE)))),
    # values: quoted ones hold , . : ( ) and escapes; a quoted value not ended by its quote is raw
    ("or", '(a.eq."x\\"y\\\\z",a.eq.1.5)', Logic("or", (c("a", Op.EQ, 'x"y\\z'), c("a", Op.EQ, "1.5")))),
    ("or", '(a.eq."x" ,a.eq.)', Logic("or", (c("a", Op.EQ, '"x" '), c("a", Op.EQ, "")))),
    (
        "or",
        "(a.eq(any).{1,2},a.like(all).{x*})",
        Logic("or", (c("a", Op.EQ, "{1,2}", quantifier="any"), c("a", Op.LIKE, "{x*}", quantifier="all"))),
    ),
]


@pytest.mark.parametrize(("key", "value", "tree"), LOGIC, ids=[f"{k}={v}" for k, v, _ in LOGIC])
def test_logic_tree_reads_as_postgrest(key: str, value: str, tree: Logic) -> None:
    assert parse_filter(key, value) == tree


OPS = "eq, neq, gt, gte, lt, lte, like, ilike, match, imatch, in, is, isdistinct, cs, cd, ov"
FILTER_ERRORS = [
    # spec QuerySpec "fails if an operator is not given"; qp pRequestFilter: a bare value
    (
        "id",
        "0",
        '"failed to parse filter (0)" (line 1, column 1)',
        'unexpected "0" expecting "not" or operator (eq, gt, ...)',
        "id=eq.0 ",
    ),
    (
        "id",
        "val",
        '"failed to parse filter (val)" (line 1, column 1)',
        'unexpected "v" expecting "not" or operator (eq, gt, ...)',
        "id=eq.val ",
    ),
    ("name", "john.doe", '"failed to parse filter (john.doe)" (line 1, column 1)', None, "name=eq.john.doe "),
    (
        "id",
        "",
        '"failed to parse filter ()" (line 1, column 1)',
        'unexpected end of input expecting "not" or operator (eq, gt, ...)',
        "id=eq.",
    ),
    # qp parse: an operator PostgREST does not have; the hint lists those it does
    (
        "b",
        "noop.0",
        '"failed to parse filter (noop.0)" (line 1, column 1)',
        'unexpected "n" expecting "not" or operator (eq, gt, ...)',
        OPS,
    ),
    ("id", "eqq.3", '"failed to parse filter (eqq.3)" (line 1, column 1)', None, "did you mean id=eq.3?"),
    ("id", "EQ.3", '"failed to parse filter (EQ.3)" (line 1, column 1)', None, "did you mean id=eq.3?"),
    (
        "id",
        "not.foo.3",
        '"failed to parse filter (not.foo.3)" (line 1, column 5)',
        'unexpected "f" expecting operator (eq, gt, ...)',
        OPS,
    ),
    ("id", "not.not.eq.3", '"failed to parse filter (not.not.eq.3)" (line 1, column 5)', None, OPS),
    # grammar.py's docstring: an operator without its dot
    (
        "id",
        "eq3",
        '"failed to parse filter (eq3)" (line 1, column 3)',
        'unexpected "3" expecting "(" or delimiter (.)',
        "id=eq.3",
    ),
    (
        "id",
        "not.in(1,2)",
        '"failed to parse filter (not.in(1,2))" (line 1, column 7)',
        'unexpected "(" expecting delimiter (.)',
        "id=not.in.(1,2)",
    ),
    # qp pOpExpr: only any/all quantify, and only eq gt gte lt lte like ilike match imatch
    (
        "id",
        "eq().value",
        '"failed to parse filter (eq().value)" (line 1, column 4)',
        'unexpected ")" expecting "any" or "all"',
        "eq(any)",
    ),
    (
        "id",
        "neq(any).{1}",
        '"failed to parse filter (neq(any).{1})" (line 1, column 4)',
        'unexpected "(" expecting delimiter (.)',
        None,
    ),
    (
        "id",
        "is().value",
        '"failed to parse filter (is().value)" (line 1, column 3)',
        'unexpected "(" expecting delimiter (.)',
        None,
    ),
    (
        "id",
        "in().value",
        '"failed to parse filter (in().value)" (line 1, column 3)',
        'unexpected "(" expecting delimiter (.)',
        None,
    ),
    (
        "t",
        "fts().value",
        '"failed to parse filter (fts().value)" (line 1, column 5)',
        'unexpected ")" expecting letter or digit',
        None,
    ),
    (
        "t",
        "fts(english.x",
        '"failed to parse filter (fts(english.x)" (line 1, column 12)',
        'unexpected "." expecting ")"',
        None,
    ),
    # spec QuerySpec "is" with a value it does not know
    (
        "done",
        "is.nil",
        '"failed to parse filter (is.nil)" (line 1, column 4)',
        'unexpected "n" expecting isVal: (null, not_null, true, false, unknown)',
        "done=is.null",
    ),
    ("done", "is.ok", '"failed to parse filter (is.ok)" (line 1, column 4)', None, "done=is.null"),
    (
        "done",
        "is.nullx",
        '"failed to parse filter (is.nullx)" (line 1, column 4)',
        None,
        None,
    ),  # PostgREST ignores the x
    ("done", "is.", '"failed to parse filter (is.)" (line 1, column 4)', None, None),
    # in.( ... ) that is not a list
    (
        "id",
        "in.1,2",
        '"failed to parse filter (in.1,2)" (line 1, column 4)',
        'unexpected "1" expecting "("',
        "id=in.(1,2)",
    ),
    (
        "id",
        "in.(1,2",
        '"failed to parse filter (in.(1,2)" (line 1, column 8)',
        'unexpected end of input expecting "," or ")"',
        None,
    ),
    (
        "id",
        "in.(1,2)x",
        '"failed to parse filter (in.(1,2)x)" (line 1, column 9)',
        "unexpected 'x' expecting end of input",
        None,
    ),
    ("id", 'in.("a"', '"failed to parse filter (in.("a")" (line 1, column 8)', None, None),
    # line and column as Parsec counts them
    ("id", "in.(1,\n2", '"failed to parse filter (in.(1,\n2)" (line 2, column 2)', None, None),
    # keys: embedded resources, and text a name cannot hold
    ("clients.id", "eq.1", '"failed to parse tree path (clients.id)" (line 1, column 8)', None, '"clients.id"=eq.1'),
    (
        "projects.tasks.name",
        "like.Design*",
        '"failed to parse tree path (projects.tasks.name)" (line 1, column 9)',
        None,
        None,
    ),
    ("clients.order", "id", None, None, None),
    ("child.or", "(id.eq.1)", None, None, None),
    ("id!x", "eq.1", '"failed to parse tree path (id!x)" (line 1, column 3)', None, None),
    (
        "",
        "eq.1",
        '"failed to parse tree path ()" (line 1, column 1)',
        "unexpected end of input expecting field name (* or [a..z0..9_$])",
        None,
    ),
    (
        '"id',
        "eq.1",
        '"failed to parse tree path ("id)" (line 1, column 4)',
        'unexpected end of input expecting "\\\\" or "\\""',
        None,
    ),
    ("data->", "eq.1", None, None, None),
    ("data->99999999999", "eq.1", None, "the JSON array index 99999999999 is out of range", None),
    # reserved parameters are not filters
    ("select", "eq.1", "'select' is a reserved parameter, not a filter", None, "and=(select.eq.value)"),
    ("limit", "eq.1", "'limit' is a reserved parameter, not a filter", None, None),
]


@pytest.mark.parametrize(
    ("key", "value", "message", "details", "hint"), FILTER_ERRORS, ids=[f"{k}={v}" for k, v, *_ in FILTER_ERRORS]
)
def test_filter_error_says_what_and_where(
    key: str, value: str, message: str | None, details: str | None, hint: str | None
) -> None:
    with pytest.raises(GrammarError) as caught:
        parse_filter(key, value)
    error = caught.value
    assert error.message and str(error) == error.message and error.details
    if message is not None:
        assert error.message == message
    if details is not None:
        assert error.details == details
    if hint is not None:
        assert error.hint is not None and hint in error.hint


LOGIC_ERRORS = [
    # spec AndOrParamsSpec "fails when ... or=()", and qp pLogicTree
    (
        "or",
        "()",
        '"failed to parse logic tree (())" (line 1, column 4)',
        'unexpected ")" expecting field name (* or [a..z0..9_$]), negation operator (not) or logic operator (and, or)',
    ),
    (
        "or",
        "(id.in.1,2,id.eq.3)",
        '"failed to parse logic tree ((id.in.1,2,id.eq.3))" (line 1, column 10)',
        'unexpected "1" expecting "("',
    ),
    ("or", ")(", '"failed to parse logic tree ()()" (line 1, column 3)', 'unexpected ")" expecting "("'),
    (
        "and",
        "(ord(id.eq.1,id.eq.1),id.eq.2)",
        '"failed to parse logic tree ((ord(id.eq.1,id.eq.1),id.eq.2))" (line 1, column 7)',
        'unexpected "d" expecting "("',
    ),
    (
        "or",
        "(id.eq.1,not.xor(id.eq.2,id.eq.3))",
        '"failed to parse logic tree ((id.eq.1,not.xor(id.eq.2,id.eq.3)))" (line 1, column 16)',
        'unexpected "x" expecting logic operator (and, or)',
    ),
    # not. before a column is not PostgREST's: it negates and()/or() only
    (
        "or",
        "(a.eq.1,not.d.is.null)",
        '"failed to parse logic tree ((a.eq.1,not.d.is.null))" (line 1, column 15)',
        'unexpected "d" expecting logic operator (and, or)',
    ),
    ("or", "", '"failed to parse logic tree ()" (line 1, column 3)', 'unexpected end of input expecting "("'),
    ("or", "a.eq.1", '"failed to parse logic tree (a.eq.1)" (line 1, column 3)', 'unexpected "a" expecting "("'),
    (
        "or",
        "(a.eq.1",
        '"failed to parse logic tree ((a.eq.1)" (line 1, column 10)',
        'unexpected end of input expecting "," or ")"',
    ),
    (
        "or",
        "(a.eqq.1)",
        '"failed to parse logic tree ((a.eqq.1))" (line 1, column 6)',
        'unexpected "e" expecting "not" or operator (eq, gt, ...)',
    ),
    ("or", "(a.1)", '"failed to parse logic tree ((a.1))" (line 1, column 6)', None),
    ("or", "(a)", '"failed to parse logic tree ((a))" (line 1, column 5)', 'unexpected ")" expecting delimiter (.)'),
    ("or", "(a.is.nil)", '"failed to parse logic tree ((a.is.nil))" (line 1, column 9)', None),
    (
        "or",
        "(a.eq.{1,2}x)",
        '"failed to parse logic tree ((a.eq.{1,2}x))" (line 1, column 14)',
        'unexpected "x" expecting "," or ")"',
    ),
    ("or", "(a.eq.1,and(b.eqq.2))", '"failed to parse logic tree ((a.eq.1,and(b.eqq.2)))" (line 1, column 17)', None),
    # PostgREST ignores what follows the closing parenthesis (AndOrParamsSpec "can handle
    # eq and neq" even sends one too many); we refuse it rather than guess
    (
        "and",
        "(id.eq.1,id.neq.2))",
        '"failed to parse logic tree ((id.eq.1,id.neq.2)))" (line 1, column 22)',
        "unexpected ')' expecting end of input",
    ),
]


@pytest.mark.parametrize(
    ("key", "value", "message", "details"), LOGIC_ERRORS, ids=[f"{k}={v}" for k, v, *_ in LOGIC_ERRORS]
)
def test_logic_tree_error_says_what_and_where(key: str, value: str, message: str, details: str | None) -> None:
    with pytest.raises(GrammarError) as caught:
        parse_filter(key, value)
    assert caught.value.message == message
    assert caught.value.hint  # every logic-tree error shows the shape of one
    if details is not None:
        assert caught.value.details == details


def test_negated_column_in_a_tree_hints_at_postgrest_spelling() -> None:
    with pytest.raises(GrammarError) as caught:
        parse_filter("or", "(a.eq.1,not.d.is.null)")
    assert caught.value.hint is not None and "b.not.is.null" in caught.value.hint


STAR = SelectItem(None)
SELECTS = [
    # docs, Vertical Filtering, Renaming Columns, JSON Columns, Casting Columns
    ("first_name,age", (SelectItem(Field("first_name")), SelectItem(Field("age")))),
    ("*", (STAR,)),
    (
        "fullName:full_name,birthDate:birth_date",
        (SelectItem(Field("full_name"), "fullName"), SelectItem(Field("birth_date"), "birthDate")),
    ),
    (
        "id,json_data->>blood_type,json_data->phones",
        (
            SelectItem(Field("id")),
            SelectItem(j("json_data", ("blood_type", True))),
            SelectItem(j("json_data", ("phones", False))),
        ),
    ),
    (
        "id,json_data->phones->0->>number",
        (SelectItem(Field("id")), SelectItem(j("json_data", ("phones", False), (0, False), ("number", True)))),
    ),
    ("primary_language:languages->0", (SelectItem(j("languages", (0, False)), "primary_language"),)),
    ("full_name,salary::text", (SelectItem(Field("full_name")), SelectItem(Field("salary"), cast="text"))),
    # qp pFieldSelect
    ("name->jsonpath", (SelectItem(j("name", ("jsonpath", False))),)),
    ("name::cast", (SelectItem(Field("name"), cast="cast"),)),
    ("alias:name", (SelectItem(Field("name"), "alias"),)),
    ("alias:name->jsonpath::cast", (SelectItem(j("name", ("jsonpath", False)), "alias", "cast"),)),
    ("alias:name->!@#$%^&*_a::cast", (SelectItem(j("name", ("!@#$%^&*_a", False)), "alias", "cast"),)),
    ("", ()),  # qp pFieldForest: an empty select is no column
    # spec QuerySpec
    ("id,field-with_sep", (SelectItem(Field("id")), SelectItem(Field("field-with_sep")))),
    ("myId:id::text", (SelectItem(Field("id"), "myId", "text"),)),
    (
        "id,oid_col::int,oid_array_col::_int4",
        (
            SelectItem(Field("id")),
            SelectItem(Field("oid_col"), cast="int"),
            SelectItem(Field("oid_array_col"), cast="_int4"),
        ),
    ),
    ("id, name", (SelectItem(Field("id")), SelectItem(Field("name")))),
    ("Just A Server Model", (SelectItem(Field("Just A Server Model")),)),
    (
        '":arr->ow::cast","(inside,parens)","a.dotted.column","  col  w  space  "',
        (
            SelectItem(Field(":arr->ow::cast")),
            SelectItem(Field("(inside,parens)")),
            SelectItem(Field("a.dotted.column")),
            SelectItem(Field("  col  w  space  ")),
        ),
    ),
    ("a$num$", (SelectItem(Field("a$num$")),)),
    # spec JsonOperatorSpec: keys with special characters, and casts of paths
    ("data->>!@#$%^&*_d::integer", (SelectItem(j("data", ("!@#$%^&*_d", True)), cast="integer"),)),
    ("data->-1", (SelectItem(j("data", (-1, False))),)),
    # The issue
    (
        "*,id,alias:col,col::text,alias:data->>x::int",
        (
            STAR,
            SelectItem(Field("id")),
            SelectItem(Field("col"), "alias"),
            SelectItem(Field("col"), cast="text"),
            SelectItem(j("data", ("x", True)), "alias", "int"),
        ),
    ),
    ('"my alias":"my col"::double precision', (SelectItem(Field("my col"), "my alias", "double precision"),)),
    ('data->"a,b"->>c', (SelectItem(j("data", ("a,b", False), ("c", True))),)),
]


@pytest.mark.parametrize(("text", "items"), SELECTS, ids=[text for text, _ in SELECTS])
def test_select_reads_as_postgrest(text: str, items: tuple[SelectItem, ...]) -> None:
    assert parse_select(text) == items


SELECT_ERRORS = [
    # qp pFieldSelect / pFieldForest / pJsonPath
    (
        "*!hint",
        '"failed to parse select parameter (*!hint)" (line 1, column 2)',
        'unexpected \'!\' expecting ")", "," or end of input',
    ),
    (
        "name::",
        '"failed to parse select parameter (name::)" (line 1, column 7)',
        "unexpected end of input expecting letter or digit",
    ),
    (
        "data->>-78xy",
        '"failed to parse select parameter (data->>-78xy)" (line 1, column 11)',
        'unexpected \'x\' expecting digit, "->", "::", ".", "," or end of input',
    ),
    (
        "data->>--34",
        '"failed to parse select parameter (data->>--34)" (line 1, column 9)',
        'unexpected "-" expecting digit',
    ),
    (
        "data->>-xy-4",
        '"failed to parse select parameter (data->>-xy-4)" (line 1, column 9)',
        'unexpected "x" expecting digit',
    ),
    # spec JsonOperatorSpec "fails when there is a reserved special character in the key's name"
    (
        "data->(!@#$%^&*_d->>!@#$%^&*_e::integer",
        '"failed to parse select parameter (data->(!@#$%^&*_d->>!@#$%^&*_e::integer)" (line 1, column 7)',
        'unexpected "(" expecting "-", digit or any non reserved character different from: .,>()',
    ),
    # qp pFieldName: ":" is not a name
    (
        ":",
        '"failed to parse select parameter (:)" (line 1, column 1)',
        'unexpected ":" expecting field name (* or [a..z0..9_$])',
    ),
    ("id,", '"failed to parse select parameter (id,)" (line 1, column 4)', None),
    (",id", '"failed to parse select parameter (,id)" (line 1, column 1)', None),
    ("alias:*", '"failed to parse select parameter (alias:*)" (line 1, column 7)', None),
    ("*::text", '"failed to parse select parameter (*::text)" (line 1, column 2)', None),
    ("id.desc", '"failed to parse select parameter (id.desc)" (line 1, column 3)', None),
    ("col::int[]", '"failed to parse select parameter (col::int[])" (line 1, column 9)', None),
    ("data->99999999999", None, "the JSON array index 99999999999 is out of range"),
    # embedding and aggregates (qp pRelationSelect, pSpreadRelationSelect, pAggregation)
    (
        "id,clients(*)",
        '"failed to parse select parameter (id,clients(*))" (line 1, column 4)',
        "resource embedding (clients(*)) is not supported here: /api serves one table",
    ),
    (
        "*,client:clients(id,name),x",
        None,
        "resource embedding (client:clients(id,name)) is not supported here: /api serves one table",
    ),
    ("*,...rel(*)", None, "resource embedding (...rel(*)) is not supported here: /api serves one table"),
    ("name,files!touched_files(filename)", None, None),
    ("rel!inner(*)", None, None),
    (
        "count()",
        '"failed to parse select parameter (count())" (line 1, column 6)',
        "aggregate functions (count(), col.sum(), ...) are not supported here",
    ),
    ("amount.sum()", None, "aggregate functions (count(), col.sum(), ...) are not supported here"),
    ("amount::int.avg()", None, "aggregate functions (count(), col.sum(), ...) are not supported here"),
]


@pytest.mark.parametrize(("text", "message", "details"), SELECT_ERRORS, ids=[text for text, *_ in SELECT_ERRORS])
def test_select_error_says_what_and_where(text: str, message: str | None, details: str | None) -> None:
    with pytest.raises(GrammarError) as caught:
        parse_select(text)
    assert caught.value.message.startswith(f'"failed to parse select parameter ({text})"')
    if message is not None:
        assert caught.value.message == message
    if details is not None:
        assert caught.value.details == details


def test_embedding_error_says_it_is_not_supported_and_hints_at_columns() -> None:
    with pytest.raises(GrammarError) as caught:
        parse_select("id,rel(*)")
    assert caught.value.details is not None and "embedding" in caught.value.details
    assert caught.value.hint is not None and "select=id" in caught.value.hint


ORDERS = [
    # docs, Ordering
    ("age.desc,height.asc", (OrderTerm(Field("age"), True), OrderTerm(Field("height")))),
    ("age", (OrderTerm(Field("age")),)),
    ("age.nullsfirst", (OrderTerm(Field("age"), nulls="first"),)),
    ("age.desc.nullslast", (OrderTerm(Field("age"), True, "last"),)),
    ("location->>lat", (OrderTerm(j("location", ("lat", True))),)),
    ("json_data->>age.desc", (OrderTerm(j("json_data", ("age", True)), True),)),
    # qp pOrder
    ("name.desc.nullsfirst", (OrderTerm(Field("name"), True, "first"),)),
    ("json_col->key.asc.nullslast", (OrderTerm(j("json_col", ("key", False)), False, "last"),)),
    ("json_col->!@#$%^&*_a.asc.nullslast", (OrderTerm(j("json_col", ("!@#$%^&*_a", False)), False, "last"),)),
    ("json_col->0.desc", (OrderTerm(j("json_col", (0, False)), True),)),
    # spec QuerySpec
    ("a.asc.nullslast", (OrderTerm(Field("a"), False, "last"),)),
    ("client_id.desc.nullslast,id.desc", (OrderTerm(Field("client_id"), True, "last"), OrderTerm(Field("id"), True))),
    # The issue
    (
        "col.desc.nullslast,col2,data->a.asc",
        (OrderTerm(Field("col"), True, "last"), OrderTerm(Field("col2")), OrderTerm(j("data", ("a", False)))),
    ),
    ('"my col".desc, id', (OrderTerm(Field("my col"), True), OrderTerm(Field("id")))),
]


@pytest.mark.parametrize(("text", "terms"), ORDERS, ids=[text for text, _ in ORDERS])
def test_order_reads_as_postgrest(text: str, terms: tuple[OrderTerm, ...]) -> None:
    assert parse_order(text) == terms


ORDER_ERRORS = [
    # qp pOrder's doctests, message by message; spec QuerySpec "gives meaningful error message on bad syntax"
    ("id.ac", 4, 'unexpected "c" expecting "asc", "desc", "nullsfirst" or "nullslast"'),
    ("id.descc", 8, "unexpected 'c' expecting delimiter (.), \",\" or end of input"),
    ("id.nulsfist", 4, 'unexpected "n" expecting "asc", "desc", "nullsfirst" or "nullslast"'),
    ("id.nullslasttt", 13, "unexpected 't' expecting \",\" or end of input"),
    ("id.smth34", 4, 'unexpected "s" expecting "asc", "desc", "nullsfirst" or "nullslast"'),
    ("id.asc.nlsfst", 8, 'unexpected "l" expecting "nullsfirst" or "nullslast"'),
    ("id.asc.nullslasttt", 17, "unexpected 't' expecting \",\" or end of input"),
    ("id.asc.smth34", 8, 'unexpected "s" expecting "nullsfirst" or "nullslast"'),
    ("clients(name,id)", 1, "ordering by an embedded resource (clients(name,id)) is not supported here"),
    ("name,clients(name),id", 6, "ordering by an embedded resource (clients(name)) is not supported here"),
    ("", 1, "unexpected end of input expecting field name (* or [a..z0..9_$])"),
    ("id,", 4, "unexpected end of input expecting field name (* or [a..z0..9_$])"),
    ("-id", 1, 'unexpected "-" expecting field name (* or [a..z0..9_$])'),  # the old order=-col is gone
    ("id!x", 3, None),
]


@pytest.mark.parametrize(("text", "column", "details"), ORDER_ERRORS, ids=[text for text, *_ in ORDER_ERRORS])
def test_order_error_says_what_and_where(text: str, column: int, details: str | None) -> None:
    with pytest.raises(GrammarError) as caught:
        parse_order(text)
    assert caught.value.message == f'"failed to parse order ({text})" (line 1, column {column})'
    if details is not None:
        assert caught.value.details == details


def test_query_sorts_parameters_into_their_places() -> None:
    query = parse_query(
        [
            ("select", "id,name"),
            ("id", "gt.1"),
            ("id", "lt.9"),  # repeats add up
            ("or", "(a.eq.1,b.eq.2)"),
            ("order", "id.desc"),
            ("limit", "20"),
            ("offset", "40"),
            ("on_conflict", "a, b"),
            ("columns", 'a,"b c",a'),
        ]
    )
    assert query == Query(
        filters=(c("id", Op.GT, "1"), c("id", Op.LT, "9"), Logic("or", (c("a", Op.EQ, "1"), c("b", Op.EQ, "2")))),
        select=(SelectItem(Field("id")), SelectItem(Field("name"))),
        order=(OrderTerm(Field("id"), True),),
        limit=20,
        offset=40,
        on_conflict=("a", "b"),
        columns=("a", "b c"),  # a set in PostgREST: the repeat goes, the order stays
    )


def test_empty_query_is_every_column_unordered() -> None:
    assert parse_query([]) == Query()
    assert parse_query([]).select is None and parse_query([("select", "")]).select == ()


def test_repeated_shape_parameters_resolve_as_postgrest() -> None:
    # QueryParams.hs: select/on_conflict/columns are looked up (the first), order's
    # nodes are folded from the right (the first wins), limit/offset go through a
    # HashMap.fromList (the last wins).
    query = parse_query(
        [
            ("select", "a"),
            ("select", "b"),
            ("order", "a"),
            ("order", "b"),
            ("limit", "1"),
            ("limit", "2"),
            ("offset", "3"),
            ("offset", "4"),
            ("on_conflict", "a"),
            ("on_conflict", "b"),
            ("columns", "a"),
            ("columns", "b"),
        ]
    )
    assert query.select == (SelectItem(Field("a")),) and query.order == (OrderTerm(Field("a")),)
    assert (query.limit, query.offset, query.on_conflict, query.columns) == (2, 4, ("a",), ("a",))


def test_a_later_bad_order_is_still_an_error() -> None:
    with pytest.raises(GrammarError):
        parse_query([("order", "a"), ("order", "b.up")])


@pytest.mark.parametrize(
    ("key", "value", "message", "details"),
    [
        (
            "limit",
            "ten",
            '"failed to parse limit parameter (ten)" (line 1, column 1)',
            'unexpected "t" expecting digit',
        ),
        ("limit", "-1", '"failed to parse limit parameter (-1)" (line 1, column 1)', 'unexpected "-" expecting digit'),
        (
            "limit",
            "1.5",
            '"failed to parse limit parameter (1.5)" (line 1, column 2)',
            'unexpected "." expecting digit',
        ),
        (
            "limit",
            "",
            '"failed to parse limit parameter ()" (line 1, column 1)',
            "unexpected end of input expecting digit",
        ),
        ("limit", "١٢", '"failed to parse limit parameter (١٢)" (line 1, column 1)', 'unexpected "١" expecting digit'),
        (
            "offset",
            " 1",
            '"failed to parse offset parameter ( 1)" (line 1, column 1)',
            'unexpected " " expecting digit',
        ),
        (
            "offset",
            "9" * 19,
            f'"failed to parse offset parameter ({"9" * 19})" (line 1, column 19)',
            "unexpected digit: at most 18 digits",
        ),
        ("offset", "9" * 5000, None, "unexpected digit: at most 18 digits"),
        ("on_conflict", "", '"failed to parse on_conflict parameter ()" (line 1, column 1)', None),
        ("on_conflict", "a,b)", '"failed to parse on_conflict parameter (a,b))" (line 1, column 4)', None),
        ("on_conflict", "a,,b", '"failed to parse on_conflict parameter (a,,b)" (line 1, column 3)', None),
        ("columns", "a,b.c", '"failed to parse columns parameter (a,b.c)" (line 1, column 4)', None),
        ("columns", "a->b", '"failed to parse columns parameter (a->b)" (line 1, column 2)', None),
        ("select", "a,", '"failed to parse select parameter (a,)" (line 1, column 3)', None),
        ("order", "a.up", '"failed to parse order (a.up)" (line 1, column 3)', None),
    ],
)
def test_shape_parameter_error_says_what_and_where(
    key: str, value: str, message: str | None, details: str | None
) -> None:
    with pytest.raises(GrammarError) as caught:
        parse_query([(key, value)])
    if message is not None:
        assert caught.value.message == message
    if details is not None:
        assert caught.value.details == details


def test_limit_and_offset_take_digits() -> None:
    assert parse_query([("limit", "0"), ("offset", "007")]) == Query(limit=0, offset=7)
    assert parse_query([("limit", "9" * 18)]).limit == 10**18 - 1


def test_shape_parameters_take_quoted_names() -> None:
    query = parse_query([("on_conflict", '"my key",b'), ("columns", '"a,b", c-d')])
    assert (query.on_conflict, query.columns) == (("my key", "b"), ("a,b", "c-d"))


def test_filters_fragment_is_anded_filters() -> None:
    assert parse_filters("owner=eq.user-1&done=is.false") == (
        c("owner", Op.EQ, "user-1"),
        c("done", Op.IS, IsValue.FALSE),
    )
    assert parse_filters("or=(a.eq.1,b.eq.%22x%2Cy%22)&name=like.a+b*") == (
        Logic("or", (c("a", Op.EQ, "1"), c("b", Op.EQ, "x,y"))),
        c("name", Op.LIKE, "a b*"),
    )
    assert parse_filters("") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("owner", "failed to parse filters (owner)"),  # strict: a field without =
        ("a=eq.1&&b=eq.2", "failed to parse filters (a=eq.1&&b=eq.2)"),
        ("owner=user-1", '"failed to parse filter (user-1)" (line 1, column 1)'),
        ("select=id", "'select' is a reserved parameter, not a filter"),
        ("order=id", "'order' is a reserved parameter, not a filter"),
        ("limit=1", "'limit' is a reserved parameter, not a filter"),
    ],
)
def test_filters_fragment_refuses_what_is_not_a_filter(text: str, message: str) -> None:
    with pytest.raises(GrammarError) as caught:
        parse_filters(text)
    assert caught.value.message == message and caught.value.hint


def test_like_pattern_turns_every_star_into_percent() -> None:
    # docs: "you can use * as an alias of the percent sign % for the pattern"
    assert like_pattern("*ity,4*") == "%ity,4%" and like_pattern("a%b_c") == "a%b_c"


def test_reserved_keys_are_the_shape_and_logic_parameters() -> None:
    assert {
        "select",
        "order",
        "limit",
        "offset",
        "on_conflict",
        "columns",
        "or",
        "and",
        "not.or",
        "not.and",
    } == RESERVED


# Properties: no input is anything but a tree or a GrammarError (a 400, never a 500),
# and quoting as the docs say always brings the value back.

_TEXT = st.text(alphabet=st.sampled_from('ab.,:()"\\*-> !{}[]eqinotrsl0129\n\t'), max_size=30) | st.text(max_size=20)


@given(st.lists(st.tuples(_TEXT | st.sampled_from(sorted(RESERVED)), _TEXT), max_size=4))
def test_any_query_is_a_tree_or_a_grammar_error(params: list[tuple[str, str]]) -> None:
    try:
        parse_query(params)
    except GrammarError as error:
        assert error.message and error.details


@given(_TEXT)
def test_any_select_or_order_is_a_tree_or_a_grammar_error(text: str) -> None:
    for parse in (parse_select, parse_order, parse_filters):
        try:
            parse(text)
        except GrammarError as error:
            assert error.message


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@given(st.text())
def test_top_level_value_is_taken_literally(value: str) -> None:
    assert parse_filter("col", "eq." + value) == c("col", Op.EQ, value)
    assert parse_filter("col", "not.like." + value) == c("col", Op.LIKE, value, negated=True)


@given(st.lists(st.text(), min_size=1, max_size=4))
def test_quoted_in_list_brings_the_values_back(values: list[str]) -> None:
    condition = parse_filter("col", "in.(" + ",".join(_quote(v) for v in values) + ")")
    assert isinstance(condition, Condition) and condition.value == tuple(values)


@given(st.lists(st.text(), min_size=1, max_size=4), st.sampled_from(["or", "and", "not.or"]))
def test_quoted_logic_values_bring_the_values_back(values: list[str], key: str) -> None:
    tree = parse_filter(key, "(" + ",".join(f"c{i}.eq.{_quote(v)}" for i, v in enumerate(values)) + ")")
    assert isinstance(tree, Logic) and tree.children == tuple(c(f"c{i}", Op.EQ, v) for i, v in enumerate(values))


@given(st.text(min_size=1))
def test_quoted_name_brings_the_name_back(name: str) -> None:
    assert parse_select(_quote(name)) == (SelectItem(Field(name)),)
    assert parse_order(_quote(name) + ".desc") == (OrderTerm(Field(name), True),)
    assert parse_filter(_quote(name), "is.null") == c(name, Op.IS, IsValue.NULL)


# The common cases skip the scanner (parse_query runs on every request); a quoted name
# or a leading space takes the scanner's path, which must read them the same way.

_WORDS = st.sampled_from([*sorted(op.value for op in Operator), "not", "is", "EQ", "", "x"])


@given(_WORDS, st.sampled_from([".", "", "(", ".."]), _TEXT)
def test_fast_filter_path_reads_as_the_scanner(word: str, dot: str, rest: str) -> None:
    value = word + dot + rest
    outcomes: list[object] = []
    for key in ("col", '"col"'):
        try:
            outcomes.append(parse_filter(key, value))
        except GrammarError as error:
            outcomes.append(error.details)
    assert outcomes[0] == outcomes[1]


@given(st.sampled_from(["", ".asc", ".desc"]), st.sampled_from(["", ".nullsfirst", ".nullslast", ".", "x"]))
def test_fast_order_and_select_paths_read_as_the_scanner(way: str, nulls: str) -> None:
    for text in (f"id{way}{nulls}", f"id{nulls}{way}"):
        try:
            fast = parse_order(text)
        except GrammarError:
            with pytest.raises(GrammarError):
                parse_order(" " + text)
        else:
            assert fast == parse_order(" " + text)
    assert parse_select("*") == parse_select(" *") == (STAR,)


def test_deep_logic_tree_is_a_grammar_error_not_a_recursion_error() -> None:
    assert isinstance(parse_filter("or", "(" + "and(" * 63 + "a.eq.1" + ")" * 64), Logic)  # 64 levels
    with pytest.raises(GrammarError) as caught:
        parse_filter("or", "(" + "and(" * 2000 + "a.eq.1" + ")" * 2001)
    assert caught.value.details == "logic trees nest at most 64 deep"
