"""Conversations (table `conversations`): one per (channel, account, external id) —
a KeepingCRM chat, a WhatsApp customer on one of the shop's numbers, a Telegram user on
one of the shop's accounts (CHANNELS.md §1).

A conversation's number (`id`) is its source's own number when the source has a numeric
one and it is free (a CRM chat keeps its id_i: people and commands know chats by it);
otherwise the next free number.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

import pymysql

from models.db import is_data_error
from models.inbound import ConversationInfo, ConversationKey
from models.repo import Repository

log = logging.getLogger(__name__)

KEEPINGCRM = "keepingcrm"
ORDINARY, TASK = "ordinary", "task"
_COLUMN = re.compile(r"column '(\w+)'")
_COLUMNS = ("id", "channel", "account", "external_id", "title", "customer_name", "customer_email",
            "customer_phone", "customer_tg_id", "last_date", "last_customer_at", "cnt_msg",
            "cnt_new", "kind", "status")


@dataclass(frozen=True)
class Conversation:
    id: int
    channel: str
    account: str
    external_id: str
    title: str | None
    customer_name: str | None
    customer_email: str | None
    customer_phone: str | None
    customer_tg_id: int | None
    last_date: datetime | None
    last_customer_at: datetime | None
    cnt_msg: int
    cnt_new: int
    kind: str
    status: str

    @property
    def is_task(self) -> bool:
        return self.kind == TASK

    @property
    def ref(self) -> str:
        """The number people know the conversation by: a CRM chat's order number, else the
        desk's own number."""
        return self.external_id if self.channel == KEEPINGCRM else str(self.id)

    @property
    def key(self) -> ConversationKey:
        return ConversationKey(self.channel, self.account, self.external_id)

    @property
    def customer(self) -> str | None:
        """Who the customer is, as the desk names them: e-mail, phone or name."""
        return self.customer_email or self.customer_phone or self.customer_name

    @classmethod
    def from_row(cls, row: dict) -> "Conversation":
        return cls(**{k: row[k] for k in _COLUMNS})


def kind_of(title: str | None, task_pattern: str) -> str:
    return TASK if title and re.search(task_pattern, title) else ORDINARY


def _refused_field(exc: BaseException, fields: dict) -> str | None:
    """The field MariaDB names in its refusal; else the first free-text one still set."""
    named = _COLUMN.search(str(exc))
    if named and fields.get(named.group(1)) is not None:
        return named.group(1)
    return next((f for f in ("customer_email", "title", "customer_name", "customer_phone",
                             "last_date", "cnt_msg", "cnt_new") if fields.get(f) is not None), None)


# cnt_new counted from the stored messages (`save_info(recount_unread=True)`).
_RECOUNT_UNREAD = ("(SELECT COUNT(*) FROM messages m WHERE m.conversation_id = conversations.id"
                   " AND m.direction = 'client' AND m.date_seen IS NULL AND m.deleted = 0)")


class ConversationRepository(Repository):
    def get(self, conversation_id: int, cur=None) -> Conversation | None:
        row = self._one(cur, "SELECT * FROM conversations WHERE id = %s", (conversation_id,))
        return Conversation.from_row(row) if row else None

    def find(self, key: ConversationKey, cur=None) -> Conversation | None:
        row = self._one(cur, "SELECT * FROM conversations WHERE channel = %s AND account = %s"
                             " AND external_id = %s", (key.channel, key.account, key.external_id))
        return Conversation.from_row(row) if row else None

    def ensure(self, key: ConversationKey, kind: str = ORDINARY) -> int:
        """The conversation's number, creating it if new (race-safe: one row per key)."""
        found = self.find(key)
        if found is not None:
            return found.id
        for preferred in (key.numeric_id, None):
            try:
                with self.db.connection() as conn, conn.cursor() as cur:
                    cur.execute("INSERT INTO conversations (id, channel, account, external_id, kind)"
                                " VALUES (%s, %s, %s, %s, %s)",
                                (preferred, key.channel, key.account, key.external_id, kind))
                    return cur.lastrowid
            except pymysql.err.IntegrityError:
                found = self.find(key)  # created meanwhile, or the number is taken
                if found is not None:
                    return found.id
        raise RuntimeError(f"conversation {key} could not be created")  # pragma: no cover

    def follow(self, old: ConversationKey, new: ConversationKey, phone: str) -> bool:
        """The customer changed number: their conversation is now under `new` (its claims,
        history and post stay). False when `new` already has a conversation of its own
        (then both stay as they are) or `old` has none."""
        try:
            with self.db.connection() as conn, conn.cursor() as cur:
                cur.execute("UPDATE conversations SET external_id = %s, customer_phone = %s"
                            " WHERE channel = %s AND account = %s AND external_id = %s",
                            (new.external_id, phone, old.channel, old.account, old.external_id))
                return cur.rowcount == 1
        except pymysql.err.IntegrityError:
            return False

    def save_info(self, cur, conversation_id: int, info: ConversationInfo, *,
                  last_date: datetime | None, last_customer_at: datetime | None,
                  cnt_msg: int | None, kind: str | None, recount_unread: bool = False) -> None:
        """Refresh what the channel said. What is None is left as it was: a sync that did
        not ask for metadata never erases what an earlier one learnt. A value MariaDB
        refuses (an e-mail too long for its column, say) is left out, the rest is saved:
        odd metadata never stops a conversation's messages."""
        fields = dict(title=info.title, customer_name=info.customer_name,
                      customer_email=info.customer_email, customer_phone=info.customer_phone,
                      customer_tg_id=info.customer_tg_id, cnt_new=info.cnt_new,
                      last_date=last_date, last_customer_at=last_customer_at, cnt_msg=cnt_msg,
                      kind=kind)
        while True:
            try:
                self._update(cur, conversation_id, fields, recount_unread)
                return
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                field = _refused_field(exc, fields)
                if field is None:
                    raise
                log.warning("conversation %s: its %s was refused by the database (%s); saved"
                            " without it", conversation_id, field, exc)
                fields[field] = None

    def _update(self, cur, conversation_id: int, fields: dict, recount_unread: bool) -> None:
        unread = (_RECOUNT_UNREAD if recount_unread else "COALESCE(%(cnt_new)s, cnt_new)")
        self._execute(
            cur,
            "UPDATE conversations SET"
            " title = COALESCE(%(title)s, title),"
            " customer_name = COALESCE(%(customer_name)s, customer_name),"
            " customer_email = COALESCE(%(customer_email)s, customer_email),"
            " customer_phone = COALESCE(%(customer_phone)s, customer_phone),"
            " customer_tg_id = COALESCE(%(customer_tg_id)s, customer_tg_id),"
            " last_date = GREATEST(COALESCE(%(last_date)s, last_date),"
            "                      COALESCE(last_date, %(last_date)s)),"
            " last_customer_at = GREATEST(COALESCE(%(last_customer_at)s, last_customer_at),"
            "                             COALESCE(last_customer_at, %(last_customer_at)s)),"
            " cnt_msg = COALESCE(%(cnt_msg)s, cnt_msg),"
            f" cnt_new = {unread},"
            " kind = COALESCE(%(kind)s, kind)"
            " WHERE id = %(id)s", dict(fields, id=conversation_id))


    def freshness(self, channel: str, account: str,
                  external_ids: list[str]) -> dict[str, tuple[datetime | None, int]]:
        """(newest message date, message count) of known conversations, as their channel
        last told us: reconciliation's "anything new?"."""
        if not external_ids:
            return {}
        placeholders = ", ".join(["%s"] * len(external_ids))
        rows = self._all(None, f"SELECT external_id, last_date, cnt_msg FROM conversations"
                               f" WHERE channel = %s AND account = %s"
                               f" AND external_id IN ({placeholders})",
                         (channel, account, *external_ids))
        return {r["external_id"]: (r["last_date"], r["cnt_msg"]) for r in rows}


COUNT_HORIZON = 1000  # rows counted past a page's start; beyond that a list shows "N+" pages


class ConversationListRepository(Repository):
    """The lists a manager pages through, and the small state changes of a conversation."""

    def by_ids(self, ids: list[int]) -> dict[int, Conversation]:
        if not ids:
            return {}
        placeholders = ", ".join(["%s"] * len(ids))
        rows = self._all(None, f"SELECT * FROM conversations WHERE id IN ({placeholders})", ids)
        return {r["id"]: Conversation.from_row(r) for r in rows}

    def newest(self, offset: int, limit: int) -> tuple[list[Conversation], int]:
        """A page of all conversations, newest first, and how many there are — counted only
        up to a few pages past this one (COUNT(*) of a shop's whole history costs tens of
        ms; the "next" button needs only to know there is more)."""
        # Ids first, from the (last_date, id) index alone; then the rows: a deep page
        # never sorts the whole table.
        rows = self._all(None, "SELECT c.* FROM (SELECT id FROM conversations"
                               " ORDER BY last_date DESC, id DESC LIMIT %s OFFSET %s) page"
                               " JOIN conversations c USING (id) ORDER BY c.last_date DESC, c.id DESC",
                         (limit, offset))
        horizon = offset + COUNT_HORIZON
        total = self.db.scalar("SELECT COUNT(*) FROM (SELECT 1 FROM conversations LIMIT %s) seen",
                               (horizon,))
        return [Conversation.from_row(r) for r in rows], total

    def start_task(self, cur, conversation_id: int) -> None:
        """A task conversation was taken: it is in work (again)."""
        self._execute(cur, "UPDATE conversations SET status = 'in_work' WHERE id = %s"
                           " AND status IN ('new', 'done', 'archive')", (conversation_id,))

    def mark_read(self, conversation_id: int) -> None:
        self.db.execute("UPDATE conversations SET cnt_new = 0 WHERE id = %s", (conversation_id,))
