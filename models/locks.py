"""LockManager: the per-chat lock, correct across threads, processes and machines.

MariaDB's GET_LOCK decides: the lock lives in the database server, so two workers on two
machines that share the database still exclude each other. The lock is held on a pooled
connection for the duration of the block and released even when the block raises; if
the process dies, the server releases it with the connection.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from models.db import Database
from models.singleton import ProcessSingleton


class LockTimeout(RuntimeError):
    """The lock was not obtained in time (someone holds it for too long)."""


class LockManager(ProcessSingleton):
    def __init__(self, db: Database, *, namespace: str = "keepdesk") -> None:
        self.db = db
        self.namespace = namespace

    def name(self, kind: str, key: object) -> str:
        # GET_LOCK names are limited to 64 characters.
        return f"{self.namespace}:{kind}:{key}"[:64]

    @contextlib.contextmanager
    def lock(self, kind: str, key: object, timeout: float = 10.0) -> Iterator[None]:
        name = self.name(kind, key)
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT GET_LOCK(%s, %s) AS got", (name, timeout))
            if (cur.fetchone() or {}).get("got") != 1:
                raise LockTimeout(f"lock {name} not obtained in {timeout}s")
            try:
                yield
            finally:
                cur.execute("SELECT RELEASE_LOCK(%s)", (name,))
                cur.fetchall()

    def chat_lock(self, id_i: int, timeout: float = 10.0):
        """The lock that serialises claims and pin changes of one CRM chat."""
        return self.lock("chat", int(id_i), timeout)
