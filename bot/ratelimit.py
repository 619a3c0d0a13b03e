"""Telegram's send limits, kept in MariaDB so they hold across processes and machines.

Before a background send, a worker reserves a slot: in one short transaction it locks
the "global" bucket and the target chat's bucket, drops send times older than the
window, and either records "now" in both (go) or learns how long to wait (not yet).
Limits: at most N sends in any window — 30 per second overall, 1 per second per private
chat, 20 per minute per group (all configurable). A 429's retry_after blocks that chat's
bucket only. A small margin covers the time a request spends on the wire, so that
Telegram, which counts on arrival, never sees two sends closer than its window.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import pymysql

from config import Settings
from models.db import Database

log = logging.getLogger(__name__)

GLOBAL = "global"
MARGIN_SECONDS = 0.05
_KEEP = 64  # stamps kept per bucket; more than any limit needs


@dataclass(frozen=True)
class Limit:
    count: int
    window: float


def bucket_for(chat_id: int) -> str:
    return f"chat:{chat_id}"


class RateLimiter:
    def __init__(self, db: Database, settings: Settings, *, margin: float = MARGIN_SECONDS) -> None:
        self.db = db
        self.margin = margin
        self.global_limit = _limit(settings.tg_limit_global_per_s, 1.0)
        self.private_limit = _limit(settings.tg_limit_private_per_s, 1.0)
        self.group_limit = _limit(settings.tg_limit_group_per_min, 60.0)
        # chat id → the stamp this thread reserved last (a worker thread sends one at a time)
        self._reserved: dict[int, str] = {}

    def limit_for(self, bucket: str) -> Limit:
        if bucket == GLOBAL:
            return self.global_limit
        return self.private_limit if int(bucket.split(":", 1)[1]) > 0 else self.group_limit

    def reserve(self, chat_id: int) -> float:
        """Take a send slot for `chat_id` now (→ 0.0) or say how many seconds to wait.

        After the send, `confirm(chat_id)` moves the slot's time to when Telegram answered:
        a request delayed on its way (a loaded machine, a slow network) then still counts
        from its arrival, not from its reservation."""
        for attempt in range(3):
            try:
                return self._reserve(chat_id)
            except pymysql.err.OperationalError as exc:
                if exc.args and exc.args[0] in (1213, 1205) and attempt < 2:  # deadlock, lock wait
                    continue
                raise
        raise AssertionError("unreachable")

    def _reserve(self, chat_id: int) -> float:
        chat_bucket = bucket_for(chat_id)
        with self.db.transaction() as cur:
            cur.execute("INSERT IGNORE INTO tg_rate (bucket, stamps) VALUES (%s, '')", (chat_bucket,))
            cur.execute("SELECT UNIX_TIMESTAMP(NOW(6)) AS now", ())
            now = float(cur.fetchone()["now"])
            cur.execute("SELECT bucket, stamps, blocked_until FROM tg_rate"
                        " WHERE bucket IN (%s, %s) ORDER BY bucket FOR UPDATE", (GLOBAL, chat_bucket))
            rows = {r["bucket"]: r for r in cur.fetchall()}
            wait = 0.0
            kept: dict[str, list[float]] = {}
            for bucket, row in rows.items():
                limit = self.limit_for(bucket)
                window = limit.window + self.margin
                stamps = [t for t in _parse(row["stamps"]) if t > now - window]
                kept[bucket] = stamps
                if len(stamps) >= limit.count:
                    wait = max(wait, stamps[-limit.count] + window - now)
                wait = max(wait, float(row["blocked_until"]) - now)
            if wait > 0:
                return wait
            for bucket, stamps in kept.items():
                stamps.append(now)
                cur.execute("UPDATE tg_rate SET stamps = %s WHERE bucket = %s",
                            (_format(stamps[-_KEEP:]), bucket))
            self._reserved[chat_id] = _format([now])
            return 0.0

    def confirm(self, chat_id: int) -> None:
        """The send reserved for `chat_id` got its answer: its slot counts from now."""
        reserved = self._reserved.pop(chat_id, None)
        if reserved is None:
            return
        chat_bucket = bucket_for(chat_id)
        with self.db.transaction() as cur:
            cur.execute("SELECT UNIX_TIMESTAMP(NOW(6)) AS now", ())
            answered = _format([float(cur.fetchone()["now"])])
            cur.execute("SELECT bucket, stamps FROM tg_rate WHERE bucket IN (%s, %s)"
                        " ORDER BY bucket FOR UPDATE", (GLOBAL, chat_bucket))
            for row in cur.fetchall():
                stamps = row["stamps"].split(",")
                if reserved in stamps:
                    stamps[stamps.index(reserved)] = answered
                    cur.execute("UPDATE tg_rate SET stamps = %s WHERE bucket = %s",
                                (",".join(sorted(stamps, key=float)), row["bucket"]))

    def remaining(self, chat_id: int) -> int:
        """Sends still allowed to this chat in its current window (a plain read, no lock)."""
        row = self.db.fetchone("SELECT stamps, UNIX_TIMESTAMP(NOW(6)) AS now FROM tg_rate"
                               " WHERE bucket = %s", (bucket_for(chat_id),))
        limit = self.limit_for(bucket_for(chat_id))
        if row is None:
            return limit.count
        window = limit.window + self.margin
        used = sum(1 for t in _parse(row["stamps"]) if t > float(row["now"]) - window)
        return max(0, limit.count - used)

    def block(self, chat_id: int, seconds: float) -> None:
        """Telegram said retry_after: no send to this chat before then."""
        self.db.execute(
            "INSERT INTO tg_rate (bucket, stamps, blocked_until)"
            " VALUES (%s, '', UNIX_TIMESTAMP(NOW(6)) + %s)"
            " ON DUPLICATE KEY UPDATE blocked_until = GREATEST(blocked_until, VALUES(blocked_until))",
            (bucket_for(chat_id), float(seconds)))


def _limit(per_window: float, window: float) -> Limit:
    # Fractional limits (0.5 per second) become one send per longer window.
    if per_window >= 1:
        return Limit(int(per_window), window)
    return Limit(1, window / per_window)


def _parse(text: str) -> list[float]:
    return [float(t) for t in text.split(",") if t]


def _format(stamps: list[float]) -> str:
    return ",".join(f"{t:.6f}" for t in stamps)
