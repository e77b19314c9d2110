"""Settings: defaults, environment, command-line flags, and errors that name the setting."""

from __future__ import annotations

import argparse

import pytest

from gateway.cli import build_parser
from gateway.config import ConfigError, Settings, load_settings


def flags(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def test_defaults_with_empty_environment_and_no_flags() -> None:
    settings = load_settings(None, environ={})

    assert settings.host == "127.0.0.1"
    assert settings.port == 8080
    assert settings.database_url == ""
    assert settings.embedded
    assert settings.expose == ("todos",)
    assert settings.heartbeat == 15.0
    assert settings.retry_ms == 2000
    assert settings.subscriber_buffer == 4 * 1024 * 1024
    assert settings.log_level == "INFO"
    assert settings.data_dir.endswith("pgdata")


def test_parser_without_command_leaves_defaults_alone() -> None:
    assert load_settings(build_parser().parse_args([]), environ={}) == load_settings(None, environ={})


def test_environment_variables_are_parsed() -> None:
    env = {
        "GATEWAY_PORT": "9090",
        "GATEWAY_EXPOSE": "todos, public.notes ,app.items,",
        "DATABASE_URL": "postgresql://u@db/app",
        "GATEWAY_HEARTBEAT": "2.5",
        "GATEWAY_RETRY_MS": "0",
        "GATEWAY_LOG_LEVEL": "debug",
        "GATEWAY_DEMO": "yes",
    }

    settings = load_settings(None, environ=env)

    assert settings.port == 9090
    assert settings.expose == ("todos", "public.notes", "app.items")
    assert settings.database_url == "postgresql://u@db/app"
    assert not settings.embedded
    assert settings.heartbeat == 2.5
    assert settings.retry_ms == 0
    assert settings.log_level == "DEBUG"
    assert settings.demo is True


def test_cli_flag_beats_environment_variable() -> None:
    env = {"GATEWAY_PORT": "9090", "GATEWAY_EXPOSE": "a", "DATABASE_URL": "postgresql://env/db"}

    settings = load_settings(
        flags("--port", "7000", "--expose", "b,c", "--database-url", "postgresql://flag/db"), environ=env
    )

    assert settings.port == 7000
    assert settings.expose == ("b", "c")
    assert settings.database_url == "postgresql://flag/db"


def test_environment_fills_settings_the_command_line_leaves_unset() -> None:
    settings = load_settings(flags("--port", "7000"), environ={"GATEWAY_HOST": "0.0.0.0"})

    assert (settings.host, settings.port) == ("0.0.0.0", 7000)


def test_port_zero_is_allowed_for_any_free_port() -> None:
    assert load_settings(None, environ={"GATEWAY_PORT": "0"}).port == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_PORT", "abc"),
        ("GATEWAY_PORT", "70000"),
        ("GATEWAY_PORT", "-1"),
        ("GATEWAY_HEARTBEAT", "0"),
        ("GATEWAY_HEARTBEAT", "-3"),
        ("GATEWAY_HEARTBEAT", "nan"),
        ("GATEWAY_EXPOSE", "bad name;drop"),
        ("GATEWAY_EXPOSE", "todos,a.b.c"),
        ("GATEWAY_SUBSCRIBER_BUFFER", "0"),
        ("GATEWAY_RETRY_MS", "-1"),
        ("GATEWAY_DEMO", "maybe"),
        ("GATEWAY_LOG_LEVEL", "verbose"),
    ],
)
def test_bad_environment_value_raises_config_error_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(None, environ={variable: value})

    assert variable in str(error.value)
    assert repr(value) in str(error.value)


def test_bad_port_message_says_what_is_accepted() -> None:
    with pytest.raises(ConfigError, match="between 0 and 65535"):
        load_settings(None, environ={"GATEWAY_PORT": "70000"})


def test_bad_table_name_message_quotes_the_name() -> None:
    with pytest.raises(ConfigError, match=r"'bad name;drop' is not a table name"):
        load_settings(None, environ={"GATEWAY_EXPOSE": "todos,bad name;drop"})


def test_bad_flag_value_raises_config_error_naming_the_flag() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(flags("--heartbeat", "0"), environ={})

    assert "--heartbeat" in str(error.value)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_demo_defaults_to_true_when_embedded() -> None:
    assert load_settings(None, environ={}).demo is True


def test_demo_defaults_to_false_with_a_database_url() -> None:
    assert load_settings(None, environ={"DATABASE_URL": "postgresql://db/app"}).demo is False


@pytest.mark.parametrize(
    ("environ", "argv", "expected"),
    [
        ({"GATEWAY_DEMO": "false"}, (), False),  # embedded, but switched off
        ({"DATABASE_URL": "postgresql://db/app", "GATEWAY_DEMO": "true"}, (), True),
        ({"GATEWAY_DEMO": "true"}, ("--demo", "off"), False),
        ({"DATABASE_URL": "postgresql://db/app"}, ("--demo", "1"), True),
    ],
)
def test_explicit_demo_setting_wins_over_the_embedded_default(
    environ: dict[str, str], argv: tuple[str, ...], expected: bool
) -> None:
    assert load_settings(flags(*argv), environ=environ).demo is expected


def test_settings_are_frozen() -> None:
    settings = load_settings(None, environ={})

    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]
    assert isinstance(settings, Settings)


def test_listen_url_is_the_listeners_own_dsn_and_stays_out_of_repr() -> None:
    settings = load_settings(
        flags("--listen-url", "postgresql://gw:listen-secret@db:5432/app"),
        environ={"DATABASE_URL": "postgresql://gw:pool-secret@pgbouncer:6432/app"},
    )
    assert settings.listen_url == "postgresql://gw:listen-secret@db:5432/app"
    assert load_settings(None, environ={"DATABASE_URL": "postgresql://db/app"}).listen_url == ""  # DATABASE_URL's
    assert "secret" not in repr(settings)


def test_listen_url_without_database_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_LISTEN_URL needs DATABASE_URL"):
        load_settings(None, environ={"GATEWAY_LISTEN_URL": "postgresql://db/app"})


def help_text(command: str) -> str:
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return " ".join(subcommands.choices[command].format_help().split())


def test_help_says_defaults_as_a_person_reads_them() -> None:
    text = help_text("serve")

    assert "default )" not in text and "default False" not in text and "default True" not in text
    assert "GATEWAY_DEMO, default on with the embedded server, off with DATABASE_URL" in text
    assert "GATEWAY_RPC, default none" in text
    assert "GATEWAY_ACCESS_LOG, default on" in text


def test_init_db_help_lists_only_the_settings_init_db_reads() -> None:
    text = help_text("init-db")

    for flag in ("--database-url", "--data-dir", "--expose", "--demo", "--log-level"):
        assert flag in text
    for flag in ("--port", "--heartbeat", "--jwt-secret", "--max-subscribers", "--cors-origins"):
        assert flag not in text
    settings = load_settings(build_parser().parse_args(["init-db", "--expose", "a,b"]), environ={})
    assert settings.expose == ("a", "b")
