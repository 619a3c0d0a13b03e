"""A manager's album as one message to the customer (SPEC §8 "Albums and long texts").

Telegram delivers an album as one update per photo or file, sharing a media_group_id.
Each part is stored durably as it comes (`album_parts`) and the first one asks for a
`send_album` job a moment later; that job hands every part collected to the writing
service as one answer with all its files (uploaded, then sent once, as any answer).
A part that comes after the album was sent goes out as one more message, never lost.
"""
from __future__ import annotations

from dataclasses import dataclass

from models.db import Database
from models.desk_extras import AlbumRepository
from models.jobs import UPDATES, JobQueue
from models.outbound import attachments_from_json, attachments_to_json
from models.users import UserManager
from services.writing import ManagerMessage, Outcome, WriteResult, WriteToCustomer

COLLECT_SECONDS = 1.5


@dataclass(frozen=True)
class RefusedPart:
    """A part of an album the writing service refused: what the manager is answered."""
    tg_chat_id: int
    tg_message_id: int
    result: WriteResult
    chat_ref: object
    key: str


class Albums:
    def __init__(self, db: Database, jobs: JobQueue, users: UserManager,
                 writer: WriteToCustomer) -> None:
        self.jobs = jobs
        self.users = users
        self.writer = writer
        self.parts = AlbumRepository(db)

    def collect(self, manager_id: int, conversation_id: int, group: str,
                message: ManagerMessage) -> None:
        """Keep one part; the album is sent once its parts stop coming."""
        self.parts.add(message.tg_chat_id, group[:64], message.tg_message_id, conversation_id,
                       manager_id, message.text or None, attachments_to_json(message.files) or "[]")
        self.jobs.enqueue_coalesced(UPDATES, "send_album",
                                    {"tg_chat_id": message.tg_chat_id, "group": group[:64]},
                                    dedupe_key=f"album:{message.tg_chat_id}:{group[:64]}")

    def __call__(self, job) -> list["RefusedPart"]:
        """The `send_album` job (waits COLLECT_SECONDS after a part for the rest): the
        parts the writing service refused, for the desk to answer (bot/answers.py)."""
        from models.jobs import RetryLater
        chat_id, group = int(job.payload["tg_chat_id"]), job.payload["group"]
        parts = self.parts.parts(chat_id, group)
        if not parts:
            return []
        if job.deferrals == 0:
            raise RetryLater("collecting the album's parts", COLLECT_SECONDS)
        manager = self.users.get(parts[0].manager_id)
        if manager is None or not manager.is_manager:
            self.parts.forget(chat_id, group)
            return []
        conversation_id = parts[0].conversation_id
        files = tuple(a for part in parts for a in attachments_from_json(part.attachment))
        if len(files) <= self.writer.files_per_message(conversation_id):
            caption = next((p.caption for p in parts if p.caption), "")
            messages = [ManagerMessage(chat_id, parts[0].tg_message_id, caption, attachments=files)]
        else:  # a channel without albums (WhatsApp): each part its own message, in order
            messages = [ManagerMessage(chat_id, p.tg_message_id, p.caption or "",
                                       attachments=attachments_from_json(p.attachment))
                        for p in parts]
        results = [(m, self.writer.perform(manager, conversation_id, m)) for m in messages]
        self.parts.forget(chat_id, group, [p.tg_message_id for p in parts])
        ref = self.writer.chat_ref(conversation_id)
        return [RefusedPart(chat_id, message.tg_message_id, result, ref,
                        f"album:{chat_id}:{group}:{message.tg_message_id}:refused")
                for message, result in results if result.outcome not in (Outcome.QUEUED, Outcome.DUPLICATE)]
