"""The ``Prefer`` request header (RFC 7240) as PostgREST reads it, and ``Preference-Applied``.

Pure: header values in, a :class:`Preferences` out. Preferences are comma-separated,
over one header or several; the first of each kind wins; spaces around each are
ignored. What PostgREST does not know is ignored, unless ``handling=strict`` is among
them: then it is a 400 PGRST122 that lists what was not understood.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from .codes import Code
from .errors import ApiError

Return = Literal["minimal", "headers-only", "representation"]
Count = Literal["exact", "planned", "estimated"]
Resolution = Literal["merge-duplicates", "ignore-duplicates"]
Missing = Literal["default", "null"]

_KINDS: dict[str, tuple[str, ...]] = {
    "return": ("minimal", "headers-only", "representation"),
    "count": ("exact", "planned", "estimated"),
    "resolution": ("merge-duplicates", "ignore-duplicates"),
    "missing": ("default", "null"),
    "handling": ("strict", "lenient"),
    "tx": ("commit", "rollback"),
    "params": ("single-object",),  # /api/rpc's
}


@dataclass(frozen=True)
class Preferences:
    return_: Return | None = None
    count: Count | None = None
    resolution: Resolution | None = None
    missing: Missing | None = None
    handling: Literal["strict", "lenient"] | None = None
    tx: Literal["commit", "rollback"] | None = None
    params: Literal["single-object"] | None = None
    timezone: str | None = None
    invalid: tuple[str, ...] = ()

    def applied(self, *kinds: str) -> str | None:
        """``Preference-Applied``'s value for the kinds this request honoured, in PostgREST's order."""
        names: dict[str, str | None] = {"return": self.return_, "count": self.count, "resolution": self.resolution}
        names |= {"missing": self.missing, "handling": self.handling, "tx": self.tx}
        order = ("resolution", "missing", "return", "count", "tx", "handling")
        values = [f"{kind}={names[kind]}" for kind in order if kind in kinds and names[kind] is not None]
        return ", ".join(values) or None


NONE = Preferences()


def parse(headers: Iterable[str]) -> Preferences:
    """Every ``Prefer`` header's value, in order; raises PGRST122 under ``handling=strict``."""
    found: dict[str, str] = {}
    invalid: list[str] = []
    timezone = None
    for header in headers:
        for raw in header.split(","):
            pref = raw.strip()
            if not pref:
                continue
            kind, _, value = pref.partition("=")
            kind, value = kind.strip(), value.strip()
            if kind == "timezone" and value:
                timezone = timezone or value
            elif value in _KINDS.get(kind, ()):
                found.setdefault(kind, value)
            else:
                invalid.append(pref)
    prefs = Preferences(
        return_=found.get("return"),  # type: ignore[arg-type]
        count=found.get("count"),  # type: ignore[arg-type]
        resolution=found.get("resolution"),  # type: ignore[arg-type]
        missing=found.get("missing"),  # type: ignore[arg-type]
        handling=found.get("handling"),  # type: ignore[arg-type]
        tx=found.get("tx"),  # type: ignore[arg-type]
        params=found.get("params"),  # type: ignore[arg-type]
        timezone=timezone,
        invalid=tuple(invalid),
    )
    if prefs.handling == "strict" and invalid:
        raise ApiError(
            Code.INVALID_PREFERENCES,
            "Invalid preferences given with handling=strict",
            details="Invalid preferences: " + ", ".join(invalid),
            hint="known: " + "; ".join(f"{k}={'|'.join(v)}" for k, v in _KINDS.items()),
        )
    return prefs
