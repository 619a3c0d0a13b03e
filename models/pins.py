"""Pins: which manager handles which chat. At most one ACTIVE pin per chat (schema)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.repo import Repository
from models.users import User

ACTIVE = "ACTIVE"
PIN, ACTIVATE_KEY = "PIN", "ACTIVATE_KEY"


@dataclass(frozen=True)
class Pin:
    id: int
    id_i: int
    manager_id: int
    kind: str
    state: str
    created_at: datetime
    last_reply_at: datetime
    ended_at: datetime | None

    @classmethod
    def from_row(cls, row: dict) -> "Pin":
        return cls(**{k: row[k] for k in ("id", "id_i", "manager_id", "kind", "state",
                                          "created_at", "last_reply_at", "ended_at")})


class PinRepository(Repository):
    def active(self, id_i: int, cur=None) -> tuple[Pin, User] | None:
        """The chat's active pin and its manager, if any."""
        row = self._one(cur, "SELECT p.*, u.tg_id, u.username, u.first_name, u.language, u.role,"
                             " u.reachable FROM pins p JOIN users u ON u.tg_id = p.manager_id"
                             " WHERE p.active_id_i = %s", (id_i,))
        if row is None:
            return None
        return Pin.from_row(row), User.from_row(row)
