"""Auto-assignment per channel (table `auto_assign`: on or off, and who got the last
chat, for the round robin), and the candidates: managers on shift who can be reached,
with their open chats (active pins)."""
from __future__ import annotations

from dataclasses import dataclass

from models.repo import Repository
from models.users import User


@dataclass(frozen=True)
class Candidate:
    user: User
    open_chats: int


class AutoAssignRepository(Repository):
    def enabled(self, channel: str, cur=None) -> bool:
        row = self._one(cur, "SELECT enabled FROM auto_assign WHERE channel = %s", (channel,))
        return bool(row and row["enabled"])

    def switch(self, channel: str, enabled: bool) -> None:
        self.db.execute("INSERT INTO auto_assign (channel, enabled) VALUES (%s, %s)"
                        " ON DUPLICATE KEY UPDATE enabled = VALUES(enabled)", (channel, int(enabled)))

    def states(self) -> dict[str, bool]:
        return {r["channel"]: bool(r["enabled"])
                for r in self.db.fetchall("SELECT channel, enabled FROM auto_assign")}

    def lock_turn(self, cur, channel: str) -> tuple[bool, int | None]:
        """(enabled, the manager who got the channel's last chat), the row locked until the
        caller's transaction ends: two assignments of one channel are decided one after
        the other, each seeing the other's pin."""
        row = self._one(cur, "SELECT enabled, last_manager_id FROM auto_assign WHERE channel = %s"
                             " FOR UPDATE", (channel,))
        return (bool(row["enabled"]), row["last_manager_id"]) if row else (False, None)

    def record_turn(self, cur, channel: str, manager_id: int) -> None:
        cur.execute("UPDATE auto_assign SET last_manager_id = %s WHERE channel = %s",
                    (manager_id, channel))

    def candidates(self, cur, exclude: tuple[int, ...] = ()) -> list[Candidate]:
        """Managers (not admins) on shift who have not blocked the bot, fewest open chats first."""
        skip = tuple(exclude) or (0,)
        placeholders = ", ".join(["%s"] * len(skip))
        rows = self._all(
            cur, "SELECT u.*, (SELECT COUNT(*) FROM pins p WHERE p.manager_id = u.tg_id"
                 " AND p.state = 'ACTIVE') AS open_chats FROM users u"
                 " LEFT JOIN desk_shifts s ON s.tg_id = u.tg_id"
                 " WHERE u.role = 'manager' AND u.reachable = 1 AND COALESCE(s.on_shift, 1) = 1"
                 f" AND u.tg_id NOT IN ({placeholders}) ORDER BY open_chats, u.tg_id", skip)
        return [Candidate(User.from_row(r), r["open_chats"]) for r in rows]


    def held_before(self, cur, conversation_id: int) -> tuple[int, ...]:
        """Everyone who has held this conversation (a chat passed on goes to someone new)."""
        return tuple(r["manager_id"] for r in self._all(
            cur, "SELECT DISTINCT manager_id FROM pins WHERE conversation_id = %s", (conversation_id,)))
