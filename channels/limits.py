"""Send limits of a channel's provider, shared by every process through MariaDB (the same
buckets as Telegram's limits, `models/rate.py`): at most `count` sends in any `window`
seconds per bucket — e.g. 80 a second per WhatsApp number and one per 6 s per customer
(CHANNELS.md §3). A send reserves a slot in all its buckets at once, or learns how long
to wait; a provider's "too fast" answer blocks a bucket for a while. A small margin
covers the time a request spends on its way (the provider counts arrivals).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pymysql

from models.db import Database
from models.rate import RateBuckets

BUCKET_ROOM = 40   # tg_rate.bucket


@dataclass(frozen=True)
class Limit:
    count: int
    window: float


def per_second(rate: float) -> Limit:
    """N per second; a fraction (0.5/s) becomes one per longer window."""
    return Limit(int(rate), 1.0) if rate >= 1 else Limit(1, 1.0 / rate)


def bucket_name(*parts: str) -> str:
    name = ":".join(parts)
    if len(name) <= BUCKET_ROOM:
        return name
    return f"{parts[0]}:{hashlib.sha1(name.encode()).hexdigest()}"[:BUCKET_ROOM]


class SharedLimits:
    def __init__(self, db: Database, *, margin: float = 0.05) -> None:
        self.buckets = RateBuckets(db)
        self.db = db
        self.margin = margin

    def reserve(self, limits: dict[str, Limit]) -> float:
        """Take a slot in every bucket now (0.0), or the seconds to wait before trying again."""
        for attempt in range(3):
            try:
                with self.db.transaction() as cur:
                    return self._reserve(cur, limits)
            except pymysql.err.OperationalError as exc:
                if exc.args and exc.args[0] in (1213, 1205) and attempt < 2:  # deadlock, lock wait
                    continue
                raise
        raise AssertionError("unreachable")

    def _reserve(self, cur, limits: dict[str, Limit]) -> float:
        now, buckets = self.buckets.locked(cur, tuple(sorted(limits)))
        wait = 0.0
        kept: dict[str, list[float]] = {}
        for name, bucket in buckets.items():
            limit = limits[name]
            window = limit.window + self.margin
            stamps = [t for t in bucket.stamps if t > now - window]
            kept[name] = stamps
            if len(stamps) >= limit.count:
                wait = max(wait, stamps[-limit.count] + window - now)
            wait = max(wait, bucket.blocked_until - now)
        if wait > 0:
            return wait
        self.buckets.save_stamps(cur, {name: (stamps + [now])[-limits[name].count:]
                                       for name, stamps in kept.items()})
        return 0.0

    def block(self, name: str, seconds: float) -> None:
        self.buckets.block(name, seconds)
