"""People who talk to the bot, their roles, and the process-wide UserManager."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from models.db import Database
from models.singleton import ProcessSingleton

PENDING, MANAGER, ADMIN, BANNED = "pending", "manager", "admin", "banned"
ROLES = (PENDING, MANAGER, ADMIN, BANNED)


@dataclass(frozen=True)
class User:
    tg_id: int
    username: str | None
    first_name: str | None
    language: str | None
    role: str
    reachable: bool

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def is_manager(self) -> bool:
        """Managers and admins do the desk work (an admin is a manager with more rights)."""
        return self.role in (MANAGER, ADMIN)

    @property
    def display_name(self) -> str:
        if self.username:
            return f"@{self.username}"
        return self.first_name or str(self.tg_id)

    @classmethod
    def from_row(cls, row: dict) -> "User":
        return cls(tg_id=row["tg_id"], username=row["username"], first_name=row["first_name"],
                   language=row["language"], role=row["role"], reachable=bool(row["reachable"]))


def _bounded(value: str | None, limit: int) -> str | None:
    """Telegram's names fit our columns; anything longer is cut, never refused."""
    return value[:limit] if value else value


class UserRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, tg_id: int) -> User | None:
        row = self.db.fetchone("SELECT * FROM users WHERE tg_id = %s", (tg_id,))
        return User.from_row(row) if row else None

    def register(self, tg_id: int, username: str | None, first_name: str | None,
                 language: str | None, role: str = PENDING) -> tuple[User, bool]:
        """Create the user if new (as `role`), refresh their names; (user, created).
        An existing person's role is never touched here."""
        source = "bootstrap" if role == ADMIN else "default"
        created = self.db.execute(
            "INSERT INTO users (tg_id, username, first_name, language, role, role_source)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON DUPLICATE KEY UPDATE username = VALUES(username),"
            " first_name = VALUES(first_name), language = VALUES(language)",
            (tg_id, _bounded(username, 64), _bounded(first_name, 255), _bounded(language, 8),
             role, source)) == 1
        return self.get(tg_id), created

    def set_role(self, tg_id: int, role: str) -> bool:
        """An admin's decision: it stands, whatever ADMIN_IDS says later. Someone who is no
        admin any more loses every panel session of theirs in the same transaction."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        from models.panel import end_sessions_of_person
        with self.db.transaction() as cur:
            changed = cur.execute(
                "INSERT INTO users (tg_id, role, role_source) VALUES (%s, %s, 'admin')"
                " ON DUPLICATE KEY UPDATE role = VALUES(role), role_source = 'admin'",
                (tg_id, role)) > 0
            if role != ADMIN:   # a ban or a demotion ends their panel sessions at once
                end_sessions_of_person(cur, tg_id)
            return changed

    def ensure_admins(self, tg_ids) -> None:
        """ADMIN_IDS: admins from the first minute, before their own /start; a person who
        only asked for access (pending, never decided on) becomes admin too. A role an
        admin has set since (a demotion, a ban) stands."""
        for tg_id in tg_ids:
            self.db.execute(
                "INSERT INTO users (tg_id, role, role_source) VALUES (%s, 'admin', 'bootstrap')"
                " ON DUPLICATE KEY UPDATE"
                " role = IF(role = 'pending' AND role_source = 'default', 'admin', role),"
                " role_source = IF(role = 'admin' AND role_source = 'default', 'bootstrap',"
                " role_source)", (tg_id,))

    def set_reachable(self, tg_id: int, reachable: bool) -> None:
        self.db.execute("UPDATE users SET reachable = %s WHERE tg_id = %s",
                        (int(reachable), tg_id))

    def with_role(self, *roles: str) -> list[User]:
        placeholders = ", ".join(["%s"] * len(roles))
        rows = self.db.fetchall(
            f"SELECT * FROM users WHERE role IN ({placeholders}) ORDER BY tg_id", roles)
        return [User.from_row(r) for r in rows]

    def page(self, offset: int, limit: int) -> tuple[list[User], int]:
        rows = self.db.fetchall("SELECT * FROM users ORDER BY created_at, tg_id LIMIT %s OFFSET %s",
                                (limit, offset))
        total = self.db.scalar("SELECT COUNT(*) FROM users")
        return [User.from_row(r) for r in rows], total


class UserManager(ProcessSingleton):
    """Users by Telegram id, with a small bounded cache in front of the database.

    Entries live `ttl` seconds, so a role changed by another process (an approval or a
    ban) takes effect here within that time; changes made through this manager take
    effect at once.
    """

    def __init__(self, db: Database, *, admin_ids: tuple[int, ...] = (),
                 max_entries: int = 1024, ttl: float = 3.0) -> None:
        self.repo = UserRepository(db)
        self.admin_ids = frozenset(admin_ids)
        self.max_entries = max_entries
        self.ttl = ttl
        self._cache: OrderedDict[int, tuple[float, User | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tg_id: int) -> User | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(tg_id)
            if hit is not None and now - hit[0] < self.ttl:
                self._cache.move_to_end(tg_id)
                return hit[1]
        user = self.repo.get(tg_id)
        self._remember(tg_id, user)
        return user

    def register(self, tg_id: int, username: str | None, first_name: str | None,
                 language: str | None) -> tuple[User, bool]:
        """First /start of anyone: pending, or admin for the bootstrap ADMIN_IDS. A /start
        never changes an existing role (a demoted bootstrap admin stays demoted)."""
        role = ADMIN if tg_id in self.admin_ids else PENDING
        user, created = self.repo.register(tg_id, username, first_name, language, role)
        self._remember(tg_id, user)
        return user, created

    def set_role(self, tg_id: int, role: str) -> User | None:
        self.repo.set_role(tg_id, role)
        self.forget(tg_id)
        return self.get(tg_id)

    def set_reachable(self, tg_id: int, reachable: bool) -> None:
        self.repo.set_reachable(tg_id, reachable)
        self.forget(tg_id)

    def admins(self) -> list[User]:
        return self.repo.with_role(ADMIN)

    def ensure_bootstrap_admins(self) -> None:
        """ADMIN_IDS are admins from the first minute, before their own /start (a role an
        admin has set since stays as it is)."""
        self.repo.ensure_admins(self.admin_ids)
        for tg_id in self.admin_ids:
            self.forget(tg_id)

    def forget(self, tg_id: int) -> None:
        with self._lock:
            self._cache.pop(tg_id, None)

    def _remember(self, tg_id: int, user: User | None) -> None:
        with self._lock:
            self._cache[tg_id] = (time.monotonic(), user)
            self._cache.move_to_end(tg_id)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
