"""gateway.db's pure parts, without a server."""

from __future__ import annotations

import pytest

from gateway.db import redact


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://app:s3cret-pw@db.example/app",
        "host=db.example password=s3cret-pw dbname=app",
        "postgresql://app@db.example/app?password=s3cret-pw",
        "postgresql://app@db.example/app?sslkey=/k.pem&sslpassword=s3cret-pw",
    ],
)
def test_redact_keeps_no_secret_of_the_dsn(dsn: str) -> None:
    shown = redact(dsn)
    assert "s3cret-pw" not in shown and "db.example" in shown
