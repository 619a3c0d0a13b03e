"""CRM conversations (table `chats`), keyed by id_i."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from models.db import is_data_error
from models.repo import Repository

log = logging.getLogger(__name__)

ORDINARY, TASK = "ordinary", "task"
_COLUMN = re.compile(r"column '(\w+)'")


@dataclass(frozen=True)
class Chat:
    id_i: int
    email: str | None
    product: str | None
    last_date: datetime | None
    cnt_msg: int
    cnt_new: int
    kind: str
    status: str

    @property
    def is_task(self) -> bool:
        return self.kind == TASK

    @classmethod
    def from_row(cls, row: dict) -> "Chat":
        return cls(**{k: row[k] for k in ("id_i", "email", "product", "last_date", "cnt_msg",
                                          "cnt_new", "kind", "status")})


def _refused_field(exc: BaseException, fields: dict) -> str | None:
    """The field MariaDB names in its refusal; else the first free-text one still set."""
    named = _COLUMN.search(str(exc))
    if named and fields.get(named.group(1)) is not None:
        return named.group(1)
    return next((f for f in ("email", "product", "last_date", "cnt_msg", "cnt_new")
                 if fields.get(f) is not None), None)


def kind_of(product: str | None, task_pattern: str) -> str:
    return TASK if product and re.search(task_pattern, product) else ORDINARY


class ChatRepository(Repository):
    def get(self, id_i: int, cur=None) -> Chat | None:
        row = self._one(cur, "SELECT * FROM chats WHERE id_i = %s", (id_i,))
        return Chat.from_row(row) if row else None

    def save(self, cur, id_i: int, *, email: str | None = None, product: str | None = None,
             last_date: datetime | None = None, cnt_msg: int | None = None,
             cnt_new: int | None = None, kind: str = ORDINARY) -> None:
        """Create or refresh a chat. What is None here is left as it was: a sync that did
        not ask the CRM for metadata never erases what an earlier one learnt.

        A value MariaDB refuses (an e-mail too long for its column, say) is left out, the
        rest is saved: a chat's odd metadata never stops its messages."""
        fields = dict(email=email, product=product, last_date=last_date, cnt_msg=cnt_msg,
                      cnt_new=cnt_new)
        while True:
            try:
                self._upsert(cur, id_i, kind=kind, **fields)
                return
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                field = _refused_field(exc, fields)
                if field is None:
                    raise
                log.warning("chat %s: its %s was refused by the database (%s); saved without it",
                            id_i, field, exc)
                fields[field] = None

    def _upsert(self, cur, id_i: int, *, email, product, last_date, cnt_msg, cnt_new,
                kind: str) -> None:
        self._execute(
            cur,
            "INSERT INTO chats (id_i, email, product, last_date, cnt_msg, cnt_new, kind)"
            " VALUES (%s, %s, %s, %s, COALESCE(%s, 0), COALESCE(%s, 0), %s)"
            " ON DUPLICATE KEY UPDATE"
            " email = COALESCE(VALUES(email), email),"
            " product = COALESCE(VALUES(product), product),"
            " last_date = GREATEST(COALESCE(VALUES(last_date), last_date),"
            "                      COALESCE(last_date, VALUES(last_date))),"
            " cnt_msg = IF(%s IS NULL, cnt_msg, VALUES(cnt_msg)),"
            " cnt_new = IF(%s IS NULL, cnt_new, VALUES(cnt_new)),"
            " kind = IF(VALUES(product) IS NULL, kind, VALUES(kind))",
            (id_i, email, product, last_date, cnt_msg, cnt_new, kind, cnt_msg, cnt_new))

    def recount_unread(self, cur, id_i: int) -> None:
        """cnt_new from the stored messages (a known chat's sync asks the CRM only for its
        messages, so the counter follows what they say)."""
        self._execute(cur, "UPDATE chats SET cnt_new = (SELECT COUNT(*) FROM messages m"
                           " WHERE m.id_i = chats.id_i AND m.direction = 'client'"
                           " AND m.date_seen IS NULL AND m.deleted = 0) WHERE id_i = %s", (id_i,))

    def freshness(self, ids: list[int]) -> dict[int, tuple[datetime | None, int]]:
        """(newest message date, message count) of known chats, as the CRM last told us:
        reconciliation's "anything new?" (the count catches a message of the same second)."""
        if not ids:
            return {}
        placeholders = ", ".join(["%s"] * len(ids))
        rows = self._all(None, f"SELECT id_i, last_date, cnt_msg FROM chats"
                               f" WHERE id_i IN ({placeholders})", ids)
        return {r["id_i"]: (r["last_date"], r["cnt_msg"]) for r in rows}


@dataclass(frozen=True)
class TaskRow:
    chat: Chat
    holder_id: int | None
    ever_pinned: bool

    @property
    def marker(self) -> str:
        """★ nobody took it, □ in work, ● needs checking (its pin expired, task not done)."""
        if self.holder_id is not None:
            return "□"
        return "●" if self.ever_pinned else "★"


COUNT_HORIZON = 1000  # rows counted past a page's start; beyond that a list shows "N+" pages


class ChatListRepository(Repository):
    """The lists a manager pages through."""

    def by_ids(self, ids: list[int]) -> dict[int, Chat]:
        if not ids:
            return {}
        placeholders = ", ".join(["%s"] * len(ids))
        rows = self._all(None, f"SELECT * FROM chats WHERE id_i IN ({placeholders})", ids)
        return {r["id_i"]: Chat.from_row(r) for r in rows}

    def newest(self, offset: int, limit: int) -> tuple[list[Chat], int]:
        """A page of all chats, newest first, and how many there are — counted only up to
        a few pages past this one (COUNT(*) of a shop's whole history costs tens of ms;
        the "next" button needs only to know there is more)."""
        # Ids first, from the (last_date, id_i) index alone; then the rows: a deep page
        # never sorts the whole table.
        rows = self._all(None, "SELECT c.* FROM (SELECT id_i FROM chats"
                               " ORDER BY last_date DESC, id_i DESC LIMIT %s OFFSET %s) page"
                               " JOIN chats c USING (id_i) ORDER BY c.last_date DESC, c.id_i DESC",
                         (limit, offset))
        horizon = offset + COUNT_HORIZON
        total = self.db.scalar("SELECT COUNT(*) FROM (SELECT 1 FROM chats LIMIT %s) seen", (horizon,))
        return [Chat.from_row(r) for r in rows], total

    def open_tasks(self, offset: int, limit: int) -> tuple[list[TaskRow], int]:
        rows = self._all(
            None,
            "SELECT c.*, (SELECT p.manager_id FROM pins p WHERE p.active_id_i = c.id_i) AS holder_id,"
            " EXISTS (SELECT 1 FROM pins p WHERE p.id_i = c.id_i) AS ever_pinned"
            " FROM chats c WHERE c.kind = 'task' AND c.status IN ('new', 'in_work')"
            " ORDER BY c.last_date DESC, c.id_i DESC LIMIT %s OFFSET %s", (limit, offset))
        total = self.db.scalar("SELECT COUNT(*) FROM chats WHERE kind = 'task'"
                               " AND status IN ('new', 'in_work')")
        return [TaskRow(Chat.from_row(r), r["holder_id"], bool(r["ever_pinned"])) for r in rows], total

    def set_status(self, id_i: int, status: str) -> None:
        self.db.execute("UPDATE chats SET status = %s WHERE id_i = %s", (status, id_i))

    def start_task(self, cur, id_i: int) -> None:
        """A task chat was taken: it is in work (again)."""
        self._execute(cur, "UPDATE chats SET status = 'in_work' WHERE id_i = %s"
                           " AND status IN ('new', 'done', 'archive')", (id_i,))

    def mark_read(self, id_i: int) -> None:
        self.db.execute("UPDATE chats SET cnt_new = 0 WHERE id_i = %s", (id_i,))
