"""SMS when WhatsApp cannot reach a customer (docs/sms.md).

A notice 1C asked for (appointment, review, birthday, custom) whose WhatsApp send failed —
the phone has no WhatsApp (Cloud API 131026, a gateway's checkWhatsapp false, Devino's
UNDELIVERED, all read as 131026), or the send finally failed in any other way — goes by
SMS when an SMS provider is configured. A notice WhatsApp took and delivered never does.

1. **The switch** (`SmsFallback.switch`, in the transaction that records WhatsApp's
   failure where the failure is the send's own answer; the `sms_fallback` sweep for a
   failure told later — a status callback, a dead letter, a lost batch given up): the same
   `wa_outbox` record becomes `channel = sms`, queued again, with an `sms_send` job keyed
   `sms:out:<id>` — decided once (the UPDATE only moves a failed WhatsApp record).
2. **The send** (`SmsSend`, the `sms_send` job): the batch machinery of Devino's WhatsApp
   API (services/gateways.py::BatchSend, models/gateways.py::BatchRepository) over Devino's
   SMS API — a batch claimed in one transaction, `sending` committed before the call, a
   lost answer never re-sent blindly (each message waits for a status callback naming it,
   then `sms_confirm` sends it once more, then gives up with #ERROR) — within
   SMS_DEVINO_LIMIT_PER_S (the shared limiter). Its text is the notice's SMS template.
3. **The statuses** (`SmsStatuses`, the `sms_status` job): Devino's callbacks settle a
   message whose answer was lost, and are kept as the SMS's delivery status (1C reads it
   in GET /api/v1/messages/{id}; the history shows it).
"""
from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta
from typing import Callable

from channels.limits import SharedLimits, bucket_name, per_second
from channels.sms import DevinoSms, SmsItem, parse_statuses
from config import Settings
from models.conversations import ConversationRepository
from models.db import Database
from models.gateways import BatchRepository, Placed
from models.inbound import ConversationKey
from models.jobs import SEND, Done, Job, Permanent, RetryLater
from models.sms import SmsRepository
from models.whatsapp import DeliveryStatusRepository, OutboxMessage, OutboxRepository
from services.gateways import BatchSend, outbox_ref
from services.notifications import NOTIFICATIONS
from utils.clock import utc_now

log = logging.getLogger(__name__)

SWEEP_SECONDS = 3.0
SHORT_WAIT = 0.5
ACCOUNT = "sms"                       # the SMS batches' account (wa_batches.account)


def sms_text(settings: Settings, message: OutboxMessage) -> str:
    """The notice's SMS template with its values (a placeholder with no value is dropped)."""
    template = {"appointment": settings.sms_template_appointment, "review": settings.sms_template_review,
                "birthday": settings.sms_template_birthday}.get(message.purpose, settings.sms_template_custom)
    params = [str(p) for p in message.body.get("params") or []]
    values = {"params": ", ".join(params)}
    if message.purpose == "appointment":
        values.update(zip(("doctor", "date", "time"), params))
    elif message.purpose in ("review", "birthday"):
        values.update(zip(("name", "date"), params))
    text = re.sub(r"{([a-z]+)}", lambda m: values.get(m.group(1), ""), template)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


class SmsFallback:
    """Decides that a failed WhatsApp notice goes by SMS; as the `sms_fallback` periodic
    job, finds the ones whose failure was told after the send (statuses, dead letters)."""

    def __init__(self, settings: Settings, db: Database, clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.repo = SmsRepository(db)

    def applies(self, message: OutboxMessage) -> bool:
        return self.settings.sms_configured and message.purpose in NOTIFICATIONS and message.channel == "whatsapp"

    def switch(self, cur, message: OutboxMessage) -> bool:
        """In `cur`'s transaction, right after WhatsApp's failure was recorded."""
        if not self.applies(message):
            return False
        if self.repo.switch(cur, message.id, self.clock()):
            log.info("notice %s: WhatsApp could not deliver it, it goes by SMS", message.id)
            return True
        return False

    def __call__(self, job: Job) -> Done:
        since = self.clock() - timedelta(hours=self.settings.sms_fallback_hours)
        for outbox_id in self.repo.failed_notices(NOTIFICATIONS, since):
            with self.db.transaction() as cur:
                if self.repo.switch(cur, outbox_id, self.clock()):
                    log.info("notice %s: WhatsApp failed it, it goes by SMS", outbox_id)
        return Done(again_in=SWEEP_SECONDS)


class _SmsAccount:
    id = ACCOUNT


class _SmsRoute:
    """What BatchSend asks of a channel, for Devino's SMS API: the account, the provider,
    the limits, and the history (the customer's WhatsApp conversation)."""
    name = "devino-sms"

    def __init__(self, settings: Settings, db: Database, provider: DevinoSms, whatsapp) -> None:
        self.settings = settings
        self.provider = provider
        self.whatsapp = whatsapp
        self.limits = SharedLimits(db)
        self.limit = {bucket_name("sms", "devino"): per_second(settings.sms_devino_limit_per_s)}

    def account(self, _: str) -> _SmsAccount:
        return _SmsAccount()

    def provider_for(self, _) -> "_SmsRoute":
        return self

    def send_batch(self, _: _SmsAccount, items: list[SmsItem]):
        return self.provider.send_batch(items)

    def reserve(self, _: str, __: str) -> None:
        wait = self.limits.reserve(self.limit)
        if 0 < wait <= SHORT_WAIT:
            time.sleep(wait)
            wait = self.limits.reserve(self.limit)
        if wait > 0:
            raise RetryLater("the SMS provider's rate limit", wait)

    def throttled(self, _: str, __: str, exc) -> None:
        self.limits.block(next(iter(self.limit)), exc.retry_after)

    def record_shop_message(self, account: str, phone: str, external_id: str, text: str) -> None:
        if self.whatsapp is not None:
            self.whatsapp.record_shop_message(account, phone, external_id, text)


class SmsSend(BatchSend):
    """The `sms_send` job: a notice WhatsApp could not deliver, by Devino's SMS API."""
    batch_channel = "sms"
    provider_label = "Devino SMS"

    def __init__(self, settings: Settings, db: Database, report: Callable[..., object], whatsapp, *,
                 provider: DevinoSms | None = None, clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__(settings, db, report, lambda kind, body: "", clock)
        self.outbox = OutboxRepository(db)
        self.route = _SmsRoute(settings, db, provider or DevinoSms(settings), whatsapp)

    def collect_seconds(self) -> float:
        return self.settings.sms_devino_collect_seconds

    def batch_size(self) -> int:
        return self.settings.sms_devino_batch

    def confirm_seconds(self) -> float:
        return self.settings.sms_devino_confirm_seconds

    def batch_account(self, message: OutboxMessage) -> str:
        return ACCOUNT

    def queued_at(self, message: OutboxMessage) -> datetime:
        return message.sms_queued_at or message.created_at

    def history_text(self, message: OutboxMessage) -> str:
        return f"✉️ SMS: {sms_text(self.settings, message)}"

    def _item(self, account: str, message: OutboxMessage):
        text = sms_text(self.settings, message)
        if not text:
            return Placed(message.id, "failed", error="the notice's SMS template gives no text")
        return SmsItem(message.phone, text, outbox_ref(message.id))

    @staticmethod
    def _placed(message: OutboxMessage, result) -> Placed:
        placed = BatchSend._placed(message, result)
        if placed.outcome == "failed":
            # SMS is the last way to the customer: its refusal is a dead letter, with #ERROR.
            return Placed(message.id, "dead", error=placed.error, error_code=placed.error_code)
        return placed

    def __call__(self, job: Job) -> None:  # type: ignore[override]
        message = self.outbox.get(int(job.payload["outbox_id"]))
        if message is None or message.channel != "sms":
            return None
        if message.status != "queued":
            return self.settled_before(job, message)   # settled already
        return self.send(job, message, self.route)

    def dead(self, job: Job, exc: BaseException) -> None:
        """Given up (a refusal, or retried out): the record says why (1C reads it; admins got #ERROR)."""
        SmsRepository(self.db).give_up(int(job.payload["outbox_id"]), str(exc))


class SmsStatuses:
    """The `sms_status` job: one stored status callback of Devino's SMS API."""

    def __init__(self, db: Database, whatsapp, settings: Settings, clock: Callable[[], datetime] = utc_now) -> None:
        self.db = db
        self.whatsapp = whatsapp
        self.settings = settings
        self.clock = clock
        self.batches = BatchRepository(db, "sms")
        self.repo = SmsRepository(db)
        self.outbox = OutboxRepository(db)
        self.conversations = ConversationRepository(db)
        self.statuses = DeliveryStatusRepository(db)

    def __call__(self, job: Job) -> None:
        statuses, trouble = parse_statuses(str(job.payload.get("body") or "").encode("utf-8"), self.clock())
        for status in statuses:
            message = None
            if status.ref and status.ref.startswith("o") and status.ref[1:].isdigit():
                message = self.outbox.get(int(status.ref[1:]))
            if message is None:
                message = self.repo.by_sms_id(status.message_id)
            if message is None or message.channel != "sms":
                trouble.append(f"a status of SMS {status.message_id}, which is none of ours")
                continue
            if message.status in ("unknown", "queued") and message.batch_id is not None:
                confirmed = self.batches.confirmed(message.id, status.message_id, self.clock())
                if confirmed is not None:
                    message = confirmed[0]
                    self.whatsapp_history(message)
            if message.external_id != status.message_id:
                continue
            conversation_id = self.conversations.ensure(ConversationKey("whatsapp", message.account, message.phone))
            with self.db.transaction() as cur:
                moved = self.statuses.record(cur, conversation_id, status.message_id, status.status, status.at,
                                             status.error_code, status.error)
                if moved and status.status == "failed":
                    self.repo.failed_delivery(cur, message.id, status.error_code, status.error)
            if moved and status.status == "failed":
                log.info("SMS %s could not be delivered: %s", message.id, status.error)
        if trouble:
            # What was understood is kept; the rest is a dead letter with #ERROR.
            raise Permanent("Devino SMS status callback not understood", "; ".join(trouble)[:2000])
        return None

    def whatsapp_history(self, message: OutboxMessage) -> None:
        if self.whatsapp is not None and message.external_id:
            self.whatsapp.record_shop_message(message.account, message.phone, message.external_id,
                                              f"✉️ SMS: {sms_text(self.settings, message)}")


def sms_periodic(settings: Settings) -> tuple[tuple[str, str], ...]:
    return ((SEND, "sms_fallback"), (SEND, "sms_confirm")) if settings.sms_configured else ()

