"""Telegram accounts added from the panel: a login by QR code or by phone code (and cloud
password), and the accounts' start / stop / restart.

The conversation with Telegram lasts minutes and never runs in a web request: the panel
(`TgLogins`) writes a `tg_logins` row and reads it back while the page polls; the accounts
process (`LoginDriver`, in `python -m bot accounts`) holds the login's client, shows each
QR code Telegram gives (sealed in the row), takes what the person typed (sealed, taken
once) and, once Telegram says the account is logged in, keeps its session sealed in
`tg_accounts` (never a file) and starts it. A login not finished in LOGIN_MINUTES expires:
both sides refuse it, its client is closed.
"""
from __future__ import annotations

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlparse

from channels.tgaccount.account import Person
from channels.tgaccount.control import STALE_AFTER, AccountsControl
from channels.tgaccount.login import LoginClient, LoginRefused, PasswordNeeded
from channels.tgaccount.sessions import e164
from models.tgaccounts import (ONLINE, RUNNING, AccountHostRepository, AccountRepository, AccountRow,
                               start_account)
from models.tglogins import CODE, PASSWORD, LoginRepository, LoginRow
from utils.redact import redact
from utils.secretbox import SecretBox, new_token, token_hash

log = logging.getLogger(__name__)

LOGIN_MINUTES = 10
ANSWER_POLL = 0.5
_NAME = re.compile(r"^[\w .@-]{1,128}$", re.UNICODE)


class BadLogin(ValueError):
    """The panel's input refused, or the login not (or no longer) at that step."""


@dataclass(frozen=True)
class AccountView:
    number: str
    client_name: str
    url_planfix: str
    state: str              # online | offline | revoked | stopped
    error: str | None


def number_of(raw: str) -> str:
    digits = "".join(ch for ch in raw or "" if ch.isdigit())
    if not 5 <= len(digits) <= 15 or re.sub(r"[\d\s+()-]", "", raw or ""):
        raise BadLogin("The phone number must be 5-15 digits (e.g. +380501234567).")
    return digits


class TgLogins:
    """The panel's side."""

    def __init__(self, settings, db) -> None:
        self.settings = settings
        self.logins = LoginRepository(db)
        self.accounts = AccountRepository(db)
        self.hosts = AccountHostRepository(db)
        self.db = db
        # Without TG_ACCOUNTS_KEY the page only says what to configure.
        self.box = SecretBox(settings.tg_accounts_key) if settings.tg_accounts_key else None
        self.control = AccountsControl(self.hosts, self.box, timeout=2.0) if self.box else None

    @property
    def configured(self) -> bool:
        return self.settings.planfix_configured and self.box is not None

    def process_running(self) -> bool:
        return bool(self.hosts.live(STALE_AFTER))

    def start(self, *, method: str, number: str, client_name: str, url_planfix: str,
              token_planfix: str, by: str) -> str:
        """A new login (its ref); BadLogin for bad input."""
        if method not in ("qr", "code"):
            raise BadLogin("Choose QR code or login code.")
        client_name = (client_name or "").strip()
        if not _NAME.fullmatch(client_name):
            raise BadLogin("The client name: 1-128 letters, digits, spaces, . @ _ -")
        url = (url_planfix or "").strip().rstrip("/")
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or len(url) > 512:
            raise BadLogin("The Planfix address must be an http(s) URL (e.g. https://shop.planfix.ua).")
        token = (token_planfix or "").strip()
        if not token or len(token) > 256:
            raise BadLogin("The Planfix channel token is required (at most 256 characters).")
        digits = number_of(number) if method == "code" else None
        ref = secrets.token_hex(16)
        self.logins.create(ref=ref, method=method, number=digits, client_name=client_name,
                           url_planfix=url, token_planfix_enc=self.box.seal(token), started_by=by[:64],
                           minutes=LOGIN_MINUTES)
        self.control.wake()
        return ref

    def get(self, ref: str) -> LoginRow | None:
        return self.logins.get(ref) if re.fullmatch(r"[0-9a-f]{32}", ref or "") else None

    def qr_url(self, row: LoginRow) -> str | None:
        return self.box.open(row.qr_url_enc) if row.qr_url_enc and row.open else None

    def answer(self, ref: str, value: str) -> None:
        """The login code or the cloud password, for the step the login waits at."""
        row = self.get(ref)
        if row is None:
            raise BadLogin("There is no such login.")
        if not row.open:
            raise BadLogin("This login has expired or ended; start a new one." if not row.live or
                           row.state == "expired" else "This login is not waiting for an answer.")
        if row.state not in (CODE, PASSWORD):
            raise BadLogin("This login is not waiting for a code or a password.")
        value = (value or "").strip() if row.state == CODE else (value or "")
        if not value or len(value) > 256:
            raise BadLogin("Type the code." if row.state == CODE else "Type the cloud password.")
        if not self.logins.answer(ref, row.state, self.box.seal(value)):
            raise BadLogin("This login has expired or moved on; look again.")

    def client_token(self, ref: str) -> str | None:
        sealed = self.logins.take_client_token(ref)
        return self.box.open(sealed) if sealed else None

    # -- the accounts -------------------------------------------------------------------

    def state_of(self, row: AccountRow, alive: bool) -> str:
        if row.desired != RUNNING:
            return "stopped"
        if row.status_generation == row.generation and row.last_error and \
                row.last_error.startswith(("session revoked", "session refused")):
            return "revoked"
        if row.status == ONLINE and row.status_generation == row.generation and alive:
            return "online"
        return "offline"

    def all(self) -> list[AccountView]:
        alive = self.process_running()
        return [AccountView(r.number, r.client_name, r.url_planfix, self.state_of(r, alive),
                            redact(r.last_error)[:200] if r.last_error else None)
                for r in self.accounts.all()]

    def start_account(self, number: str) -> bool:
        done = start_account(self.db, number)
        self.control.wake()
        return done

    def stop_account(self, number: str) -> bool:
        done = self.accounts.stop(number)
        self.control.wake()
        return done


class LoginDriver:
    """The accounts process's side: one login's conversation with Telegram."""

    def __init__(self, settings, db, box: SecretBox) -> None:
        self.settings = settings
        self.box = box
        self.logins = LoginRepository(db)
        self.accounts = AccountRepository(db)

    async def _row(self, ref: str) -> LoginRow | None:
        row = await asyncio.to_thread(self.logins.get, ref)
        return row if row is not None and row.open else None

    async def _wait_answer(self, ref: str) -> str | None:
        while True:
            if await self._row(ref) is None:
                return None           # expired (or ended elsewhere)
            sealed = await asyncio.to_thread(self.logins.take_answer, ref)
            if sealed:
                return self.box.open(sealed)
            await asyncio.sleep(ANSWER_POLL)

    async def drive(self, row: LoginRow, client: LoginClient) -> None:
        ref = row.ref
        try:
            try:
                person = await (self._qr(row, client) if row.method == "qr" else self._code(row, client))
            except PasswordNeeded as exc:
                person = await self._password(row, client, exc.hint or await client.password_hint())
            if person is not None:
                await asyncio.to_thread(self._finish, row, client, person)
        except asyncio.CancelledError:
            raise
        except LoginRefused as exc:
            await asyncio.to_thread(self.logins.fail, ref, exc.reason)
        except Exception as exc:     # Telegram away, the database away: the person is told
            log.warning("login %s…: %s", ref[:6], redact(repr(exc)))
            try:
                await asyncio.to_thread(self.logins.fail, ref, f"Telegram did not answer ({type(exc).__name__});"
                                                               " start the login again.")
            except Exception:
                pass
        finally:
            await client.close()

    async def _qr(self, row: LoginRow, client: LoginClient) -> Person | None:
        while await self._row(row.ref) is not None:
            token = await client.qr_token()
            expires = datetime.fromtimestamp(token.expires, timezone.utc).replace(tzinfo=None)
            await asyncio.to_thread(self.logins.show_qr, row.ref, self.box.seal(token.url), expires)
            left = token.expires - datetime.now(timezone.utc).timestamp()
            person = await client.qr_wait(max(1.0, min(left, 60.0)))
            if person is not None:
                return person
        return None

    async def _code(self, row: LoginRow, client: LoginClient) -> Person | None:
        await client.send_code("+" + row.number)
        await asyncio.to_thread(self.logins.ask, row.ref, CODE)
        while True:
            code = await self._wait_answer(row.ref)
            if code is None:
                return None
            try:
                return await client.sign_in(code)
            except LoginRefused as exc:
                if not exc.again:
                    raise
                await asyncio.to_thread(self.logins.ask, row.ref, CODE, message=exc.reason)

    async def _password(self, row: LoginRow, client: LoginClient, hint: str | None) -> Person | None:
        await asyncio.to_thread(self.logins.ask, row.ref, PASSWORD, hint=(hint or None) and hint[:128])
        while True:
            password = await self._wait_answer(row.ref)
            if password is None:
                return None
            try:
                return await client.check_password(password)
            except LoginRefused as exc:
                if not exc.again:
                    raise
                await asyncio.to_thread(self.logins.ask, row.ref, PASSWORD, message=exc.reason,
                                        hint=(hint or None) and hint[:128])

    def _finish(self, row: LoginRow, client: LoginClient, person: Person) -> None:
        phone = e164(person.phone)
        if phone is None:
            raise LoginRefused("Telegram did not say this account's phone number.", again=False)
        number = phone[1:]
        if row.number and row.number != number:
            raise LoginRefused(f"The account logged in is {phone}, not +{row.number}.", again=False)
        session_enc = self.box.seal(client.session())
        existing = self.accounts.get(number)
        if existing is not None:   # logged in again (e.g. after a revoke): its client token stays
            self.accounts.update(number, url_planfix=row.url_planfix, token_planfix_enc=row.token_planfix_enc,
                                 name_session=existing.name_session, path_session=None,
                                 session_enc=session_enc)
            self.logins.finish(row.ref, number=number, client_token_enc=None)
            return
        token = new_token()
        self.accounts.create(client_name=row.client_name, number=number, url_planfix=row.url_planfix,
                             token_planfix_enc=row.token_planfix_enc, name_session=number,
                             path_session=None, session_enc=session_enc, token_hash=token_hash(token))
        self.logins.finish(row.ref, number=number, client_token_enc=self.box.seal(token))
        log.info("account %s logged in from the panel", number)
