"""LockManager: the per-chat lock, correct across threads, processes and machines — on one
MariaDB or a Galera cluster alike.

A lock is a lease (models/leases.py: a row named after the lock) held for the block:
taken when the name is free or its holder's time ran out, released by deleting the row.
The row replicates like any other, so two hosts writing to two nodes of a cluster still
exclude each other (the second insert of one name fails certification and is tried again,
models/db.py). A holder's time (LEASE seconds) is renewed by one thread of its process
while the block runs; a holder that died frees the lock when its time is up.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from typing import Iterator

from models.db import Database
from models.leases import LeaseRepository
from models.singleton import ProcessSingleton

LEASE = 10.0          # seconds a lock outlives its holder's last renewal
RENEW_EVERY = LEASE / 3


class LockTimeout(RuntimeError):
    """The lock was not obtained in time (someone holds it for too long)."""


class LockManager(ProcessSingleton):
    def __init__(self, db: Database, *, namespace: str = "keepdesk") -> None:
        self.db = db
        self.leases = LeaseRepository(db)
        self.namespace = namespace
        self._token = secrets.token_hex(4)
        self._held: dict[str, str] = {}
        self._guard = threading.Lock()
        self._keeper: threading.Thread | None = None

    def name(self, kind: str, key: object) -> str:
        return f"{self.namespace}:{kind}:{key}"[:64]

    @contextlib.contextmanager
    def lock(self, kind: str, key: object, timeout: float = 10.0) -> Iterator[None]:
        name = self.name(kind, key)
        holder = f"{os.getpid()}:{self._token}:{threading.get_ident()}"[:64]   # this process, now
        deadline = time.monotonic() + timeout
        pause = 0.002
        while not self.leases.hold(name, holder, LEASE):
            if time.monotonic() >= deadline:
                raise LockTimeout(f"lock {name} not obtained in {timeout}s")
            time.sleep(pause)
            pause = min(0.05, pause * 2)
        self._hold(name, holder)
        try:
            yield
        finally:
            with self._guard:
                self._held.pop(name, None)
            self.leases.release(name, holder)

    def chat_lock(self, id_i: int, timeout: float = 10.0):
        """The lock that serialises claims and pin changes of one CRM chat."""
        return self.lock("chat", int(id_i), timeout)

    def _hold(self, name: str, holder: str) -> None:
        with self._guard:
            self._held[name] = holder
            if self._keeper is None or not self._keeper.is_alive():
                self._keeper = threading.Thread(target=self._renew, daemon=True, name="locks")
                self._keeper.start()

    def _renew(self) -> None:
        while True:
            time.sleep(RENEW_EVERY)
            with self._guard:
                held = list(self._held.items())
            for name, holder in held:
                try:
                    self.leases.hold(name, holder, LEASE)
                except Exception:   # the database away: the next round tries again
                    pass
