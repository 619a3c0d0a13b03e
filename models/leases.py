"""Leases held by replicated rows (`leases`): "only one may hold this" across processes and
machines, on one MariaDB or a Galera cluster alike. A holder renews its lease before it
runs out; a holder that died loses it at `until`, and the next asking takes it."""
from __future__ import annotations

from models.repo import Repository


class LeaseRepository(Repository):
    def hold(self, name: str, holder: str, seconds: float) -> bool:
        """Take or renew `name` for `seconds`: True when `holder` has it now. One statement
        decides (MariaDB applies the assignments in order: the holder first, then its time):
        it inserts the row (1) or changes it (2) exactly when `holder` gets or keeps it;
        another's valid lease is left unchanged (0)."""
        return self.db.execute(
            "INSERT INTO leases (name, holder, until) VALUES (%s, %s, NOW(6) + INTERVAL %s MICROSECOND)"
            " ON DUPLICATE KEY UPDATE holder = IF(holder = VALUES(holder) OR until < NOW(6), VALUES(holder), holder),"
            " until = IF(holder = VALUES(holder), VALUES(until), until)",
            (name, holder, int(seconds * 1e6))) > 0

    def take_over(self, name: str, old: str, new: str, seconds: float) -> bool:
        """`new` takes `name` from `old`, known dead (a process of this host that is gone)."""
        return self.db.execute("UPDATE leases SET holder = %s, until = NOW(6) + INTERVAL %s MICROSECOND"
                               " WHERE name = %s AND holder = %s", (new, int(seconds * 1e6), name, old)) == 1

    def release(self, name: str, holder: str) -> None:
        self.db.execute("DELETE FROM leases WHERE name = %s AND holder = %s", (name, holder))

    def holder(self, name: str) -> str | None:
        return self.db.scalar("SELECT holder FROM leases WHERE name = %s AND until >= NOW(6)", (name,))
