"""The Telegram desk's side of ingest (SPEC §3, flow 1): a conversation's news becomes
posts — to the shared chat with "✍ Відповісти", or to the manager who holds it and
quietly to the shared chat — queued as durable sends inside the ingest's transaction."""
from __future__ import annotations

import time
from typing import Sequence

from bot.callbacks import CallbackCodec
from bot.outbox import send_lane
from bot.posts import Source, posts_for_client_message
from config import Settings
from models.conversations import Conversation
from models.jobs import SEND, JobQueue
from models.messages import StoredMessage
from models.users import User


class TelegramDesk:
    def __init__(self, settings: Settings, codec: CallbackCodec, jobs: JobQueue, channels) -> None:
        self.settings = settings
        self.codec = codec
        self.jobs = jobs
        self.channels = channels

    def source_of(self, conversation: Conversation) -> Source:
        channel = self.channels.get(conversation.channel)
        if channel is None:
            return Source(label=conversation.channel)
        return Source(channel.icon, channel.label, channel.link(conversation))

    def announce(self, cur, conversation: Conversation, messages: Sequence[StoredMessage],
                 holder: User | None, signal_at: float | None) -> list[int]:
        source = self.source_of(conversation)
        posts = []
        for message in messages:
            posts += posts_for_client_message(
                conversation, message, shared_chat_id=self.settings.chat_new_message,
                source=source, codec=self.codec, pinned_to=holder,
                forced_language=self.settings.bot_language)
        queued_at = time.time()
        ids = []
        for post in posts:
            payload = dict(post.payload(), queued_at=queued_at, signal_at=signal_at or queued_at)
            job_id = self.jobs.enqueue_id(SEND, "tg_send", payload, dedupe_key=post.dedupe_key,
                                          lane=send_lane(post.chat_id), cur=cur)
            if job_id is not None:
                ids.append(job_id)
        return ids
