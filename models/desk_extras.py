"""The desk's smaller records: admins joined to a chat (`chat_joins`), internal notes
(`chat_notes`), canned replies (`canned_replies`), album parts (`album_parts`), the order
behind a conversation (`order_context`) and housekeeping chores (`desk_chores`)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from models.repo import Repository
from models.users import User

_USER_COLUMNS = "u.tg_id, u.username, u.first_name, u.language, u.role, u.reachable"


# -- admins joined beside the holder ---------------------------------------------------------

class JoinRepository(Repository):
    def join(self, conversation_id: int, pin_id: int, admin_id: int, at: datetime) -> bool:
        """True when the admin was not joined to this pin already."""
        return self.db.execute(
            "INSERT INTO chat_joins (conversation_id, pin_id, admin_id, joined_at) VALUES"
            " (%s, %s, %s, %s) ON DUPLICATE KEY UPDATE joined_at = IF(left_at IS NULL, joined_at,"
            " VALUES(joined_at)), left_at = NULL", (conversation_id, pin_id, admin_id, at)) in (1, 2)

    def is_joined(self, conversation_id: int, admin_id: int, cur=None) -> bool:
        """Joined to the conversation's current active pin (a join ends with its pin)."""
        return self._one(cur, "SELECT 1 AS yes FROM chat_joins j JOIN pins p ON p.id = j.pin_id"
                              " WHERE j.conversation_id = %s AND j.admin_id = %s AND j.left_at IS NULL"
                              " AND p.state = 'ACTIVE'", (conversation_id, admin_id)) is not None

    def watchers(self, conversation_id: int, cur=None) -> list[User]:
        rows = self._all(cur, f"SELECT {_USER_COLUMNS} FROM chat_joins j JOIN pins p ON p.id = j.pin_id"
                              " JOIN users u ON u.tg_id = j.admin_id WHERE j.conversation_id = %s"
                              " AND j.left_at IS NULL AND p.state = 'ACTIVE' AND u.role = 'admin'",
                         (conversation_id,))
        return [User.from_row(r) for r in rows]

    def leave(self, conversation_id: int, admin_id: int, at: datetime) -> bool:
        return self.db.execute("UPDATE chat_joins SET left_at = %s WHERE conversation_id = %s"
                               " AND admin_id = %s AND left_at IS NULL",
                               (at, conversation_id, admin_id)) > 0


# -- internal notes ------------------------------------------------------------------------

@dataclass(frozen=True)
class Note:
    id: int
    conversation_id: int
    author: User
    text: str
    after_message_id: int | None
    created_at: datetime


class NoteRepository(Repository):
    def add(self, conversation_id: int, author_id: int, text: str, at: datetime) -> int:
        return self.db.insert(
            "INSERT INTO chat_notes (conversation_id, author_id, text, after_message_id, created_at)"
            " SELECT %s, %s, %s, MAX(m.id), %s FROM (SELECT 1) one LEFT JOIN messages m"
            " ON m.conversation_id = %s", (conversation_id, author_id, text, at, conversation_id))

    def _notes(self, where: str, args: tuple) -> list[Note]:
        rows = self.db.fetchall(
            f"SELECT n.*, {_USER_COLUMNS} FROM chat_notes n LEFT JOIN users u ON u.tg_id = n.author_id"
            f" WHERE {where}", args)
        return [Note(r["id"], r["conversation_id"],
                     User.from_row(r) if r["tg_id"] is not None else
                     User(r["author_id"], None, None, None, "manager", False),
                     r["text"], r["after_message_id"], r["created_at"]) for r in rows]

    def latest(self, conversation_id: int, limit: int) -> list[Note]:
        """The newest notes, oldest first."""
        notes = self._notes("n.conversation_id = %s ORDER BY n.id DESC LIMIT %s",
                            (conversation_id, limit))
        return list(reversed(notes))

    def for_page(self, conversation_id: int, lowest: int | None, highest: int | None, *,
                 newest: bool, oldest: bool) -> list[Note]:
        """The notes of a history page showing messages `lowest`..`highest`: those written
        while one of them was the newest; the newest page also shows later ones, the oldest
        page earlier ones (a note written before any message, or after a purge)."""
        if lowest is None:
            return self._notes("n.conversation_id = %s ORDER BY n.id", (conversation_id,))
        parts, args = ["n.after_message_id BETWEEN %s AND %s"], [lowest, highest]
        if newest:
            parts.append("n.after_message_id > %s")
            args.append(highest)
        if oldest:
            parts.append("n.after_message_id < %s OR n.after_message_id IS NULL")
            args.append(lowest)
        return self._notes(f"n.conversation_id = %s AND ({' OR '.join(parts)}) ORDER BY n.id",
                           (conversation_id, *args))


# -- canned replies ------------------------------------------------------------------------

@dataclass(frozen=True)
class CannedReply:
    id: int
    title: str
    text: str
    file_id: str | None
    file_kind: str | None
    file_name: str | None
    file_mime: str | None
    file_size: int | None

    @classmethod
    def from_row(cls, row: dict) -> "CannedReply":
        return cls(**{k: row[k] for k in cls.__dataclass_fields__})


class CannedReplyRepository(Repository):
    def add(self, reply: CannedReply, created_by: int, at: datetime) -> int:
        return self.db.insert(
            "INSERT INTO canned_replies (title, text, file_id, file_kind, file_name, file_mime,"
            " file_size, created_by, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (reply.title, reply.text, reply.file_id, reply.file_kind, reply.file_name,
             reply.file_mime, reply.file_size, created_by, at))

    def get(self, reply_id: int) -> CannedReply | None:
        row = self.db.fetchone("SELECT * FROM canned_replies WHERE id = %s AND deleted_at IS NULL",
                               (reply_id,))
        return CannedReply.from_row(row) if row else None

    def live(self, offset: int = 0, limit: int = 50, words: str = "") -> tuple[list[CannedReply], int]:
        """Replies not deleted, by title; `words`: title or text containing them."""
        where, args = "deleted_at IS NULL", []
        for word in words.split()[:5]:
            pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where += " AND (title LIKE %s OR text LIKE %s)"
            args += [pattern, pattern]
        rows = self.db.fetchall(f"SELECT * FROM canned_replies WHERE {where} ORDER BY title, id"
                                " LIMIT %s OFFSET %s", (*args, limit, offset))
        total = self.db.scalar(f"SELECT COUNT(*) FROM canned_replies WHERE {where}", tuple(args))
        return [CannedReply.from_row(r) for r in rows], total

    def delete(self, reply_id: int, at: datetime) -> bool:
        return self.db.execute("UPDATE canned_replies SET deleted_at = %s WHERE id = %s"
                               " AND deleted_at IS NULL", (at, reply_id)) == 1


# -- album parts -----------------------------------------------------------------------------

@dataclass(frozen=True)
class AlbumPart:
    tg_message_id: int
    conversation_id: int
    manager_id: int
    caption: str | None
    attachment: str


class AlbumRepository(Repository):
    def add(self, tg_chat_id: int, group: str, tg_message_id: int, conversation_id: int,
            manager_id: int, caption: str | None, attachment_json: str) -> bool:
        return self.db.execute(
            "INSERT IGNORE INTO album_parts (tg_chat_id, media_group_id, tg_message_id,"
            " conversation_id, manager_id, caption, attachment) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (tg_chat_id, group, tg_message_id, conversation_id, manager_id, caption,
             attachment_json)) == 1

    def parts(self, tg_chat_id: int, group: str) -> list[AlbumPart]:
        rows = self.db.fetchall("SELECT * FROM album_parts WHERE tg_chat_id = %s"
                                " AND media_group_id = %s ORDER BY tg_message_id", (tg_chat_id, group))
        return [AlbumPart(r["tg_message_id"], r["conversation_id"], r["manager_id"], r["caption"],
                          r["attachment"]) for r in rows]

    def forget(self, tg_chat_id: int, group: str, message_ids: list[int] | None = None) -> None:
        """The parts sent (all of the album's when `message_ids` is None)."""
        if message_ids is None:
            self.db.execute("DELETE FROM album_parts WHERE tg_chat_id = %s AND media_group_id = %s",
                            (tg_chat_id, group))
            return
        placeholders = ", ".join(["%s"] * len(message_ids))
        self.db.execute(f"DELETE FROM album_parts WHERE tg_chat_id = %s AND media_group_id = %s"
                        f" AND tg_message_id IN ({placeholders})", (tg_chat_id, group, *message_ids))

    def purge_older_than(self, before: datetime) -> int:
        return self.db.execute("DELETE FROM album_parts WHERE created_at < %s", (before,))


# -- the order behind a conversation ----------------------------------------------------------

class OrderContextRepository(Repository):
    def get(self, conversation_id: int) -> tuple[dict | None, datetime] | None:
        row = self.db.fetchone("SELECT data, fetched_at FROM order_context WHERE conversation_id = %s",
                               (conversation_id,))
        if row is None:
            return None
        return (json.loads(row["data"]) if row["data"] else None), row["fetched_at"]

    def save(self, conversation_id: int, data: dict | None, at: datetime) -> None:
        self.db.execute("INSERT INTO order_context (conversation_id, data, fetched_at)"
                        " VALUES (%s, %s, %s) ON DUPLICATE KEY UPDATE data = VALUES(data),"
                        " fetched_at = VALUES(fetched_at)",
                        (conversation_id, json.dumps(data, ensure_ascii=False) if data else None, at))


# -- housekeeping --------------------------------------------------------------------------

class ChoreRepository(Repository):
    def last_run(self, name: str) -> datetime | None:
        return self.db.scalar("SELECT last_run_at FROM desk_chores WHERE name = %s", (name,))

    def claim_run(self, name: str, previous: datetime | None, at: datetime) -> bool:
        """Record this run unless another process recorded one since `previous`."""
        if previous is None:
            return self.db.execute("INSERT IGNORE INTO desk_chores (name, last_run_at)"
                                   " VALUES (%s, %s)", (name, at)) == 1
        return self.db.execute("UPDATE desk_chores SET last_run_at = %s WHERE name = %s"
                               " AND last_run_at = %s", (at, name, previous)) == 1


# -- pins that expired (for the notice to their manager) -------------------------------------

@dataclass(frozen=True)
class ExpiredPin:
    pin_id: int
    conversation_id: int
    manager_id: int
    ended_at: datetime


class ExpiredPinRepository(Repository):
    def since(self, last_reply_after: datetime, limit: int = 500) -> list[ExpiredPin]:
        """Pins that ran out, whose last reply was after the given moment (the index on
        (state, last_reply_at) walks only those)."""
        rows = self.db.fetchall(
            "SELECT id, conversation_id, manager_id, ended_at FROM pins"
            " WHERE state IN ('UN_PIN', 'UN_ACTIVATE_KEY') AND last_reply_at >= %s"
            " ORDER BY last_reply_at LIMIT %s", (last_reply_after, limit))
        return [ExpiredPin(r["id"], r["conversation_id"], r["manager_id"], r["ended_at"]) for r in rows]


@dataclass(frozen=True)
class MenuPerson:
    tg_id: int
    role: str
    language: str | None
    changed_at: datetime


class MenuPeopleRepository(Repository):
    def people(self, changed_since: datetime | None = None) -> list[MenuPerson]:
        """Managers and admins, and the banned people a menu of their own was set for (a
        `tg_commands` step kept in the queue, `cmds:chat:<id>:…`: a prefix the dedupe
        key's index walks), with when their row last changed (a role change shows
        there); only those changed since a moment when one is given."""
        rows = self.db.fetchall(
            "SELECT tg_id, role, language, updated_at FROM users"
            " WHERE role IN ('manager', 'admin') AND (%s IS NULL OR updated_at >= %s)"
            " UNION ALL"
            " SELECT u.tg_id, u.role, u.language, u.updated_at FROM users u JOIN ("
            "  SELECT DISTINCT CAST(SUBSTRING_INDEX(SUBSTRING_INDEX(dedupe_key, ':', 3), ':', -1)"
            "   AS SIGNED) AS tg_id FROM jobs WHERE dedupe_key LIKE %s AND kind = 'tg_commands'"
            " ) AS menus ON menus.tg_id = u.tg_id"
            " WHERE u.role = 'banned' AND (%s IS NULL OR u.updated_at >= %s)"
            " ORDER BY tg_id", (changed_since, changed_since, "cmds:chat:%", changed_since, changed_since))
        return [MenuPerson(r["tg_id"], r["role"], r["language"], r["updated_at"]) for r in rows]
