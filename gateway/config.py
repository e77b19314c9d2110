"""Settings: one frozen dataclass, built once from the environment and the command line.

No other module reads ``os.environ``. Every setting has a ``GATEWAY_*`` variable
(``DATABASE_URL`` for the database) and a ``serve`` flag; a flag wins over the
variable, the variable over the default. A bad value fails fast with a message that
names the setting and what it accepts.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from .client_address import Network, parse_networks

_N = TypeVar("_N", int, float)


class ConfigError(ValueError):
    """A setting has a value the gateway cannot use; the message says which and why."""


def _default_data_dir() -> str:
    return str(Path.home() / ".local" / "share" / "pg-sse-gateway" / "pgdata")


_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")


def _comma_separated(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _names(kind: str) -> Callable[[str], tuple[str, ...]]:
    """A parser for comma-separated names of ``kind`` ("table", "function"): name or schema.name."""

    def parse(value: str) -> tuple[str, ...]:
        names = _comma_separated(value)
        for name in names:
            if not _TABLE_NAME.match(name):
                raise ValueError(f"{name!r} is not a {kind} name (use name or schema.name)")
        return names

    return parse


_tables = _names("table")
_functions = _names("function")


def _whole_number(value: str) -> int:
    """An integer in decimal; int()'s own message ("invalid literal for int() with
    base 10") reads like a Python error, not like the other settings' messages."""
    try:
        return int(value)
    except ValueError:
        raise ValueError("must be a whole number, such as 8080") from None


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError("must be a number, such as 2.5") from None


def _at_least(convert: Callable[[str], _N], zero_allowed: bool, what: str) -> Callable[[str], _N]:
    """A parser for a number of kind ``what`` ("whole number" or "number") that must be
    positive, or with ``zero_allowed`` zero or positive; NaN fails both."""
    message = f"must be zero or a positive {what}" if zero_allowed else f"must be a positive {what}"

    def parse(value: str) -> _N:
        number = convert(value)
        if not (number >= 0 if zero_allowed else number > 0):
            raise ValueError(message)
        return number

    return parse


_positive_int = _at_least(_whole_number, False, "whole number")
_non_negative_int = _at_least(_whole_number, True, "whole number")
_positive_float = _at_least(_number, False, "number")
_non_negative_float = _at_least(_number, True, "number")


def _port(value: str) -> int:
    number = _whole_number(value)
    if not 0 <= number <= 65535:
        raise ValueError("must be between 0 and 65535 (0 picks a free port)")
    return number


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _text(value: str) -> str:
    return value


def _origins(value: str) -> tuple[str, ...]:
    origins = _comma_separated(value)
    for origin in origins:
        if origin != "*" and not re.match(r"^https?://[^/\s]+$", origin.rstrip("/")):
            raise ValueError(f"{origin!r} is not an origin like https://app.example.com (or *)")
    return origins


def _pem(value: str) -> str:
    """PEM text as it is, or the contents of the file it names."""
    if not value or value.lstrip().startswith("-----BEGIN"):
        return value
    try:
        return Path(value).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"neither PEM text nor a readable file: {exc.strerror}") from None


def _one_of(*choices: str, upper: bool = False) -> Callable[[str], str]:
    """A parser for one word of ``choices`` (any case), returned lower case, or ``upper``."""
    listed = " or ".join(choices) if len(choices) == 2 else "one of " + ", ".join(choices)
    message = f"must be {listed}"

    def parse(value: str) -> str:
        word = value.strip().lower()
        if word not in choices:
            raise ValueError(message)
        return word.upper() if upper else word

    return parse


_log_level = _one_of("debug", "info", "warning", "error", upper=True)
_log_format = _one_of("text", "json")


def _setting(
    default: Any,
    env: str,
    parse: Callable[[str], Any],
    help: str,
    metavar: str = "",
    secret: bool = False,
    shown: str = "",
    init_db: bool = False,
) -> Any:
    """A setting's field. ``shown`` is its default as ``--help`` and the README say it
    when the value alone would mislead (``demo``'s False is on when embedded);
    ``init_db`` marks the few settings ``init-db`` reads, so its ``--help`` lists only them."""
    return field(
        default=default,
        repr=not secret,  # a secret never reaches a log line through repr(settings)
        metadata={"env": env, "parse": parse, "help": help, "metavar": metavar, "shown": shown, "init_db": init_db},
    )


@dataclass(frozen=True)
class Settings:
    """Everything the gateway can be told. Build it with :func:`load_settings`."""

    host: str = _setting("127.0.0.1", "GATEWAY_HOST", _text, "address to listen on", "ADDR")
    port: int = _setting(8080, "GATEWAY_PORT", _port, "port to listen on (0: any free port)", "N")
    database_url: str = _setting(
        "",
        "DATABASE_URL",
        _text,
        "PostgreSQL 13+ to use; empty starts an embedded server under --data-dir",
        "DSN",
        secret=True,
        shown="none: the embedded server",
        init_db=True,
    )
    listen_url: str = _setting(
        "",
        "GATEWAY_LISTEN_URL",
        _text,
        "the listener's own connection (LISTEN and the wake lock need a stable session: Postgres directly, "
        "or a pooler in session mode), so DATABASE_URL may go through a transaction pooler",
        "DSN",
        secret=True,
        shown="DATABASE_URL",
    )
    data_dir: str = _setting(
        _default_data_dir(),
        "GATEWAY_DATA_DIR",
        _text,
        "data directory of the embedded Postgres (kept between runs)",
        "PATH",
        init_db=True,
    )
    expose: tuple[str, ...] = _setting(
        ("todos",),
        "GATEWAY_EXPOSE",
        _tables,
        "comma-separated tables served under /api and watched for changes",
        "TABLES",
        init_db=True,
    )
    rpc: tuple[str, ...] = _setting(
        (),
        "GATEWAY_RPC",
        _functions,
        "comma-separated functions callable as /api/rpc/<name> (POST; GET too for STABLE or IMMUTABLE ones)",
        "FUNCTIONS",
        shown="none",
    )
    demo: bool = _setting(
        False,
        "GATEWAY_DEMO",
        _flag,
        "demo mode, with todos exposed: create the demo table todos if missing, seed it when empty, "
        "serve the todo page at /",
        "BOOL",
        shown="on with the embedded server, off with DATABASE_URL",
        init_db=True,
    )
    heartbeat: float = _setting(
        15.0, "GATEWAY_HEARTBEAT", _positive_float, "seconds between SSE heartbeat comments", "S"
    )
    retry_ms: int = _setting(
        2000,
        "GATEWAY_RETRY_MS",
        _non_negative_int,
        "reconnect delay the SSE retry: field tells clients",
        "MS",
    )
    subscriber_buffer: int = _setting(
        4 * 1024 * 1024,
        "GATEWAY_SUBSCRIBER_BUFFER",
        _positive_int,
        "bytes a subscriber may fall behind before it is disconnected",
        "BYTES",
    )
    max_subscribers: int = _setting(
        10000, "GATEWAY_MAX_SUBSCRIBERS", _positive_int, "most SSE streams this process holds (then 503)", "N"
    )
    max_subscribers_per_client: int = _setting(
        100,
        "GATEWAY_MAX_SUBSCRIBERS_PER_CLIENT",
        _positive_int,
        "most SSE streams one client address holds (then 429)",
        "N",
    )
    trusted_proxies: tuple[Network, ...] = _setting(
        (),
        "GATEWAY_TRUSTED_PROXIES",
        parse_networks,
        "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For or Forwarded header "
        "names the client, for the per-client stream limit and the access log",
        "CIDRS",
        shown="none",
    )
    max_body: int = _setting(1024 * 1024, "GATEWAY_MAX_BODY", _positive_int, "largest request body accepted", "BYTES")
    page_limit: int = _setting(1000, "GATEWAY_PAGE_LIMIT", _positive_int, "largest ?limit= a list request may ask", "N")
    pool_size: int = _setting(10, "GATEWAY_POOL_SIZE", _positive_int, "database connections for HTTP requests", "N")
    journal_retention: float = _setting(
        86400.0,
        "GATEWAY_JOURNAL_RETENTION",
        _positive_float,
        "seconds of history kept for resuming clients",
        "S",
    )
    journal_max_rows: int = _setting(
        1_000_000,
        "GATEWAY_JOURNAL_MAX_ROWS",
        _positive_int,
        "most journal rows kept, whatever their age",
        "N",
    )
    prune_interval: float = _setting(
        60.0, "GATEWAY_PRUNE_INTERVAL", _positive_float, "seconds between journal prunes", "S"
    )
    poll_interval: float = _setting(
        0.0,
        "GATEWAY_POLL_INTERVAL",
        _non_negative_float,
        "seconds between journal reads while the listener sleeps (0: on notifications and "
        "listener checks only); for writers that set gateway.notify = off",
        "S",
    )
    busy_poll_interval: float = _setting(
        0.01,
        "GATEWAY_BUSY_POLL_INTERVAL",
        _non_negative_float,
        "seconds between journal polls while changes keep coming; writers skip NOTIFY meanwhile "
        "(0: never poll, every writer notifies)",
        "S",
    )
    listener_check: float = _setting(
        5.0,
        "GATEWAY_LISTENER_CHECK",
        _positive_float,
        "seconds of silence after which the listener checks its connection",
        "S",
    )
    request_head_timeout: float = _setting(
        10.0,
        "GATEWAY_REQUEST_HEAD_TIMEOUT",
        _positive_float,
        "seconds a connection may take to send a complete request head (from opening, or from "
        "the first byte of its next request) before it is closed",
        "S",
    )
    log_level: str = _setting(
        "INFO", "GATEWAY_LOG_LEVEL", _log_level, "debug, info, warning, error", "LEVEL", init_db=True
    )
    log_format: str = _setting(
        "text", "GATEWAY_LOG_FORMAT", _log_format, "text, or json (one object per line)", "FMT", init_db=True
    )
    request_body_timeout: float = _setting(
        30.0,
        "GATEWAY_REQUEST_BODY_TIMEOUT",
        _positive_float,
        "seconds a POST or PATCH body may take to arrive whole before the request is answered 408",
        "S",
    )
    keepalive_timeout: float = _setting(
        75.0,
        "GATEWAY_KEEPALIVE_TIMEOUT",
        _positive_float,
        "seconds an idle keep-alive connection is kept open between requests (live streams are not idle)",
        "S",
    )
    access_log: bool = _setting(
        True,
        "GATEWAY_ACCESS_LOG",
        _flag,
        "one info line per request on logger gateway.access (method, path without the query, status, "
        "bytes, duration; a stream when it ends)",
        "BOOL",
    )
    shutdown_timeout: float = _setting(
        10.0,
        "GATEWAY_SHUTDOWN_TIMEOUT",
        _positive_float,
        "seconds a SIGTERM waits for requests in flight before exiting",
        "S",
    )
    jwt_secret: str = _setting(
        "", "GATEWAY_JWT_SECRET", _text, "HS256 secret; turns auth on for /events and /api", "SECRET", secret=True
    )
    jwt_public_key: str = _setting(
        "",
        "GATEWAY_JWT_PUBLIC_KEY",
        _pem,
        "RS256 public key (PEM text or a file); turns auth on for /events and /api",
        "PEM",
    )
    jwt_audience: str = _setting("", "GATEWAY_JWT_AUDIENCE", _text, "required 'aud' claim, if set", "AUD")
    cors_origins: tuple[str, ...] = _setting(
        (),
        "GATEWAY_CORS_ORIGINS",
        _origins,
        "comma-separated browser origins allowed to call /events and /api (* for any, without cookies)",
        "ORIGINS",
    )

    @property
    def auth_enabled(self) -> bool:
        """True when a JWT key is set; not read yet: kept for the coming inspector."""
        return bool(self.jwt_secret or self.jwt_public_key)

    @property
    def embedded(self) -> bool:
        """True when the gateway runs its own Postgres (no DATABASE_URL given)."""
        return not self.database_url


def _parse(name: str, raw: str, source: str) -> Any:
    meta = next(f.metadata for f in fields(Settings) if f.name == name)
    try:
        return meta["parse"](raw)
    except ValueError as exc:
        raise ConfigError(f"{source}={raw!r}: {exc}") from None


def _shown_default(setting: Any) -> str:
    """The default as a person reads it: ``on``/``off``, ``none`` for nothing, lists joined."""
    meta, default = setting.metadata, setting.default
    if meta["shown"]:
        return str(meta["shown"])
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, tuple):
        return ",".join(default) or "none"
    return str(default) if default != "" else "none"


def add_arguments(parser: argparse.ArgumentParser, *, init_db: bool = False) -> None:
    """Give ``parser`` one flag per setting (with ``init_db``, only the ones ``init-db``
    reads); defaults stay unset so env can fill them."""
    for setting in fields(Settings):
        meta = setting.metadata
        if init_db and not meta["init_db"]:
            continue
        parser.add_argument(
            "--" + setting.name.replace("_", "-"),
            dest=setting.name,
            default=None,
            metavar=meta["metavar"] or None,
            help=f"{meta['help']} (env {meta['env']}, default {_shown_default(setting)})",
        )


def load_settings(args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Merge defaults, environment and command-line flags into one ``Settings``."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in fields(Settings):
        flag_value = getattr(args, setting.name, None) if args is not None else None
        if flag_value is not None:
            values[setting.name] = _parse(setting.name, str(flag_value), "--" + setting.name.replace("_", "-"))
        elif setting.metadata["env"] in env:
            values[setting.name] = _parse(setting.name, env[setting.metadata["env"]], setting.metadata["env"])
    if values.get("jwt_secret") and values.get("jwt_public_key"):
        raise ConfigError("set GATEWAY_JWT_SECRET (HS256) or GATEWAY_JWT_PUBLIC_KEY (RS256), not both")
    if values.get("listen_url") and not values.get("database_url"):
        raise ConfigError("GATEWAY_LISTEN_URL needs DATABASE_URL: the embedded Postgres is always reached directly")
    settings = Settings(**values)
    if "demo" not in values and settings.embedded:
        settings = Settings(**{**values, "demo": True})
    return settings


def settings_table() -> Sequence[tuple[str, str, str, str]]:
    """(flag, env, default, help) rows, for the README and ``--help``."""
    return [
        (
            "--" + setting.name.replace("_", "-"),
            setting.metadata["env"],
            _shown_default(setting),
            setting.metadata["help"],
        )
        for setting in fields(Settings)
    ]
