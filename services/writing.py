"""Write to a customer (SPEC §3, flow 3; §6 "Every external side effect happens once").

Two halves, joined by a durable record:

* `WriteToCustomer.perform` — deciding, in the update that carried the manager's message:
  the text fits, the chat is the manager's (an unpinned chat is taken), and then, under the
  chat's lock and in one transaction, the pin's window restarts and the message is
  recorded in `outbound` (keyed by its Telegram chat and message id: a re-delivered or
  re-run update records it once) together with the job that will deliver it.
* `DeliverToCustomer` — the `crm_deliver` job: download the Telegram file (bounded in time
  and size), upload it to the CRM once (the CRM's file ids are kept), send the message
  once, and — in the transaction that records "sent" — queue the manager's ✅. A retry
  resumes at the first step not done. When an attempt's outcome is unknown (a timeout
  after the request left), the next run first looks in the CRM for the message before
  sending again. While the CRM is away the manager is told once that the message waits
  (and must not be sent again); a refusal is told with its reason; a dead letter too.
"""
from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from crm.client import CrmClient, CrmError, CrmRejected, UploadedFile
from models.db import Database
from models.jobs import SEND, UPDATES, Done, Job, JobQueue, NewJob, Permanent
from models.locks import LockManager
from models.messages import MessageRepository
from models.outbound import FAILED, QUEUED, REFUSED, SENT, Attachment, Outbound, OutboundRepository
from models.pins import ACTIVATE_KEY, PIN, PinRepository
from models.chats import ChatRepository
from models.users import User
from services.claims import ChatClaims, Outcome as ClaimOutcome
from utils.clock import utc_now

log = logging.getLogger(__name__)

TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # a bot may download files up to 20 MB


class Outcome(enum.Enum):
    QUEUED = "queued"              # recorded; the delivery step will confirm with ✅
    DUPLICATE = "duplicate"        # this Telegram message was recorded already
    TOO_LONG = "too_long"          # longer than the CRM accepts; nothing recorded
    FILE_TOO_BIG = "file_too_big"  # over what a bot may download; nothing recorded
    TAKEN_BY = "taken_by"          # the chat is another manager's; nothing recorded
    UNKNOWN_CHAT = "unknown_chat"


@dataclass(frozen=True)
class ManagerMessage:
    """What a manager wrote, decoded from Telegram at the border."""
    tg_chat_id: int
    tg_message_id: int
    text: str
    attachment: Attachment | None = None


@dataclass(frozen=True)
class WriteResult:
    outcome: Outcome
    holder: User | None = None        # TAKEN_BY: who holds the chat
    claimed: bool = False             # the chat was taken by this message
    length: int = 0
    limit: int = 0


def deliver_lane(id_i: int) -> str:
    """A customer's answers go out one at a time, in the order they were written."""
    return f"crm:{id_i}"


class WriteToCustomer:
    def __init__(self, db: Database, jobs: JobQueue, locks: LockManager, claims: ChatClaims, *,
                 max_length: int, clock: Callable[[], datetime] = utc_now) -> None:
        self.db = db
        self.jobs = jobs
        self.locks = locks
        self.claims = claims
        self.max_length = max_length
        self.clock = clock
        self.chats = ChatRepository(db)
        self.messages = MessageRepository(db)
        self.pins = PinRepository(db)
        self.outbound = OutboundRepository(db)

    def perform(self, manager: User, id_i: int, message: ManagerMessage) -> WriteResult:
        if len(message.text) > self.max_length:
            return WriteResult(Outcome.TOO_LONG, length=len(message.text), limit=self.max_length)
        size = message.attachment.size if message.attachment else None
        if size and size > TELEGRAM_DOWNLOAD_LIMIT:
            return WriteResult(Outcome.FILE_TOO_BIG)
        chat = self.chats.get(id_i)
        if chat is None:
            return WriteResult(Outcome.UNKNOWN_CHAT)
        claim = self.claims.claim(id_i, manager, now=self.clock(),
                                  kind=ACTIVATE_KEY if chat.is_task else PIN)
        if claim.outcome is ClaimOutcome.TAKEN_BY:
            return WriteResult(Outcome.TAKEN_BY, holder=claim.holder)
        now = self.clock()
        with self.locks.chat_lock(id_i):
            with self.db.transaction() as cur:
                holder = self.claims.holder(id_i, now, cur)
                if holder is None or holder[0].manager_id != manager.tg_id:
                    # Expired and taken by someone else between the claim and now.
                    return WriteResult(Outcome.TAKEN_BY, holder=holder[1] if holder else None)
                self.pins.touch(id_i, manager.tg_id, now, cur)
                outbound_id = self.outbound.record(
                    cur, key=f"tg:{message.tg_chat_id}:{message.tg_message_id}", id_i=id_i,
                    manager_id=manager.tg_id, tg_chat_id=message.tg_chat_id,
                    tg_message_id=message.tg_message_id, text=message.text,
                    attachment=message.attachment, after_message_id=self.messages.max_id(id_i, cur))
                if outbound_id is None:
                    return WriteResult(Outcome.DUPLICATE)
                self.jobs.enqueue(UPDATES, "crm_deliver", {"outbound_id": outbound_id},
                                  dedupe_key=f"out:{outbound_id}", lane=deliver_lane(id_i),
                                  priority=1, cur=cur)
        return WriteResult(Outcome.QUEUED, claimed=claim.outcome is ClaimOutcome.CLAIMED)


class DeliverToCustomer:
    """The `crm_deliver` job."""

    def __init__(self, db: Database, jobs: JobQueue, crm: CrmClient, *,
                 download: Callable[[Attachment], bytes],
                 resync: Callable[[int], object], language_of: Callable[[int], str],
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.db = db
        self.jobs = jobs
        self.crm = crm
        self.download = download          # the Telegram file's bytes (bounded in time and size)
        self.resync = resync              # ask for a sync of the chat (stores the shop message)
        self.language_of = language_of    # the manager's language, for the CRM upload
        self.clock = clock
        self.outbound = OutboundRepository(db)
        self.pins = PinRepository(db)

    def __call__(self, job: Job) -> Done | None:
        out = self.outbound.get(int(job.payload["outbound_id"]))
        if out is None or out.status != QUEUED:
            return None  # settled already; its follow-ups were stored with the settlement
        try:
            files = self._files(out)
            if out.attempted_at is not None and self._arrived(out):
                log.info("outbound %s was delivered by an earlier attempt", out.id)
            else:
                self.outbound.mark_attempt(out.id, self.clock())
                self.crm.send(out.id_i, out.text, [UploadedFile(**f) for f in files])
        except CrmRejected as exc:
            return self._settle(out, REFUSED, str(exc), _refusal_notice(exc, out))
        except CrmError as exc:
            if not exc.transient:
                raise Permanent("the CRM refused the answer", str(exc)) from exc
            if job.attempts == 1:
                # Once: the manager knows it waits, and that typing it again would double it.
                self._notify_now(_notice(out, "answer_waits_for_crm", id_i=out.id_i, key="wait"))
            raise
        return self._settle(out, SENT, None, _notice(out, "sent_ok", id_i=out.id_i, key="ok"))

    def dead(self, job: Job, exc: BaseException) -> None:
        """The answer cannot be delivered: the manager is told (admins got #ERROR)."""
        out = self.outbound.get(int(job.payload["outbound_id"]))
        if out is None:
            return
        with self.db.transaction() as cur:
            if self.outbound.settle(cur, out.id, FAILED, self.clock(), str(exc)[:2000]):
                self.jobs.enqueue_all([_notice(out, "answer_failed", id_i=out.id_i, key="failed")], cur)

    # -- steps -------------------------------------------------------------------------

    def _files(self, out: Outbound) -> list[dict]:
        """The CRM's ids of the attached file: uploaded once, kept for every retry."""
        if out.attachment is None:
            return []
        if out.crm_files is not None:
            return out.crm_files
        data = self.download(out.attachment)
        uploaded = self.crm.upload([(out.attachment.name, data, out.attachment.mime)],
                                   lang=self.language_of(out.manager_id))
        files = [{"newid": f.newid, "name": f.name, "type": f.type} for f in uploaded]
        self.outbound.save_files(out.id, files)
        return files

    def _arrived(self, out: Outbound) -> bool:
        """After an attempt whose outcome is unknown: is the message in the CRM already?"""
        wanted = _plain(out.text)
        for message in self.crm.messages(out.id_i, count=50):
            if not message.from_shop or (out.after_message_id and message.id <= out.after_message_id):
                continue
            if wanted and _plain(message.text) == wanted:
                return True
            if not wanted and message.is_file and out.attachment and message.filename == out.attachment.name:
                return True
        return False

    def _settle(self, out: Outbound, status: str, error: str | None, notice: NewJob) -> Done:
        now = self.clock()
        with self.db.transaction() as cur:
            if not self.outbound.settle(cur, out.id, status, now, error):
                return Done()
            if status == SENT:
                self.pins.touch(out.id_i, out.manager_id, now, cur)
        if status == SENT:
            self.resync(out.id_i)  # store the shop's message: the customer counts as answered
        return Done(then=(notice,))

    def _notify_now(self, notice: NewJob) -> None:
        with self.db.transaction() as cur:
            self.jobs.enqueue_all([notice], cur)


def _notice(out: Outbound, notice: str, *, key: str, **values) -> NewJob:
    """A message to the manager, as a reply to what they wrote, about this chat."""
    payload = {"chat_id": out.tg_chat_id, "method": "sendMessage", "notice": notice,
               "values": values, "reply_to": out.tg_message_id, "id_i": out.id_i,
               "purpose": "confirm"}
    if out.tg_chat_id != out.manager_id:
        payload["language_of"] = out.manager_id
    return NewJob(SEND, "tg_send", payload, dedupe_key=f"out:{out.id}:{key}",
                  lane=f"send:{out.tg_chat_id}", priority=2)


def _refusal_notice(exc: CrmRejected, out: Outbound) -> NewJob:
    if exc.max_length:
        return _notice(out, "too_long", length=len(out.text), limit=exc.max_length, key="refused")
    return _notice(out, "crm_refused", reason=exc.error_text or str(exc.status), key="refused")


_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def _plain(text: str) -> str:
    return _BR.sub("\n", text or "").replace("\r\n", "\n").strip()
