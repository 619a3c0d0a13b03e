"""The digests by e-mail (docs/digest.md): one row per period decides who sends it, and
what the digest counts besides the reports' figures (notices, dead letters, messages per
channel within a period)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.repo import Repository

# Statuses from which a send may (again) hand the message to the mail server.
SENDABLE = ("queued", "unknown", "failed")


@dataclass(frozen=True)
class DigestRow:
    id: int
    period_key: str
    since: datetime
    until: datetime
    status: str
    message_id: str
    requested_by: str | None
    attempts: int
    error: str | None
    created_at: datetime
    sent_at: datetime | None

    @classmethod
    def from_row(cls, row: dict) -> "DigestRow":
        return cls(row["id"], row["period_key"], row["since"], row["until"], row["status"],
                   row["message_id"], row["requested_by"], row["attempts"], row["error"],
                   row["created_at"], row["sent_at"])


class DigestRepository(Repository):
    def create(self, cur, period_key: str, since: datetime, until: datetime, message_id: str,
               requested_by: str | None, now: datetime) -> int | None:
        """The period's row, inside the caller's transaction; None when it exists already
        (another worker, or an earlier run, decided it)."""
        if cur.execute(
                "INSERT IGNORE INTO digests (period_key, since, until, message_id, requested_by,"
                " created_at) VALUES (%s, %s, %s, %s, %s, %s)",
                (period_key, since, until, message_id, requested_by, now)) != 1:
            return None
        return cur.lastrowid

    def exists(self, period_key: str) -> bool:
        return bool(self.db.scalar("SELECT COUNT(*) FROM digests WHERE period_key = %s", (period_key,)))

    def get(self, digest_id: int) -> DigestRow | None:
        row = self.db.fetchone("SELECT * FROM digests WHERE id = %s", (digest_id,))
        return DigestRow.from_row(row) if row else None

    def recent(self, limit: int = 10) -> list[DigestRow]:
        return [DigestRow.from_row(r) for r in self.db.fetchall(
            "SELECT * FROM digests ORDER BY created_at DESC, id DESC LIMIT %s", (limit,))]

    def begin_data(self, digest_id: int, now: datetime) -> bool:
        """Committed before the message's data goes to the server: from here on its outcome
        may be unknown. False if the digest is no longer sendable (sent meanwhile)."""
        return self.db.execute(
            "UPDATE digests SET status = 'sending', attempts = attempts + 1, attempted_at = %s"
            " WHERE id = %s AND status IN ('queued', 'unknown', 'failed')", (now, digest_id)) == 1

    def settle(self, digest_id: int, status: str, now: datetime, error: str | None = None) -> None:
        self.db.execute(
            "UPDATE digests SET status = %s, error = %s,"
            " sent_at = IF(%s = 'sent', %s, sent_at) WHERE id = %s",
            (status, (error or None) and error[:1024], status, now, digest_id))

    # -- what the digest counts besides the reports ------------------------------------

    def messages_per_channel(self, since: datetime, until: datetime) -> list[dict]:
        """Per channel: customer messages received and the shop's messages sent."""
        return self.db.fetchall(
            "SELECT c.channel, SUM(m.direction = 'client') AS received,"
            " SUM(m.direction = 'shop') AS sent FROM messages m"
            " JOIN conversations c ON c.id = m.conversation_id"
            " WHERE m.created_at >= %s AND m.created_at < %s AND m.deleted = 0"
            " GROUP BY c.channel ORDER BY c.channel", (since, until))

    def answers_per_channel(self, since: datetime, until: datetime) -> dict[str, int]:
        rows = self.db.fetchall(
            "SELECT c.channel, COUNT(*) AS n FROM outbound o JOIN conversations c"
            " ON c.id = o.conversation_id WHERE o.status = 'sent' AND o.sent_at >= %s"
            " AND o.sent_at < %s GROUP BY c.channel", (since, until))
        return {r["channel"]: int(r["n"]) for r in rows}

    def notices_per_channel(self, since: datetime, until: datetime) -> list[dict]:
        """The shop's notices (1C: appointments, reviews, birthdays, custom) sent or failed
        in the period, per channel they went by."""
        return self.db.fetchall(
            "SELECT channel, SUM(status = 'sent') AS sent,"
            " SUM(status = 'failed') AS failed FROM wa_outbox"
            " WHERE COALESCE(sent_at, attempted_at, created_at) >= %s"
            " AND COALESCE(sent_at, attempted_at, created_at) < %s"
            " GROUP BY channel ORDER BY channel = 'sms', channel", (since, until))

    def dead_letters(self, since: datetime, until: datetime) -> list[dict]:
        """Jobs that became dead letters in the period, per kind."""
        return self.db.fetchall(
            "SELECT kind, COUNT(*) AS n FROM jobs WHERE status = 'failed'"
            " AND updated_at >= %s AND updated_at < %s GROUP BY kind ORDER BY n DESC, kind",
            (since, until))
