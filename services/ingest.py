"""Ingest a customer's messages (SPEC §6; CHANNELS.md §1): the one entry point every
channel hands its inbound batches to, whatever its wire format.

Everything is stored idempotently — a conversation once per (channel, account, external
id), a message once per its channel's id — and the customer messages not yet announced
are fanned out to the desk(s) in the same transaction that marks them announced: a crash
before the commit repeats the ingest, a crash after it leaves the posts queued. Messages
the shop already answered (a shop message after them, e.g. typed in the CRM's web page)
are stored but not announced. A conversation seen for the first time (a new customer, or
KeepDesk's first days next to a CRM with a past) announces only its unread customer
messages, and only the newest few.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Protocol, Sequence

from channels.base import Incoming
from models.conversations import Conversation, ConversationRepository, kind_of
from models.db import Database
from models.inbound import ConversationInfo
from models.messages import MessageRepository, StoredMessage
from models.pins import PinRepository
from models.users import User
from services.claims import ChatClaims
from utils.clock import utc_now

log = logging.getLogger(__name__)

FIRST_SIGHT_ANNOUNCE = 10
_NOTHING = ConversationInfo()


class DeskPort(Protocol):
    """A desk the news goes to (the Telegram desk: `bot/fanout.py`)."""

    def announce(self, cur, conversation: Conversation, messages: Sequence[StoredMessage],
                 holder: User | None, signal_at: float | None) -> list[int]:
        """Queue the desk's posts of these messages in `cur`; the ids of the jobs queued."""

    def after_commit(self, committed: Sequence[int]) -> None:
        """The announcing transaction committed with these jobs: a desk may act on them now."""


@dataclass(frozen=True)
class IngestResult:
    conversation_id: int | None
    stored: int = 0          # messages in the batch
    new: int = 0             # of those, not stored before
    announced: int = 0       # customer messages announced to the desk
    posts: tuple[int, ...] = ()   # the desk's jobs queued, first post first


class Ingest:
    def __init__(self, db: Database, claims: ChatClaims, desks: Sequence[DeskPort], *,
                 retention_days: int, task_pattern: str,
                 clock: Callable[[], datetime] = utc_now,
                 statuses: Callable | None = None,
                 interceptors: Sequence[Callable[[Incoming], Incoming]] = (),
                 waits=None, orders=None, after_hours=None, assign=None) -> None:
        self.db = db
        # A new conversation given to a manager on shift (services/auto_assign.py).
        self.assign = assign
        # The answer outside working hours (services/after_hours.py::AfterHours).
        self.after_hours = after_hours
        # How long customers wait (services/sla.py::Waits), and the order behind a new
        # conversation (services/orders.py::OrderContext).
        self.waits = waits
        self.orders = orders
        self.claims = claims
        self.desks = list(desks)
        self.retention_days = retention_days
        self.task_pattern = task_pattern
        self.clock = clock
        # Delivery statuses (services/statuses.py), and services that take some messages
        # out of a batch before the desk sees it (the 1C dialogue: services/dialogue.py).
        self.statuses = statuses
        self.interceptors = list(interceptors)
        self.conversations = ConversationRepository(db)
        self.messages = MessageRepository(db)
        self.pins = PinRepository(db)

    def __call__(self, incoming: Incoming) -> IngestResult:
        if incoming.statuses and self.statuses is not None:
            self.statuses(incoming.key, incoming.statuses)
        for intercept in self.interceptors:
            incoming = intercept(incoming)
        existing = (self.conversations.find(incoming.key) if incoming.known is ...
                    else incoming.known)
        if existing is None and incoming.info is None and not incoming.messages:
            # The channel knows nothing of this conversation (a stray signal, a typo in
            # /connect_to_chat): no empty conversation is stored.
            return IngestResult(None)
        info = incoming.info
        kind = kind_of(info.title, self.task_pattern) if info and info.title is not None else None
        conversation_id = existing.id if existing else self.conversations.ensure(incoming.key)
        fetched = incoming.messages
        now = self.clock()
        with self.db.transaction() as cur:
            known = self.messages.known_external_ids(cur, conversation_id,
                                                     [m.external_id for m in fetched])
            new = len(fetched) - len(known)
            if existing is not None:
                cnt_msg = existing.cnt_msg + new   # the channel's count, followed message by message
            else:
                cnt_msg = max(info.cnt_msg or 0, len(fetched)) if info else len(fetched)
            customer_dates = [m.date_written for m in fetched if m.from_customer and m.date_written]
            self.messages.store(cur, conversation_id, fetched)
            # A known conversation's unread count follows its stored messages (its sync asks
            # the channel only for messages); a new one's is what the channel said.
            self.conversations.save_info(
                cur, conversation_id, info or _NOTHING,
                last_date=max((m.date_written for m in fetched if m.date_written), default=None),
                last_customer_at=max(customer_dates, default=None), cnt_msg=cnt_msg, kind=kind,
                recount_unread=existing is not None)
            to_post, silently = self._news(cur, conversation_id, first_sight=existing is None)
            # What a post shows of the conversation changes only with what the channel
            # said of it (a known one's sync usually says nothing).
            conversation = (existing if existing is not None and info is None
                            else self.conversations.get(conversation_id, cur))
            # A pin past its window no longer holds the conversation: the news goes to
            # everyone (ended here, conditionally: a reply that renewed it meanwhile wins).
            holder = self.claims.holder_or_expire(cur, conversation_id, now)
            if self.waits is not None:
                self.waits.after_store(cur, conversation, to_post, now)
            if holder is None and existing is None and to_post and self.assign is not None:
                holder = self.assign.assign(cur, conversation, now)
            if self.after_hours is not None and to_post:
                self.after_hours.after_store(cur, conversation, to_post, now)
            posts: list[int] = []
            if to_post:
                for desk in self.desks:
                    posts += desk.announce(cur, conversation, to_post, holder, incoming.signal_at)
            self.messages.mark_announced(cur, [m.id for m in to_post + silently])
        if posts:
            for desk in self.desks:
                desk.after_commit(posts)
        if existing is None and self.orders is not None and self.orders.offered(conversation):
            # A new conversation's order is fetched at once (a known one's when its card is
            # shown or it is taken: a signal of a known chat stays one call to the channel).
            self.orders.request(conversation_id)
        return IngestResult(conversation_id, len(fetched), new, len(to_post), tuple(posts))

    def _news(self, cur, conversation_id: int, *,
              first_sight: bool) -> tuple[list[StoredMessage], list[StoredMessage]]:
        """(customer messages to announce, customer messages to mark without a post)."""
        pending, last_shop = self.messages.unannounced(cur, conversation_id)
        # Older than the retention period before the conversation's newest message: purged
        # by /clean once and fetched again now, not news (measured on the source's dates).
        dates = [m.date_written for m in pending if m.date_written is not None]
        retained_since = (max(dates) - timedelta(days=self.retention_days)) if dates else None
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

