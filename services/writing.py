"""Write to a customer (SPEC §3, flow 3; §6 "Every external side effect happens once").

Two halves, joined by a durable record:

* `WriteToCustomer.perform` — deciding, in the update that carried the manager's message:
  the text fits, the chat is the manager's (an unpinned chat is taken), and then, under the
  chat's lock and in one transaction, the pin's window restarts and the message is
  recorded in `outbound` (keyed by its Telegram chat and message id: a re-delivered or
  re-run update records it once) together with the job that will deliver it.
* `DeliverToCustomer` — the `deliver` job, through the conversation's channel: download
  the Telegram file (bounded in time and size), upload it to the channel once (what the
  channel gave is kept), send the message once, and — in the transaction that records
  "sent" — queue the manager's ✅. A retry resumes at the first step not done. When an
  attempt's outcome is unknown (a timeout after the request left), the next run first
  asks the channel whether the message arrived before sending again. While the channel
  is away the manager is told once that the message waits (and must not be sent again);
  a refusal is told with its reason; a dead letter too.
"""
from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from channels import Channels
from channels.base import ChannelError, Rejected
from models.conversations import ConversationRepository
from models.db import Database
from models.jobs import UPDATES, Done, Job, JobQueue, Permanent
from models.auto_replies import AUTOMATIC
from models.locks import LockManager
from models.messages import MessageRepository
from models.outbound import FAILED, QUEUED, REFUSED, SENT, Attachment, Outbound, OutboundRepository
from models.pins import PinRepository
from models.users import User
from services.notices import Notice, Notices, Says
from services.claims import ChatClaims, Outcome as ClaimOutcome, pin_kind
from utils.clock import utc_now

log = logging.getLogger(__name__)

TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # a bot may download files up to 20 MB


class Outcome(enum.Enum):
    QUEUED = "queued"              # recorded; the delivery step will confirm with ✅
    DUPLICATE = "duplicate"        # this Telegram message was recorded already
    TOO_LONG = "too_long"          # longer than the channel accepts; nothing recorded
    FILE_TOO_BIG = "file_too_big"  # over what a bot may download; nothing recorded
    TAKEN_BY = "taken_by"          # the chat is another manager's; nothing recorded
    UNKNOWN_CHAT = "unknown_chat"
    WINDOW_CLOSED = "window_closed"  # the channel's reply window is closed: only templates


@dataclass(frozen=True)
class ManagerMessage:
    """What a manager wrote, decoded from Telegram at the border."""
    tg_chat_id: int
    tg_message_id: int
    text: str
    attachment: Attachment | None = None
    template: dict | None = None      # an approved template {"name", "language", "params"}
    attachments: tuple[Attachment, ...] = ()   # an album: every file, in order

    @property
    def files(self) -> tuple[Attachment, ...]:
        return self.attachments or ((self.attachment,) if self.attachment else ())


@dataclass(frozen=True)
class WriteResult:
    outcome: Outcome
    holder: User | None = None        # TAKEN_BY: who holds the chat
    claimed: bool = False             # the chat was taken by this message
    length: int = 0
    limit: int = 0


def deliver_lane(conversation_id: int) -> str:
    """A customer's answers go out one at a time, in the order they were written."""
    return f"conv:{conversation_id}"


class WriteToCustomer:
    def __init__(self, db: Database, jobs: JobQueue, locks: LockManager, claims: ChatClaims,
                 channels: Channels, *, clock: Callable[[], datetime] = utc_now,
                 beside: Callable | None = None, on_answer: Callable | None = None,
                 notices: Notices | None = None, log_chat_id: int | None = None) -> None:
        self.db = db
        # A chat taken by writing to it is told to the log chat, whichever way the manager
        # wrote (a message, a canned reply, a template, an album).
        self.notices = notices
        self.log_chat_id = log_chat_id
        # An admin joined beside the holder may write without taking the chat
        # (services/handover.py::Joins.beside); each decided answer ends the customer's
        # wait (services/sla.py::Waits.answered).
        self.beside = beside
        self.on_answer = on_answer
        self.jobs = jobs
        self.locks = locks
        self.claims = claims
        self.channels = channels
        self.clock = clock
        self.conversations = ConversationRepository(db)
        self.messages = MessageRepository(db)
        self.pins = PinRepository(db)
        self.outbound = OutboundRepository(db)

    def chat_ref(self, conversation_id: int) -> object:
        """How a manager knows the chat (its number at its channel)."""
        conversation = self.conversations.get(conversation_id)
        return conversation.ref if conversation else conversation_id

    def files_per_message(self, conversation_id: int) -> int:
        """How many files the conversation's channel takes in one message (WhatsApp: one)."""
        conversation = self.conversations.get(conversation_id)
        channel = self.channels.get(conversation.channel) if conversation else None
        return channel.capabilities.files_per_message if channel else 1

    def perform(self, manager: User, conversation_id: int, message: ManagerMessage) -> WriteResult:
        conversation = self.conversations.get(conversation_id)
        channel = self.channels.get(conversation.channel) if conversation else None
        if conversation is None or channel is None:
            return WriteResult(Outcome.UNKNOWN_CHAT)
        limit = channel.capabilities.max_text
        if len(message.text) > limit:
            return WriteResult(Outcome.TOO_LONG, length=len(message.text), limit=limit)
        if any(f.size and f.size > TELEGRAM_DOWNLOAD_LIMIT for f in message.files):
            return WriteResult(Outcome.FILE_TOO_BIG)
        now = self.clock()
        if message.template is None and channel.window_closed(conversation, now):
            return WriteResult(Outcome.WINDOW_CLOSED)
        # One lock, one transaction: the chat is the manager's (taken if free, or if their
        # own pin ran out meanwhile) and the answer is recorded under the same decision —
        # an expiry can come before it or after it, never in between.
        with self.locks.chat_lock(conversation_id):
            with self.db.transaction() as cur:
                claim = self.claims.claim_locked(cur, conversation_id, manager, now=now,
                                                 kind=pin_kind(conversation))
                if claim.outcome is ClaimOutcome.TAKEN_BY and not (
                        self.beside is not None and self.beside(cur, conversation_id, manager)):
                    return WriteResult(Outcome.TAKEN_BY, holder=claim.holder)
                self.pins.touch(conversation_id, manager.tg_id, now, cur)
                outbound_id = self.outbound.record(
                    cur, key=f"tg:{message.tg_chat_id}:{message.tg_message_id}",
                    conversation_id=conversation_id, manager_id=manager.tg_id,
                    tg_chat_id=message.tg_chat_id, tg_message_id=message.tg_message_id,
                    text=message.text, attachment=None, attachments=message.files,
                    after_message_id=self.messages.max_numeric_external_id(conversation_id),
                    template=message.template)
                if outbound_id is None:
                    return WriteResult(Outcome.DUPLICATE)
                if self.on_answer is not None:
                    self.on_answer(cur, conversation_id, manager.tg_id, now)
                self.jobs.enqueue(UPDATES, "deliver", {"outbound_id": outbound_id},
                                  dedupe_key=f"out:{outbound_id}",
                                  lane=deliver_lane(conversation_id), priority=1, cur=cur)
                if claim.outcome is ClaimOutcome.CLAIMED and self.notices is not None:
                    self.notices.tell(Notice(
                        self.log_chat_id, "log_change_pin",
                        {"who": manager.display_name, "what": Says("change_pin_claimed"),
                         "id_i": conversation.ref},
                        key=f"pin:claimed:{outbound_id}", purpose="log"), cur)
        return WriteResult(Outcome.QUEUED, claimed=claim.outcome is ClaimOutcome.CLAIMED)


class DeliverToCustomer:
    """The `deliver` job."""

    def __init__(self, db: Database, jobs: JobQueue, channels: Channels, *, notices: Notices,
                 download: Callable[[Attachment], bytes],
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.db = db
        self.jobs = jobs
        self.notices = notices
        self.channels = channels
        self.download = download          # the Telegram file's bytes (bounded in time and size)
        self.clock = clock
        self.conversations = ConversationRepository(db)
        self.outbound = OutboundRepository(db)
        self.pins = PinRepository(db)

    def __call__(self, job: Job) -> Done | None:
        out = self.outbound.get(int(job.payload["outbound_id"]))
        if out is None or out.status != QUEUED:
            return None  # settled already; its follow-ups were stored with the settlement
        conversation = self.conversations.get(out.conversation_id)
        if conversation is None:
            raise Permanent("the conversation of an answer is gone", f"outbound {out.id}")
        channel = self.channels.of(conversation)
        sent_id = None
        try:
            files = self._files(channel, conversation, out)
            if out.attempted_at is not None and channel.arrived(conversation, out):
                log.info("outbound %s was delivered by an earlier attempt", out.id)
            else:
                self.outbound.mark_attempt(out.id, self.clock())
                sent = (channel.send_template(conversation, out.template) if out.template
                        else channel.send(conversation, out.text, files))
                sent_id = sent.external_id
        except Rejected as exc:
            if out.manager_id == AUTOMATIC:   # no manager to tell: a dead letter, #ERROR
                raise Permanent(f"{channel.label} refused the shop's automatic reply",
                                exc.reason) from exc
            return self._settle(out, REFUSED, exc.reason, _refusal_notice(exc, out, conversation.ref))
        except ChannelError as exc:
            if not exc.transient:
                raise Permanent(f"{channel.label} refused the answer", str(exc)) from exc
            if job.attempts == 1 and out.manager_id != AUTOMATIC:
                # Once: the manager knows it waits, and that typing it again would double it.
                self._notify_now(_notice(out, channel.waiting_notice, key="wait"))
            raise
        settled = self._settle(out, SENT, None, _notice(out, "sent_ok", id_i=conversation.ref,
                                                        key="ok"), external_id=sent_id)
        channel.after_send(conversation, out, sent_id)
        return settled

    def dead(self, job: Job, exc: BaseException) -> None:
        """The answer cannot be delivered: the manager is told (admins got #ERROR)."""
        out = self.outbound.get(int(job.payload["outbound_id"]))
        if out is None:
            return
        conversation = self.conversations.get(out.conversation_id)
        ref = conversation.ref if conversation else str(out.conversation_id)
        with self.db.transaction() as cur:
            if (self.outbound.settle(cur, out.id, FAILED, self.clock(), str(exc)[:2000])
                    and out.manager_id != AUTOMATIC):
                self.notices.tell(_notice(out, "answer_failed", id_i=ref, key="failed"), cur)

    # -- steps -------------------------------------------------------------------------

    def _files(self, channel, conversation, out: Outbound) -> list[dict]:
        """What the channel gave for the attached file: uploaded once, kept for every retry."""
        if not out.attachments:
            return []
        if out.remote_files is not None:
            return out.remote_files
        files = []
        for attachment in out.attachments:  # an album: every file, then one message
            files += channel.upload(conversation, attachment, self.download(attachment))
        self.outbound.save_files(out.id, files)
        return files

    def _settle(self, out: Outbound, status: str, error: str | None, notice: Notice, *,
                external_id: str | None = None) -> Done:
        now = self.clock()
        with self.db.transaction() as cur:
            if not self.outbound.settle(cur, out.id, status, now, error, external_id):
                return Done()
            if out.manager_id == AUTOMATIC:   # the shop's own message: nobody to confirm to
                return Done()
            if status == SENT:
                self.pins.touch(out.conversation_id, out.manager_id, now, cur)
        return Done(then=(self.notices.as_job(notice),))

    def _notify_now(self, notice: Notice) -> None:
        self.notices.tell(notice)


def _notice(out: Outbound, says: str, *, key: str, **values) -> Notice:
    """A message to the manager, as a reply to what they wrote, about this chat."""
    return Notice(out.tg_chat_id, says, values, key=f"out:{out.id}:{key}", reply_to=out.tg_message_id,
                  conversation_id=out.conversation_id, purpose="confirm", priority=2,
                  language_of=out.manager_id if out.tg_chat_id != out.manager_id else None)


def _refusal_notice(exc: Rejected, out: Outbound, ref: str = "") -> Notice:
    if exc.notice:  # the channel's own words for it (e.g. WhatsApp's 24-hour window)
        return _notice(out, exc.notice, reason=exc.reason, id_i=ref, key="refused")
    if exc.max_length:
        return _notice(out, "too_long", length=len(out.text), limit=exc.max_length, key="refused")
    return _notice(out, "crm_refused", reason=exc.reason, key="refused")
