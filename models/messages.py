"""Messages of conversations (table `messages`): stored once by their channel's own id,
announced to the desk once."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from models.db import is_data_error
from models.inbound import InboundMessage
from models.repo import Repository

log = logging.getLogger(__name__)

CLIENT, SHOP = "client", "shop"


@dataclass(frozen=True)
class StoredMessage:
    id: int
    conversation_id: int
    external_id: str
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
    media_ref: str | None = None            # the channel's reference of a file it keeps
    delivery_status: str | None = None      # a shop message: sent / delivered / read / failed
    delivery_error: str | None = None
    automatic: bool = False                 # a shop message the shop sent by itself

    @property
    def from_client(self) -> bool:
        return self.direction == CLIENT

    @classmethod
    def from_row(cls, row: dict) -> "StoredMessage":
        return cls(id=row["id"], conversation_id=row["conversation_id"],
                   external_id=row["external_id"], direction=row["direction"],
                   text=row["text"] or "", is_file=bool(row["is_file"]),
                   is_img=bool(row["is_img"]), filename=row["filename"], url=row["url"],
                   preview=row["preview"], date_written=row["date_written"],
                   date_seen=row["date_seen"], deleted=bool(row["deleted"]),
                   media_ref=row.get("media_ref"), delivery_status=row.get("delivery_status"),
                   delivery_error=row.get("delivery_error"),
                   automatic=bool(row.get("automatic")))


_INSERT = ("INSERT INTO messages (external_id, conversation_id, direction, text, is_file, is_img,"
           " filename, url, preview, date_written, date_seen, deleted, media_ref)"
           " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
           " ON DUPLICATE KEY UPDATE date_seen = VALUES(date_seen), deleted = VALUES(deleted)")

# A message with what its channel said became of it (delivery_statuses, WhatsApp's marks).
# A shop message the shop sent by itself (outbound.manager_id 0: the answer outside working
# hours, the request for a score), known by its channel's id or, where the channel gives
# none back (the CRM), by its text.
_AUTOMATIC = ("EXISTS (SELECT 1 FROM outbound o WHERE o.conversation_id = {m}.conversation_id"
              " AND o.manager_id = 0 AND {m}.direction = 'shop'"
              " AND (o.external_id = {m}.external_id OR o.text = {m}.text))")

_WITH_STATUS = ("m.*, s.status AS delivery_status, s.error AS delivery_error, "
                + _AUTOMATIC.format(m="m") + " AS automatic FROM messages m"
                " LEFT JOIN delivery_statuses s ON s.conversation_id = m.conversation_id"
                " AND s.external_id = m.external_id")

# Stored instead of a message MariaDB refused, so that the conversation goes on.
UNSTORABLE = "(this message could not be stored: {reason} — see it at its source)"


class MessageRepository(Repository):
    def store(self, cur, conversation_id: int, messages: Iterable[InboundMessage]) -> None:
        """Insert messages once by their channel's id; a known one only gets its seen /
        deleted state refreshed.

        A message whose data MariaDB refuses (a field too long, a value out of range)
        is stored as a placeholder saying so: it affects itself only, never the
        messages around it or the next sync of its conversation."""
        rows = [(m.external_id, conversation_id, CLIENT if m.from_customer else SHOP, m.text,
                 int(m.is_file), int(m.is_img), m.filename, m.url, m.preview, m.date_written,
                 m.date_seen, int(m.deleted), m.media_ref) for m in messages]
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
        log.warning("message %s of conversation %s refused by the database (%s): stored a"
                    " placeholder", row[0], row[1], reason)
        text = UNSTORABLE.format(reason=reason)
        placeholder = (*row[:3], text, 0, 0, None, None, None, *row[9:12], None)
        try:
            cur.execute(_INSERT, placeholder)
        except Exception as exc:  # its dates, then: the placeholder goes without them
            if not is_data_error(exc):
                raise
            cur.execute(_INSERT, (*placeholder[:9], None, None, placeholder[11], None))

    def max_id(self, conversation_id: int, cur=None) -> int | None:
        row = self._one(cur, "SELECT MAX(id) AS m FROM messages WHERE conversation_id = %s",
                        (conversation_id,))
        return row["m"] if row else None

    def max_numeric_external_id(self, conversation_id: int) -> int | None:
        """The newest message by its channel's numbering, for channels that number
        messages (the CRM pages its history by id)."""
        row = self.db.fetchone("SELECT MAX(CAST(external_id AS UNSIGNED)) AS m FROM messages"
                               " WHERE conversation_id = %s", (conversation_id,))
        return row["m"] if row else None

    def known_external_ids(self, cur, conversation_id: int, external_ids: list[str]) -> set[str]:
        if not external_ids:
            return set()
        placeholders = ", ".join(["%s"] * len(external_ids))
        return {r["external_id"] for r in self._all(
            cur, f"SELECT external_id FROM messages WHERE conversation_id = %s"
                 f" AND external_id IN ({placeholders})", (conversation_id, *external_ids))}

    def unannounced(self, cur, conversation_id: int) -> tuple[list[StoredMessage], int | None]:
        """Customer messages not yet brought to the desk, oldest first, and the newest
        shop message (they count as answered when it is after them). One sync per
        conversation runs at a time, so no row locks are needed."""
        rows = self._all(cur, "SELECT m.*, (SELECT MAX(s.id) FROM messages s"
                              " WHERE s.conversation_id = m.conversation_id"
                              " AND s.direction = 'shop' AND s.deleted = 0"
                              " AND NOT " + _AUTOMATIC.format(m="s") + ") AS last_shop"
                              " FROM messages m WHERE m.conversation_id = %s"
                              " AND m.direction = 'client' AND m.announced_at IS NULL ORDER BY m.id",
                         (conversation_id,))
        return [StoredMessage.from_row(r) for r in rows], (rows[0]["last_shop"] if rows else None)

    def mark_announced(self, cur, ids: list[int]) -> None:
        if ids:
            placeholders = ", ".join(["%s"] * len(ids))
            self._execute(cur, f"UPDATE messages SET announced_at = NOW(6) WHERE id IN ({placeholders})", ids)

    def answered_after(self, conversation_id: int, message_id: int, cur=None) -> bool:
        """Has the shop written in this conversation after `message_id` (e.g. from the
        CRM's web page)?"""
        row = self._one(cur, "SELECT 1 AS yes FROM messages WHERE conversation_id = %s"
                             " AND direction = 'shop' AND deleted = 0 AND id > %s"
                             " AND NOT " + _AUTOMATIC.format(m="messages") + " LIMIT 1",
                        (conversation_id, message_id))
        return row is not None

    def get(self, message_id: int) -> StoredMessage | None:
        row = self.db.fetchone("SELECT * FROM messages WHERE id = %s", (message_id,))
        return StoredMessage.from_row(row) if row else None

    def page(self, conversation_id: int, offset: int, limit: int) -> list[StoredMessage]:
        """Newest first: page 0 holds the newest `limit` messages (with their delivery status)."""
        rows = self.db.fetchall(f"SELECT {_WITH_STATUS} WHERE m.conversation_id = %s AND m.deleted = 0"
                                " ORDER BY m.id DESC LIMIT %s OFFSET %s",
                                (conversation_id, limit, offset))
        return [StoredMessage.from_row(r) for r in rows]

    def recent(self, conversation_id: int, limit: int,
               before_id: int | None = None) -> list[StoredMessage]:
        """The newest `limit` messages (older than `before_id`), returned oldest first."""
        if before_id is None:
            rows = self.db.fetchall(f"SELECT {_WITH_STATUS} WHERE m.conversation_id = %s"
                                    " AND m.deleted = 0 ORDER BY m.id DESC LIMIT %s",
                                    (conversation_id, limit))
        else:
            rows = self.db.fetchall(f"SELECT {_WITH_STATUS} WHERE m.conversation_id = %s"
                                    " AND m.deleted = 0 AND m.id < %s ORDER BY m.id DESC LIMIT %s",
                                    (conversation_id, before_id, limit))
        return [StoredMessage.from_row(r) for r in reversed(rows)]

    def newest_from_customer(self, conversation_id: int) -> str | None:
        """The channel's id of the customer's newest message (what "read" marks)."""
        row = self.db.fetchone("SELECT external_id FROM messages WHERE conversation_id = %s"
                               " AND direction = 'client' ORDER BY id DESC LIMIT 1", (conversation_id,))
        return row["external_id"] if row else None

    def purge_older_than(self, before: datetime) -> int:
        """Stored history older than the retention period (/clean)."""
        return self.db.execute("DELETE FROM messages WHERE date_written < %s", (before,))
