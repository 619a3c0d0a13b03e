"""Causes of failures (table `error_causes`): how often each happened, when it was last
said in the log chat, and how many times since then."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from models.repo import Repository

MAX_CAUSE = 255
MAX_DETAIL = 2000


@dataclass(frozen=True)
class CauseCount:
    cause: str
    detail: str
    total: int
    unreported: int
    reported_at: datetime | None


def cause_hash(cause: str) -> str:
    return hashlib.sha1(cause.encode("utf-8", "replace")).hexdigest()


class ErrorCauseRepository(Repository):
    def record(self, cur, cause: str, detail: str, now: datetime) -> CauseCount:
        """Count one more occurrence of `cause`; the row stays locked until `cur` commits."""
        key = cause_hash(cause)
        cur.execute(
            "INSERT INTO error_causes (cause_hash, cause, last_detail, total, unreported,"
            " first_at, last_at) VALUES (%s, %s, %s, 1, 1, %s, %s)"
            " ON DUPLICATE KEY UPDATE total = total + 1, unreported = unreported + 1,"
            " last_detail = VALUES(last_detail), last_at = VALUES(last_at)",
            (key, cause[:MAX_CAUSE], detail[:MAX_DETAIL], now, now))
        cur.execute("SELECT cause, last_detail, total, unreported, reported_at FROM error_causes"
                    " WHERE cause_hash = %s FOR UPDATE", (key,))
        row = cur.fetchone()
        return CauseCount(row["cause"], row["last_detail"] or "", row["total"], row["unreported"],
                          row["reported_at"])

    def mark_reported(self, cur, cause: str, now: datetime) -> None:
        cur.execute("UPDATE error_causes SET unreported = 0, reported_at = %s WHERE cause_hash = %s",
                    (now, cause_hash(cause)))

    def unreported_since(self, cur, before: datetime, limit: int = 50) -> list[CauseCount]:
        """Causes with occurrences not yet said, last said before `before` (locked)."""
        cur.execute("SELECT cause, last_detail, total, unreported, reported_at FROM error_causes"
                    " WHERE unreported > 0 AND (reported_at IS NULL OR reported_at < %s)"
                    " ORDER BY last_at LIMIT %s FOR UPDATE SKIP LOCKED", (before, limit))
        return [CauseCount(r["cause"], r["last_detail"] or "", r["total"], r["unreported"],
                           r["reported_at"]) for r in cur.fetchall()]
