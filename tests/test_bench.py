"""bench/: the scripts share one public harness and still start.

The benchmarks print numbers, not pass/fail, so these checks are about their shape:
what they share lives in bench/harness.py under public names (no script reaches into
another's private names or patches ``sys.path``), a helper the gateway already has is
not written again, a bench class does not borrow a gateway class's name, and every
script still parses its command line. bench/rest.py's baseline server is started as
the bench starts it and asked its four requests (the load client, node's autocannon,
is not run here).
"""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
SCRIPTS = sorted(path for path in BENCH.glob("*.py") if path.name != "harness.py")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _bench_modules() -> set[str]:
    return {path.stem for path in BENCH.glob("*.py")}


def test_no_bench_script_uses_another_bench_modules_private_names() -> None:
    modules = _bench_modules()
    found = []
    for path in BENCH.glob("*.py"):
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ImportFrom) and node.module in modules:
                found += [f"{path.name}: from {node.module} import {a.name}" for a in node.names if a.name[0] == "_"]
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
                and node.attr.startswith("_")
            ):
                found.append(f"{path.name}: {node.value.id}.{node.attr}")
    assert not found, "give what is shared a public name in bench/harness.py: " + ", ".join(found)


def test_no_bench_script_patches_sys_path() -> None:
    found = []
    for path in BENCH.glob("*.py"):
        for node in ast.walk(_tree(path)):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "path"
                and isinstance(node.value, ast.Name)
                and node.value.id == "sys"
            ):
                found.append(f"{path.name}:{node.lineno}")
    assert not found, "a script's own directory is on sys.path already: " + ", ".join(found)


def _top_level(path: Path, kind: type[ast.AST]) -> set[str]:
    return {node.name for node in _tree(path).body if isinstance(node, kind)}  # type: ignore[attr-defined]


def test_bench_classes_do_not_borrow_gateway_class_names() -> None:
    gateway = set().union(*(_top_level(path, ast.ClassDef) for path in (ROOT / "gateway").glob("*.py")))
    clashes = {
        f"{path.name}: {name}" for path in BENCH.glob("*.py") for name in _top_level(path, ast.ClassDef) & gateway
    }
    assert not clashes, f"these read as the gateway's own classes: {sorted(clashes)}"


def test_each_shared_helper_is_defined_once() -> None:
    gateway = set().union(*(_top_level(path, ast.FunctionDef) for path in (ROOT / "gateway").glob("*.py")))
    bodies: dict[str, list[str]] = {}
    names: dict[str, list[str]] = {}
    for path in BENCH.glob("*.py"):
        for node in _tree(path).body:
            if isinstance(node, ast.FunctionDef):
                bodies.setdefault(ast.dump(node), []).append(f"{path.name}: {node.name}")
                names.setdefault(node.name, []).append(path.name)
    copies = [where for where in bodies.values() if len(where) > 1]
    assert not copies, f"the same function in more than one bench script (keep one, in harness.py): {copies}"
    assert "redact" in gateway and "redact" not in names, "use gateway.db.redact"
    assert names.get("dsn_with_db") == ["harness.py"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_bench_script_starts(script: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")


def test_harness_number_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    import harness

    cases = [(math.nan, "n/a"), (0, "0"), (7.0, "7"), (999, "999"), (1000, "1,000"), (123456.7, "123,457")]
    cases += [(250.4, "250"), (33.44, "33.4"), (2.875, "2.88"), (-0.5, "-0.50")]
    assert [harness.fmt(value) for value, _ in cases] == [text for _, text in cases]


def test_filters_bench_runs_both_modes_small() -> None:
    """bench/filters.py drives the hub's real views: a small run must finish and print its ratios."""
    args = ["--events", "300", "--baseline-events", "50", "--rounds", "1", "--owners", "300", "--subscribers", "200"]
    done = subprocess.run(
        [sys.executable, str(BENCH / "filters.py"), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "gateway vs baseline" in done.stdout and "per filtered subscription" in done.stdout


def test_rest_baseline_answers_the_requests_bench_rest_sends(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench/rest.py's baseline, started as the bench starts it, answers each request with its status."""
    monkeypatch.syspath_prepend(str(BENCH))
    import harness
    import rest

    server = harness.ServerProcess("baseline", database, tmp_path, subscribers=0, script=rest.BASELINE)
    try:
        port = server.wait_listening()
        answers = [rest.probe(port, request) for request in rest.REQUESTS]
    finally:
        server.stop()
    assert [status for status, _ in answers] == [request.status for request in rest.REQUESTS], answers
    assert [json.loads(body) for _, body in answers[:2]] == [[], []]  # the GETs: JSON arrays (no row 1 here)
