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

from bot import formatting as fmt
from bot.callbacks import CallbackCodec
from bot.formatting import Html
from bot.outbox import TelegramOut, send_lane
from bot.posts import POST_CAPTION_LIMIT, POST_TEXT_LIMIT, Post, Source, posts_for_client_message
from bot.texts import language_for, text
from config import Settings
from models.conversations import Conversation
from models.jobs import Job, JobQueue
from models.messages import StoredMessage
from models.users import User


class TelegramDesk:
    def __init__(self, settings: Settings, codec: CallbackCodec, jobs: JobQueue, channels,
                 out: TelegramOut) -> None:
        self.settings = settings
        self.codec = codec
        self.jobs = jobs
        self.out = out
        self.channels = channels
        # Set by a worker's runtime (doors only queue): the shared limiter, and how to run a
        # job this thread holds. Without them every post waits in the queue.
        self.limiter = None
        self.run_leased: Callable[[Job], object] | None = None
        # Admins joined beside a holder get their own copies (bot/watchers.py), in the
        # same transaction: one desk announces to everyone who should see the news.
        self.watchers = None
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
                job = self.out.store_leased(payload, key=post.dedupe_key, cur=cur)
                if job is not None:
                    self._leased.job = job
                    ids.append(job.id)
                    continue
            job_id = self.out.store(payload, key=post.dedupe_key, cur=cur)
            if job_id is not None:
                ids.append(job_id)
        if self.watchers is not None:
            ids += self.watchers.announce(cur, conversation, messages, holder)
        return ids

    def repost_taken_back(self, cur, key: str, conversation: Conversation, message: StoredMessage,
                          holder: User, reason: str, minutes: int) -> None:
        """A chat taken back from its holder (services/sla.py): the customer's message goes
        to the shared chat again, with why — in the post when there is room, else just
        before it."""
        shared = self.settings.chat_new_message
        note = text(f"post_taken_back_{reason}", language_for(None, self.settings.bot_language),
                    name=fmt.shorten(holder.display_name, 40), minutes=minutes)
        posts = posts_for_client_message(conversation, message, shared_chat_id=shared,
                                         source=self.source_of(conversation), codec=self.codec,
                                         pinned_to=None, forced_language=self.settings.bot_language)
        limit = POST_CAPTION_LIMIT if posts[0].method == "sendPhoto" else POST_TEXT_LIMIT
        if fmt.visible_len(posts[0].text) + fmt.visible_len(note) + 1 <= limit:
            posts[0].text = Html(note + "\n" + posts[0].text)
        else:
            posts.insert(0, Post(chat_id=shared, method="sendMessage", text=note,
                                 conversation_id=conversation.id, message_id=message.id, part=-1))
        for post in posts:
            post.merge_html = None
            self.out.post(post, key=f"{key}:{post.part}", cur=cur)

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
