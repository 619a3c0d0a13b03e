"""Working hours (`WORKING_HOURS`, `TZ`), parsed at the border into a bounded value, and
the arithmetic of working time: when N working minutes after a moment fall, and how many
working minutes lie between two moments. Moments are naive UTC, as KeepDesk stores them.

    WORKING_HOURS = "Mon-Fri 09-18"                  every weekday, 09:00 to 18:00
                    "Mon-Fri 09:30-18:00, Sat 10-14"  several groups
                    "" (or "always", "24/7")          always working
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_GROUP = re.compile(r"^(?P<days>[a-z]{3}(?:-[a-z]{3})?)\s+(?P<start>\d{1,2}(?::\d{2})?)"
                    r"\s*-\s*(?P<end>\d{1,2}(?::\d{2})?)$")
MAX_SCAN_DAYS = 15   # a working week always holds some working time: never loop further
ALWAYS_WORDS = ("", "always", "24/7")


class HoursError(ValueError):
    """WORKING_HOURS or TZ is malformed; the message says how it should look."""


def parse_timezone(raw: str) -> ZoneInfo:
    """An IANA zone name ("Europe/Kyiv"); the POSIX form ":Europe/Kyiv" is accepted too."""
    name = (raw or "").strip().lstrip(":")
    if name.startswith("/usr/share/zoneinfo/"):
        name = name[len("/usr/share/zoneinfo/"):]
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise HoursError(f"unknown time zone {raw!r}: use an IANA name such as Europe/Kyiv") from exc


def _clock_time(raw: str) -> int:
    """'9', '09', '09:30', '24' → minutes after midnight."""
    hours, _, minutes = raw.partition(":")
    value = int(hours) * 60 + int(minutes or 0)
    if int(hours) > 24 or int(minutes or 0) > 59 or value > 24 * 60:
        raise HoursError(f"{raw!r} is not a time of day")
    return value


def _days(raw: str) -> list[int]:
    first, _, last = raw.partition("-")
    if first not in DAYS or (last and last not in DAYS):
        raise HoursError(f"unknown day in {raw!r}: use Mon Tue Wed Thu Fri Sat Sun")
    start, end = DAYS.index(first), DAYS.index(last or first)
    return [(start + n) % 7 for n in range((end - start) % 7 + 1)]


@dataclass(frozen=True)
class WorkingHours:
    """Per weekday (Monday = 0) the working intervals, in minutes after local midnight."""
    week: tuple[tuple[tuple[int, int], ...], ...]
    zone: ZoneInfo
    text: str = "always"

    @classmethod
    def parse(cls, raw: str | None, zone: ZoneInfo | str = "UTC") -> "WorkingHours":
        zone = zone if isinstance(zone, ZoneInfo) else parse_timezone(zone)
        text = (raw or "").strip()
        if text.lower() in ALWAYS_WORDS:
            return cls(tuple(((0, 24 * 60),) for _ in DAYS), zone, "always")
        week: list[list[tuple[int, int]]] = [[] for _ in DAYS]
        for group in filter(None, (g.strip().lower() for g in text.split(","))):
            match = _GROUP.match(group)
            if not match:
                raise HoursError(f"{group!r} should look like 'Mon-Fri 09-18' or 'Sat 10:00-14:30'")
            start, end = _clock_time(match["start"]), _clock_time(match["end"])
            if start >= end:
                raise HoursError(f"{group!r}: the end must come after the start")
            for day in _days(match["days"]):
                week[day].append((start, end))
        if not any(week):
            raise HoursError("no working time at all")
        merged = tuple(tuple(_merge(day)) for day in week)
        return cls(merged, zone, text)

    @property
    def always(self) -> bool:
        return all(day == ((0, 24 * 60),) for day in self.week)

    def _intervals(self, start_utc: datetime):
        """Working intervals (UTC, naive) from the local day of `start_utc` on."""
        local = start_utc.replace(tzinfo=timezone.utc).astimezone(self.zone)
        day = local.date()
        for offset in range(MAX_SCAN_DAYS):
            current = day + timedelta(days=offset)
            for begin, end in self.week[current.weekday()]:
                yield (_utc(current, begin, self.zone), _utc(current, end, self.zone))

    def add(self, start: datetime, minutes: float) -> datetime:
        """The moment when `minutes` of working time have passed since `start`."""
        if self.always:
            return start + timedelta(minutes=minutes)
        left = timedelta(minutes=minutes)
        for begin, end in self._intervals(start):
            if end <= start:
                continue
            begin = max(begin, start)
            if end - begin >= left:
                return begin + left
            left -= end - begin
        return start + timedelta(minutes=minutes)  # unreachable with some working time

    def between(self, start: datetime, end: datetime) -> float:
        """Working minutes between two moments (0 when end is before start)."""
        if end <= start:
            return 0.0
        if self.always:
            return (end - start).total_seconds() / 60
        total = timedelta()
        moment = start
        while moment < end:
            progressed = False
            for begin, finish in self._intervals(moment):
                if begin >= end:
                    return total.total_seconds() / 60
                if finish <= moment:
                    continue
                total += min(finish, end) - max(begin, moment)
                moment = finish
                progressed = True
                if moment >= end:
                    break
            if not progressed:
                break
        return total.total_seconds() / 60

def _merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(intervals):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return merged


def _utc(day, minutes: int, zone: ZoneInfo) -> datetime:
    local = datetime.combine(day, time()) + timedelta(minutes=minutes)
    return local.replace(tzinfo=zone).astimezone(timezone.utc).replace(tzinfo=None)


def opens_at(hours: WorkingHours, moment: datetime,
             holidays: frozenset = frozenset()) -> datetime | None:
    """When the shop opens next (naive UTC), or None while it is open at `moment`.

    `holidays` are local dates (in the hours' zone) on which the shop is closed all day,
    whatever WORKING_HOURS says of their weekday."""
    local = moment.replace(tzinfo=timezone.utc).astimezone(hours.zone)
    day = local.date()
    for offset in range(MAX_SCAN_DAYS + len(holidays)):
        current = day + timedelta(days=offset)
        if current in holidays:
            continue
        for begin, end in hours.week[current.weekday()]:
            start, finish = _utc(current, begin, hours.zone), _utc(current, end, hours.zone)
            if finish <= moment:
                continue
            return None if start <= moment else start
    return None  # unreachable with some working time outside the holidays
