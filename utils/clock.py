"""Time as KeepDesk stores it: naive UTC (the database sessions run in UTC).

Everything that decides by time (pin expiry) asks `deps.clock()`, so tests can move time.
"""
from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class MovableClock:
    """A clock tests move by hand (`advance`, `set`): SLA reminders, takebacks, working
    hours, expiry and daily chores are tested by moving time, never by sleeping. Use it
    as the container's clock: `deps.clock = MovableClock(start)`."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or utc_now()

    def __call__(self) -> datetime:
        return self._now

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment

    def advance(self, **delta: float) -> datetime:
        from datetime import timedelta
        self._now += timedelta(**delta)
        return self._now
