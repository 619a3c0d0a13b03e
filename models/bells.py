"""The worker processes that listen for a wake-up datagram (table `worker_bells`)."""
from __future__ import annotations

from models.repo import Repository


class BellRegistry(Repository):
    def register(self, endpoint: str) -> None:
        self.db.execute("INSERT INTO worker_bells (endpoint, seen_at) VALUES (%s, NOW(6))"
                        " ON DUPLICATE KEY UPDATE seen_at = NOW(6)", (endpoint,))

    def forget(self, endpoint: str) -> None:
        self.db.execute("DELETE FROM worker_bells WHERE endpoint = %s", (endpoint,))

    def live(self, stale_after: float) -> list[str]:
        rows = self.db.fetchall("SELECT endpoint FROM worker_bells WHERE seen_at >"
                                " NOW(6) - INTERVAL %s SECOND", (int(stale_after),))
        return [r["endpoint"] for r in rows]
