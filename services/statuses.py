"""Delivery statuses (CHANNELS.md §1, §3): what a channel says became of a message the shop
sent — sent ✓, delivered ✓✓, read, or failed with a reason.

Each status is kept per message (the furthest one wins: a late "sent" never hides a
"read"); the history shows the marks. A failure is never only a mark: the manager who
wrote the message is told why, as a reply to what they wrote, and when the shop must act
(a template problem, a blocked account — anything but the customer's own side) admins get
#ERROR. A message 1C or the API sent gets the failure in its record, where they read it.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable, Sequence

from models.conversations import ConversationRepository
from models.db import Database
from models.inbound import ConversationKey, StatusUpdate
from models.auto_replies import AUTOMATIC
from models.outbound import OutboundRepository
from models.whatsapp import FAILED, DeliveryStatusRepository, OutboxRepository
from services.notices import Notice, Notices
from utils.clock import utc_now

log = logging.getLogger(__name__)

# The customer's side (no WhatsApp, an old app, blocked the shop, the 24-hour window,
# marketing opt-outs): the manager is told, but there is nothing for admins to fix.
CUSTOMER_SIDE = (131026, 131047, 131049, 131050, 130472)
NOTICES = {131026: "wa_failed_undeliverable", 131047: "wa_failed_window"}


class DeliveryStatuses:
    def __init__(self, db: Database, notices: Notices, report: Callable[..., object] | None = None,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.db = db
        self.notices = notices
        self.report = report
        self.clock = clock
        self.conversations = ConversationRepository(db)
        self.repo = DeliveryStatusRepository(db)
        self.outbound = OutboundRepository(db)
        self.outbox = OutboxRepository(db)

    def __call__(self, key: ConversationKey, statuses: Sequence[StatusUpdate]) -> int:
        """Record the statuses of one conversation's messages; how many moved on."""
        conversation_id = self.conversations.ensure(key)
        moved = 0
        for status in statuses:
            with self.db.transaction() as cur:
                if not self.repo.record(cur, conversation_id, status.external_id, status.status,
                                        status.at, status.error_code, status.error):
                    continue
                moved += 1
                if status.status == FAILED:
                    self.outbox.fail_by_external(cur, status.external_id, status.error_code, status.error)
                    self._tell(cur, conversation_id, status)
        return moved

    def caught_up(self, conversation_id: int, external_id: str) -> None:
        """The shop's message now knows its channel id: a failure that came before it did
        (a status can overtake the send's own answer) is told to its manager now."""
        row = self.repo.get(conversation_id, external_id)
        if row is None or row["status"] != FAILED:
            return
        status = StatusUpdate(external_id, FAILED, row["status_at"], row["error_code"], row["error"])
        with self.db.transaction() as cur:
            self._tell_manager(cur, conversation_id, status)

    def _tell(self, cur, conversation_id: int, status: StatusUpdate) -> None:
        reason = self._tell_manager(cur, conversation_id, status)
        if status.error_code not in CUSTOMER_SIDE and self.report is not None:
            self.report(f"WhatsApp could not deliver a message (code {status.error_code})",
                        f"conversation {conversation_id}, message {status.external_id}: {reason}")
        log.info("WhatsApp message %s failed: %s %s", status.external_id, status.error_code, reason)

    def _tell_manager(self, cur, conversation_id: int, status: StatusUpdate) -> str:
        """The manager who wrote the message hears why it failed (once: keyed by it)."""
        out = self.outbound.by_external(status.external_id)
        reason = status.error or (f"code {status.error_code}" if status.error_code else "—")
        if out is not None and out.manager_id != AUTOMATIC:  # the shop's own: #ERROR only
            conversation = self.conversations.get(conversation_id)
            notice = NOTICES.get(status.error_code, "wa_failed_other")
            self.notices.tell(Notice(
                out.tg_chat_id, notice,
                {"id_i": conversation.ref if conversation else conversation_id, "reason": reason},
                key=f"out:{out.id}:undelivered", reply_to=out.tg_message_id,
                conversation_id=conversation_id, purpose="confirm", priority=2,
                language_of=out.manager_id if out.tg_chat_id != out.manager_id else None), cur)
        return reason
