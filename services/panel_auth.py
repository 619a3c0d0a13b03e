"""Who may use the admin panel (WEB.md §1 "Login"), and for how long.

* Passwords are kept as argon2id hashes (argon2-cffi's defaults); a hash made with older
  parameters is rehashed at the next good login.
* Authority follows the person: a panel login bound to a Telegram id (at creation, or
  by the first `/web_access`, for good) works only while that person is an admin in the
  `users` table — read on every request, so a ban or a demotion takes effect at the next
  click, and also ends their sessions at once. `/web_access` finds the login by the
  Telegram id only, never by a name. A login made on the command line without a
  Telegram id is the server's own account.
* Sessions live on the server (`panel_sessions`): the cookie carries a random session
  id, MariaDB keeps only its SHA-256. A session ends at logout, at a new password, at a
  ban or demotion, after WEB_SESSION_IDLE_MINUTES without a request and after
  WEB_SESSION_MAX_HOURS in any case.
* Throttling counts an attempt atomically *before* the password is checked, per
  (login, client address) — `LOGIN_LIMIT` attempts within `WINDOW`, then a lock of
  `LOCK` that doubles with every further lock (up to `LONGEST_LOCK`) until a good login —
  and per client address across names (`IP_LIMIT`). Parallel guesses cannot get past the
  limit, and a stranger's guesses from elsewhere never lock the owner out.
* An unknown name costs the same as a wrong password (a dummy hash is verified), and gets
  the same answer: nobody learns which names exist.
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
from models.panel import PanelSessionRepository, PanelUser, PanelUserRepository, ThrottleRepository

LOGIN_LIMIT = 5
IP_LIMIT = 20
WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=15)
LONGEST_LOCK = timedelta(hours=24)
SESSION_IDLE = timedelta(hours=8)
SESSION_LONGEST = timedelta(hours=72)
MIN_PASSWORD = 10
MAX_PASSWORD = 256
_LOGIN = re.compile(r"^[A-Za-z0-9_.@-]{3,64}$")
SETUP_VALID = timedelta(minutes=15)
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"   # no 0/O, 1/I: read from a phone


class LoginOutcome(enum.Enum):
    OK = "ok"
    WRONG = "wrong"          # unknown name or wrong password: one answer for both
    LOCKED = "locked"        # too many attempts: try again later
    NOT_ADMIN = "not_admin"  # the login's Telegram person is no admin (any more)


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


def _throttle_keys(name: str, address: str) -> tuple[tuple[str, int], tuple[str, int]]:
    """(key, limit) of the client address across logins, then of this (login, address)."""
    return ((f"ip:{address[:64]}", IP_LIMIT), (f"pair:{name.lower()}|{address[:64]}", LOGIN_LIMIT))


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


class PanelAuth:
    def __init__(self, db: Database, clock: Callable[[], datetime], *,
                 idle: timedelta = SESSION_IDLE, longest: timedelta = SESSION_LONGEST) -> None:
        self.clock = clock
        self.idle = idle
        self.longest = longest
        self.users = PanelUserRepository(db)
        self.sessions = PanelSessionRepository(db)
        self.throttle = ThrottleRepository(db)
        self.hasher = PasswordHasher()

    @classmethod
    def for_settings(cls, db: Database, clock: Callable[[], datetime], settings) -> "PanelAuth":
        return cls(db, clock, idle=timedelta(minutes=settings.web_session_idle_minutes),
                   longest=timedelta(hours=settings.web_session_max_hours))

    def set_password(self, login: str, password: str, tg_id: int | None = None) -> tuple[PanelUser, bool]:
        """Create a panel user or give them a new password (which ends their sessions).
        Raises ValueError naming what is wrong with the login, the password, or a
        Telegram id other than the one the login is bound to."""
        name = valid_login(login)
        if name is None:
            raise ValueError("a login is 3-64 letters, digits or . _ @ -")
        problem = password_problem(password)
        if problem:
            raise ValueError(problem)
        user_id, created = self.users.upsert(name, self.hasher.hash(password), tg_id)
        return self.users.get(user_id), created

    def grant_setup(self, tg_id: int, username: str | None) -> tuple[str, str]:
        """`/web_access` by a Telegram admin: the panel login bound to their Telegram id
        (a new one, named after their username when that name is free, else tg<id>) and a
        one-time code, valid for SETUP_VALID, that sets its password on /setup. Only the
        code's SHA-256 is kept."""
        names = [n for n in (valid_login(username or ""), f"tg{tg_id}") if n]
        names.append(f"tg{tg_id}.{secrets.token_hex(3)}")
        code = "-".join("".join(secrets.choice(_CODE_ALPHABET) for _ in range(4)) for _ in range(3))
        login = self.users.grant_setup(tg_id, names, _code_hash(code), self.clock() + SETUP_VALID)
        return login, code

    def _admit(self, name: str, address: str, now: datetime) -> LoginResult | None:
        """Count this attempt before anything is verified; a LOCKED result when refused."""
        for key, limit in _throttle_keys(name, address):
            if not self.throttle.attempt(key, now, WINDOW, limit, LOCK, LONGEST_LOCK):
                return self._locked(name, address, now) or LoginResult(LoginOutcome.LOCKED,
                                                                        retry_minutes=_minutes(WINDOW))
        return None

    def _locked(self, name: str, address: str, now: datetime) -> LoginResult | None:
        """LOCKED until the latest lock on this attempt's keys; None while none is locked."""
        until = [u for u in (self.throttle.locked_until(key, now) for key, _ in _throttle_keys(name, address))
                 if u]
        return LoginResult(LoginOutcome.LOCKED, retry_minutes=_minutes(max(until) - now)) if until else None

    def _failed(self, name: str, address: str, now: datetime) -> LoginResult:
        """A wrong answer — LOCKED when this very attempt used up the last one."""
        return self._locked(name, address, now) or LoginResult(LoginOutcome.WRONG)

    def _succeeded(self, name: str, address: str) -> None:
        _, (pair, _) = _throttle_keys(name, address)   # a good login clears its own pair only
        self.throttle.clear(pair)

    def finish_setup(self, login: str | None, code: str | None, password: str | None,
                     address: str) -> LoginResult | str:
        """Set the password with the code (throttled like a login). A string: what is wrong
        with the new password."""
        problem = password_problem(password)
        if problem:
            return problem
        now = self.clock()
        name = (login or "").strip()[:64]
        refused = self._admit(name, address, now)
        if refused:
            return refused
        if valid_login(name) and code and self.users.take_setup(name, _code_hash(code), now,
                                                                self.hasher.hash(password)):
            self._succeeded(name, address)
            return LoginResult(LoginOutcome.OK, self.users.by_login(name))
        return self._failed(name, address, now)

    def login(self, login: str | None, password: str | None, address: str) -> LoginResult:
        now = self.clock()
        name = (login or "").strip()[:64]
        refused = self._admit(name, address, now)
        if refused:
            return refused
        user = self.users.by_login(name) if valid_login(name) else None
        if user is None or user.disabled or not self._verify(user.password_hash, password or ""):
            if user is None:
                self._verify(_dummy_hash(self.hasher), password or "")  # the same cost, unknown name
            return self._failed(name, address, now)
        if not self.users.authorised(user.id):
            return LoginResult(LoginOutcome.NOT_ADMIN)
        self._succeeded(name, address)
        if self.hasher.check_needs_rehash(user.password_hash):
            self.users.set_hash(user.id, self.hasher.hash(password))
        self.users.logged_in(user.id, now)
        return LoginResult(LoginOutcome.OK, user)

    def change_password(self, user: PanelUser, current: str | None, new: str | None,
                        address: str) -> LoginResult | str:
        """A logged-in user sets a new password: the current one checked (and throttled as
        a login), every session of theirs ends (the page opens a new one for this
        browser). A string: what is wrong with `new`."""
        problem = password_problem(new)
        if problem:
            return problem
        checked = self.login(user.login, current, address)
        if checked.outcome is not LoginOutcome.OK:
            return checked
        changed, _ = self.set_password(user.login, new)
        return LoginResult(LoginOutcome.OK, changed)

    # -- sessions --------------------------------------------------------------------------

    def open_session(self, user: PanelUser) -> str:
        """A new session for this user: its random id (for the cookie; only its hash kept)."""
        session_id = secrets.token_urlsafe(32)
        self.sessions.open(user.id, session_hash(session_id), self.clock(), self.idle, self.longest)
        return session_id

    def session_user(self, session_id: str | None) -> PanelUser | None:
        """The user of a live session whose Telegram person (if bound) is an admin now."""
        if not session_id or len(session_id) > 128:
            return None
        return self.sessions.user_of(session_hash(session_id), self.clock(), self.idle, self.longest)

    def end_session(self, session_id: str | None) -> None:
        if session_id:
            self.sessions.close(session_hash(session_id))

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
