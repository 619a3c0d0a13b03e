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
RECENT_WINDOW = 5_000    # the newest messages read directly, newest first
COMMON_SHARE = 0.02      # a word in more of them is too common to lead the index


class SearchRepository(Repository):
    def by_number(self, number: str, limit: int) -> list[int]:
        rows = self.db.fetchall(
            "SELECT id FROM conversations WHERE external_id = %s"
            " UNION SELECT id FROM conversations WHERE id = %s LIMIT %s",  # ix_conversations_external
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

    def by_words(self, words: list[str], limit: int) -> list[int]:
        """Conversations whose messages (or title, customer name, e-mail) hold every word,
        the most recently written first.

        Two ways, each bounded: the newest `RECENT_WINDOW` messages are read through the
        primary key (a common word — "доставка" — fills the list there, and the newest
        chats are what a manager wants); what they do not fill is looked up through the
        FULLTEXT index, with only the selective words (a word found in more than
        `COMMON_SHARE` of the recent messages would make the index read most of its
        entries, so it is checked on the rows the others found instead)."""
        newest_id = self.db.scalar("SELECT MAX(id) FROM messages") or 0
        low = newest_id - RECENT_WINDOW
        likes = [_like(w) for w in words]
        where = " AND ".join(["text LIKE %s"] * len(words))
        found = [r["id"] for r in self.db.fetchall(
            f"SELECT conversation_id AS id, MAX(id) AS newest FROM messages WHERE id > %s AND {where}"
            " GROUP BY conversation_id ORDER BY newest DESC LIMIT %s", (low, *likes, limit))]
        if len(found) < limit:
            selective, common = self._split_by_share(words, likes, low)
            boolean = " ".join(f"+{w}*" for w in selective)
            rest = "".join(" AND text LIKE %s" for _ in common)
            rows = self.db.fetchall(
                "SELECT conversation_id AS id, MAX(id) AS newest FROM ("
                " SELECT conversation_id, id, text FROM messages"
                " WHERE MATCH(text) AGAINST (%s IN BOOLEAN MODE) AND id <= %s"
                " ORDER BY id DESC LIMIT %s) hit WHERE TRUE" + rest +
                " GROUP BY conversation_id ORDER BY newest DESC LIMIT %s",
                (boolean, max(low, 0), WORD_MATCHES, *[_like(w) for w in common], limit))
            found += [r["id"] for r in rows if r["id"] not in found]
        if len(found) < limit:
            titled = self.db.fetchall(
                "SELECT id FROM conversations WHERE MATCH(title, customer_name, customer_email)"
                " AGAINST (%s IN BOOLEAN MODE) LIMIT %s",
                (" ".join(f"+{w}*" for w in words), limit))
            found += [r["id"] for r in titled if r["id"] not in found]
        return found[:limit]

    def _split_by_share(self, words: list[str], likes: list[str], low: int) -> tuple[list[str], list[str]]:
        """(selective words, common words) by their share of the recent messages."""
        if len(words) == 1:
            return words, []
        sums = ", ".join(f"SUM(text LIKE %s) AS w{n}" for n in range(len(words)))
        row = self.db.fetchone(f"SELECT COUNT(*) AS total, {sums} FROM messages WHERE id > %s",
                               (*likes, low)) or {}
        total = max(1, int(row.get("total") or 0))
        shares = [int(row.get(f"w{n}") or 0) / total for n in range(len(words))]
        selective = [w for w, share in zip(words, shares) if share <= COMMON_SHARE]
        if not selective:   # every word is common: the rarest leads
            selective = [min(zip(shares, words))[1]]
        return selective, [w for w in words if w not in selective]


def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
