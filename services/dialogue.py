"""The 1C notifications' dialogue with the customer (CHANNELS.md §2), on WhatsApp.

Some customer messages answer a notification, and KeepDesk handles them itself before
the desk sees them:

* an appointment notice's buttons: a payload or text containing confirm / підтвердити /
  подтвердить confirms the appointment (within ONEC_EXPIRY_HOURS of its notice);
  unsubscribe / відписатися / отписаться marks the phone — no notification template is
  sent to it again;
* a review request: first a score 0–5 (the template's quick-reply buttons, or the digit
  typed), then a text; the finished review is kept for 1C, and a score of 3 or lower opens
  a desk conversation (the review is posted like a customer message, so a manager reacts).

Anything else the customer writes goes on to the desk as usual. Each answer is handled
once: its WhatsApp message id is claimed in the same transaction as the state it changes,
so Meta's re-delivery of the same webhook changes nothing. The short acknowledgements to
the customer are ordinary `wa_outbox` messages, sent by the `wa_send` step.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
from datetime import datetime, timedelta
from typing import Callable

from channels.base import Incoming
from config import Settings
from models.db import Database
from models.inbound import InboundMessage
from models.jobs import JobQueue
from models.whatsapp import OnecRepository, OutboxRepository
from services.notifications import queue_send
from utils.phones import display

log = logging.getLogger(__name__)

CONFIRM = ("confirm", "підтвердити", "подтвердить", "підтверджую", "подтверждаю")
UNSUBSCRIBE = ("unsubscribe", "відписатися", "отписаться", "відписатись", "отписатся")
LOW_SCORE = 3
_SCORE = re.compile(r"^\s*([0-5])\s*(?:⭐|\*|/\s*5)?\s*$")

REPLIES = {
    "uk": {"confirmed": "Дякуємо! Ваш запис підтверджено.",
           "unsubscribed": "Ви відписалися: більше ми не надсилатимемо вам повідомлень.",
           "ask_text": "Дякуємо за оцінку! Напишіть, будь ласка, кілька слів про ваш візит.",
           "thanks": "Дякуємо за відгук!",
           "review": "⭐ Відгук: {score}/5\n{text}"},
    "ru": {"confirmed": "Спасибо! Ваша запись подтверждена.",
           "unsubscribed": "Вы отписались: больше мы не будем присылать вам сообщения.",
           "ask_text": "Спасибо за оценку! Напишите, пожалуйста, несколько слов о визите.",
           "thanks": "Спасибо за отзыв!",
           "review": "⭐ Отзыв: {score}/5\n{text}"},
    "en": {"confirmed": "Thank you! Your appointment is confirmed.",
           "unsubscribed": "You have unsubscribed: we will not send you notifications any more.",
           "ask_text": "Thank you for the score! Please write a few words about your visit.",
           "thanks": "Thank you for your review!",
           "review": "⭐ Review: {score}/5\n{text}"},
}


def _marker(message: InboundMessage) -> str:
    return hashlib.sha256(f"dialogue\0{message.external_id}".encode()).hexdigest()


def _words(message: InboundMessage) -> str:
    return f"{message.payload or ''} {message.text or ''}".lower()


class NotificationDialogue:
    """An ingest interceptor (services/ingest.py): takes the dialogue's answers out of a
    WhatsApp batch; a low review comes back as the message the desk is shown."""

    def __init__(self, settings: Settings, db: Database, jobs: JobQueue, channels,
                 clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.db = db
        self.jobs = jobs
        self.clock = clock
        self.onec = OnecRepository(db)
        self.outbox = OutboxRepository(db)
        language = (settings.whatsapp_template_language or "uk").split("_")[0].lower()
        self.replies = REPLIES.get(language, REPLIES["uk"])

    def __call__(self, incoming: Incoming) -> Incoming:
        if incoming.key.channel != "whatsapp" or not incoming.messages:
            return incoming
        kept = []
        for message in incoming.messages:
            shown = self.answer(incoming.key.account, incoming.key.external_id, message) \
                if message.from_customer else message
            if shown is not None:
                kept.append(shown)
        if kept == list(incoming.messages):
            return incoming
        return dataclasses.replace(incoming, messages=kept)

    def answer(self, account: str, phone: str, message: InboundMessage) -> InboundMessage | None:
        """None when the dialogue took the message; else what the desk is shown."""
        if self.onec.request_seen(_marker(message)):
            return None   # Meta delivered this answer again: handled already
        now = self.clock()
        since = now - timedelta(hours=self.settings.onec_expiry_hours)
        words = _words(message)
        appointment = self.onec.latest_appointment(phone)
        recent = appointment is not None and appointment["created_at"] >= since
        if any(w in words for w in UNSUBSCRIBE) and (message.payload or recent):
            return self._once(message, lambda cur: self._unsubscribe(cur, account, phone, now))
        if any(w in words for w in CONFIRM) and recent:
            return self._once(message, lambda cur: self._confirm(cur, account, phone, appointment, now))
        review = self.onec.open_review(phone, since)
        if review is None:
            return message
        if review["state"] == "score":
            score = _SCORE.match(message.payload or "") or _SCORE.match(message.text or "")
            if score is None:
                return message   # not a score: an ordinary message, for the desk
            return self._once(message, lambda cur: self._scored(cur, account, phone, review,
                                                                int(score.group(1))))
        if message.payload or not (message.text or "").strip():
            return message
        shown = dataclasses.replace(message, text=self.replies["review"].format(
            score=review["score"], text=message.text.strip()))
        low = review["score"] is not None and review["score"] <= LOW_SCORE
        taken = self._once(message, lambda cur: self._reviewed(cur, account, phone, review,
                                                              message.text.strip(), now))
        # A low score opens a desk conversation: the review is shown as the customer's message.
        return shown if taken is None and low else taken

    # -- each answer once ------------------------------------------------------------------

    def _once(self, message: InboundMessage, act: Callable) -> InboundMessage | None:
        with self.db.transaction() as cur:
            if self.onec.claim_request(cur, _marker(message), self.clock(), None):
                act(cur)
        return None

    def _reply(self, cur, account: str, phone: str, key: str) -> None:
        outbox_id = self.outbox.add(cur, account=account, phone=phone, purpose="dialogue",
                                    kind="text", body={"text": self.replies[key]})
        queue_send(self.jobs, cur, outbox_id, phone)

    def _unsubscribe(self, cur, account: str, phone: str, now: datetime) -> None:
        if self.onec.unsubscribe(cur, phone, account, now):
            log.info("%s unsubscribed from notifications", display(phone))
            self._reply(cur, account, phone, "unsubscribed")

    def _confirm(self, cur, account: str, phone: str, appointment: dict, now: datetime) -> None:
        if self.onec.confirm_appointment(cur, appointment["id"], now):
            log.info("%s confirmed appointment %s", display(phone), appointment["id"])
            self._reply(cur, account, phone, "confirmed")

    def _scored(self, cur, account: str, phone: str, review: dict, score: int) -> None:
        if self.onec.review_scored(cur, review["id"], score):
            review["score"] = score
            self._reply(cur, account, phone, "ask_text")

    def _reviewed(self, cur, account: str, phone: str, review: dict, text: str, now: datetime) -> None:
        if self.onec.review_done(cur, review["id"], text[:5000], now, None):
            self._reply(cur, account, phone, "thanks")
