"""A score after the answer: when a manager marks a conversation done ("🏁 Розмову
завершено", or a task's status set to done), the customer is asked once per conversation
per day (in TZ) to score the help 1–5; the request is the shop's own message, delivered
by the `deliver` step like the answer outside working hours (plain text on every channel;
nothing on WhatsApp outside its 24-hour window).

The customer's reply — a digit 1–5 first, and an optional comment after it — is taken out
of the batch before the desk sees it (no new wait, no shared-chat post): it is stored in
the conversation's history, kept in `scores` (once per request) for the reports, and told
to the manager who marked it done; a low score (≤ 2) is also posted to the shared chat
with "✍ Відповісти", so someone reacts.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from channels import Channels
from channels.base import Incoming
from config import Settings
from models.auto_replies import SCORE, AutoReplyRepository, ScoreRepository
from models.conversations import Conversation, ConversationRepository
from models.db import Database
from models.jobs import JobQueue
from models.locks import LockManager
from models.messages import MessageRepository
from models.outbound import OutboundRepository
from models.pins import DELETE_PIN, PinRepository
from models.users import User
from services.after_hours import customer_language, send_automatic
from services.claims import ChatClaims
from services.notices import Button, Notice, Notices
from services.results import Refusal, Refused

log = logging.getLogger(__name__)

LOW_SCORE = 2
ANSWER_WITHIN = timedelta(days=1)     # a digit later than this is just a message
REQUEST_TEXTS = {
    "uk": "Дякуємо, що звернулися! Оцініть, будь ласка, нашу допомогу від 1 до 5 — надішліть"
          " одну цифру (і, якщо хочете, кілька слів).",
    "en": "Thank you for contacting us! Please rate our help from 1 to 5 — send one digit"
          " (and a few words, if you like).",
}
_SCORE = re.compile(r"^\s*([1-5])(?![0-9])(?:\s*(?:/\s*5|⭐+|\*))?[\s.,;:!—–-]*(.*)$", re.DOTALL)


def parse_score(text: str | None) -> tuple[int, str | None] | None:
    """"5", "4 все добре", "2/5 довго" → (score, comment); None when it is not a score."""
    match = _SCORE.match(text or "")
    if match is None:
        return None
    comment = match.group(2).strip()
    return int(match.group(1)), (comment[:2000] or None)


@dataclass(frozen=True)
class MarkedDone:
    conversation: Conversation
    asked: bool                 # the customer was asked for a score now


class Scores:
    def __init__(self, settings: Settings, db: Database, jobs: JobQueue, locks: LockManager,
                 claims: ChatClaims, channels: Channels, notices: Notices, *,
                 shared_chat_id: int | None, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.jobs = jobs
        self.locks = locks
        self.claims = claims
        self.channels = channels
        self.notices = notices
        self.shared_chat_id = shared_chat_id
        self.clock = clock
        self.zone = settings.hours.zone
        self.replies = AutoReplyRepository(db)
        self.scores = ScoreRepository(db)
        self.conversations = ConversationRepository(db)
        self.messages = MessageRepository(db)
        self.outbound = OutboundRepository(db)
        self.pins = PinRepository(db)

    # -- marked done -------------------------------------------------------------------

    def mark_done(self, user: User, conversation_id: int) -> MarkedDone | Refused:
        """The holder (or an admin) marks an ordinary conversation done: the pin ends, the
        conversation is done, and the customer is asked for a score."""
        conversation = self.conversations.get(conversation_id)
        if conversation is None:
            return Refused(Refusal.UNKNOWN_CHAT)
        if conversation.is_task:
            return Refused(Refusal.NOT_A_TASK)
        now = self.clock()
        with self.locks.chat_lock(conversation_id):
            with self.db.transaction() as cur:
                current = self.claims.holder(conversation_id, now, cur)
                if current is None or (current[1].tg_id != user.tg_id and not user.is_admin):
                    return Refused(Refusal.NOT_HOLDER, current[1] if current else None)
                self.pins.end(cur, current[0].id, DELETE_PIN, now)
                self.scores.mark_done(cur, conversation_id, now)
                asked = self.ask(cur, conversation, current[1].tg_id, now) is not None
        return MarkedDone(conversation, asked)

    def ask(self, cur, conversation: Conversation, manager_id: int | None, now: datetime) -> int | None:
        """Ask the customer for a score (once per conversation per day); the outbound id."""
        channel = self.channels.get(conversation.channel)
        if channel is None:
            return None
        fresh = self.conversations.get(conversation.id, cur) or conversation
        if channel.window_closed(fresh, now):
            return None      # WhatsApp outside its window: plain text may not go
        day = now.replace(tzinfo=timezone.utc).astimezone(self.zone).date().isoformat()
        language = customer_language(self.messages.page(conversation.id, 0, 10))
        reply_id = self.replies.decide(cur, conversation.id, SCORE, day, language, now, manager_id)
        if reply_id is None:
            return None
        return send_automatic(cur, self, conversation.id, SCORE, reply_id, REQUEST_TEXTS[language])

    def after_task_done(self, conversation_id: int, manager_id: int | None) -> None:
        """A task's status was set to done: its customer is asked too."""
        conversation = self.conversations.get(conversation_id)
        if conversation is None:
            return
        with self.db.transaction() as cur:
            self.ask(cur, conversation, manager_id, self.clock())

    # -- the customer's reply ----------------------------------------------------------

    def __call__(self, incoming: Incoming) -> Incoming:
        """An ingest interceptor: the customer's score leaves the batch, kept as a score."""
        candidates = [m for m in incoming.messages if m.from_customer and parse_score(m.text)]
        if not candidates:
            return incoming
        conversation = (self.conversations.find(incoming.key) if incoming.known is ...
                        else incoming.known)
        if conversation is None:
            return incoming
        now = self.clock()
        taken = []
        for message in candidates:
            if self._take(conversation, message, now):
                taken.append(message.external_id)
        if not taken:
            return incoming
        return dataclasses.replace(incoming, messages=[m for m in incoming.messages
                                                       if m.external_id not in taken])

    def _take(self, conversation: Conversation, message, now: datetime) -> bool:
        score, comment = parse_score(message.text)
        with self.db.transaction() as cur:
            if self.messages.known_external_ids(cur, conversation.id, [message.external_id]):
                return False   # stored before (a CRM sync sees its history again)
            request = self.replies.open_request(cur, conversation.id, SCORE, now - ANSWER_WITHIN)
            if request is None or request.outbound_id is None:
                return False
            self.replies.answered(cur, request.id, now)
            self.scores.record(cur, request, conversation.channel, score, comment, now)
            self.messages.store(cur, conversation.id, [message])
            message_id = self.scores.mark_seen(cur, conversation.id, message.external_id)
            values = {"id_i": conversation.ref, "score": score, "comment": comment or "—",
                      "customer": conversation.customer or "—"}
            if request.manager_id:
                self.notices.tell(Notice(request.manager_id, "score_received", values,
                                         key=f"score:{request.id}:manager",
                                         button=Button("btn_open_chat", "openw", (conversation.id,)),
                                         conversation_id=conversation.id, purpose="notify"), cur)
            if score <= LOW_SCORE and self.shared_chat_id is not None and message_id is not None:
                self.notices.tell(Notice(self.shared_chat_id, "score_low", values,
                                         key=f"score:{request.id}:low",
                                         button=Button("btn_reply", "reply", (message_id,)),
                                         conversation_id=conversation.id, message_id=message_id,
                                         purpose="post"), cur)
        return True
