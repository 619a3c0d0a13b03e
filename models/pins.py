"""Pins: which manager handles which chat. At most one ACTIVE pin per chat (schema).

An ordinary pin (PIN) expires PIN_TTL_HOURS after the manager's last reply; a task pin
(ACTIVATE_KEY) likewise. Expiry moves a pin to history (UN_PIN / UN_ACTIVATE_KEY); a pin
removed by its manager, or taken over by an admin, becomes DELETE_PIN.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from models.repo import Repository
from models.users import User

ACTIVE = "ACTIVE"
PIN, ACTIVATE_KEY = "PIN", "ACTIVATE_KEY"
UN_PIN, UN_ACTIVATE_KEY, DELETE_PIN = "UN_PIN", "UN_ACTIVATE_KEY", "DELETE_PIN"

_USER_COLUMNS = "u.tg_id, u.username, u.first_name, u.language, u.role, u.reachable"


@dataclass(frozen=True)
class Pin:
    id: int
    conversation_id: int
    manager_id: int
    kind: str
    state: str
    created_at: datetime
    last_reply_at: datetime
    ended_at: datetime | None

    @property
    def expired_state(self) -> str:
        return UN_ACTIVATE_KEY if self.kind == ACTIVATE_KEY else UN_PIN

    def expires_at(self, ttl_hours: float) -> datetime:
        return self.last_reply_at + timedelta(hours=ttl_hours)

    @classmethod
    def from_row(cls, row: dict) -> "Pin":
        return cls(**{k: row[k] for k in ("id", "conversation_id", "manager_id", "kind", "state",
                                          "created_at", "last_reply_at", "ended_at")})


class PinRepository(Repository):
    def active(self, conversation_id: int, cur=None, *, lock: bool = False) -> tuple[Pin, User] | None:
        """The chat's active pin and its manager, if any."""
        row = self._one(cur, f"SELECT p.*, {_USER_COLUMNS} FROM pins p"
                             " JOIN users u ON u.tg_id = p.manager_id"
                             " WHERE p.active_conversation_id = %s" + (" FOR UPDATE" if lock else ""),
                       (conversation_id,))
        if row is None:
            return None
        return Pin.from_row(row), User.from_row(row)

    def create(self, cur, conversation_id: int, manager_id: int, kind: str, now: datetime) -> int:
        cur.execute("INSERT INTO pins (conversation_id, manager_id, kind, created_at, last_reply_at)"
                    " VALUES (%s, %s, %s, %s, %s)", (conversation_id, manager_id, kind, now, now))
        return cur.lastrowid

    def end(self, cur, pin_id: int, state: str, now: datetime) -> bool:
        ended = self._execute(cur, "UPDATE pins SET state = %s, ended_at = %s"
                                   " WHERE id = %s AND state = 'ACTIVE'", (state, now, pin_id)) == 1
        if ended and state == UN_ACTIVATE_KEY:
            self._archive_done_task(cur, pin_id)
        return ended

    def _archive_done_task(self, cur, pin_id: int) -> None:
        # A task that was done when its pin ran out is finished: to the archive.
        self._execute(cur, "UPDATE conversations c JOIN pins p ON p.conversation_id = c.id"
                           " SET c.status = 'archive' WHERE p.id = %s AND c.status = 'done'",
                      (pin_id,))

    def touch(self, conversation_id: int, manager_id: int, now: datetime, cur=None) -> bool:
        """The manager replied: their pin's window starts again."""
        return self._execute(cur, "UPDATE pins SET last_reply_at = GREATEST(last_reply_at, %s)"
                                  " WHERE active_conversation_id = %s AND manager_id = %s",
                             (now, conversation_id, manager_id)) == 1

    def due(self, now: datetime, ttl_hours: float, conversation_id: int | None = None) -> list[Pin]:
        """Active pins whose window has passed (of one conversation, or of all)."""
        cutoff = now - timedelta(hours=ttl_hours)
        if conversation_id is None:
            rows = self.db.fetchall("SELECT * FROM pins WHERE state = 'ACTIVE'"
                                    " AND last_reply_at < %s", (cutoff,))
        else:
            rows = self.db.fetchall("SELECT * FROM pins WHERE active_conversation_id = %s"
                                    " AND last_reply_at < %s", (conversation_id, cutoff))
        return [Pin.from_row(r) for r in rows]

    def end_if_due(self, cur, pin: Pin, now: datetime, ttl_hours: float) -> bool:
        """End `pin` as expired, unless it is no longer active or its manager replied
        since it was found due."""
        cutoff = now - timedelta(hours=ttl_hours)
        ended = cur.execute("UPDATE pins SET state = %s, ended_at = %s WHERE id = %s"
                            " AND state = 'ACTIVE' AND last_reply_at < %s",
                            (pin.expired_state, now, pin.id, cutoff)) == 1
        if ended and pin.expired_state == UN_ACTIVATE_KEY:
            self._archive_done_task(cur, pin.id)
        return ended

    def of_manager(self, manager_id: int, kinds: tuple[str, ...], active: bool,
                   offset: int, limit: int) -> tuple[list[int], int]:
        """Conversations (ids, newest first) a manager holds (active) or held (history)."""
        kind_sql = ", ".join(["%s"] * len(kinds))
        state_sql = "state = 'ACTIVE'" if active else "state <> 'ACTIVE'"
        base = f"FROM pins WHERE manager_id = %s AND kind IN ({kind_sql}) AND {state_sql}"
        rows = self.db.fetchall(f"SELECT conversation_id, MAX(id) AS last {base}"
                                f" GROUP BY conversation_id ORDER BY last DESC LIMIT %s OFFSET %s",
                                (manager_id, *kinds, limit, offset))
        total = self.db.scalar(f"SELECT COUNT(DISTINCT conversation_id) {base}", (manager_id, *kinds))
        return [r["conversation_id"] for r in rows], total

    def of_chat(self, conversation_id: int) -> list[tuple[Pin, User]]:
        rows = self.db.fetchall(f"SELECT p.*, {_USER_COLUMNS} FROM pins p"
                                " JOIN users u ON u.tg_id = p.manager_id WHERE p.conversation_id = %s"
                                " ORDER BY p.id", (conversation_id,))
        return [(Pin.from_row(r), User.from_row(r)) for r in rows]

    def active_of_manager(self, manager_id: int) -> list[Pin]:
        rows = self.db.fetchall("SELECT * FROM pins WHERE manager_id = %s AND state = 'ACTIVE'",
                                (manager_id,))
        return [Pin.from_row(r) for r in rows]
