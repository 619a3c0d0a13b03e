"""Devino's batched sending (CHANNELS.md §4: "batching is the point"), as a part of the
`wa_send` step (services/notifications.py).

When 1C queues a day's appointments at once, many `wa_send` jobs wait for one Devino
account. A message waits WHATSAPP_DEVINO_COLLECT_SECONDS (≤ 1 s) from when it was queued, so
that a burst arriving over that moment shares a call; then the first that runs (the *leader*) claims a batch in one transaction
(models/gateways.py::BatchRepository.claim): its own message first, then up to
WHATSAPP_DEVINO_BATCH - 1 other queued messages of the account that are the heads of their
customers' lanes (so one customer's messages keep their order); their jobs are held. Then:

1. `claimed → sending` is committed *before* the call: a worker killed during the call
   leaves `sending`, and its re-run knows the call may have been made.
2. One `POST /whatsapp/messages` carries them all; each message has `callbackData` =
   "<account>|<phone>|o<outbox id>", so a status callback names the message even when
   the answer to its batch was lost.
3. The answer is mapped back by position and settled in one transaction with the folded
   jobs: OK → sent (its Devino id kept, the shop message in the history); REJECTED →
   failed with Devino's reason keys (1C reads them back), `too.many.messages` → waits
   and goes in a later batch, `billing.error` / `forbidden` → a dead letter and #ERROR.

At most once, and what happens when it is not known: a refusal of the call as a whole
(4xx/5xx/429, no connection made) took nothing — the batch is tried again or dissolved.
A lost answer (timeout after sending, a body that cannot be read) or an answer whose
length does not match the request is *unknown*: nothing is marked sent and nothing is
sent again blindly; every message waits WHATSAPP_DEVINO_CONFIRM_SECONDS for a status
callback naming it (→ sent), and `wa_confirm` then sends a message not heard of once more
(Devino may have dropped it) — the one duplicate this can cost is the price of not losing
it — and a second silence is a reported failure. A mismatched answer is also #ERROR.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable

from channels.base import ChannelError, Rejected, Unavailable
from channels.whatsapp.errors import OutcomeUnknown, ShopMustAct, Throttled
from channels.whatsapp.gateways import file_link
from channels.whatsapp.providers.base import BatchItem
from channels.whatsapp.providers.devino import callback_data, rejection
from config import Settings
from models.db import Database
from models.gateways import BatchRepository, Placed
from models.jobs import SEND, Done, Job, NewJob, Permanent, RetryLater
from models.whatsapp import OnecRepository, OutboxMessage
from utils.clock import utc_now

log = logging.getLogger(__name__)

BATCH_KINDS = ("text", "image", "document", "template")
CONFIRM_SWEEP_SECONDS = 30.0


def outbox_ref(outbox_id: int) -> str:
    return f"o{outbox_id}"


class BatchSend:
    """`wa_send` for an account whose provider sends in batches. The same steps serve
    Devino's SMS API (services/sms.py::SmsSend): what differs — the batch's channel and
    account, the settings, each message's wire item and its line in the history — is in
    the hooks below."""
    batch_channel = "whatsapp"
    provider_label = "Devino"

    def __init__(self, settings: Settings, db: Database, report: Callable[..., object],
                 summary: Callable[[str, dict], str], clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.db = db
        self.report = report
        self.summary = summary
        self.clock = clock
        self.batches = BatchRepository(db, self.batch_channel)
        self.onec = OnecRepository(db)

    # -- hooks ---------------------------------------------------------------------------

    def collect_seconds(self) -> float:
        return self.settings.whatsapp_devino_collect_seconds

    def batch_size(self) -> int:
        return self.settings.whatsapp_devino_batch

    def confirm_seconds(self) -> float:
        return self.settings.whatsapp_devino_confirm_seconds

    def batch_account(self, message: OutboxMessage) -> str:
        return message.account

    def queued_at(self, message: OutboxMessage) -> datetime:
        return message.created_at

    def history_text(self, message: OutboxMessage) -> str:
        return self.summary(message.kind, message.body)

    # -- the step ------------------------------------------------------------------------

    def __call__(self, job: Job, message: OutboxMessage, channel) -> None:
        return self.send(job, message, channel)

    def settled_before(self, job: Job, message: OutboxMessage) -> None:
        """This job's message is settled already (a status callback named it) but its job
        ran the batch's call and stopped before the answer: the rest of that batch is
        unknown now, as the re-run of a stopped call finds it (its held jobs end)."""
        batch = self.batches.of_message(message.id, job.id) if message.batch_id is not None else None
        if batch is not None and batch.state == "sending" and batch.leader_job == job.id:
            self._unknown(batch, "the worker stopped while the batch was being sent")

    def send(self, job: Job, message: OutboxMessage, channel) -> None:
        collect = self.collect_seconds()
        if collect and message.batch_id is None and message.status == "queued":
            # Notices come in bursts (1C's day of appointments): the first waits a bounded
            # moment so the others arriving meanwhile go in its call.
            young = collect - (self.clock() - self.queued_at(message)).total_seconds()
            if young > 0.01:
                raise RetryLater("collecting a Devino batch", young)
        batch = self.batches.claim(job.id, message.id, self.batch_account(message), self.batch_size())
        if batch.state == "sending":
            # This job ran the call before and stopped before hearing the answer.
            self._unknown(batch, "the worker stopped while the batch was being sent")
            return
        if batch.state != "claimed":
            return  # settled (or unknown) already
        account = channel.account(batch.account)
        provider = channel.provider_for(account)
        now = self.clock()
        placed: list[Placed] = []
        items: list[tuple[OutboxMessage, BatchItem]] = []
        for queued in batch.messages:
            if queued.status != "queued":
                continue
            if queued.kind not in BATCH_KINDS:
                placed.append(Placed(queued.id, "failed", error=f"{queued.kind} is not supported by the"
                                                                 f" {provider.name} provider"))
            elif queued.purpose in ("appointment", "review", "birthday", "custom") \
                    and self.onec.is_unsubscribed(queued.phone):
                placed.append(Placed(queued.id, "skipped", error="the phone unsubscribed"))
            else:
                item = self._item(account.id, queued)
                if isinstance(item, Placed):
                    placed.append(item)
                else:
                    items.append((queued, item))
        if items:
            try:
                channel.reserve(account.id, items[0][0].phone)
            except RetryLater:
                raise  # the batch stays claimed: this job re-runs it as it is
            if not self.batches.attempting(batch.id, now):
                return
            try:
                results = provider.send_batch(account, [item for _, item in items])
            except OutcomeUnknown as exc:
                self._unknown(batch, str(exc))
                return
            except Throttled as exc:
                self.batches.not_taken(batch.id, str(exc))
                channel.throttled(account.id, "", exc)
                raise RetryLater(str(exc), exc.retry_after) from exc
            except Unavailable as exc:
                self.batches.not_taken(batch.id, str(exc))
                raise
            except (ChannelError, Rejected) as exc:
                # Refused as a whole (a bad key, billing): nothing was taken; each message
                # goes back to its own job, and this one is a dead letter with #ERROR.
                self.batches.dissolve(batch, str(exc))
                raise Permanent(f"{self.provider_label} refused the batch", str(exc)) from exc
            if len(results) != len(items):
                reason = f"{self.provider_label} answered {len(results)} results for {len(items)} messages"
                self.report(f"{self.provider_label}'s answer does not match its batch",
                            f"{reason} (batch {batch.id}): nothing was marked sent; each message waits for"
                            " its status callback")
                self._unknown(batch, reason)
                return
            for (queued, _), result in zip(items, results):
                placed.append(self._placed(queued, result))
        sent = self.batches.settle(batch, placed, self.clock())
        for shop in sent:
            channel.record_shop_message(shop.account, shop.phone, shop.external_id, self.history_text(shop))
        for item in placed:
            if item.outcome == "dead":
                self.report(f"{self.provider_label} refused a message: the shop must act", item.error or "")
        mine = next((p for p in placed if p.outbox_id == message.id), None)
        if mine is not None and mine.outcome == "later":
            raise RetryLater(mine.error or "Devino: too many messages", mine.delay)

    def _item(self, account: str, message: OutboxMessage) -> BatchItem:
        body = dict(message.body)
        if message.kind in ("image", "document") and body.get("file_id"):
            body["link"] = file_link(self.settings, int(body["file_id"]))
        return BatchItem(message.phone, message.kind, body,
                         callback_data(account, message.phone, outbox_ref(message.id)))

    @staticmethod
    def _placed(message: OutboxMessage, result) -> Placed:
        if result.message_id:
            return Placed(message.id, "sent", external_id=result.message_id)
        error = rejection(result)
        if isinstance(error, Throttled):
            return Placed(message.id, "later", error=str(error), delay=error.retry_after)
        if isinstance(error, ShopMustAct):
            return Placed(message.id, "dead", error=str(error))
        return Placed(message.id, "failed", error=getattr(error, "reason", str(error)),
                      error_code=getattr(error, "code", None))

    def _unknown(self, batch, reason: str) -> None:
        confirm_by = self.clock() + timedelta(seconds=self.confirm_seconds())
        count = self.batches.unknown(batch, reason, confirm_by)
        log.warning(f"{self.provider_label} batch %s: %s — %s message(s) wait for their status callbacks", batch.id, reason, count)


class ConfirmSweep:
    """The `wa_confirm` periodic job: messages of a batch whose answer was lost and that no
    status callback named within WHATSAPP_DEVINO_CONFIRM_SECONDS are sent once more (a
    second silence is a reported failure)."""

    def __init__(self, db: Database, report: Callable[..., object],
                 clock: Callable[[], datetime] = utc_now, *, confirm_seconds: float = 600.0,
                 channel: str = "whatsapp") -> None:
        self.batches = BatchRepository(db, channel)
        self.channel = channel
        self.report = report
        self.clock = clock
        self.every = min(CONFIRM_SWEEP_SECONDS, max(0.5, confirm_seconds / 2))

    def __call__(self, job: Job) -> Done:
        for message in self.batches.unconfirmed(self.clock()):
            if self.batches.resends_of(message.id) == 0:
                lane = f"{'sms' if self.channel == 'sms' else 'wa'}:{message.phone}"
                resend = NewJob(SEND, self.batches.kind, {"outbox_id": message.id},
                                dedupe_key=f"{self.batches.prefix}:{message.id}:r1", lane=lane)
                if self.batches.resend(message, resend):
                    log.warning("%s message %s: no word from Devino, sent once more",
                                "SMS" if self.channel == "sms" else "WhatsApp", message.id)
            elif self.batches.give_up(message, "Devino never confirmed it (its batch's answer was lost)"):
                self.report("Devino never confirmed a message",
                            f"wa_outbox {message.id} ({self.channel}): given up after a resend")
        return Done(again_in=self.every)
