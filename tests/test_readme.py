"""The README documents what the code does: every setting, in the configuration table."""

from __future__ import annotations

from gateway.config import settings_table

from .conftest import ROOT


def test_readme_configuration_table_names_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") :]
    table = table[: table.index("\n## ")]
    for flag, env, _default, _help in settings_table():
        assert f"| `{env}` | `{flag}` |" in table, f"{env} / {flag} missing from the README's configuration table"


def test_readme_starts_with_the_two_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = next(line for line in ci.splitlines() if "pytest" in line).strip()
    first_block = readme[readme.index("```sh") : readme.index("```", readme.index("```sh") + 5)]
    assert test_command in first_block
    assert "pg-sse-gateway serve" in first_block


def test_readme_error_table_is_the_code_table() -> None:
    from gateway.codes import Code

    readme = (ROOT / "README.md").read_text()
    start = readme.index("| code | status | whose | when |")
    table = readme[start : readme.index("\n\n", start)].splitlines()[2:]
    expected = [
        f"| `{c.code}` | {c.status if c.status is not None else 'its own'} | {c.source} | {c.when} |" for c in Code
    ]
    assert table == expected, "the README's error table differs from gateway/codes.py; its rows:\n" + "\n".join(
        expected
    )
