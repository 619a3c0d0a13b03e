"""Notifications and messages 1C (or any API caller) asks KeepDesk to send on WhatsApp
(CHANNELS.md §2), and the durable step that sends them.

`Notifications` decides, in one transaction, at the door: the phone is valid (normalised
by the caller, `utils/phones.py`), not unsubscribed (a notification template is never
sent to such a phone again: the request is answered OK, nothing goes out, and the log and
the record say why), not a repeat of the same request within ONEC_REPEAT_WINDOW_SECONDS
(or the same `request_id`, ever), a birthday not greeted within ONEC_BIRTHDAY_DAYS; then
the message is recorded in `wa_outbox` with its `wa_send` job, and the appointment or
review it starts is recorded beside it.

`SendOutbox` (the `wa_send` job) sends it once through the WhatsApp channel within Meta's
limits; a refusal is kept in the record (1C reads it back), a problem the shop must fix
(template, token) is a dead letter with #ERROR, Meta away or throttling is retried.
"""
from __future__ import annotations

import enum
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from channels.base import ChannelError, Rejected
from config import Settings
from models.db import Database
from models.jobs import SEND, Job, JobQueue, Permanent
from models.whatsapp import OnecRepository, OutboxRepository
from utils.clock import utc_now
from utils.phones import display

log = logging.getLogger(__name__)

NOTIFICATIONS = ("appointment", "review", "birthday", "custom")


class Outcome(enum.Enum):
    QUEUED = "queued"
    REPEATED = "repeated"            # the same request within the window: sent once already
    UNSUBSCRIBED = "unsubscribed"    # the phone unsubscribed: nothing sent
    GREETED = "greeted"              # a birthday greeting within ONEC_BIRTHDAY_DAYS: nothing sent


@dataclass(frozen=True)
class Queued:
    outcome: Outcome
    outbox_id: int | None = None


class TemplateMismatch(ValueError):
    """The template is listed in WHATSAPP_TEMPLATES with another number of parameters."""


class Notifications:
    def __init__(self, settings: Settings, db: Database, jobs: JobQueue, account: str, *,
                 ring: Callable[[int], object] | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.db = db
        self.jobs = jobs
        self.account = account
        self.ring = ring
        self.clock = clock
        self.outbox = OutboxRepository(db)
        self.onec = OnecRepository(db)
        self.known_templates = dict(settings.whatsapp_templates)

    # -- the 1C routes ---------------------------------------------------------------------

    def appointment(self, phone: str, doctor: str, date: str, time: str, *,
                    request_id: str | None = None) -> Queued:
        return self._template("appointment", self.settings.whatsapp_template_appointment, phone,
                              [doctor, date, time], request_id,
                              extra=dict(doctor=doctor, date=date, time=time))

    def review(self, phone: str, name: str, date: str | None, *, request_id: str | None = None) -> Queued:
        params = [name] + ([date] if date else [])
        return self._template("review", self.settings.whatsapp_template_review, phone, params,
                              request_id, extra=dict(name=name, date=date))

    def birthday(self, phone: str, name: str, date: str, *, request_id: str | None = None) -> Queued:
        return self._template("birthday", self.settings.whatsapp_template_birthday, phone,
                              [name, date], request_id)

    def custom(self, phone: str, sample: str, params: list[str], *,
               request_id: str | None = None) -> Queued:
        return self._template("custom", sample, phone, params, request_id)

    def message(self, phone: str, kind: str, body: dict, *, request_id: str | None = None,
                account: str | None = None) -> Queued:
        """A free-form message for the API (text, file by URL or kept, location, contact),
        from the default account or the one named."""
        return self._queue("api", phone, kind, body, request_id, account=account)

    # -- deciding --------------------------------------------------------------------------

    def check_template(self, name: str | None, params: list[str]) -> None:
        if not name:
            raise TemplateMismatch("no template is configured for this notification")
        expected = self.known_templates.get(name)
        if expected is not None and expected != len(params):
            raise TemplateMismatch(f"template {name} takes {expected} parameters, {len(params)} given")

    def _template(self, purpose: str, name: str | None, phone: str, params: list[str],
                  request_id: str | None, extra: dict | None = None) -> Queued:
        self.check_template(name, params)
        body = {"name": name, "language": self.settings.whatsapp_template_language, "params": params}
        return self._queue(purpose, phone, "template", body, request_id, extra)

    def _fingerprint(self, purpose: str, phone: str, kind: str, body: dict,
                     request_id: str | None) -> str:
        if request_id:
            return hashlib.sha256(f"rid\0{request_id}".encode()).hexdigest()
        return hashlib.sha256(json.dumps([purpose, phone, kind, body], ensure_ascii=False,
                                         sort_keys=True).encode()).hexdigest()

    def _queue(self, purpose: str, phone: str, kind: str, body: dict, request_id: str | None,
               extra: dict | None = None, account: str | None = None) -> Queued:
        if account is not None and account != self.account:
            return Notifications(self.settings, self.db, self.jobs, account, ring=self.ring,
                                 clock=self.clock)._queue(purpose, phone, kind, body, request_id, extra)
        now = self.clock()
        window = None if request_id else timedelta(seconds=self.settings.onec_repeat_window_seconds)
        fingerprint = self._fingerprint(purpose, phone, kind, body, request_id)
        with self.db.transaction() as cur:
            if purpose in NOTIFICATIONS and self.onec.is_unsubscribed(phone, cur):
                self.outbox.add(cur, account=self.account, phone=phone, purpose=purpose, kind=kind,
                                body=body, status="skipped", error="the phone unsubscribed")
                log.info("1C %s to %s not sent: the phone unsubscribed", purpose, display(phone))
                return Queued(Outcome.UNSUBSCRIBED)
            if not self.onec.claim_request(cur, fingerprint, now, window):
                log.info("1C %s to %s repeated within the window: sent once", purpose, display(phone))
                return Queued(Outcome.REPEATED)
            if purpose == "birthday" and self.outbox.sent_since(
                    phone, "birthday", now - timedelta(days=self.settings.onec_birthday_days), cur):
                self.outbox.add(cur, account=self.account, phone=phone, purpose=purpose, kind=kind,
                                body=body, status="skipped", error="greeted within the last days")
                log.info("birthday greeting to %s not sent: greeted already", display(phone))
                return Queued(Outcome.GREETED)
            outbox_id = self.outbox.add(cur, account=self.account, phone=phone, purpose=purpose,
                                        kind=kind, body=body)
            self.onec.link_request(cur, fingerprint, outbox_id)
            if purpose == "appointment":
                self.onec.add_appointment(cur, phone=phone, account=self.account, outbox_id=outbox_id,
                                          now=now, **extra)
            elif purpose == "review":
                self.onec.add_review(cur, phone=phone, account=self.account, outbox_id=outbox_id,
                                     name=extra["name"], date=extra.get("date"), now=now)
            job_id = queue_send(self.jobs, cur, outbox_id, phone)
        if self.ring is not None and job_id is not None:
            self.ring(job_id)
        return Queued(Outcome.QUEUED, outbox_id)


def queue_send(jobs: JobQueue, cur, outbox_id: int, phone: str) -> int | None:
    """The durable step that sends one `wa_outbox` message (one customer's in order)."""
    return jobs.enqueue_id(SEND, "wa_send", {"outbox_id": outbox_id}, dedupe_key=f"wa:out:{outbox_id}",
                           lane=f"wa:{phone}", cur=cur)


def summary(kind: str, body: dict) -> str:
    """What a message KeepDesk sent on its own reads as in the conversation's history."""
    if kind == "template":
        params = ", ".join(str(p) for p in body.get("params") or [])
        return f"📋 {body.get('name')}" + (f": {params}" if params else "")
    if kind == "text":
        return str(body.get("text") or "")
    if kind in ("image", "document"):
        return "\n".join(filter(None, [f"📎 {body.get('filename') or body.get('link') or ''}",
                                       body.get("caption") or ""]))
    if kind == "location":
        return f"📍 {body.get('latitude')}, {body.get('longitude')} {body.get('name') or ''}".strip()
    if kind == "contact":
        return f"👤 {body.get('first_name') or ''} +{body.get('phone')}".strip()
    return kind


class SendOutbox:
    """The `wa_send` job."""

    def __init__(self, db: Database, channels, clock: Callable[[], datetime] = utc_now, *,
                 batches: Callable | None = None, fallback=None) -> None:
        self.db = db
        self.channels = channels
        self.clock = clock
        self.outbox = OutboxRepository(db)
        self.onec = OnecRepository(db)
        self.batches = batches    # services/gateways.py::BatchSend: providers that send in batches
        self.fallback = fallback  # services/sms.py::SmsFallback: a failed notice goes by SMS

    def __call__(self, job: Job) -> None:
        message = self.outbox.get(int(job.payload["outbox_id"]))
        if message is None or message.channel != "whatsapp":
            return None  # WhatsApp failed it and it went by SMS
        if message.status != "queued":
            if self.batches is not None and message.batch_id is not None:
                self.batches.settled_before(job, message)
            return None  # settled already
        channel = self.channels.get("whatsapp")
        if channel is None:
            raise Permanent("WhatsApp is not configured", f"wa_outbox {message.id}")
        if message.purpose in NOTIFICATIONS and self.onec.is_unsubscribed(message.phone):
            with self.db.transaction() as cur:
                self.outbox.settle(cur, message.id, "skipped", self.clock(), error="the phone unsubscribed")
            return None
        if self.batches is not None and channel.provider_for(message.account).supports("batch"):
            return self.batches(job, message, channel)
        try:
            unsure_since = message.attempted_at
            sent = channel.send_to(message.account, message.phone, message.kind, message.body,
                                   ref=f"o{message.id}", unsure_since=unsure_since,
                                   attempting=None if unsure_since is not None else
                                   lambda: self.outbox.mark_attempt(message.id, self.clock()))
        except Rejected as exc:
            with self.db.transaction() as cur:
                self.outbox.settle(cur, message.id, "failed", self.clock(),
                                   error_code=getattr(exc, "code", None), error=exc.reason)
                self._fall_back(cur, message.id)
            log.warning("WhatsApp refused message %s to %s: %s", message.id, display(message.phone),
                        exc.reason)
            return None
        except ChannelError as exc:
            if exc.transient:
                raise
            raise Permanent(f"WhatsApp refused a {message.purpose} message", str(exc)) from exc
        with self.db.transaction() as cur:
            self.outbox.settle(cur, message.id, "sent", self.clock(), external_id=sent.external_id)
        if sent.external_id:
            channel.record_shop_message(message.account, message.phone, sent.external_id,
                                        summary(message.kind, message.body))
        return None

    def dead(self, job: Job, exc: BaseException) -> None:
        """Given up: the record says why (1C reads it; admins got #ERROR)."""
        with self.db.transaction() as cur:
            self.outbox.settle(cur, int(job.payload["outbox_id"]), "failed", self.clock(),
                               error_code=getattr(getattr(exc, "__cause__", None), "code", None),
                               error=str(exc)[:1000])
            self._fall_back(cur, int(job.payload["outbox_id"]))

    def _fall_back(self, cur, outbox_id: int) -> None:
        """WhatsApp failed a notice: with an SMS provider it goes by SMS (decided here, in
        the transaction that records the failure)."""
        if self.fallback is None:
            return
        message = self.outbox.get(outbox_id, cur)
        if message is not None:
            self.fallback.switch(cur, message)
