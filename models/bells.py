"""The worker processes that listen for a wake-up datagram (table `worker_bells`), and
which generation of workers each is (a rolling upgrade runs two side by side)."""
from __future__ import annotations

from models.repo import Repository

# This release's workers. Those of the release before registered no generation: 1.
GENERATION = 2


class BellRegistry(Repository):
    def __init__(self, db, *, generation: int | None = None) -> None:
        super().__init__(db)
        self.generation = generation

    def register(self, endpoint: str) -> None:
        self.db.execute("INSERT INTO worker_bells (endpoint, seen_at, generation) VALUES (%s, NOW(6), %s)"
                        " ON DUPLICATE KEY UPDATE seen_at = NOW(6), generation = VALUES(generation)",
                        (endpoint, self.generation))

    def forget(self, endpoint: str) -> None:
        self.db.execute("DELETE FROM worker_bells WHERE endpoint = %s", (endpoint,))

    def live(self, stale_after: float) -> list[str]:
        rows = self.db.fetchall("SELECT endpoint FROM worker_bells WHERE seen_at >"
                                " NOW(6) - INTERVAL %s SECOND", (int(stale_after),))
        return [r["endpoint"] for r in rows]

    def oldest_generation(self, stale_after: float) -> int:
        """The oldest generation of the workers alive (this one's when none is)."""
        oldest = self.db.scalar("SELECT MIN(COALESCE(generation, 1)) FROM worker_bells WHERE seen_at >"
                                " NOW(6) - INTERVAL %s SECOND", (int(stale_after),))
        return GENERATION if oldest is None else int(oldest)
