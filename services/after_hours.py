"""The answer outside working hours: a customer who writes while the shop is closed
(outside WORKING_HOURS in TZ, or on one of HOLIDAYS) is told once when to expect an
answer ("Ми відповімо у понеділок після 09:00").

Decided in the ingest's transaction, for the customer messages it announces: one row per
conversation and closed period (`auto_replies`, keyed by the moment the shop opens) —
however many workers ingest the same message, one reply is recorded, as an `outbound`
message of the shop itself (manager 0), and delivered by the same `deliver` step as a
manager's answer: the channel sends it once, the history shows it (marked automatic),
the CRM hears it. The reply does not end the customer's wait: the SLA counts on until a
manager answers. On WhatsApp outside the 24-hour window only an approved template may go
(AFTER_HOURS_TEMPLATE), or nothing.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone
from typing import Callable, Sequence

from channels import Channels
from config import Settings
from models.auto_replies import AUTOMATIC, CLOSED, AutoReplyRepository
from models.conversations import Conversation, ConversationRepository
from models.db import Database
from models.jobs import UPDATES, JobQueue
from models.messages import MessageRepository, StoredMessage
from models.outbound import OutboundRepository
from utils.hours import WorkingHours, opens_at

log = logging.getLogger(__name__)

LANGUAGES = ("uk", "en")
DEFAULT_TEXTS = {
    "uk": "Дякуємо за повідомлення! Зараз ми не працюємо. Ми відповімо {when}.",
    "en": "Thank you for your message! We are closed now. We will answer {when}.",
}
# The typographic apostrophe (as Ukrainian writes it): it passes through the CRM's HTML
# unchanged, so the CRM's copy of the reply is still known as automatic by its text.
_DAYS_UK = ("у понеділок", "у вівторок", "у середу", "у четвер", "у п’ятницю", "у суботу",
            "у неділю")
_DAYS_EN = ("on Monday", "on Tuesday", "on Wednesday", "on Thursday", "on Friday",
            "on Saturday", "on Sunday")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[A-Za-z]")


def customer_language(messages: Sequence[StoredMessage]) -> str:
    """What the customer writes in, where it shows: Latin letters only → English;
    otherwise (Cyrillic, or nothing to tell by) Ukrainian."""
    text = " ".join(m.text or "" for m in messages if m.from_client)
    if _LATIN.search(text) and not _CYRILLIC.search(text):
        return "en"
    return "uk"


def when_words(opening: datetime, now: datetime, hours: WorkingHours, language: str) -> str:
    """"у понеділок після 09:00", "завтра після 09:00" — the opening in the shop's time."""
    local_open = opening.replace(tzinfo=timezone.utc).astimezone(hours.zone)
    local_now = now.replace(tzinfo=timezone.utc).astimezone(hours.zone)
    days = (local_open.date() - local_now.date()).days
    at = local_open.strftime("%H:%M")
    if language == "en":
        day = ("today" if days == 0 else "tomorrow" if days == 1
               else _DAYS_EN[local_open.weekday()] if days < 7
               else "on " + local_open.strftime("%d.%m"))
        return f"{day} after {at}"
    day = ("сьогодні" if days == 0 else "завтра" if days == 1
           else _DAYS_UK[local_open.weekday()] if days < 7 else local_open.strftime("%d.%m"))
    return f"{day} після {at}"


def reply_text(settings: Settings, channel: str, language: str, when: str) -> str:
    words = settings.after_hours_text(channel, language) or DEFAULT_TEXTS[language]
    return words.replace("{when}", when)


class AfterHours:
    def __init__(self, settings: Settings, db: Database, jobs: JobQueue, channels: Channels,
                 clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.hours = settings.hours
        self.holidays = frozenset(settings.holidays)
        self.enabled = frozenset(settings.after_hours_channels)
        self.jobs = jobs
        self.channels = channels
        self.clock = clock
        self.replies = AutoReplyRepository(db)
        self.conversations = ConversationRepository(db)
        self.messages = MessageRepository(db)
        self.outbound = OutboundRepository(db)

    def opening(self, now: datetime) -> datetime | None:
        """When the shop opens next; None while it is open."""
        if self.hours.always and not self.holidays:
            return None
        return opens_at(self.hours, now, self.holidays)

    def after_store(self, cur, conversation: Conversation, announced: Sequence[StoredMessage],
                    now: datetime) -> int | None:
        """In the ingest's transaction: the id of the automatic reply recorded, if one is."""
        if not announced or conversation.channel not in self.enabled or conversation.is_task:
            return None
        channel = self.channels.get(conversation.channel)
        if channel is None:
            return None
        opening = self.opening(now)
        if opening is None:
            return None
        language = customer_language(announced)
        reply_id = self.replies.decide(cur, conversation.id, CLOSED, opening.isoformat(),
                                       language, now)
        if reply_id is None:
            return None   # told already in this closed period
        fresh = self.conversations.get(conversation.id, cur) or conversation
        text = reply_text(self.settings, conversation.channel, language,
                          when_words(opening, now, self.hours, language))
        template = None
        if channel.window_closed(fresh, now):
            if not self.settings.after_hours_template:
                log.info("conversation %s: outside WhatsApp's window, no AFTER_HOURS_TEMPLATE:"
                         " no answer outside working hours", conversation.id)
                return None
            template = {"name": self.settings.after_hours_template,
                        "language": self.settings.whatsapp_template_language, "params": []}
        return send_automatic(cur, self, conversation.id, CLOSED, reply_id, text, template)


def send_automatic(cur, owner, conversation_id: int, kind: str, reply_id: int, text: str,
                   template: dict | None = None) -> int | None:
    """Record the shop's own message (outbound, manager 0) with its `deliver` step, in the
    deciding transaction. `owner` has `outbound`, `messages`, `replies` and `jobs`."""
    from services.writing import deliver_lane
    outbound_id = owner.outbound.record(
        cur, key=f"auto:{kind}:{reply_id}", conversation_id=conversation_id,
        manager_id=AUTOMATIC, tg_chat_id=0, tg_message_id=reply_id, text=text,
        attachment=None, after_message_id=owner.messages.max_numeric_external_id(conversation_id),
        template=template)
    if outbound_id is None:
        return None
    owner.replies.attach(cur, reply_id, outbound_id)
    owner.jobs.enqueue(UPDATES, "deliver", {"outbound_id": outbound_id},
                       dedupe_key=f"out:{outbound_id}", lane=deliver_lane(conversation_id),
                       priority=1, cur=cur)
    return outbound_id
