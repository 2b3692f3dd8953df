"""Timestamps in the one form every client of this API parses."""

from __future__ import annotations

from datetime import datetime, timezone


def now_iso() -> str:
    """ISO-8601 UTC time with milliseconds, as JavaScript's `Date.toISOString()` writes it."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
