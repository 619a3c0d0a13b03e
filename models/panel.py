"""The admin panel's SQL (WEB.md §1): its users, the login throttle, and the figures its
pages read (messages per channel, volume by hour and day, resolution times, the
conversations list with filters). The first-response figures come from
`models/responses.py::ResponseRepository.report`, the same the desk's reports use."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from models.conversations import Conversation
from models.repo import Repository


@dataclass(frozen=True)
class PanelUser:
    id: int
    login: str
    password_hash: str
    session_version: int
    tg_id: int | None
    disabled: bool
    last_login_at: datetime | None

    @classmethod
    def from_row(cls, row: dict) -> "PanelUser":
        return cls(id=row["id"], login=row["login"], password_hash=row["password_hash"],
                   session_version=row["session_version"], tg_id=row["tg_id"],
                   disabled=bool(row["disabled"]), last_login_at=row["last_login_at"])

    def __repr__(self) -> str:  # the hash never goes into a log line
        return f"PanelUser(id={self.id}, login={self.login!r})"


class PanelUserRepository(Repository):
    def get(self, user_id: int) -> PanelUser | None:
        row = self.db.fetchone("SELECT * FROM panel_users WHERE id = %s", (user_id,))
        return PanelUser.from_row(row) if row else None

    def by_login(self, login: str) -> PanelUser | None:
        row = self.db.fetchone("SELECT * FROM panel_users WHERE login = %s", (login,))
        return PanelUser.from_row(row) if row else None

    def upsert(self, login: str, password_hash: str, tg_id: int | None = None) -> tuple[int, bool]:
        """Create the user, or set a new password (and end every session of theirs).
        Returns (id, created)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT id FROM panel_users WHERE login = %s FOR UPDATE", (login,))
            row = cur.fetchone()
            if row is None:
                cur.execute("INSERT INTO panel_users (login, password_hash, tg_id) VALUES (%s, %s, %s)",
                            (login, password_hash, tg_id))
                return cur.lastrowid, True
            cur.execute("UPDATE panel_users SET password_hash = %s, disabled = 0,"
                        " session_version = session_version + 1,"
                        " tg_id = COALESCE(%s, tg_id) WHERE id = %s",
                        (password_hash, tg_id, row["id"]))
            return row["id"], False

    def grant_setup(self, login: str, tg_id: int, code_hash: str, expires: datetime) -> None:
        """`/web_access`: the user (created without a password when new) may set one with
        this code until `expires`; an older code stops working."""
        self.db.execute(
            "INSERT INTO panel_users (login, password_hash, tg_id, setup_code_hash, setup_expires)"
            " VALUES (%s, '!', %s, %s, %s) ON DUPLICATE KEY UPDATE"
            " setup_code_hash = VALUES(setup_code_hash), setup_expires = VALUES(setup_expires),"
            " tg_id = VALUES(tg_id)", (login, tg_id, code_hash, expires))

    def take_setup(self, login: str, code_hash: str, now: datetime, password_hash: str) -> bool:
        """Set the password with a valid code, once; every older session ends."""
        return self.db.execute(
            "UPDATE panel_users SET password_hash = %s, setup_code_hash = NULL,"
            " setup_expires = NULL, disabled = 0, session_version = session_version + 1"
            " WHERE login = %s AND setup_code_hash = %s AND setup_expires > %s",
            (password_hash, login, code_hash, now)) == 1

    def set_hash(self, user_id: int, password_hash: str) -> None:
        """A rehash with newer parameters: the same password, sessions stay."""
        self.db.execute("UPDATE panel_users SET password_hash = %s WHERE id = %s",
                        (password_hash, user_id))

    def logged_in(self, user_id: int, at: datetime) -> None:
        self.db.execute("UPDATE panel_users SET last_login_at = %s WHERE id = %s", (at, user_id))

    def all(self) -> list[PanelUser]:
        return [PanelUser.from_row(r) for r in self.db.fetchall("SELECT * FROM panel_users ORDER BY login")]


class ThrottleRepository(Repository):
    """Failed logins per key within a window; a key past its limit is locked for a while."""

    def locked_until(self, key: str, now: datetime) -> datetime | None:
        value = self.db.scalar("SELECT locked_until FROM panel_throttle WHERE throttle_key = %s"
                               " AND locked_until > %s", (key, now))
        return value

    def fail(self, key: str, now: datetime, window: timedelta, limit: int, lock: timedelta) -> int:
        """Count a failure (a new window when the old one is over); lock the key at `limit`.
        Returns the failures counted in this window."""
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO panel_throttle (throttle_key, failures, window_start)"
                        " VALUES (%s, 1, %s) ON DUPLICATE KEY UPDATE"
                        " failures = IF(window_start < %s, 1, failures + 1),"
                        " window_start = IF(window_start < %s, VALUES(window_start), window_start)",
                        (key, now, now - window, now - window))
            cur.execute("SELECT failures FROM panel_throttle WHERE throttle_key = %s", (key,))
            failures = cur.fetchone()["failures"]
            if failures >= limit:
                cur.execute("UPDATE panel_throttle SET locked_until = %s, failures = 0,"
                            " window_start = %s WHERE throttle_key = %s", (now + lock, now, key))
            return failures

    def clear(self, key: str) -> None:
        self.db.execute("DELETE FROM panel_throttle WHERE throttle_key = %s", (key,))


@dataclass(frozen=True)
class Resolution:
    conversation_id: int
    channel: str
    manager_id: int | None
    asked_at: datetime
    resolved_at: datetime


class PanelFigures(Repository):
    """What the home and reports pages count."""

    def messages_per_channel(self, since: datetime) -> list[dict]:
        """Per channel: messages received from customers and sent by the shop since `since`."""
        return self.db.fetchall(
            "SELECT c.channel, SUM(m.direction = 'client') AS received,"
            " SUM(m.direction = 'shop') AS sent FROM messages m"
            " JOIN conversations c ON c.id = m.conversation_id"
            " WHERE m.created_at >= %s AND m.deleted = 0 GROUP BY c.channel ORDER BY c.channel",
            (since,))

    def answers_per_channel(self, since: datetime) -> dict[str, int]:
        """Answers the managers sent from Telegram (the `outbound` rows sent), per channel."""
        rows = self.db.fetchall(
            "SELECT c.channel, COUNT(*) AS n FROM outbound o JOIN conversations c"
            " ON c.id = o.conversation_id WHERE o.status = 'sent' AND o.sent_at >= %s"
            " GROUP BY c.channel", (since,))
        return {r["channel"]: int(r["n"]) for r in rows}

    def customer_messages(self, since: datetime, until: datetime) -> list[datetime]:
        """When each customer message of the period arrived (volume by hour and day)."""
        rows = self.db.fetchall(
            "SELECT asked_at AS at FROM responses WHERE asked_at >= %s AND asked_at < %s",
            (since, until))
        return [r["at"] for r in rows]

    def resolutions(self, since: datetime, until: datetime) -> list[Resolution]:
        """Conversations marked done in [since, until): from the first wait of the
        conversation before that moment to the moment it was done, with who answered
        last before it."""
        rows = self.db.fetchall(
            "SELECT c.id, c.channel, c.status_changed_at AS resolved_at,"
            " (SELECT MIN(r.asked_at) FROM responses r WHERE r.conversation_id = c.id"
            "   AND r.asked_at <= c.status_changed_at) AS asked_at,"
            " (SELECT r.answered_by FROM responses r WHERE r.conversation_id = c.id"
            "   AND r.answered_at <= c.status_changed_at ORDER BY r.answered_at DESC LIMIT 1)"
            "   AS manager_id"
            " FROM conversations c WHERE c.status IN ('done', 'archive')"
            " AND c.status_changed_at >= %s AND c.status_changed_at < %s", (since, until))
        return [Resolution(r["id"], r["channel"], r["manager_id"], r["asked_at"], r["resolved_at"])
                for r in rows if r["asked_at"] is not None]

    def conversations(self, *, channel: str | None, status: str | None, holder: int | None,
                      unanswered: bool, offset: int, limit: int) -> tuple[list[tuple[Conversation, int | None]], int]:
        """A page of conversations, newest first, with the holder's id (None: nobody)."""
        where, args = ["1 = 1"], []
        if channel:
            where.append("c.channel = %s")
            args.append(channel)
        if status:
            where.append("c.status = %s")
            args.append(status)
        if holder is not None:
            where.append("p.manager_id = %s")
            args.append(holder)
        if unanswered:
            where.append("EXISTS (SELECT 1 FROM responses r WHERE r.open_conversation_id = c.id)")
        sql_where = " AND ".join(where)
        rows = self.db.fetchall(
            "SELECT c.*, p.manager_id AS holder FROM conversations c"
            " LEFT JOIN pins p ON p.active_conversation_id = c.id"
            f" WHERE {sql_where} ORDER BY c.last_date DESC, c.id DESC LIMIT %s OFFSET %s",
            (*args, limit, offset))
        total = self.db.scalar(
            "SELECT COUNT(*) FROM conversations c LEFT JOIN pins p ON p.active_conversation_id = c.id"
            f" WHERE {sql_where}", tuple(args))
        return [(Conversation.from_row(r), r["holder"]) for r in rows], int(total or 0)

    def holders(self, ids: list[int]) -> dict[int, int]:
        if not ids:
            return {}
        marks = ", ".join(["%s"] * len(ids))
        rows = self.db.fetchall("SELECT active_conversation_id AS cid, manager_id FROM pins"
                                f" WHERE active_conversation_id IN ({marks})", ids)
        return {r["cid"]: r["manager_id"] for r in rows}

    def history(self, conversation_id: int, limit: int) -> list[dict]:
        """The conversation's newest messages, oldest first, with the manager who wrote a
        shop message from Telegram when known."""
        rows = self.db.fetchall(
            "SELECT m.id, m.direction, m.text, m.is_file, m.is_img, m.filename, m.url,"
            " m.media_ref, m.date_written, m.created_at FROM messages m"
            " WHERE m.conversation_id = %s AND m.deleted = 0 ORDER BY m.id DESC LIMIT %s",
            (conversation_id, limit))
        return list(reversed(rows))

    def message_file(self, conversation_id: int, message_id: int) -> dict | None:
        return self.db.fetchone("SELECT id, url, media_ref, is_img, filename FROM messages"
                                " WHERE id = %s AND conversation_id = %s AND deleted = 0",
                                (message_id, conversation_id))

    def team(self) -> list[dict]:
        """Everyone who talked to the bot, with on-shift status and open chats."""
        return self.db.fetchall(
            "SELECT u.*, COALESCE(s.on_shift, 1) AS on_shift_now,"
            " (SELECT COUNT(*) FROM pins p WHERE p.manager_id = u.tg_id AND p.state = 'ACTIVE')"
            " AS open_chats FROM users u LEFT JOIN desk_shifts s ON s.tg_id = u.tg_id"
            " ORDER BY FIELD(u.role, 'pending', 'admin', 'manager', 'banned'), u.tg_id LIMIT 500")

    def open_chats_of(self, tg_id: int) -> list[Conversation]:
        rows = self.db.fetchall(
            "SELECT c.* FROM pins p JOIN conversations c ON c.id = p.conversation_id"
            " WHERE p.manager_id = %s AND p.state = 'ACTIVE' ORDER BY c.last_date DESC LIMIT 100",
            (tg_id,))
        return [Conversation.from_row(r) for r in rows]

    def channel_names(self) -> list[str]:
        return [r["channel"] for r in self.db.fetchall("SELECT DISTINCT channel FROM conversations")]
