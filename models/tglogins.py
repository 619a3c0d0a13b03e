"""Logins of Telegram accounts started in the panel (table `tg_logins`): the panel writes
and reads the row, the accounts process drives the conversation with Telegram and writes
back. Secrets (the QR login URL, the code or password typed, the client token) only
sealed by the caller; nothing here decrypts. A row past `expires_at` is refused by both
sides (`expired`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from models.repo import Repository

NEW, QR, CODE, PASSWORD, DONE, FAILED, EXPIRED = "new", "qr", "code", "password", "done", "failed", "expired"
OPEN_STATES = (NEW, QR, CODE, PASSWORD)


@dataclass(frozen=True)
class LoginRow:
    id: int
    ref: str
    method: str
    number: str | None
    client_name: str
    url_planfix: str
    token_planfix_enc: str
    state: str
    qr_url_enc: str | None
    qr_expires: datetime | None
    answer_enc: str | None
    hint: str | None
    message: str | None
    client_token_enc: str | None
    held_by: str | None
    started_by: str
    expires_at: datetime
    updated_at: datetime
    live: bool                # not past expires_at (by the database's clock)

    def __repr__(self) -> str:
        return f"LoginRow({self.ref[:6]}…, {self.method}, {self.state})"

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES and self.live


_COLUMNS = ("id, ref, method, number, client_name, url_planfix, token_planfix_enc, state, qr_url_enc,"
            " qr_expires, answer_enc, hint, message, client_token_enc, held_by, started_by, expires_at,"
            " updated_at, expires_at > NOW(6) AS live")


def _row(row: dict | None) -> LoginRow | None:
    return LoginRow(**dict(row, live=bool(row["live"]))) if row else None


class LoginRepository(Repository):
    def create(self, *, ref: str, method: str, number: str | None, client_name: str, url_planfix: str,
               token_planfix_enc: str, started_by: str, minutes: int) -> None:
        self.db.execute(
            "INSERT INTO tg_logins (ref, method, number, client_name, url_planfix, token_planfix_enc,"
            " started_by, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, NOW(6) + INTERVAL %s MINUTE)",
            (ref, method, number, client_name, url_planfix, token_planfix_enc, started_by, minutes))

    def get(self, ref: str) -> LoginRow | None:
        return _row(self.db.fetchone(f"SELECT {_COLUMNS} FROM tg_logins WHERE ref = %s", (ref,)))

    def recent(self, limit: int = 10) -> list[LoginRow]:
        return [_row(r) for r in self.db.fetchall(
            f"SELECT {_COLUMNS} FROM tg_logins ORDER BY id DESC LIMIT %s", (limit,))]

    def claim(self, endpoint: str, others_alive: list[str]) -> list[LoginRow]:
        """Open logins nobody alive holds, now held by `endpoint` (a login whose process
        died is taken over: its conversation with Telegram starts again)."""
        alive = [e for e in others_alive if e != endpoint] or ["-"]
        marks = ", ".join(["%s"] * len(alive))
        count = self.db.execute(
            f"UPDATE tg_logins SET held_by = %s, state = 'new', answer_enc = NULL"
            f" WHERE state IN ('new','qr','code','password') AND expires_at > NOW(6)"
            f" AND (held_by IS NULL OR (held_by <> %s AND held_by NOT IN ({marks})))",
            (endpoint, endpoint, *alive))
        if not count:
            return []
        return [_row(r) for r in self.db.fetchall(
            f"SELECT {_COLUMNS} FROM tg_logins WHERE held_by = %s AND state = 'new'"
            " AND expires_at > NOW(6)", (endpoint,))]

    def expire(self) -> int:
        """Open logins past their time: expired (their clients are closed by the holder)."""
        return self.db.execute(
            "UPDATE tg_logins SET state = 'expired', qr_url_enc = NULL, answer_enc = NULL,"
            " message = 'The login expired before it was finished.'"
            " WHERE state IN ('new','qr','code','password') AND expires_at <= NOW(6)")

    def purge(self, hours: int = 24) -> int:
        """Logins ended (done, failed, expired) more than `hours` ago: gone, with their
        sealed Planfix token and any client token never shown."""
        return self.db.execute(
            "DELETE FROM tg_logins WHERE state IN ('done','failed','expired')"
            " AND updated_at < NOW(6) - INTERVAL %s HOUR", (hours,))

    def show_qr(self, ref: str, url_enc: str, expires: datetime) -> bool:
        return self.db.execute(
            "UPDATE tg_logins SET state = 'qr', qr_url_enc = %s, qr_expires = %s"
            " WHERE ref = %s AND state IN ('new','qr') AND expires_at > NOW(6)",
            (url_enc, expires, ref)) == 1

    def ask(self, ref: str, state: str, *, message: str | None = None, hint: str | None = None) -> bool:
        """The login waits for the person (a code, a password): `message` says why again."""
        return self.db.execute(
            "UPDATE tg_logins SET state = %s, message = %s, hint = %s, qr_url_enc = NULL"
            " WHERE ref = %s AND state IN ('new','qr','code','password') AND expires_at > NOW(6)",
            (state, message, hint, ref)) == 1

    def answer(self, ref: str, state: str, answer_enc: str) -> bool:
        """What the person typed for the step `state`; False when the login is not (or no
        longer) waiting for it."""
        return self.db.execute(
            "UPDATE tg_logins SET answer_enc = %s, message = NULL"
            " WHERE ref = %s AND state = %s AND expires_at > NOW(6)", (answer_enc, ref, state)) == 1

    def take_answer(self, ref: str) -> str | None:
        with self.db.transaction() as cur:
            row = self._one(cur, "SELECT answer_enc FROM tg_logins WHERE ref = %s AND expires_at > NOW(6)"
                                 " FOR UPDATE", (ref,))
            if not row or not row["answer_enc"]:
                return None
            self._execute(cur, "UPDATE tg_logins SET answer_enc = NULL WHERE ref = %s", (ref,))
            return row["answer_enc"]

    def finish(self, ref: str, *, number: str, client_token_enc: str | None) -> bool:
        return self.db.execute(
            "UPDATE tg_logins SET state = 'done', number = %s, client_token_enc = %s, qr_url_enc = NULL,"
            " answer_enc = NULL, message = NULL WHERE ref = %s AND state IN ('new','qr','code','password')",
            (number, client_token_enc, ref)) == 1

    def fail(self, ref: str, message: str) -> None:
        self.db.execute(
            "UPDATE tg_logins SET state = 'failed', message = %s, qr_url_enc = NULL, answer_enc = NULL"
            " WHERE ref = %s AND state IN ('new','qr','code','password')", (message[:300], ref))

    def take_client_token(self, ref: str) -> str | None:
        """The new account's client token, once (then it is gone from the row)."""
        with self.db.transaction() as cur:
            row = self._one(cur, "SELECT client_token_enc FROM tg_logins WHERE ref = %s FOR UPDATE", (ref,))
            if not row or not row["client_token_enc"]:
                return None
            self._execute(cur, "UPDATE tg_logins SET client_token_enc = NULL WHERE ref = %s", (ref,))
            return row["client_token_enc"]
