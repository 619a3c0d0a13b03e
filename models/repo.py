"""Base for repositories: run on a given transaction cursor, or on a pooled connection."""
from __future__ import annotations

from typing import Any, Sequence

from models.db import Database


class Repository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _execute(self, cur, sql: str, args: Sequence | dict | None = None) -> int:
        if cur is None:
            return self.db.execute(sql, args)
        return cur.execute(sql, args)

    def _one(self, cur, sql: str, args: Sequence | dict | None = None) -> dict | None:
        if cur is None:
            return self.db.fetchone(sql, args)
        cur.execute(sql, args)
        return cur.fetchone()

    def _all(self, cur, sql: str, args: Sequence | dict | None = None) -> list[dict[str, Any]]:
        if cur is None:
            return self.db.fetchall(sql, args)
        cur.execute(sql, args)
        return list(cur.fetchall())
