"""A manager's messages to customers (table `outbound`): recorded once when decided,
delivered through the conversation's channel by a durable step that keeps what it
achieved (uploaded files, the attempt, the outcome, the channel's id of the message),
so a retry resumes where the last run stopped."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import pymysql

from models.repo import Repository

QUEUED, SENT, REFUSED, FAILED = "queued", "sent", "refused", "failed"


@dataclass(frozen=True)
class Attachment:
    """A Telegram file the manager sent, to be attached to the message."""
    file_id: str
    name: str
    mime: str
    size: int | None = None

    def to_json(self) -> str:
        return json.dumps({"file_id": self.file_id, "name": self.name, "mime": self.mime,
                           "size": self.size}, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | None) -> "Attachment | None":
        if not raw:
            return None
        data = json.loads(raw)
        if isinstance(data, list):  # an album: its first file
            data = data[0] if data else None
        return cls.from_dict(data) if data else None

    @classmethod
    def from_dict(cls, data: dict) -> "Attachment":
        return cls(data["file_id"], data["name"], data["mime"], data.get("size"))

    def to_dict(self) -> dict:
        return {"file_id": self.file_id, "name": self.name, "mime": self.mime, "size": self.size}


def attachments_from_json(raw: str | None) -> tuple[Attachment, ...]:
    """The files of an answer: one object (a photo or a file) or a list (an album)."""
    if not raw:
        return ()
    data = json.loads(raw)
    return tuple(Attachment.from_dict(d) for d in (data if isinstance(data, list) else [data]))


def attachments_to_json(attachments: tuple[Attachment, ...]) -> str | None:
    if not attachments:
        return None
    if len(attachments) == 1:
        return attachments[0].to_json()
    return json.dumps([a.to_dict() for a in attachments], ensure_ascii=False)


@dataclass(frozen=True)
class Outbound:
    id: int
    conversation_id: int
    manager_id: int
    tg_chat_id: int
    tg_message_id: int
    text: str
    attachments: tuple[Attachment, ...]
    remote_files: list[dict] | None
    external_id: str | None
    after_message_id: int | None
    status: str
    attempted_at: datetime | None
    error: str | None
    template: dict | None = None     # an approved template {"name", "language", "params"}

    @property
    def attachment(self) -> Attachment | None:
        """The first (usually the only) file of the answer."""
        return self.attachments[0] if self.attachments else None

    @classmethod
    def from_row(cls, row: dict) -> "Outbound":
        return cls(id=row["id"], conversation_id=row["conversation_id"], manager_id=row["manager_id"],
                   tg_chat_id=row["tg_chat_id"], tg_message_id=row["tg_message_id"],
                   text=row["text"], attachments=attachments_from_json(row["attachment"]),
                   remote_files=json.loads(row["remote_files"]) if row["remote_files"] else None,
                   external_id=row["external_id"],
                   after_message_id=row["after_message_id"], status=row["status"],
                   attempted_at=row["attempted_at"], error=row["error"],
                   template=json.loads(row["template"]) if row.get("template") else None)


class OutboundRepository(Repository):
    def record(self, cur, *, key: str, conversation_id: int, manager_id: int, tg_chat_id: int,
               tg_message_id: int, text: str, attachment: Attachment | None,
               after_message_id: int | None, template: dict | None = None,
               attachments: tuple[Attachment, ...] = ()) -> int | None:
        """Record a decided message; None when this key was recorded already."""
        try:
            cur.execute(
                "INSERT INTO outbound (dedupe_key, conversation_id, manager_id, tg_chat_id,"
                " tg_message_id, text, attachment, after_message_id, template)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (key, conversation_id, manager_id, tg_chat_id, tg_message_id, text,
                 attachments_to_json(attachments or ((attachment,) if attachment else ())),
                 after_message_id,
                 json.dumps(template, ensure_ascii=False) if template else None))
        except pymysql.err.IntegrityError:
            return None
        return cur.lastrowid

    def get(self, outbound_id: int) -> Outbound | None:
        row = self.db.fetchone("SELECT * FROM outbound WHERE id = %s", (outbound_id,))
        return Outbound.from_row(row) if row else None

    def save_files(self, outbound_id: int, files: list[dict]) -> None:
        """What the channel gave for the uploaded file(s): never uploaded again."""
        self.db.execute("UPDATE outbound SET remote_files = %s WHERE id = %s",
                        (json.dumps(files, ensure_ascii=False), outbound_id))

    def mark_attempt(self, outbound_id: int, now: datetime) -> None:
        self.db.execute("UPDATE outbound SET attempted_at = COALESCE(attempted_at, %s)"
                        " WHERE id = %s", (now, outbound_id))

    def by_external(self, external_id: str) -> Outbound | None:
        """The manager's message the channel knows by this id (for its delivery status)."""
        row = self.db.fetchone("SELECT * FROM outbound WHERE external_id = %s ORDER BY id DESC LIMIT 1",
                               (external_id,))
        return Outbound.from_row(row) if row else None

    def settle(self, cur, outbound_id: int, status: str, now: datetime,
               error: str | None = None, external_id: str | None = None) -> bool:
        """queued → sent / refused / failed, once."""
        return cur.execute(
            "UPDATE outbound SET status = %s, error = %s, external_id = COALESCE(%s, external_id),"
            " sent_at = IF(%s = 'sent', %s, sent_at) WHERE id = %s AND status = 'queued'",
            (status, error, external_id, status, now, outbound_id)) == 1
