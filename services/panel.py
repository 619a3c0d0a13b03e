"""What the admin panel shows and does (WEB.md §1), through the same repositories and
services the Telegram desk uses: the home figures, the reports, the team's roles.

Reports count time as the SLA does (`settings.hours`: WORKING_HOURS in TZ): an answer
given on Monday 09:10 to a message of Friday 19:00 (hours Mon-Fri 09-18) took 10 minutes.
* first response: customer message → the shop's first answer, per manager and per channel
  (`ResponseRepository.report`, shared with the desk);
* resolution: the conversation's first wait → the moment it was marked done, attributed
  to whoever answered last before it;
* median and p90 (the nearest-rank p90 of `models/responses.py`), the share answered
  within SLA_REMIND_MINUTES;
* volume: customer messages (waits begun) by hour of day and by day, in TZ.
"""
from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from models.auto_replies import ScoreRepository
from models.conversations import ConversationRepository
from models.db import Database
from models.jobs import JobQueue
from models.panel import PanelFigures
from models.state import ManagerStateRepository
from models.responses import EVERYONE, ResponseRepository
from models.users import ADMIN, BANNED, ROLES, User, UserManager
from services.notices import Notice, Notices, Says
from utils.hours import WorkingHours


@dataclass(frozen=True)
class Figures:
    """One line of a report: median and p90 in working minutes, share within the SLA."""
    manager_id: int | None
    channel: str | None
    count: int
    median_minutes: float
    p90_minutes: float
    within_sla: float


@dataclass(frozen=True)
class Report:
    since: datetime
    until: datetime
    first_response: list[Figures]
    resolution: list[Figures]
    by_hour: list[int]           # 24 counts, hour of day in TZ
    by_day: list[tuple[str, int]]  # (YYYY-MM-DD in TZ, count) for every day of the period
    sla_minutes: int
    scores: tuple = ()           # ScoreFigures: the customers' scores after "done"


@dataclass(frozen=True)
class ScoreFigures:
    """The customers' scores (1-5) of one manager / channel: how many, their median, the low ones."""
    manager_id: int | None
    channel: str | None
    count: int
    median: float
    low: int


def score_figures(rows) -> tuple[ScoreFigures, ...]:
    """Per manager and channel, per manager, per channel and for everyone (as the times)."""
    from services.scores import LOW_SCORE
    groups: dict[tuple, list[int]] = {}
    for r in rows:
        for key in ((r.manager_id, r.channel), (r.manager_id, None), (EVERYONE, r.channel),
                    (EVERYONE, None)):
            groups.setdefault(key, []).append(r.score)
    ordered = sorted(groups.items(), key=lambda item: (item[0][0] == EVERYONE, item[0][0] is None,
                                                       item[0][0] or 0, item[0][1] is None,
                                                       item[0][1] or ""))
    return tuple(ScoreFigures(m, c, len(v), statistics.median(v), sum(1 for x in v if x <= LOW_SCORE))
                 for (m, c), v in ordered)


def _p90(ordered: list[float]) -> float:
    return ordered[min(len(ordered) - 1, max(0, round(0.9 * (len(ordered) - 1))))]


def _figures(manager, channel, values: list[float], sla: float) -> Figures:
    ordered = sorted(values)
    within = sum(1 for v in ordered if v <= sla) / len(ordered) if sla else 1.0
    return Figures(manager, channel, len(ordered), statistics.median(ordered), _p90(ordered), within)


class Reports:
    def __init__(self, db: Database, hours: WorkingHours, sla_minutes: int) -> None:
        self.hours = hours
        self.sla_minutes = sla_minutes
        self.responses = ResponseRepository(db)
        self.figures = PanelFigures(db)
        self.score_rows = ScoreRepository(db)

    def build(self, since: datetime, until: datetime) -> Report:
        first = [Figures(f.manager_id, f.channel, f.answered, f.median_minutes, f.p90_minutes,
                         f.within_sla)
                 for f in self.responses.report(since, until, self.hours, self.sla_minutes)]
        groups: dict[tuple, list[float]] = {}
        for r in self.figures.resolutions(since, until):
            minutes = self.hours.between(r.asked_at, r.resolved_at)
            for key in ((r.manager_id, r.channel), (r.manager_id, None), (EVERYONE, r.channel),
                        (EVERYONE, None)):
                groups.setdefault(key, []).append(minutes)
        resolution = [_figures(m, c, v, self.sla_minutes) for (m, c), v in sorted(
            groups.items(), key=lambda item: (item[0][0] == EVERYONE, item[0][0] is None,
                                              item[0][0] or 0, item[0][1] is None, item[0][1] or ""))]
        zone = self.hours.zone
        local = [at.replace(tzinfo=timezone.utc).astimezone(zone)
                 for at in self.figures.customer_messages(since, until)]
        hours = Counter(t.hour for t in local)
        days = Counter(t.date().isoformat() for t in local)
        first_day = since.replace(tzinfo=timezone.utc).astimezone(zone).date()
        last_day = (until - timedelta(microseconds=1)).replace(tzinfo=timezone.utc).astimezone(zone).date()
        by_day, day = [], first_day
        while day <= last_day and len(by_day) < 366:
            by_day.append((day.isoformat(), days.get(day.isoformat(), 0)))
            day += timedelta(days=1)
        return Report(since, until, first, resolution, [hours.get(h, 0) for h in range(24)],
                      by_day, self.sla_minutes, score_figures(self.score_rows.between(since, until)))


@dataclass(frozen=True)
class ChannelCount:
    channel: str
    received_today: int
    sent_today: int
    received_week: int
    sent_week: int


class Overview:
    """The home page's figures."""

    def __init__(self, db: Database, jobs: JobQueue, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.jobs = jobs
        self.figures = PanelFigures(db)

    def message_counts(self, zone) -> list[ChannelCount]:
        now = self.clock()
        local_midnight = (now.replace(tzinfo=timezone.utc).astimezone(zone)
                          .replace(hour=0, minute=0, second=0, microsecond=0))
        today = local_midnight.astimezone(timezone.utc).replace(tzinfo=None)
        week = today - timedelta(days=6)
        counts: dict[str, dict[str, int]] = {}
        for label, since in (("today", today), ("week", week)):
            for row in self.figures.messages_per_channel(since):
                entry = counts.setdefault(row["channel"], {})
                entry[f"received_{label}"] = int(row["received"] or 0)
                entry[f"sent_{label}"] = int(row["sent"] or 0)
            # a channel that does not store the shop's answers as messages still counts them
            for channel, n in self.figures.answers_per_channel(since).items():
                entry = counts.setdefault(channel, {})
                entry[f"sent_{label}"] = max(entry.get(f"sent_{label}", 0), n)
        return [ChannelCount(channel, c.get("received_today", 0), c.get("sent_today", 0),
                             c.get("received_week", 0), c.get("sent_week", 0))
                for channel, c in sorted(counts.items())]

    def queues(self) -> list[dict]:
        return [{"queue": r["queue"], "depth": int(r["n"]), "oldest_seconds": (r["oldest"] or 0) / 1e6}
                for r in self.jobs.depth_by_queue()]


class Team:
    """Roles given by an admin — `/approve_`, `/ban_`, `/admin_` in Telegram and the panel's
    team page both come here: an admin cannot change their own role; a ban ends the
    person's chats (each told to the log chat) and their writing state; someone approved
    or made admin is told so when they can reach the bot."""

    def __init__(self, users: UserManager, claims, notices: Notices, log_chat_id: int | None,
                 clock: Callable[[], datetime], db: Database) -> None:
        self.users = users
        self.claims = claims
        self.notices = notices
        self.log_chat_id = log_chat_id
        self.clock = clock
        self.conversations = ConversationRepository(db)
        self.state = ManagerStateRepository(db)

    def set_role(self, target_id: int, role: str, *, by_tg_id: int | None,
                 key: Callable[[str], str | None]) -> User | None:
        """The person with the new role; None when it is the admin's own role or no role.
        `key(purpose)`: the idempotency key of each message this decision sends."""
        if role not in ROLES or role == "pending" or target_id == by_tg_id:
            return None
        target = self.users.set_role(target_id, role)
        if role == BANNED:
            for pin in self.claims.end_all_of(target.tg_id, self.clock()):
                chat = self.conversations.get(pin.conversation_id)
                self.notices.tell(Notice(self.log_chat_id, "log_change_pin",
                                         {"who": target.display_name, "what": Says("change_pin_banned"),
                                          "id_i": chat.ref if chat else pin.conversation_id},
                                         key=key(f"pin:{pin.conversation_id}"), purpose="log"))
            self.state.clear(target_id)
            return target
        if target.reachable:
            # Queued: a person who never opened the bot or blocked it costs nothing here.
            note = "you_are_admin" if role == ADMIN else "you_are_approved"
            self.notices.tell(Notice(target_id, note, main_menu=True, key=key(note)))
        return target
