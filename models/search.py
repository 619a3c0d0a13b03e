"""Finding a conversation (SPEC §8 "Finding a chat"): by its number, the customer's e-mail
or phone, or words of its title or of any message. Each way walks an index:
the primary / unique keys for numbers, `ix_conversations_email` for an e-mail (prefix),
`ix_conversations_phone_tail` for a phone (its last 9 digits), InnoDB FULLTEXT
(`ft_messages_text`, `ft_conversations_title`) for words — MariaDB's built-in parser
splits at non-letters, Cyrillic included; it has no n-gram parser, so a word is found by
its beginning (`word*`), never by a middle part."""
from __future__ import annotations

from models.repo import Repository

# What one words search reads at most: the newest matches are enough for a list.
WORD_MATCHES = 400


class SearchRepository(Repository):
    def by_number(self, number: str, limit: int) -> list[int]:
        rows = self.db.fetchall(
            "SELECT id FROM conversations WHERE external_id = %s"
            " UNION SELECT id FROM conversations WHERE id = %s LIMIT %s",
            (number, int(number) if number.isdigit() and len(number) < 19 else -1, limit))
        return [r["id"] for r in rows]

    def by_email(self, email: str, limit: int) -> list[int]:
        pattern = email.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        rows = self.db.fetchall("SELECT id FROM conversations WHERE customer_email LIKE %s"
                                " ORDER BY customer_email LIMIT %s", (pattern, limit))
        return [r["id"] for r in rows]

    def by_phone(self, tail: str, limit: int) -> list[int]:
        rows = self.db.fetchall("SELECT id FROM conversations WHERE phone_tail = %s"
                                " ORDER BY last_date DESC LIMIT %s", (tail, limit))
        return [r["id"] for r in rows]

    def by_words(self, boolean_query: str, limit: int) -> list[int]:
        """Conversations whose title, customer name or messages hold every word, the most
        recently written first. `boolean_query`: `+word* +word*` (built by the caller
        from sanitized words)."""
        rows = self.db.fetchall(
            "SELECT conversation_id AS id, MAX(id) AS newest FROM ("
            " SELECT conversation_id, id FROM messages"
            " WHERE MATCH(text) AGAINST (%s IN BOOLEAN MODE) ORDER BY id DESC LIMIT %s) hit"
            " GROUP BY conversation_id ORDER BY newest DESC LIMIT %s",
            (boolean_query, WORD_MATCHES, limit))
        found = [r["id"] for r in rows]
        if len(found) < limit:
            titled = self.db.fetchall(
                "SELECT id FROM conversations WHERE MATCH(title, customer_name, customer_email)"
                " AGAINST (%s IN BOOLEAN MODE) LIMIT %s", (boolean_query, limit))
            found += [r["id"] for r in titled if r["id"] not in found]
        return found[:limit]
