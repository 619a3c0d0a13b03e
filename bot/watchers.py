"""Admins joined beside a chat's holder get the customer's new messages too (SPEC §8
"An admin may join a chat to watch and answer beside the holder"): part of the
Telegram desk's announcement (bot/fanout.py), each watcher's copy queued in the
ingest's transaction."""
from __future__ import annotations

from typing import Sequence

from bot.callbacks import CallbackCodec
from bot.keyboards import inline
from bot.outbox import TelegramOut
from bot.posts import render
from bot.texts import language_for, text
from models.conversations import Conversation
from models.db import Database
from models.desk_extras import JoinRepository
from models.messages import StoredMessage
from models.users import User


class WatchersDesk:
    def __init__(self, db: Database, out: TelegramOut, codec: CallbackCodec, source_of,
                 bot_language: str | None = None) -> None:
        self.out = out
        self.codec = codec
        self.source_of = source_of
        self.bot_language = bot_language
        self.joins = JoinRepository(db)

    def announce(self, cur, conversation: Conversation, messages: Sequence[StoredMessage],
                 holder: User | None) -> list[int]:
        """Each watcher's copy of the news, queued in the ingest's transaction (called by
        the Telegram desk's `announce`)."""
        if holder is None:
            return []
        ids = []
        for watcher in self.joins.watchers(conversation.id, cur):
            if watcher.tg_id == holder.tg_id or not watcher.reachable:
                continue
            language = language_for(watcher.language, self.bot_language)
            keyboard = inline([[(text("btn_open_chat", language),
                                 self.codec.encode("openw", conversation.id))]])
            for message in messages:
                for post in render(conversation, message, chat_id=watcher.tg_id,
                                   source=self.source_of(conversation), language=language,
                                   keyboard=keyboard, pinned_to=holder, purpose="notify"):
                    job_id = self.out.post(post, key=f"watch:{post.dedupe_key}", cur=cur)
                    if job_id is not None:
                        ids.append(job_id)
        return ids
