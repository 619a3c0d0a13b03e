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

    def set_link(self, a: int, b: int, linked: bool, by: int | None, now) -> None:
        low, high = min(a, b), max(a, b)
        self.db.execute("INSERT INTO customer_links (low_id, high_id, linked, by_manager, changed_at)"
                        " VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE linked = VALUES(linked),"
                        " by_manager = VALUES(by_manager), changed_at = VALUES(changed_at)",
                        (low, high, int(linked), by, now))

    def by_hand(self, conversation_id: int) -> dict[int, bool]:
        """The conversations linked to this one (True) or kept apart from it (False) by hand."""
        rows = self.db.fetchall("SELECT high_id AS other, linked FROM customer_links WHERE low_id = %s"
                                " UNION ALL SELECT low_id AS other, linked FROM customer_links"
                                " WHERE high_id = %s", (conversation_id, conversation_id))
        return {r["other"]: bool(r["linked"]) for r in rows}

    def get_many(self, ids: list[int]) -> list[Conversation]:
        if not ids:
            return []
        placeholders = ", ".join(["%s"] * len(ids))
        rows = self.db.fetchall(f"SELECT * FROM conversations WHERE id IN ({placeholders})", ids)
        return [Conversation.from_row(r) for r in rows]
