"""The shop's automatic messages to a customer (table `auto_replies`): the answer outside
working hours and the request for a score. A row is the decision: its key (conversation,
kind, period) is unique, so two workers ingesting the same message decide once."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.repo import Repository

CLOSED, SCORE = "closed", "score"
AUTOMATIC = 0   # outbound.manager_id of a message the shop sent by itself


@dataclass(frozen=True)
class AutoReply:
    id: int
    conversation_id: int
    kind: str
    period_key: str
    language: str
    outbound_id: int | None
    manager_id: int | None
    created_at: datetime
    answered_at: datetime | None

    @classmethod
    def from_row(cls, row: dict) -> "AutoReply":
        return cls(**{k: row[k] for k in ("id", "conversation_id", "kind", "period_key", "language",
                                          "outbound_id", "manager_id", "created_at", "answered_at")})


class AutoReplyRepository(Repository):
    def decide(self, cur, conversation_id: int, kind: str, period_key: str, language: str,
               now: datetime, manager_id: int | None = None) -> int | None:
        """The row's id when this call decided it; None when it was decided before."""
        if cur.execute("INSERT IGNORE INTO auto_replies (conversation_id, kind, period_key,"
                       " language, manager_id, created_at) VALUES (%s, %s, %s, %s, %s, %s)",
                       (conversation_id, kind, period_key, language, manager_id, now)) != 1:
            return None
        return cur.lastrowid

    def attach(self, cur, reply_id: int, outbound_id: int) -> None:
        cur.execute("UPDATE auto_replies SET outbound_id = %s WHERE id = %s", (outbound_id, reply_id))

    def open_request(self, cur, conversation_id: int, kind: str, since: datetime) -> AutoReply | None:
        """The newest unanswered request of this kind made since `since`, locked."""
        row = self._one(cur, "SELECT * FROM auto_replies WHERE conversation_id = %s AND kind = %s"
                             " AND answered_at IS NULL AND created_at >= %s"
                             " ORDER BY id DESC LIMIT 1 FOR UPDATE",
                        (conversation_id, kind, since))
        return AutoReply.from_row(row) if row else None

    def answered(self, cur, reply_id: int, now: datetime) -> bool:
        return cur.execute("UPDATE auto_replies SET answered_at = %s WHERE id = %s"
                           " AND answered_at IS NULL", (now, reply_id)) == 1

    def of_conversation(self, conversation_id: int, kind: str | None = None) -> list[AutoReply]:
        rows = self.db.fetchall("SELECT * FROM auto_replies WHERE conversation_id = %s"
                                + (" AND kind = %s" if kind else "") + " ORDER BY id",
                                (conversation_id, kind) if kind else (conversation_id,))
        return [AutoReply.from_row(r) for r in rows]


@dataclass(frozen=True)
class ScoreRow:
    conversation_id: int
    channel: str
    manager_id: int | None
    score: int
    comment: str | None
    scored_at: datetime


class ScoreRepository(Repository):
    def record(self, cur, request: AutoReply, channel: str, score: int, comment: str | None,
               now: datetime) -> bool:
        """The customer's score of one request, once."""
        return cur.execute("INSERT IGNORE INTO scores (request_id, conversation_id, channel,"
                           " manager_id, score, comment, scored_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                           (request.id, request.conversation_id, channel, request.manager_id, score,
                            comment, now)) == 1

    def between(self, since: datetime, until: datetime) -> list[ScoreRow]:
        rows = self.db.fetchall("SELECT conversation_id, channel, manager_id, score, comment, scored_at"
                                " FROM scores WHERE scored_at >= %s AND scored_at < %s ORDER BY id",
                                (since, until))
        return [ScoreRow(**r) for r in rows]

    def mark_done(self, cur, conversation_id: int, now: datetime) -> None:
        """The conversation is done (the resolution figures count to this moment)."""
        cur.execute("UPDATE conversations SET status = 'done', status_changed_at = %s WHERE id = %s",
                    (now, conversation_id))

    def mark_seen(self, cur, conversation_id: int, external_id: str) -> int | None:
        """A customer message the desk need not be told of (a score): announced; its id."""
        cur.execute("UPDATE messages SET announced_at = COALESCE(announced_at, NOW(6))"
                    " WHERE conversation_id = %s AND external_id = %s", (conversation_id, external_id))
        row = self._one(cur, "SELECT id FROM messages WHERE conversation_id = %s AND external_id = %s",
                        (conversation_id, external_id))
        return row["id"] if row else None
