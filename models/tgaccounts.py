"""The shop's Telegram accounts and what the relay keeps about them (CHANNELS.md §5):
tables `tg_accounts`, `tg_account_hosts`, `tg_contacts`, `tg_sent`, `tg_media`.

Secrets are stored sealed (the caller encrypts) or hashed; nothing here decrypts.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pymysql

from models.repo import Repository

RUNNING, STOPPED = "running", "stopped"
ONLINE, OFFLINE = "online", "offline"
PLANFIX, DESK = "planfix", "desk"


@dataclass(frozen=True)
class AccountRow:
    id: int
    client_name: str
    number: str
    url_planfix: str
    token_planfix_enc: str
    name_session: str
    path_session: str | None
    session_enc: str | None
    token_hash: str
    desired: str
    generation: int
    status: str
    status_generation: int
    last_error: str | None
    error_reported: str | None
    status_at: datetime | None

    def __repr__(self) -> str:  # sealed values and hashes stay out of logs all the same
        return f"AccountRow({self.client_name!r}, {self.number!r}, {self.desired}, {self.status})"

    @classmethod
    def from_row(cls, row: dict) -> "AccountRow":
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Contact:
    account: str
    tg_user_id: int
    chat_id: str
    username: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None


@dataclass(frozen=True)
class SentRow:
    ref: str
    account: str
    peer_id: int
    tg_message_id: int
    origin: str
    planfix_message_id: str | None


@dataclass(frozen=True)
class Media:
    id: int
    account: str
    tg_message_id: int
    name: str
    mime: str
    size: int
    data: bytes


class AccountRepository(Repository):
    def get(self, number: str) -> AccountRow | None:
        row = self.db.fetchone("SELECT * FROM tg_accounts WHERE number = %s", (number,))
        return AccountRow.from_row(row) if row else None

    def of_client(self, client_name: str) -> list[AccountRow]:
        rows = self.db.fetchall("SELECT * FROM tg_accounts WHERE client_name = %s ORDER BY id",
                                (client_name,))
        return [AccountRow.from_row(r) for r in rows]

    def all(self) -> list[AccountRow]:
        return [AccountRow.from_row(r) for r in self.db.fetchall("SELECT * FROM tg_accounts ORDER BY id")]

    def create(self, *, client_name: str, number: str, url_planfix: str, token_planfix_enc: str,
               name_session: str, path_session: str | None, session_enc: str | None,
               token_hash: str) -> bool:
        """A new number, running; False when the number exists already."""
        try:
            self.db.execute(
                "INSERT INTO tg_accounts (client_name, number, url_planfix, token_planfix_enc,"
                " name_session, path_session, session_enc, token_hash)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (client_name, number, url_planfix, token_planfix_enc, name_session, path_session,
                 session_enc, token_hash))
        except pymysql.err.IntegrityError:
            return False
        return True

    def update(self, number: str, *, url_planfix: str, token_planfix_enc: str, name_session: str,
               path_session: str | None, session_enc: str | None) -> bool:
        """New data, running, and a new generation: the process restarts the session."""
        return self.db.execute(
            "UPDATE tg_accounts SET url_planfix = %s, token_planfix_enc = %s, name_session = %s,"
            " path_session = %s, session_enc = %s, desired = 'running',"
            " generation = generation + 1, error_reported = NULL WHERE number = %s",
            (url_planfix, token_planfix_enc, name_session, path_session, session_enc, number)) >= 1

    def stop(self, number: str) -> bool:
        return self.db.execute("UPDATE tg_accounts SET desired = 'stopped',"
                               " generation = generation + 1 WHERE number = %s", (number,)) >= 1

    def store_session(self, number: str, session_enc: str) -> None:
        """A session created or refreshed by `python -m bot tg-login` / the process."""
        self.db.execute("UPDATE tg_accounts SET session_enc = %s WHERE number = %s",
                        (session_enc, number))

    def reseal(self, number: str, *, token_planfix_enc: tuple[str, str],
               session_enc: tuple[str | None, str | None]) -> bool:
        """The same secrets sealed again (old → new), unless the row changed meanwhile;
        not a new generation (the running session stays)."""
        return self.db.execute(
            "UPDATE tg_accounts SET token_planfix_enc = %s, session_enc = %s"
            " WHERE number = %s AND token_planfix_enc = %s AND session_enc <=> %s",
            (token_planfix_enc[1], session_enc[1], number, token_planfix_enc[0], session_enc[0])) >= 1

    def report(self, number: str, generation: int, status: str, error: str | None) -> None:
        """What the accounts process says of a number (for the generation it runs)."""
        self.db.execute(
            "UPDATE tg_accounts SET status = %s, status_generation = %s, last_error = %s,"
            " status_at = NOW(6) WHERE number = %s", (status, generation, error, number))

    def claim_error_report(self, number: str, cause: str) -> bool:
        """True once per (number, cause): a revoked session is reported once, not at
        every retry."""
        return self.db.execute(
            "UPDATE tg_accounts SET error_reported = %s WHERE number = %s"
            " AND (error_reported IS NULL OR error_reported <> %s)",
            (cause[:200], number, cause[:200])) == 1

    def clear_error_report(self, number: str) -> None:
        self.db.execute("UPDATE tg_accounts SET error_reported = NULL WHERE number = %s"
                        " AND error_reported IS NOT NULL", (number,))


class AccountHostRepository(Repository):
    """The accounts process's control endpoint (loopback), with a heartbeat."""

    def register(self, endpoint: str) -> None:
        self.db.execute("INSERT INTO tg_account_hosts (endpoint, seen_at) VALUES (%s, NOW(6))"
                        " ON DUPLICATE KEY UPDATE seen_at = NOW(6)", (endpoint,))

    def forget(self, endpoint: str) -> None:
        self.db.execute("DELETE FROM tg_account_hosts WHERE endpoint = %s", (endpoint,))

    def live(self, stale_after: float) -> list[str]:
        rows = self.db.fetchall("SELECT endpoint FROM tg_account_hosts WHERE seen_at >"
                                " NOW(6) - INTERVAL %s MICROSECOND ORDER BY seen_at DESC",
                                (int(stale_after * 1e6),))
        return [r["endpoint"] for r in rows]


class ContactRepository(Repository):
    def save(self, contact: Contact) -> Contact:
        """Remember a user of an account; the chat id Planfix knows stays the first one."""
        self.db.execute(
            "INSERT INTO tg_contacts (account, tg_user_id, chat_id, username, phone, first_name,"
            " last_name) VALUES (%s, %s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE"
            " username = COALESCE(VALUES(username), username), phone = COALESCE(VALUES(phone), phone),"
            " first_name = COALESCE(VALUES(first_name), first_name),"
            " last_name = COALESCE(VALUES(last_name), last_name)",
            (contact.account, contact.tg_user_id, contact.chat_id, contact.username, contact.phone,
             contact.first_name, contact.last_name))
        return self.by_user(contact.account, contact.tg_user_id) or contact

    def set_chat(self, account: str, tg_user_id: int, chat_id: str) -> Contact | None:
        """Planfix's own chat id for this user (unless another user has it already)."""
        try:
            self.db.execute("UPDATE tg_contacts SET chat_id = %s WHERE account = %s AND tg_user_id = %s",
                            (chat_id, account, tg_user_id))
        except pymysql.err.IntegrityError:
            return None
        return self.by_user(account, tg_user_id)

    def _one_contact(self, where: str, args: tuple) -> Contact | None:
        row = self.db.fetchone(f"SELECT account, tg_user_id, chat_id, username, phone, first_name,"
                               f" last_name FROM tg_contacts WHERE {where} LIMIT 1", args)
        return Contact(**row) if row else None

    def by_user(self, account: str, tg_user_id: int) -> Contact | None:
        return self._one_contact("account = %s AND tg_user_id = %s", (account, tg_user_id))

    def by_chat(self, account: str, chat_id: str) -> Contact | None:
        return self._one_contact("account = %s AND chat_id = %s", (account, chat_id))

    def by_username(self, account: str, username: str) -> Contact | None:
        return self._one_contact("account = %s AND username = %s", (account, username))

    def by_phone(self, account: str, phone: str) -> Contact | None:
        return self._one_contact("account = %s AND phone = %s", (account, phone))


class SentRepository(Repository):
    def record(self, row: SentRow) -> bool:
        """False when this ref (or this Telegram message) was recorded already."""
        try:
            self.db.execute(
                "INSERT INTO tg_sent (ref, account, peer_id, tg_message_id, origin,"
                " planfix_message_id) VALUES (%s, %s, %s, %s, %s, %s)",
                (row.ref, row.account, row.peer_id, row.tg_message_id, row.origin,
                 row.planfix_message_id))
        except pymysql.err.IntegrityError:
            return False
        return True

    def by_ref(self, ref: str) -> SentRow | None:
        row = self.db.fetchone("SELECT ref, account, peer_id, tg_message_id, origin,"
                               " planfix_message_id FROM tg_sent WHERE ref = %s", (ref,))
        return SentRow(**row) if row else None

    def by_message(self, account: str, tg_message_id: int) -> SentRow | None:
        row = self.db.fetchone("SELECT ref, account, peer_id, tg_message_id, origin,"
                               " planfix_message_id FROM tg_sent WHERE account = %s"
                               " AND tg_message_id = %s", (account, tg_message_id))
        return SentRow(**row) if row else None

    def unread_up_to(self, account: str, peer_id: int, max_id: int) -> list[SentRow]:
        rows = self.db.fetchall(
            "SELECT ref, account, peer_id, tg_message_id, origin, planfix_message_id FROM tg_sent"
            " WHERE account = %s AND peer_id = %s AND read_at IS NULL AND tg_message_id <= %s"
            " ORDER BY tg_message_id", (account, peer_id, max_id))
        return [SentRow(**r) for r in rows]

    def mark_read(self, cur, refs: list[str]) -> None:
        if refs:
            placeholders = ", ".join(["%s"] * len(refs))
            cur.execute(f"UPDATE tg_sent SET read_at = NOW(6) WHERE ref IN ({placeholders})"
                        f" AND read_at IS NULL", refs)


class MediaRepository(Repository):
    def store(self, account: str, tg_message_id: int, name: str, mime: str, data: bytes) -> int:
        """The file's id (stored once per message)."""
        self.db.execute(
            "INSERT INTO tg_media (account, tg_message_id, name, mime, size, data)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)",
            (account, tg_message_id, name[:255], mime[:128], len(data), data))
        return int(self.db.scalar("SELECT id FROM tg_media WHERE account = %s AND tg_message_id = %s",
                                  (account, tg_message_id)))

    def get(self, media_id: int) -> Media | None:
        row = self.db.fetchone("SELECT * FROM tg_media WHERE id = %s", (media_id,))
        if row is None:
            return None
        return Media(row["id"], row["account"], row["tg_message_id"], row["name"], row["mime"],
                     row["size"], bytes(row["data"]))

    def purge_older_than(self, before: datetime) -> int:
        return self.db.execute("DELETE FROM tg_media WHERE created_at < %s", (before,))


def start_account(db, number: str) -> bool:
    """Running again, on a new generation: the accounts process (re)starts the session."""
    return db.execute("UPDATE tg_accounts SET desired = 'running', generation = generation + 1,"
                      " error_reported = NULL WHERE number = %s", (number,)) >= 1
