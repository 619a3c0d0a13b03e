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
from models.rate import RateBuckets, format_stamps

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
        self.buckets = RateBuckets(db)
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
        with self.db.transaction() as cur:
            return self.reserve_in(cur, chat_id)

    def reserve_in(self, cur, chat_id: int) -> float:
        """`reserve` inside the caller's transaction (the slot is taken when it commits)."""
        chat_bucket = bucket_for(chat_id)
        now, buckets = self.buckets.locked(cur, (GLOBAL, chat_bucket))
        wait = 0.0
        kept: dict[str, list[float]] = {}
        for name, bucket in buckets.items():
            limit = self.limit_for(name)
            window = limit.window + self.margin
            stamps = [t for t in bucket.stamps if t > now - window]
            kept[name] = stamps
            if len(stamps) >= limit.count:
                wait = max(wait, stamps[-limit.count] + window - now)
            wait = max(wait, bucket.blocked_until - now)
        if wait > 0:
            return wait
        self.buckets.save_stamps(cur, {name: (stamps + [now])[-_KEEP:]
                                       for name, stamps in kept.items()})
        self._reserved[chat_id] = format_stamps([now])
        return 0.0

    def confirm(self, chat_id: int) -> None:
        """The send reserved for `chat_id` got its answer: its slot counts from now."""
        reserved = self._reserved.pop(chat_id, None)
        if reserved is not None:
            self.buckets.replace_stamp((GLOBAL, bucket_for(chat_id)), reserved)

    def remaining(self, chat_id: int) -> int:
        """Sends still allowed to this chat in its current window (a plain read, no lock)."""
        limit = self.limit_for(bucket_for(chat_id))
        now, stamps = self.buckets.peek(bucket_for(chat_id))
        window = limit.window + self.margin
        used = sum(1 for t in stamps if t > now - window)
        return max(0, limit.count - used)

    def block(self, chat_id: int, seconds: float) -> None:
        """Telegram said retry_after: no send to this chat before then."""
        self.buckets.block(bucket_for(chat_id), seconds)


def _limit(per_window: float, window: float) -> Limit:
    # Fractional limits (0.5 per second) become one send per longer window.
    if per_window >= 1:
        return Limit(int(per_window), window)
    return Limit(1, window / per_window)
