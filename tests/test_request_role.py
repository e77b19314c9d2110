"""What a token's grant sets for its /api statements: request_role's settings, without a database."""

from __future__ import annotations

import json

from gateway.auth import EVERYTHING, Grant
from gateway.request_role import _settings, role_prologue


def grant(role: str | None = None, **claims: object) -> Grant:
    return Grant(topics=(), write=False, role=role, claims={"exp": 1, **claims, **({"role": role} if role else {})})


def test_the_role_comes_first_then_every_claim_as_one_json_object() -> None:
    pairs = _settings(grant("app_user", sub="u1", write=["todos"]))
    assert pairs[0] == ("role", "app_user")
    assert pairs[1][0] == "request.jwt.claims"
    assert json.loads(pairs[1][1]) == {"exp": 1, "sub": "u1", "write": ["todos"], "role": "app_user"}


def test_legacy_settings_are_strings_as_they_are_and_other_values_as_json() -> None:
    legacy = dict(_settings(grant(sub="u1", admin=True, n=2, tags=["a"])))
    assert legacy["request.jwt.claim.sub"] == "u1"
    assert (legacy["request.jwt.claim.admin"], legacy["request.jwt.claim.n"]) == ("true", "2")
    assert legacy["request.jwt.claim.tags"] == '["a"]'


def test_a_claim_whose_name_is_no_setting_name_gets_no_legacy_setting() -> None:
    names = [name for name, _ in _settings(grant(**{"https://example.com/claims": {"x": 1}, "a.b": 1, "ok_1$": 1}))]
    assert "request.jwt.claim.ok_1$" in names
    assert not any("example.com" in name or name.endswith("a.b") for name in names)
    assert "role" not in names  # no role claim: the gateway's own role


def test_values_and_names_are_parameters_never_sql() -> None:
    prologue = role_prologue(grant("x'; DROP TABLE t; --", sub="'"))
    assert prologue is not None
    query, params = prologue
    text = repr(query)
    assert "DROP" not in text and "jwt_0" in text
    assert (params["jwt_0"], params["jwt_1"]) == ("role", "x'; DROP TABLE t; --")


def test_auth_off_has_no_prologue() -> None:
    assert role_prologue(EVERYTHING) is None
