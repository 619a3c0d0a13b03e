"""Who is on shift (table `desk_shifts`; no row = on shift), and each colleague's open
load, as the hand-over list shows them."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.repo import Repository
from models.users import User


@dataclass(frozen=True)
class Colleague:
    user: User
    on_shift: bool
    open_chats: int


class ShiftRepository(Repository):
    def on_shift(self, tg_id: int) -> bool:
        value = self.db.scalar("SELECT on_shift FROM desk_shifts WHERE tg_id = %s", (tg_id,))
        return value is None or bool(value)

    def set(self, tg_id: int, on_shift: bool, at: datetime) -> bool:
        """True when this changed the manager's shift (its change time is kept otherwise)."""
        before = self.on_shift(tg_id)
        self.db.execute("INSERT INTO desk_shifts (tg_id, on_shift, changed_at) VALUES (%s, %s, %s)"
                        " ON DUPLICATE KEY UPDATE changed_at = IF(on_shift = VALUES(on_shift),"
                        " changed_at, VALUES(changed_at)), on_shift = VALUES(on_shift)",
                        (tg_id, int(on_shift), at))
        return before != on_shift

    def changed_at(self, tg_id: int) -> datetime | None:
        return self.db.scalar("SELECT changed_at FROM desk_shifts WHERE tg_id = %s", (tg_id,))

    def colleagues(self, offset: int, limit: int, *, exclude: int | None = None,
                   on_shift_only: bool = True) -> tuple[list[Colleague], int]:
        """Managers and admins with their open chats, fewest first (who can take one)."""
        where = ("u.role IN ('manager', 'admin') AND u.tg_id <> %s"
                 + (" AND COALESCE(s.on_shift, 1) = 1" if on_shift_only else ""))
        rows = self.db.fetchall(
            "SELECT u.*, COALESCE(s.on_shift, 1) AS on_shift_now,"
            " (SELECT COUNT(*) FROM pins p WHERE p.manager_id = u.tg_id AND p.state = 'ACTIVE')"
            " AS open_chats FROM users u LEFT JOIN desk_shifts s ON s.tg_id = u.tg_id"
            f" WHERE {where} ORDER BY open_chats, u.tg_id LIMIT %s OFFSET %s",
            (exclude or 0, limit, offset))
        total = self.db.scalar("SELECT COUNT(*) FROM users u LEFT JOIN desk_shifts s"
                               f" ON s.tg_id = u.tg_id WHERE {where}", (exclude or 0,))
        return [Colleague(User.from_row(r), bool(r["on_shift_now"]), r["open_chats"])
                for r in rows], total
