"""The value parsers behind the settings: every kind keeps its exact message.

The numeric and word parsers are built by two small factories in gateway/config.py;
these tables pin what a user sees for each kind, so folding near-copies together
cannot change a message or let a value through.
"""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load_settings


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("GATEWAY_POOL_SIZE", "0", "must be a positive whole number"),
        ("GATEWAY_POOL_SIZE", "-3", "must be a positive whole number"),
        ("GATEWAY_RETRY_MS", "-1", "must be zero or a positive whole number"),
        ("GATEWAY_HEARTBEAT", "0", "must be a positive number"),
        ("GATEWAY_HEARTBEAT", "nan", "must be a positive number"),
        ("GATEWAY_POLL_INTERVAL", "-0.5", "must be zero or a positive number"),
        ("GATEWAY_POLL_INTERVAL", "nan", "must be zero or a positive number"),
        ("GATEWAY_POOL_SIZE", "2.5", "must be a whole number, such as 8080"),
        ("GATEWAY_PORT", "abc", "must be a whole number, such as 8080"),
        ("GATEWAY_HEARTBEAT", "soon", "must be a number, such as 2.5"),
        ("GATEWAY_LOG_LEVEL", "loud", "must be one of debug, info, warning, error"),
        ("GATEWAY_LOG_FORMAT", "xml", "must be text or json"),
    ],
)
def test_bad_value_message_is_exact(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(None, {variable: value})
    assert str(error.value) == f"{variable}={value!r}: {message}"


@pytest.mark.parametrize(
    ("variable", "value", "name", "expected"),
    [
        ("GATEWAY_POOL_SIZE", "1", "pool_size", 1),
        ("GATEWAY_RETRY_MS", "0", "retry_ms", 0),
        ("GATEWAY_HEARTBEAT", "0.25", "heartbeat", 0.25),
        ("GATEWAY_POLL_INTERVAL", "0", "poll_interval", 0.0),
        ("GATEWAY_LOG_LEVEL", " Debug ", "log_level", "DEBUG"),
        ("GATEWAY_LOG_FORMAT", "JSON", "log_format", "json"),
        ("GATEWAY_EXPOSE", " todos , app.notes ,", "expose", ("todos", "app.notes")),
    ],
)
def test_good_value_is_parsed(variable: str, value: str, name: str, expected: object) -> None:
    settings = load_settings(None, {variable: value, "DATABASE_URL": "dbname=x"})
    assert getattr(settings, name) == expected
    assert type(getattr(settings, name)) is type(expected)
