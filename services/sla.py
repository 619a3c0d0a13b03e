"""Nobody holds a customer hostage (SPEC §8): how long each customer waits, reminders to
the holder, the takeback to the shared chat, and the figures reports are made of.

* `Waits` records a wait when a customer's message is announced (the first unanswered
  one counts) and ends it with the first answer: a manager's, decided in the desk
  (`answered`), or one the channel shows from elsewhere, e.g. typed in the CRM's page
  (`after_store`). Due times are in working time (WORKING_HOURS, TZ): a message on
  Friday evening reminds on Monday morning.
* `SlaSweep` (the periodic `sla_sweep` job) reads only what is due, through the indexes on
  the due times. A reminder goes once per wait (and holder): to the holder in private, or
  — nobody holds the chat — to the shared chat with "✍ Відповісти". A takeback ends the
  holder's pin, posts the customer's message to the shared chat with the reason, tells the
  holder and writes `#CHANGE_PIN` to the log chat, in one transaction. A holder who is off
  shift is not reminded: the chat is taken back at once.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

from models.conversations import Conversation, ConversationRepository
from models.db import Database
from models.jobs import JobQueue
from models.locks import LockManager
from models.messages import MessageRepository, StoredMessage
from models.pins import DELETE_PIN, PinRepository
from models.responses import ResponseRepository, Wait
from models.shifts import ShiftRepository
from services.notices import Button, Notice, Notices
from utils.hours import WorkingHours

log = logging.getLogger(__name__)

SWEEP_EVERY_SECONDS = 20.0
SWEEP_BATCH = 200


@dataclass(frozen=True)
class SlaPolicy:
    remind_minutes: int
    takeback_minutes: int
    hours: WorkingHours

    def due(self, start: datetime) -> tuple[datetime | None, datetime | None]:
        remind = self.hours.add(start, self.remind_minutes) if self.remind_minutes else None
        takeback = self.hours.add(start, self.takeback_minutes) if self.takeback_minutes else None
        return remind, takeback


class Waits:
    def __init__(self, db: Database, policy: SlaPolicy) -> None:
        self.policy = policy
        self.responses = ResponseRepository(db)
        self.messages = MessageRepository(db)

    def after_store(self, cur, conversation: Conversation, announced: Sequence[StoredMessage],
                    now: datetime) -> None:
        """In the ingest's transaction: a wait answered from elsewhere ends; a new one starts
        with the first customer message announced."""
        wait = self.responses.open_wait(conversation.id, cur)
        if wait is not None and self.messages.answered_after(conversation.id, wait.message_id, cur):
            self.responses.answer(cur, conversation.id, None, now)
            wait = None
        if wait is None and announced:
            remind, takeback = self.policy.due(now)
            self.responses.start(cur, conversation.id, conversation.channel, announced[0].id, now,
                                 remind, takeback)

    def answered(self, cur, conversation_id: int, manager_id: int, now: datetime) -> None:
        """A manager's answer was decided: the customer's wait ends (its first answer)."""
        self.responses.answer(cur, conversation_id, manager_id, now)

    def rearm(self, cur, conversation_id: int, now: datetime) -> None:
        """The chat changed hands: the new holder's reminders count from now."""
        wait = self.responses.open_wait(conversation_id, cur)
        if wait is not None:
            self.responses.rearm(cur, wait.id, *self.policy.due(now))


class SlaSweep:
    """The `sla_sweep` periodic job."""

    def __init__(self, db: Database, jobs: JobQueue, locks: LockManager, notices: Notices,
                 desk, policy: SlaPolicy, *, shared_chat_id: int | None,
                 log_chat_id: int | None, clock: Callable[[], datetime]) -> None:
        """`desk`: the Telegram desk, which posts a chat taken back to the shared chat
        (`repost_taken_back`)."""
        self.db = db
        self.jobs = jobs
        self.locks = locks
        self.notices = notices
        self.desk = desk
        self.policy = policy
        self.shared_chat_id = shared_chat_id
        self.log_chat_id = log_chat_id
        self.clock = clock
        self.responses = ResponseRepository(db)
        self.conversations = ConversationRepository(db)
        self.messages = MessageRepository(db)
        self.pins = PinRepository(db)
        self.shifts = ShiftRepository(db)

    def __call__(self, job) -> float:
        self.run()
        return SWEEP_EVERY_SECONDS

    def run(self) -> dict[str, int]:
        now = self.clock()
        done = {"reminded": 0, "taken_back": 0}
        for wait in self.responses.due_reminders(now, SWEEP_BATCH):
            outcome = self._remind(wait, now)
            if outcome in done:
                done[outcome] += 1
        for wait in self.responses.due_takebacks(now, SWEEP_BATCH):
            done["taken_back"] += self._take_back(wait, now, "timeout") == "taken_back"
        if any(done.values()):
            log.info("SLA sweep: %s", done)
        return done

    # -- reminders -----------------------------------------------------------------------

    def _remind(self, wait: Wait, now: datetime) -> str:
        current = self.pins.active(wait.conversation_id)
        holder = current[1] if current else None
        if (holder is not None and wait.takeback_at is not None
                and not self.shifts.on_shift(holder.tg_id)):
            return self._take_back(wait, now, "off_shift")   # nobody to remind: back at once
        conversation = self.conversations.get(wait.conversation_id)
        with self.db.transaction() as cur:
            if not self.responses.reminded(cur, wait.id, now) or conversation is None:
                return "reminded"
            minutes = round(self.policy.hours.between(wait.asked_at, now))
            if holder is not None:
                self.notices.tell(Notice(holder.tg_id, "sla_remind_holder",
                                         {"id_i": conversation.ref, "minutes": minutes},
                                         button=Button("btn_open_chat", "openw", (conversation.id,)),
                                         key=f"sla:remind:{wait.id}:{current[0].id}",
                                         conversation_id=conversation.id, purpose="notify"), cur)
            elif self.shared_chat_id is not None:
                self.notices.tell(Notice(self.shared_chat_id, "sla_remind_shared",
                                         {"id_i": conversation.ref, "minutes": minutes,
                                          "customer": conversation.customer or "—"},
                                         button=_reply_button(wait, conversation),
                                         key=f"sla:remind:{wait.id}:0", conversation_id=conversation.id,
                                         message_id=wait.message_id, purpose="post"), cur)
        return "reminded"

    # -- takeback ------------------------------------------------------------------------

    def _take_back(self, wait: Wait, now: datetime, reason: str) -> str:
        conversation = self.conversations.get(wait.conversation_id)
        message = self.messages.get(wait.message_id)
        with self.locks.chat_lock(wait.conversation_id):
            with self.db.transaction() as cur:
                current = self.pins.active(wait.conversation_id, cur, lock=True)
                holder = current[1] if current else None
                if not self.responses.taken_back(cur, wait.id, now, holder.tg_id if holder else None):
                    return "skipped"
                if current is None or conversation is None or message is None:
                    return "skipped"   # nobody holds it: the shared chat has it already
                self.pins.end(cur, current[0].id, DELETE_PIN, now)
                minutes = round(self.policy.hours.between(wait.asked_at, now))
                if self.shared_chat_id is not None:
                    self.desk.repost_taken_back(cur, f"sla:takeback:{wait.id}", conversation, message,
                                                holder, reason, minutes)
                values = {"id_i": conversation.ref, "minutes": minutes}
                self.notices.tell(Notice(holder.tg_id, f"sla_taken_from_you_{reason}", values,
                                         key=f"sla:takeback:{wait.id}:holder"), cur)
                self.notices.tell(Notice(self.log_chat_id, f"log_takeback_{reason}",
                                         dict(values, who=holder.display_name),
                                         key=f"sla:takeback:{wait.id}:log", purpose="log"), cur)
        return "taken_back"


def _reply_button(wait: Wait, conversation: Conversation) -> Button:
    """Under a reminder in the shared chat: take the chat (a task: connect to it)."""
    if conversation.is_task:
        return Button("btn_connect", "connect", (wait.message_id,))
    return Button("btn_reply", "reply", (wait.message_id,))
