"""The admin panel's SQL (WEB.md §1): its users, their server-side sessions, the login
throttle, and the figures its pages read (messages per channel, volume by hour and day, resolution times, the
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
    language: str | None = None    # the panel's language this user chose (None: the shop's)

    @classmethod
    def from_row(cls, row: dict) -> "PanelUser":
        return cls(id=row["id"], login=row["login"], password_hash=row["password_hash"],
                   session_version=row["session_version"], tg_id=row["tg_id"],
                   disabled=bool(row["disabled"]), last_login_at=row["last_login_at"],
                   language=row.get("language"))

    def __repr__(self) -> str:  # the hash never goes into a log line
        return f"PanelUser(id={self.id}, login={self.login!r})"


class BoundElsewhere(ValueError):
    """The login is bound to another Telegram id (a binding is for good)."""


# A panel user may act while their Telegram person is an admin in `users` (read on every
# request, never cached); a login created on the command line without a Telegram id is
# the server's own account and answers to nobody in Telegram.
_STILL_ADMIN = ("(pu.tg_id IS NULL OR EXISTS (SELECT 1 FROM users u WHERE u.tg_id = pu.tg_id"
                " AND u.role = 'admin'))")


class PanelUserRepository(Repository):
    def get(self, user_id: int) -> PanelUser | None:
        row = self.db.fetchone("SELECT * FROM panel_users WHERE id = %s", (user_id,))
        return PanelUser.from_row(row) if row else None

    def by_login(self, login: str) -> PanelUser | None:
        row = self.db.fetchone("SELECT * FROM panel_users WHERE login = %s", (login,))
        return PanelUser.from_row(row) if row else None

    def authorised(self, user_id: int) -> bool:
        """Not disabled, and their Telegram person (if bound) is an admin right now."""
        return bool(self.db.scalar(
            f"SELECT COUNT(*) FROM panel_users pu WHERE pu.id = %s AND pu.disabled = 0 AND {_STILL_ADMIN}",
            (user_id,)))

    def upsert(self, login: str, password_hash: str, tg_id: int | None = None) -> tuple[int, bool]:
        """Create the user, or set a new password (and end every session of theirs).
        A login keeps the Telegram id it was first bound to: another one raises
        BoundElsewhere. Returns (id, created)."""
        with self.db.transaction() as cur:
            cur.execute("SELECT id, tg_id FROM panel_users WHERE login = %s FOR UPDATE", (login,))
            row = cur.fetchone()
            if row is None:
                cur.execute("INSERT INTO panel_users (login, password_hash, tg_id) VALUES (%s, %s, %s)",
                            (login, password_hash, tg_id))
                return cur.lastrowid, True
            if tg_id is not None and row["tg_id"] is not None and row["tg_id"] != tg_id:
                raise BoundElsewhere(f"the login {login!r} is bound to another Telegram id for good")
            cur.execute("UPDATE panel_users SET password_hash = %s, disabled = 0,"
                        " session_version = session_version + 1,"
                        " tg_id = COALESCE(tg_id, %s) WHERE id = %s",
                        (password_hash, tg_id, row["id"]))
            cur.execute("DELETE FROM panel_sessions WHERE user_id = %s", (row["id"],))
            return row["id"], False

    def grant_setup(self, tg_id: int, logins: list[str], code_hash: str, expires: datetime) -> str:
        """`/web_access`: the panel user bound to this Telegram id (created, bound for good,
        under the first free name of `logins` when there is none yet) may set a password
        with this code until `expires`; an older code stops working. Matched by the id
        only: a login of the same name bound to someone else (or to nobody) is never
        taken over. Returns the login."""
        with self.db.transaction() as cur:
            cur.execute("SELECT id, login FROM panel_users WHERE tg_id = %s ORDER BY id LIMIT 1"
                        " FOR UPDATE", (tg_id,))
            row = cur.fetchone()
            if row is not None:
                cur.execute("UPDATE panel_users SET setup_code_hash = %s, setup_expires = %s"
                            " WHERE id = %s", (code_hash, expires, row["id"]))
                return row["login"]
            for login in logins:
                cur.execute("INSERT IGNORE INTO panel_users (login, password_hash, tg_id,"
                            " setup_code_hash, setup_expires) VALUES (%s, '!', %s, %s, %s)",
                            (login, tg_id, code_hash, expires))
                if cur.rowcount == 1:
                    return login
        raise BoundElsewhere("no free panel login for this Telegram id")

    def take_setup(self, login: str, code_hash: str, now: datetime, password_hash: str) -> bool:
        """Set the password with a valid code, once, while the person is still an admin;
        every older session ends."""
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE panel_users pu SET pu.password_hash = %s, pu.setup_code_hash = NULL,"
                " pu.setup_expires = NULL, pu.disabled = 0, pu.session_version = pu.session_version + 1"
                f" WHERE pu.login = %s AND pu.setup_code_hash = %s AND pu.setup_expires > %s AND {_STILL_ADMIN}",
                (password_hash, login, code_hash, now))
            if cur.rowcount != 1:
                return False
            cur.execute("DELETE s FROM panel_sessions s JOIN panel_users pu ON pu.id = s.user_id"
                        " WHERE pu.login = %s", (login,))
            return True

    def set_hash(self, user_id: int, password_hash: str) -> None:
        """A rehash with newer parameters: the same password, sessions stay."""
        self.db.execute("UPDATE panel_users SET password_hash = %s WHERE id = %s",
                        (password_hash, user_id))

    def set_language(self, user_id: int, language: str | None) -> None:
        """The panel's language this user chose ('uk', 'en'; None: the shop's)."""
        self.db.execute("UPDATE panel_users SET language = %s WHERE id = %s", (language, user_id))

    def logged_in(self, user_id: int, at: datetime) -> None:
        self.db.execute("UPDATE panel_users SET last_login_at = %s WHERE id = %s", (at, user_id))

    def all(self) -> list[PanelUser]:
        return [PanelUser.from_row(r) for r in self.db.fetchall("SELECT * FROM panel_users ORDER BY login")]


class PanelSessionRepository(Repository):
    """Logged-in browsers, by the SHA-256 of their random session id."""

    def open(self, user_id: int, id_hash: str, now: datetime, idle: timedelta, longest: timedelta) -> None:
        self.db.execute("DELETE FROM panel_sessions WHERE seen_at < %s OR created_at < %s",
                        (now - idle, now - longest))
        self.db.execute("INSERT INTO panel_sessions (id_hash, user_id, created_at, seen_at)"
                        " VALUES (%s, %s, %s, %s)", (id_hash, user_id, now, now))

    def user_of(self, id_hash: str, now: datetime, idle: timedelta, longest: timedelta) -> PanelUser | None:
        """The panel user of a live session — not idle past `idle`, younger than
        `longest`, the user not disabled and (if bound) still a Telegram admin — and the
        session marked as seen now."""
        row = self.db.fetchone(
            "SELECT pu.* FROM panel_sessions s JOIN panel_users pu ON pu.id = s.user_id"
            " WHERE s.id_hash = %s AND s.seen_at >= %s AND s.created_at >= %s AND pu.disabled = 0"
            f" AND {_STILL_ADMIN}", (id_hash, now - idle, now - longest))
        if row is None:
            return None
        self.db.execute("UPDATE panel_sessions SET seen_at = %s WHERE id_hash = %s AND seen_at < %s",
                        (now, id_hash, now - timedelta(seconds=30)))
        return PanelUser.from_row(row)

    def close(self, id_hash: str) -> None:
        self.db.execute("DELETE FROM panel_sessions WHERE id_hash = %s", (id_hash,))


def end_sessions_of_person(cur, tg_id: int) -> None:
    """In the caller's transaction: every panel session of the logins bound to `tg_id`."""
    cur.execute("DELETE s FROM panel_sessions s JOIN panel_users pu ON pu.id = s.user_id"
                " WHERE pu.tg_id = %s", (tg_id,))


class ThrottleRepository(Repository):
    """Login attempts per key, counted before the password is checked. A key that reaches
    its limit within a window is locked; each further lock of the key lasts twice as long
    (up to a cap) until a good login clears it."""

    def attempt(self, key: str, now: datetime, window: timedelta, limit: int,
                lock: timedelta, longest: timedelta) -> bool:
        """Count one attempt, atomically: False (nothing counted) while the key is locked.
        The attempt that reaches `limit` still counts (and may still succeed) and locks
        the key. One conditional UPDATE: parallel attempts queue on the row, so no more
        than `limit` get through however many arrive together. Every SET expression reads
        only columns assigned after it, so the result is the same whether MariaDB assigns
        left to right or simultaneously."""
        self.db.execute("INSERT IGNORE INTO panel_throttle (throttle_key, attempts, window_start)"
                        " VALUES (%s, 0, %s)", (key, now))
        since = now - window
        fresh = "IF(window_start < %(since)s, 1, attempts + 1)"
        reach = f"({fresh} >= %(limit)s)"
        return self.db.execute(
            "UPDATE panel_throttle SET"
            f" locked_until = IF({reach}, DATE_ADD(%(now)s, INTERVAL"
            "   LEAST(%(lock)s * POW(2, LEAST(strikes, 20)), %(longest)s) SECOND), locked_until),"
            f" strikes = IF({reach}, strikes + 1, strikes),"
            f" attempts = IF({reach}, 0, {fresh}),"
            " window_start = IF(window_start < %(since)s, %(now)s, window_start)"
            " WHERE throttle_key = %(key)s AND (locked_until IS NULL OR locked_until <= %(now)s)",
            {"key": key, "now": now, "since": since, "limit": limit,
             "lock": int(lock.total_seconds()), "longest": int(longest.total_seconds())}) == 1

    def locked_until(self, key: str, now: datetime) -> datetime | None:
        return self.db.scalar("SELECT locked_until FROM panel_throttle WHERE throttle_key = %s"
                              " AND locked_until > %s", (key, now))

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
