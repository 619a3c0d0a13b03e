"""Which Telegram message is about which CRM chat and message (table `tg_message_map`)."""
from __future__ import annotations

from dataclasses import dataclass

from models.repo import Repository


@dataclass(frozen=True)
class MappedMessage:
    tg_chat_id: int
    tg_message_id: int
    id_i: int
    crm_message_id: int | None
    purpose: str


class MessageMapRepository(Repository):
    def record(self, tg_chat_id: int, tg_message_id: int, id_i: int,
               crm_message_id: int | None, purpose: str, cur=None) -> None:
        self._execute(cur, "INSERT IGNORE INTO tg_message_map (tg_chat_id, tg_message_id, id_i,"
                           " crm_message_id, purpose) VALUES (%s, %s, %s, %s, %s)",
                      (tg_chat_id, tg_message_id, id_i, crm_message_id, purpose))

    def lookup(self, tg_chat_id: int, tg_message_id: int) -> MappedMessage | None:
        row = self.db.fetchone("SELECT * FROM tg_message_map WHERE tg_chat_id = %s"
                               " AND tg_message_id = %s", (tg_chat_id, tg_message_id))
        if row is None:
            return None
        return MappedMessage(row["tg_chat_id"], row["tg_message_id"], row["id_i"],
                             row["crm_message_id"], row["purpose"])

    def for_crm_message(self, crm_message_id: int) -> list[MappedMessage]:
        rows = self.db.fetchall("SELECT * FROM tg_message_map WHERE crm_message_id = %s"
                                " ORDER BY created_at", (crm_message_id,))
        return [MappedMessage(r["tg_chat_id"], r["tg_message_id"], r["id_i"],
                              r["crm_message_id"], r["purpose"]) for r in rows]
