"""CRM messages (table `messages`): stored once by CRM id, announced to Telegram once."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from models.db import is_data_error
from models.repo import Repository

log = logging.getLogger(__name__)

CLIENT, SHOP = "client", "shop"


@dataclass(frozen=True)
class StoredMessage:
    id: int
    id_i: int
    direction: str
    text: str
    is_file: bool
    is_img: bool
    filename: str | None
    url: str | None
    preview: str | None
    date_written: datetime | None
    date_seen: datetime | None
    deleted: bool

    @property
    def from_client(self) -> bool:
        return self.direction == CLIENT

    @classmethod
    def from_row(cls, row: dict) -> "StoredMessage":
        return cls(id=row["id"], id_i=row["id_i"], direction=row["direction"],
                   text=row["text"] or "", is_file=bool(row["is_file"]),
                   is_img=bool(row["is_img"]), filename=row["filename"], url=row["url"],
                   preview=row["preview"], date_written=row["date_written"],
                   date_seen=row["date_seen"], deleted=bool(row["deleted"]))


_INSERT = ("INSERT INTO messages (id, id_i, direction, text, is_file, is_img, filename, url,"
           " preview, date_written, date_seen, deleted)"
           " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
           " ON DUPLICATE KEY UPDATE date_seen = VALUES(date_seen), deleted = VALUES(deleted)")

# Stored instead of a message MariaDB refused, so that the conversation goes on.
UNSTORABLE = "(this message could not be stored: {reason} — see it in the CRM)"


class MessageRepository(Repository):
    def store(self, cur, messages: Iterable) -> None:
        """Insert CRM messages once; a known one only gets its seen/deleted state refreshed.

        A message whose data MariaDB refuses (a field too long, a value out of range)
        is stored as a placeholder saying so: it affects itself only, never the
        messages around it or the next sync of its chat."""
        rows = [(m.id, m.id_i, CLIENT if m.from_client else SHOP, m.text, int(m.is_file),
                 int(m.is_img), m.filename, m.url, m.preview, m.date_written, m.date_seen,
                 int(m.deleted)) for m in messages]
        if not rows:
            return
        try:
            cur.executemany(_INSERT, rows)
        except Exception as exc:
            if not is_data_error(exc):
                raise
            for row in rows:  # one by one, to find the row(s) refused
                self._store_one(cur, row)

    def _store_one(self, cur, row: tuple) -> None:
        try:
            cur.execute(_INSERT, row)
            return
        except Exception as exc:
            if not is_data_error(exc):
                raise
            reason = ("a character that is not valid Unicode" if isinstance(exc, UnicodeError)
                      else str(exc.args[1] if len(exc.args) > 1 else exc)[:200])
        log.warning("CRM message %s of chat %s refused by the database (%s): stored a placeholder",
                    row[0], row[1], reason)
        text = UNSTORABLE.format(reason=reason)
        placeholder = (*row[:3], text, 0, 0, None, None, None, *row[9:])
        try:
            cur.execute(_INSERT, placeholder)
        except Exception as exc:  # its dates, then: the placeholder goes without them
            if not is_data_error(exc):
                raise
            cur.execute(_INSERT, (*placeholder[:9], None, None, placeholder[11]))

    def max_id(self, id_i: int, cur=None) -> int | None:
        row = self._one(cur, "SELECT MAX(id) AS m FROM messages WHERE id_i = %s", (id_i,))
        return row["m"] if row else None

    def known_ids(self, cur, ids: list[int]) -> set[int]:
        if not ids:
            return set()
        placeholders = ", ".join(["%s"] * len(ids))
        return {r["id"] for r in self._all(cur, f"SELECT id FROM messages WHERE id IN ({placeholders})", ids)}

    def unannounced(self, cur, id_i: int) -> list[StoredMessage]:
        """Client messages not yet brought to Telegram, oldest first. (One sync per chat runs
        at a time — the sync job is coalesced per chat — so no row locks are needed.)"""
        rows = self._all(cur, "SELECT * FROM messages WHERE id_i = %s AND direction = 'client'"
                              " AND announced_at IS NULL ORDER BY id", (id_i,))
        return [StoredMessage.from_row(r) for r in rows]

    def last_shop_id(self, cur, id_i: int) -> int | None:
        row = self._one(cur, "SELECT MAX(id) AS m FROM messages WHERE id_i = %s"
                             " AND direction = 'shop' AND deleted = 0", (id_i,))
        return row["m"] if row else None

    def mark_announced(self, cur, ids: list[int]) -> None:
        if ids:
            placeholders = ", ".join(["%s"] * len(ids))
            self._execute(cur, f"UPDATE messages SET announced_at = NOW(6) WHERE id IN ({placeholders})", ids)

    def answered_after(self, id_i: int, message_id: int, cur=None) -> bool:
        """Has the shop written in this chat after `message_id` (e.g. from the CRM page)?"""
        row = self._one(cur, "SELECT 1 AS yes FROM messages WHERE id_i = %s AND direction = 'shop'"
                             " AND deleted = 0 AND id > %s LIMIT 1", (id_i, message_id))
        return row is not None

    def get(self, message_id: int) -> StoredMessage | None:
        row = self.db.fetchone("SELECT * FROM messages WHERE id = %s", (message_id,))
        return StoredMessage.from_row(row) if row else None

    def page(self, id_i: int, offset: int, limit: int) -> list[StoredMessage]:
        """Newest first: page 0 holds the newest `limit` messages."""
        rows = self.db.fetchall("SELECT * FROM messages WHERE id_i = %s AND deleted = 0"
                                " ORDER BY id DESC LIMIT %s OFFSET %s", (id_i, limit, offset))
        return [StoredMessage.from_row(r) for r in rows]

    def recent(self, id_i: int, limit: int, before_id: int | None = None) -> list[StoredMessage]:
        """The newest `limit` messages (older than `before_id`), returned oldest first."""
        if before_id is None:
            rows = self.db.fetchall("SELECT * FROM messages WHERE id_i = %s AND deleted = 0"
                                    " ORDER BY id DESC LIMIT %s", (id_i, limit))
        else:
            rows = self.db.fetchall("SELECT * FROM messages WHERE id_i = %s AND deleted = 0"
                                    " AND id < %s ORDER BY id DESC LIMIT %s", (id_i, before_id, limit))
        return [StoredMessage.from_row(r) for r in reversed(rows)]
