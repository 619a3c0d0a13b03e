"""Who may use the admin panel (WEB.md §1 "Login").

* Passwords are kept as argon2id hashes (argon2-cffi's defaults); a hash made with older
  parameters is rehashed at the next good login.
* Failed logins are counted per login name and per client address in MariaDB, so every
  gunicorn worker sees the same counts: `LOGIN_LIMIT` failures for a name (`IP_LIMIT` for
  an address) within `WINDOW` lock it for `LOCK`. A locked name is refused without even
  checking the password — a right guess during the lock teaches nothing.
* An unknown name costs the same as a wrong password (a dummy hash is verified), and gets
  the same answer: nobody learns which names exist.
* A session carries the user's `session_version`; setting a password bumps it, so every
  older session of that user ends (`session_valid`).
"""
from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from models.db import Database
from models.panel import PanelUser, PanelUserRepository, ThrottleRepository

LOGIN_LIMIT = 5
IP_LIMIT = 20
WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=15)
MIN_PASSWORD = 10
MAX_PASSWORD = 256
_LOGIN = re.compile(r"^[A-Za-z0-9_.@-]{3,64}$")
SETUP_VALID = timedelta(minutes=15)
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"   # no 0/O, 1/I: read from a phone


class LoginOutcome(enum.Enum):
    OK = "ok"
    WRONG = "wrong"          # unknown name or wrong password: one answer for both
    LOCKED = "locked"        # too many failures: try again later


@dataclass(frozen=True)
class LoginResult:
    outcome: LoginOutcome
    user: PanelUser | None = None
    retry_minutes: int = 0


def valid_login(login: str | None) -> str | None:
    """The login name as stored, or None when it cannot be one."""
    value = (login or "").strip()
    return value if _LOGIN.match(value) else None


def password_problem(password: str | None) -> str | None:
    if not password or len(password) < MIN_PASSWORD:
        return f"a password has at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"a password has at most {MAX_PASSWORD} characters"
    return None


class PanelAuth:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.users = PanelUserRepository(db)
        self.throttle = ThrottleRepository(db)
        self.hasher = PasswordHasher()

    def set_password(self, login: str, password: str, tg_id: int | None = None) -> tuple[PanelUser, bool]:
        """Create a panel user or give them a new password (which ends their sessions).
        Raises ValueError naming what is wrong with the login or the password."""
        name = valid_login(login)
        if name is None:
            raise ValueError("a login is 3-64 letters, digits or . _ @ -")
        problem = password_problem(password)
        if problem:
            raise ValueError(problem)
        user_id, created = self.users.upsert(name, self.hasher.hash(password), tg_id)
        return self.users.get(user_id), created

    def grant_setup(self, tg_id: int, username: str | None) -> tuple[str, str]:
        """`/web_access` by a Telegram admin: their panel login (their username, else
        tg<id>) and a one-time code, valid for SETUP_VALID, that sets a password on /setup.
        Only the code's SHA-256 is kept."""
        login = valid_login(username or "") or f"tg{tg_id}"
        code = "-".join("".join(secrets.choice(_CODE_ALPHABET) for _ in range(4)) for _ in range(3))
        self.users.grant_setup(login, tg_id, _code_hash(code), self.clock() + SETUP_VALID)
        return login, code

    def finish_setup(self, login: str | None, code: str | None, password: str | None,
                     address: str) -> LoginResult | str:
        """Set the password with the code (throttled like a login). A string: what is wrong
        with the new password."""
        problem = password_problem(password)
        if problem:
            return problem
        now = self.clock()
        name = (login or "").strip()[:64]
        keys = (f"login:{name.lower()}", f"ip:{address[:64]}")
        locked = [until for until in (self.throttle.locked_until(k, now) for k in keys) if until]
        if locked:
            return LoginResult(LoginOutcome.LOCKED, retry_minutes=_minutes(max(locked) - now))
        if valid_login(name) and code and self.users.take_setup(name, _code_hash(code), now,
                                                       self.hasher.hash(password)):
            self.throttle.clear(keys[0])
            return LoginResult(LoginOutcome.OK, self.users.by_login(name))
        self.throttle.fail(keys[0], now, WINDOW, LOGIN_LIMIT, LOCK)
        self.throttle.fail(keys[1], now, WINDOW, IP_LIMIT, LOCK)
        return LoginResult(LoginOutcome.WRONG)

    def login(self, login: str | None, password: str | None, address: str) -> LoginResult:
        now = self.clock()
        name = (login or "").strip()[:64]
        keys = (f"login:{name.lower()}", f"ip:{address[:64]}")
        locked = [until for until in (self.throttle.locked_until(k, now) for k in keys) if until]
        if locked:
            return LoginResult(LoginOutcome.LOCKED, retry_minutes=_minutes(max(locked) - now))
        user = self.users.by_login(name) if valid_login(name) else None
        if user is None or user.disabled or not self._verify(user.password_hash, password or ""):
            if user is None:
                self._verify(_dummy_hash(self.hasher), password or "")  # the same cost, unknown name
            counts = [self.throttle.fail(keys[0], now, WINDOW, LOGIN_LIMIT, LOCK),
                      self.throttle.fail(keys[1], now, WINDOW, IP_LIMIT, LOCK)]
            if counts[0] >= LOGIN_LIMIT or counts[1] >= IP_LIMIT:
                return LoginResult(LoginOutcome.LOCKED, retry_minutes=_minutes(LOCK))
            return LoginResult(LoginOutcome.WRONG)
        self.throttle.clear(keys[0])
        if self.hasher.check_needs_rehash(user.password_hash):
            self.users.set_hash(user.id, self.hasher.hash(password))
        self.users.logged_in(user.id, now)
        return LoginResult(LoginOutcome.OK, user)

    def change_password(self, user: PanelUser, current: str | None, new: str | None,
                        address: str) -> LoginResult | str:
        """A logged-in user sets a new password: the current one checked (and throttled as
        a login), every other session of theirs ends. A string: what is wrong with `new`."""
        problem = password_problem(new)
        if problem:
            return problem
        checked = self.login(user.login, current, address)
        if checked.outcome is not LoginOutcome.OK:
            return checked
        changed, _ = self.set_password(user.login, new)
        return LoginResult(LoginOutcome.OK, changed)

    def session_user(self, user_id: int | None, version: int | None) -> PanelUser | None:
        """The user a session names, while that session is still theirs."""
        if not user_id:
            return None
        user = self.users.get(user_id)
        if user is None or user.disabled or user.session_version != version:
            return None
        return user

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


_DUMMY: list[str] = []


def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash of nobody's password, made once per process (verifying it costs what a real
    check costs)."""
    if not _DUMMY:
        _DUMMY.append(hasher.hash(secrets.token_urlsafe(16)))
    return _DUMMY[0]


def _code_hash(code: str) -> str:
    """Dashes, spaces and case do not matter when the code is typed."""
    return hashlib.sha256(re.sub(r"[\s-]", "", code).upper().encode()).hexdigest()


def _minutes(delta: timedelta) -> int:
    return max(1, int(delta.total_seconds() // 60) + (1 if delta.total_seconds() % 60 else 0))
