"""The task board (📊): open task chats with who holds each and since when, and the ones
done within the last day."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from models.conversations import Conversation
from models.repo import Repository
from models.users import User

DONE_KEPT = timedelta(days=1)
_USER_COLUMNS = "u.tg_id, u.username, u.first_name, u.language, u.role, u.reachable"


@dataclass(frozen=True)
class BoardRow:
    conversation: Conversation
    holder: User | None
    held_since: datetime | None
    ever_pinned: bool
    status_changed_at: datetime | None

    @property
    def marker(self) -> str:
        """✅ done (kept a day), □ in work, ● needs checking (its pin ended, not done), ★ nobody took it."""
        if self.conversation.status == "done":
            return "✅"
        if self.holder is not None:
            return "□"
        return "●" if self.ever_pinned else "★"


class TaskBoardRepository(Repository):
    def board(self, now: datetime, offset: int, limit: int) -> tuple[list[BoardRow], int]:
        where = ("c.kind = 'task' AND (c.status IN ('new', 'in_work') OR (c.status = 'done'"
                 " AND COALESCE(c.status_changed_at, c.updated_at) >= %s))")
        since = now - DONE_KEPT
        rows = self.db.fetchall(
            f"SELECT c.*, p.created_at AS held_since, {_USER_COLUMNS},"
            " EXISTS (SELECT 1 FROM pins e WHERE e.conversation_id = c.id) AS ever_pinned"
            " FROM conversations c LEFT JOIN pins p ON p.active_conversation_id = c.id"
            f" LEFT JOIN users u ON u.tg_id = p.manager_id WHERE {where}"
            " ORDER BY c.status = 'done', c.last_date DESC, c.id DESC LIMIT %s OFFSET %s",
            (since, limit, offset))
        total = self.db.scalar(f"SELECT COUNT(*) FROM conversations c WHERE {where}", (since,))
        return [BoardRow(Conversation.from_row(r), User.from_row(r) if r["tg_id"] else None,
                         r["held_since"], bool(r["ever_pinned"]), r["status_changed_at"])
                for r in rows], total

    def set_status(self, conversation_id: int, status: str, at: datetime) -> None:
        self.db.execute("UPDATE conversations SET status = %s, status_changed_at = %s WHERE id = %s",
                        (status, at, conversation_id))

    def last_holder(self, conversation_id: int) -> int | None:
        """Who held the task last (its newest task pin, ended or not)."""
        return self.db.scalar("SELECT manager_id FROM pins WHERE conversation_id = %s"
                              " AND kind = 'ACTIVATE_KEY' ORDER BY id DESC LIMIT 1", (conversation_id,))
