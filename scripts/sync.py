"""Sync of one CRM chat: the work behind a signal (SPEC §6).

One signal costs O(1) CRM calls: the chat's newest messages (one call for a known chat,
more only when over a page of messages arrived at once) and, for a chat seen for the
first time, its metadata. Everything is stored idempotently (a CRM message once by id);
client messages not yet announced are fanned out as durable send jobs in the same
transaction that marks them announced — a crash before the commit repeats the sync, a
crash after it leaves the sends queued. Messages the shop already answered (a shop
message after them, e.g. typed in the CRM web page) are stored but not announced.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from bot.callbacks import CallbackCodec
from bot.posts import posts_for_client_message
from config import Settings
from crm.client import CrmClient, CrmMessage
from models.chats import ChatRepository, kind_of
from models.db import Database
from models.jobs import SEND, JobQueue
from models.messages import MessageRepository
from models.pins import PinRepository
from services.claims import ChatClaims
from utils.clock import utc_now

log = logging.getLogger(__name__)

PAGE = 50
MAX_PAGES = 20
# A chat seen for the first time (a new customer, or KeepDesk's first days) may carry a
# long past: only its unread client messages are news, and only the newest few of them.
FIRST_SIGHT_ANNOUNCE = 10


@dataclass(frozen=True)
class SyncResult:
    id_i: int
    fetched: int
    announced: int
    posts: int


def send_lane(chat_id: int) -> str:
    return f"send:{chat_id}"


class ChatSync:
    def __init__(self, settings: Settings, db: Database, jobs: JobQueue, crm: CrmClient,
                 codec: CallbackCodec, claims: ChatClaims,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.clock = clock
        self.db = db
        self.jobs = jobs
        self.crm = crm
        self.codec = codec
        self.chats = ChatRepository(db)
        self.messages = MessageRepository(db)
        self.pins = PinRepository(db)
        self.claims = claims

    def __call__(self, job) -> None:
        result = self.sync(int(job.payload["id_i"]), signal_at=job.payload.get("signal_at"))
        log.info("synced chat %s: %s fetched, %s announced, %s posts queued",
                 result.id_i, result.fetched, result.announced, result.posts)

    def sync(self, id_i: int, *, signal_at: float | None = None) -> SyncResult:
        known = self.chats.get(id_i)
        last_known = self.messages.max_id(id_i) if known else None
        fetched = self._fetch(id_i, last_known)
        meta = None if known else self.crm.find_chat(id_i)
        if known is None and meta is None and not fetched:
            # The CRM knows nothing of this id (a stray signal, a typo in /connect_to_chat):
            # no empty chat is stored.
            return SyncResult(id_i, 0, 0, 0)
        # A pin past its window no longer holds the chat: the news goes to everyone.
        self.claims.expire_due(self.clock(), id_i=id_i)
        with self.db.transaction() as cur:
            new = len(fetched) - len(self.messages.known_ids(cur, [m.id for m in fetched]))
            if known is not None:
                cnt_msg = known.cnt_msg + new      # the CRM's count, followed message by message
            else:
                cnt_msg = max(meta.cnt_msg, len(fetched)) if meta else len(fetched)
            self.chats.save(
                cur, id_i,
                email=meta.email if meta else None,
                product=meta.product if meta else None,
                last_date=max((m.date_written for m in fetched if m.date_written), default=None),
                cnt_msg=cnt_msg, cnt_new=meta.cnt_new if meta else None,
                kind=kind_of(meta.product if meta else None, self.settings.task_product_pattern))
            self.messages.store(cur, fetched)
            if known is not None:
                self.chats.recount_unread(cur, id_i)
            to_post, silently = self._news(cur, id_i, first_sight=known is None)
            chat = self.chats.get(id_i, cur)
            active = self.pins.active(id_i, cur)
            posts = []
            for message in to_post:
                posts += posts_for_client_message(
                    chat, message, shared_chat_id=self.settings.chat_new_message,
                    web_url=self.settings.keeping_web_url, codec=self.codec,
                    pinned_to=active[1] if active else None,
                    forced_language=self.settings.bot_language)
            queued_at = time.time()
            for post in posts:
                payload = dict(post.payload(), queued_at=queued_at, signal_at=signal_at or queued_at)
                self.jobs.enqueue(SEND, "tg_send", payload, dedupe_key=post.dedupe_key,
                                  lane=send_lane(post.chat_id), cur=cur)
            self.messages.mark_announced(cur, [m.id for m in to_post + silently])
        return SyncResult(id_i, len(fetched), len(to_post), len(posts))

    def _fetch(self, id_i: int, last_known: int | None) -> list[CrmMessage]:
        """The newest page; older pages only while every message on a page is new to us."""
        page = self.crm.messages(id_i, count=PAGE)
        collected = {m.id: m for m in page}
        pages = 1
        while (last_known is not None and len(page) >= PAGE and page[0].id > last_known + 1
               and pages < MAX_PAGES):
            page = self.crm.messages(id_i, count=PAGE, id_from=page[0].id - 1)
            collected.update((m.id, m) for m in page)
            pages += 1
        return [collected[k] for k in sorted(collected)]

    def _news(self, cur, id_i: int, *, first_sight: bool):
        """(client messages to announce, client messages to mark without a post)."""
        pending = self.messages.unannounced(cur, id_i)
        last_shop = self.messages.last_shop_id(cur, id_i)
        # Older than the retention period before the chat's newest message: purged by
        # /clean once and fetched again now, not news (measured on the CRM's own dates).
        dates = [m.date_written for m in pending if m.date_written is not None]
        retained_since = (max(dates) - timedelta(days=self.settings.retention_days)) if dates else None
        to_post, silently = [], []
        for message in pending:
            answered = last_shop is not None and last_shop > message.id
            old_news = ((first_sight and message.date_seen is not None) or
                        (retained_since is not None and message.date_written is not None
                         and message.date_written < retained_since))
            (silently if answered or message.deleted or old_news else to_post).append(message)
        if first_sight and len(to_post) > FIRST_SIGHT_ANNOUNCE:
            silently += to_post[:-FIRST_SIGHT_ANNOUNCE]
            to_post = to_post[-FIRST_SIGHT_ANNOUNCE:]
        return to_post, silently
