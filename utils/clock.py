"""Time as KeepDesk stores it: naive UTC (the database sessions run in UTC).

Everything that decides by time (pin expiry) asks `deps.clock()`, so tests can move time.
"""
from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)
