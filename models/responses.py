"""How long customers wait (table `responses`): one row per wait, from the customer's first
unanswered message to the first answer. The SLA reads the open rows (reminders,
takebacks); the reports read the closed ones (first-response time per manager and per
channel, WEB.md "Reports")."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

from models.repo import Repository
from utils.hours import WorkingHours


@dataclass(frozen=True)
class Wait:
    id: int
    conversation_id: int
    channel: str
    message_id: int
    asked_at: datetime
    answered_at: datetime | None
    answered_by: int | None
    remind_at: datetime | None
    takeback_at: datetime | None
    reminded_at: datetime | None
    taken_back_at: datetime | None

    @classmethod
    def from_row(cls, row: dict) -> "Wait":
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


EVERYONE = 0    # a report line of everyone together (no Telegram user has the id 0)


@dataclass(frozen=True)
class ResponseFigures:
    """One line of the first-response report: a manager (None: answered outside the desk,
    e.g. in the CRM's page; EVERYONE: all answers together) on a channel (None: all)."""
    manager_id: int | None
    channel: str | None
    answered: int
    median_minutes: float
    p90_minutes: float
    within_sla: float            # share answered within SLA_REMIND_MINUTES of working time


class ResponseRepository(Repository):
    def open_wait(self, conversation_id: int, cur=None) -> Wait | None:
        row = self._one(cur, "SELECT * FROM responses WHERE open_conversation_id = %s"
                             + (" FOR UPDATE" if cur is not None else ""), (conversation_id,))
        return Wait.from_row(row) if row else None

    def start(self, cur, conversation_id: int, channel: str, message_id: int, asked_at: datetime,
              remind_at: datetime | None, takeback_at: datetime | None) -> int | None:
        """A customer starts waiting (nothing when they wait already: the first message of
        a wait is the one that counts)."""
        cur.execute("INSERT IGNORE INTO responses (conversation_id, channel, message_id, asked_at,"
                    " remind_at, takeback_at) VALUES (%s, %s, %s, %s, %s, %s)",
                    (conversation_id, channel, message_id, asked_at, remind_at, takeback_at))
        return cur.lastrowid if cur.rowcount == 1 else None

    def answer(self, cur, conversation_id: int, answered_by: int | None, at: datetime) -> bool:
        """The wait ends with this answer (the first one; later answers change nothing)."""
        return self._execute(cur, "UPDATE responses SET answered_at = %s, answered_by = %s,"
                                  " remind_at = NULL, takeback_at = NULL"
                                  " WHERE open_conversation_id = %s",
                             (at, answered_by, conversation_id)) == 1

    def due_reminders(self, now: datetime, limit: int) -> list[Wait]:
        rows = self.db.fetchall("SELECT * FROM responses WHERE remind_at <= %s"
                                " ORDER BY remind_at LIMIT %s", (now, limit))
        return [Wait.from_row(r) for r in rows]

    def due_takebacks(self, now: datetime, limit: int) -> list[Wait]:
        rows = self.db.fetchall("SELECT * FROM responses WHERE takeback_at <= %s"
                                " ORDER BY takeback_at LIMIT %s", (now, limit))
        return [Wait.from_row(r) for r in rows]

    def reminded(self, cur, wait_id: int, at: datetime) -> bool:
        return cur.execute("UPDATE responses SET remind_at = NULL, reminded_at = %s"
                           " WHERE id = %s AND remind_at IS NOT NULL", (at, wait_id)) == 1

    def taken_back(self, cur, wait_id: int, at: datetime, holder_id: int | None) -> bool:
        return cur.execute("UPDATE responses SET takeback_at = NULL, remind_at = NULL,"
                           " taken_back_at = IF(%s IS NULL, taken_back_at, %s),"
                           " taken_back_from = %s WHERE id = %s AND takeback_at IS NOT NULL",
                           (holder_id, at, holder_id, wait_id)) == 1

    def rearm(self, cur, wait_id: int, remind_at: datetime | None,
              takeback_at: datetime | None) -> None:
        """A wait handed to someone else starts its reminders again (transfer, takeback)."""
        cur.execute("UPDATE responses SET remind_at = %s, takeback_at = %s"
                    " WHERE id = %s AND answered_at IS NULL", (remind_at, takeback_at, wait_id))

    def report(self, since: datetime, until: datetime, hours: WorkingHours,
               sla_minutes: float) -> list[ResponseFigures]:
        """First-response time (working minutes) of the waits that began in [since, until),
        per manager and channel, per manager, per channel and for everyone."""
        rows = self.db.fetchall("SELECT channel, answered_by, asked_at, answered_at FROM responses"
                                " WHERE asked_at >= %s AND asked_at < %s AND answered_at IS NOT NULL",
                                (since, until))
        groups: dict[tuple, list[float]] = {}
        for row in rows:
            minutes = hours.between(row["asked_at"], row["answered_at"])
            for key in ((row["answered_by"], row["channel"]), (row["answered_by"], None),
                        (EVERYONE, row["channel"]), (EVERYONE, None)):
                groups.setdefault(key, []).append(minutes)
        return [_figures(manager, channel, values, sla_minutes)
                for (manager, channel), values in sorted(groups.items(), key=_order)]


def _order(item) -> tuple:
    (manager, channel), _ = item
    return (manager == EVERYONE, manager is None, manager or 0, channel is None, channel or "")


def _figures(manager, channel, values: list[float], sla_minutes: float) -> ResponseFigures:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, max(0, round(0.9 * (len(ordered) - 1))))]
    within = sum(1 for v in ordered if v <= sla_minutes) / len(ordered) if sla_minutes else 1.0
    return ResponseFigures(manager, channel, len(ordered), statistics.median(ordered), p90, within)
