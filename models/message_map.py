"""Which Telegram message is about which CRM chat and message (table `tg_message_map`)."""
from __future__ import annotations

import json
from dataclasses import dataclass

from models.repo import Repository


@dataclass(frozen=True)
class MappedMessage:
    tg_chat_id: int
    tg_message_id: int
    id_i: int
    crm_message_id: int | None
    purpose: str
    html: str | None = None
    notes: dict | None = None

    @classmethod
    def from_row(cls, row: dict) -> "MappedMessage":
        return cls(row["tg_chat_id"], row["tg_message_id"], row["id_i"], row["crm_message_id"],
                   row["purpose"], row.get("html"), json.loads(row["notes"]) if row.get("notes") else None)


class MessageMapRepository(Repository):
    def record(self, tg_chat_id: int, tg_message_id: int, id_i: int,
               crm_message_id: int | None, purpose: str, html: str | None = None, cur=None) -> None:
        self._execute(cur, "INSERT IGNORE INTO tg_message_map (tg_chat_id, tg_message_id, id_i,"
                           " crm_message_id, purpose, html) VALUES (%s, %s, %s, %s, %s, %s)",
                      (tg_chat_id, tg_message_id, id_i, crm_message_id, purpose, html))

    def lookup(self, tg_chat_id: int, tg_message_id: int, cur=None) -> MappedMessage | None:
        row = self._one(cur, "SELECT * FROM tg_message_map WHERE tg_chat_id = %s"
                             " AND tg_message_id = %s", (tg_chat_id, tg_message_id))
        return MappedMessage.from_row(row) if row else None

    def set_notes(self, tg_chat_id: int, tg_message_id: int, notes: dict, cur=None) -> None:
        self._execute(cur, "UPDATE tg_message_map SET notes = %s WHERE tg_chat_id = %s"
                           " AND tg_message_id = %s",
                      (json.dumps(notes, ensure_ascii=False), tg_chat_id, tg_message_id))

    def for_crm_message(self, crm_message_id: int) -> list[MappedMessage]:
        rows = self.db.fetchall("SELECT * FROM tg_message_map WHERE crm_message_id = %s"
                                " ORDER BY created_at", (crm_message_id,))
        return [MappedMessage.from_row(r) for r in rows]
