"""postgrest-js (npm @supabase/postgrest-js, pinned in tests/js/package-lock.json), unmodified,
against a real gateway's /api: this starts the gateway and runs ``node tests/js/crud.mjs``.

The script's checks mirror tests/test_e2e_postgrest_py.py on the same rows
(tests/crud_schema.py), and also hold the HTTP statuses, which postgrest-js shows.
The client is installed with ``npm ci --prefix tests/js`` (.ci/run does it first; this
test does it when tests/js/node_modules lacks it, so the README's test command works
as it is); without node the test is skipped, without npm it fails saying so.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import pytest

from .crud_schema import items_gateway

JS = Path(__file__).resolve().parent / "js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (.ci/run installs Debian's nodejs and npm)")


async def installed_client() -> None:
    """postgrest-js in tests/js/node_modules, as the lock file pins it (npm ci if it is not there)."""
    if (JS / "node_modules" / "@supabase" / "postgrest-js" / "package.json").is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("postgrest-js is not installed and there is no npm: install npm, run `npm ci --prefix tests/js`")
    proc = await asyncio.create_subprocess_exec(
        npm, "ci", "--no-audit", "--no-fund", cwd=JS, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 100)
    assert proc.returncode == 0, "npm ci in tests/js failed:\n" + out.decode(errors="replace")


async def test_postgrest_js_crud_script_passes(database: str) -> None:
    await installed_client()
    assert NODE is not None
    async with items_gateway(database) as gw:
        proc = await asyncio.create_subprocess_exec(
            NODE,
            str(JS / "crud.mjs"),
            gw.url + "/api",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=JS,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 90)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    output = out.decode()
    lines = output.strip().splitlines()
    failures = [line for line in lines if line.startswith("FAIL ")]
    assert not failures, "postgrest-js checks failed:\n" + "\n".join(failures + lines[-1:])
    assert proc.returncode == 0, output
    summary = re.fullmatch(r"(\d+) passed, 0 failed", lines[-1] if lines else "")
    assert summary, output
    assert int(summary.group(1)) == sum(line.startswith("ok ") for line in lines) >= 40, output
