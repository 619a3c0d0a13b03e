"""One customer across channels: the other conversations whose customer has the same
phone (compared as E.164 by the caller; found by the indexed last nine digits) or the
same e-mail (the column's collation compares it without case)."""
from __future__ import annotations

from models.conversations import Conversation
from models.repo import Repository

MAX_LINKED = 5


class CustomerRepository(Repository):
    def same_phone_tail(self, conversation_id: int, tail: str) -> list[Conversation]:
        rows = self.db.fetchall("SELECT * FROM conversations WHERE phone_tail = %s AND id <> %s"
                                " ORDER BY last_date DESC, id DESC LIMIT 50", (tail, conversation_id))
        return [Conversation.from_row(r) for r in rows]

    def same_email(self, conversation_id: int, email: str) -> list[Conversation]:
        rows = self.db.fetchall("SELECT * FROM conversations WHERE customer_email = %s AND id <> %s"
                                " ORDER BY last_date DESC, id DESC LIMIT %s",
                                (email, conversation_id, MAX_LINKED))
        return [Conversation.from_row(r) for r in rows]
