"""Which Telegram message is about which conversation and message (table `tg_message_map`)."""
from __future__ import annotations

import json
from dataclasses import dataclass

from models.repo import Repository


@dataclass(frozen=True)
class MappedMessage:
    tg_chat_id: int
    tg_message_id: int
    conversation_id: int
    message_id: int | None
    purpose: str
    html: str | None = None
    notes: dict | None = None

    @classmethod
    def from_row(cls, row: dict) -> "MappedMessage":
        return cls(row["tg_chat_id"], row["tg_message_id"], row["conversation_id"], row["message_id"],
                   row["purpose"], row.get("html"), json.loads(row["notes"]) if row.get("notes") else None)


class MessageMapRepository(Repository):
    def record(self, tg_chat_id: int, tg_message_id: int, conversation_id: int,
               message_id: int | None, purpose: str, html: str | None = None, cur=None, *,
               notes: dict | None = None) -> None:
        self._execute(cur, "INSERT IGNORE INTO tg_message_map (tg_chat_id, tg_message_id,"
                           " conversation_id, message_id, purpose, html, notes)"
                           " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                      (tg_chat_id, tg_message_id, conversation_id, message_id, purpose, html,
                       json.dumps(notes, ensure_ascii=False) if notes else None))

    def latest_post(self, tg_chat_id: int, conversation_id: int,
                    within_seconds: float) -> MappedMessage | None:
        """The newest post about a conversation in a chat, sent in the last few seconds."""
        row = self.db.fetchone(
            "SELECT * FROM tg_message_map WHERE conversation_id = %s AND tg_chat_id = %s"
            " AND purpose = 'post' AND created_at > NOW(6) - INTERVAL %s MICROSECOND"
            " ORDER BY created_at DESC LIMIT 1",
            (conversation_id, tg_chat_id, int(within_seconds * 1e6)))
        return MappedMessage.from_row(row) if row else None

    def extend(self, tg_chat_id: int, tg_message_id: int, html: str, message_id: int | None) -> None:
        """A post now shows more messages: its HTML and the newest message it is about."""
        self.db.execute("UPDATE tg_message_map SET html = %s, message_id = %s"
                        " WHERE tg_chat_id = %s AND tg_message_id = %s",
                        (html, message_id, tg_chat_id, tg_message_id))

    def lookup(self, tg_chat_id: int, tg_message_id: int, cur=None) -> MappedMessage | None:
        row = self._one(cur, "SELECT * FROM tg_message_map WHERE tg_chat_id = %s"
                             " AND tg_message_id = %s", (tg_chat_id, tg_message_id))
        return MappedMessage.from_row(row) if row else None

    def set_notes(self, tg_chat_id: int, tg_message_id: int, notes: dict, cur=None) -> None:
        self._execute(cur, "UPDATE tg_message_map SET notes = %s WHERE tg_chat_id = %s"
                           " AND tg_message_id = %s",
                      (json.dumps(notes, ensure_ascii=False), tg_chat_id, tg_message_id))

    def purge_older_than(self, before) -> int:
        return self.db.execute("DELETE FROM tg_message_map WHERE created_at < %s", (before,))

    def shared_posts_between(self, tg_chat_id: int, older_than, newer_than, limit: int) -> list[int]:
        """Ids of the bot's posts in a chat, oldest first, sent between two moments (/clean)."""
        rows = self.db.fetchall(
            "SELECT tg_message_id FROM tg_message_map WHERE tg_chat_id = %s"
            " AND created_at < %s AND created_at > %s ORDER BY created_at LIMIT %s",
            (tg_chat_id, older_than, newer_than, limit))
        return [r["tg_message_id"] for r in rows]

    def forget(self, tg_chat_id: int, tg_message_id: int) -> None:
        self.db.execute("DELETE FROM tg_message_map WHERE tg_chat_id = %s AND tg_message_id = %s",
                        (tg_chat_id, tg_message_id))
