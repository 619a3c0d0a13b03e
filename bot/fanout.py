"""The Telegram desk's side of ingest (SPEC §3, flow 1): a conversation's news becomes
posts — to the shared chat with "✍ Відповісти", or to the manager who holds it and
quietly to the shared chat — queued as durable sends inside the ingest's transaction.

The short path: when nothing waits in the first post's lane and its rate-limit slot is
free, the post is stored already leased to the syncing worker with its slot reserved, in
the same transaction, and sent by that worker right after the commit — no second claim,
no second reservation. Otherwise the posts wait in the queue like any other send.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Sequence

from bot.callbacks import CallbackCodec
from bot.outbox import send_lane
from bot.posts import Source, posts_for_client_message
from config import Settings
from models.conversations import Conversation
from models.jobs import SEND, Job, JobQueue
from models.messages import StoredMessage
from models.users import User


class TelegramDesk:
    def __init__(self, settings: Settings, codec: CallbackCodec, jobs: JobQueue, channels) -> None:
        self.settings = settings
        self.codec = codec
        self.jobs = jobs
        self.channels = channels
        # Set by a worker's runtime (doors only queue): the shared limiter, and how to run a
        # job this thread holds. Without them every post waits in the queue.
        self.limiter = None
        self.run_leased: Callable[[Job], object] | None = None
        self._leased = threading.local()

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
        # Several posts to one group at once wait in the queue, where the sender can merge
        # them when the group's budget is short (SPEC §6); one post goes at once.
        alone = sum(p.chat_id == posts[0].chat_id for p in posts) == 1 if posts else False
        for number, post in enumerate(posts):
            payload = dict(post.payload(), queued_at=queued_at, signal_at=signal_at or queued_at)
            lane = send_lane(post.chat_id)
            if number == 0 and (alone or post.chat_id > 0) and self._can_lease(cur, lane, post.chat_id):
                job = self.jobs.enqueue_leased(SEND, "tg_send", dict(payload, reserved=True),
                                               dedupe_key=post.dedupe_key, lane=lane, cur=cur)
                if job is not None:
                    self._leased.job = job
                    ids.append(job.id)
                    continue
            job_id = self.jobs.enqueue_id(SEND, "tg_send", payload, dedupe_key=post.dedupe_key,
                                          lane=lane, cur=cur)
            if job_id is not None:
                ids.append(job_id)
        return ids

    def _can_lease(self, cur, lane: str, chat_id: int) -> bool:
        self._leased.job = None
        if self.run_leased is None or self.limiter is None or self.jobs.lane_busy(cur, lane):
            return False
        # A group's budget is small (20 a minute): while more news is on its way than the
        # budget still allows (a burst), posts wait in the queue, where the sender merges
        # those about one conversation (this sync itself is one of the syncs counted).
        if chat_id < 0 and self.jobs.news_in_progress(cur) - 1 >= self.limiter.remaining(chat_id):
            return False
        return self.limiter.reserve_in(cur, chat_id) == 0

    def after_commit(self, committed: Sequence[int]) -> None:
        """The ingest's transaction committed: send the post this thread holds, now."""
        job, self._leased.job = getattr(self._leased, "job", None), None
        if job is not None and job.id in committed and self.run_leased is not None:
            self.run_leased(job)
