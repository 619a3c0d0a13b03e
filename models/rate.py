"""Telegram's send budget, shared by every process (table `tg_rate`): per bucket
("global", "chat:<id>") the recent send times and a block set by Telegram's retry_after.
The rules (how many sends per window) are the limiter's (`bot/ratelimit.py`); here is
only how the buckets are read and written, under row locks so the limits hold across
processes and machines."""
from __future__ import annotations

from dataclasses import dataclass

from models.repo import Repository


@dataclass
class Bucket:
    name: str
    stamps: list[float]
    blocked_until: float


def parse_stamps(text: str) -> list[float]:
    return [float(t) for t in text.split(",") if t]


def format_stamps(stamps: list[float]) -> str:
    return ",".join(f"{t:.6f}" for t in stamps)


class RateBuckets(Repository):
    def locked(self, cur, names: tuple[str, ...]) -> tuple[float, dict[str, Bucket]]:
        """The database's clock and these buckets, row-locked until `cur` commits (a
        bucket seen for the first time is created)."""
        placeholders = ", ".join(["%s"] * len(names))
        sql = (f"SELECT bucket, stamps, blocked_until, UNIX_TIMESTAMP(NOW(6)) AS now FROM tg_rate"
               f" WHERE bucket IN ({placeholders}) ORDER BY bucket FOR UPDATE")
        cur.execute(sql, names)
        rows = cur.fetchall()
        if len(rows) < len(names):  # a chat's first send: its bucket, then read them again
            for name in set(names) - {r["bucket"] for r in rows}:
                cur.execute("INSERT IGNORE INTO tg_rate (bucket, stamps) VALUES (%s, '')", (name,))
            cur.execute(sql, names)
            rows = cur.fetchall()
        now = float(rows[0]["now"])
        return now, {r["bucket"]: Bucket(r["bucket"], parse_stamps(r["stamps"]),
                                         float(r["blocked_until"])) for r in rows}

    def save_stamps(self, cur, stamps: dict[str, list[float]]) -> None:
        """Each bucket's new stamps, in one statement."""
        cases = " ".join(["WHEN %s THEN %s"] * len(stamps))
        args = [v for name, values in stamps.items() for v in (name, format_stamps(values))]
        placeholders = ", ".join(["%s"] * len(stamps))
        cur.execute(f"UPDATE tg_rate SET stamps = CASE bucket {cases} END"
                    f" WHERE bucket IN ({placeholders})", (*args, *stamps))

    def replace_stamp(self, names: tuple[str, ...], old: str) -> None:
        """The send stamped `old` got its answer: it counts from now (in every bucket)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT UNIX_TIMESTAMP(NOW(6)) AS now", ())
            answered = format_stamps([float(cur.fetchone()["now"])])
            placeholders = ", ".join(["%s"] * len(names))
            cur.execute(f"SELECT bucket, stamps FROM tg_rate WHERE bucket IN ({placeholders})"
                        " ORDER BY bucket FOR UPDATE", names)
            for row in cur.fetchall():
                stamps = row["stamps"].split(",")
                if old in stamps:
                    stamps[stamps.index(old)] = answered
                    cur.execute("UPDATE tg_rate SET stamps = %s WHERE bucket = %s",
                                (",".join(sorted(stamps, key=float)), row["bucket"]))

    def peek(self, name: str) -> tuple[float, list[float]]:
        """The database's clock and a bucket's stamps, without locking."""
        row = self.db.fetchone("SELECT stamps, UNIX_TIMESTAMP(NOW(6)) AS now FROM tg_rate"
                               " WHERE bucket = %s", (name,))
        if row is None:
            return float(self.db.scalar("SELECT UNIX_TIMESTAMP(NOW(6))")), []
        return float(row["now"]), parse_stamps(row["stamps"])

    def block(self, name: str, seconds: float) -> None:
        self.db.execute(
            "INSERT INTO tg_rate (bucket, stamps, blocked_until)"
            " VALUES (%s, '', UNIX_TIMESTAMP(NOW(6)) + %s)"
            " ON DUPLICATE KEY UPDATE blocked_until = GREATEST(blocked_until, VALUES(blocked_until))",
            (name, float(seconds)))
