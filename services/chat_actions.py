"""What a manager does to one chat besides taking it and writing to it: mark it read,
change a task's status, enter writing mode (SPEC §3 flows 3, 6, 8).

Every action checks, here in the service and against the database, who holds the chat —
never trusting that the button was drawn for this person:
* a chat held by another manager: only an admin may mark it read; nobody but its
  holder writes to it;
* a task's status: its holder or an admin;
* an unpinned chat: any manager may mark it read or start writing to it (writing takes it).
History stays readable by every manager (the "all chats" list of SPEC §3).

"Read" is a side effect at the conversation's channel: it is a durable step (`mark_read`),
recorded with an idempotency key and performed once; the caller may run it at once and
tell the person.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from channels import Channels
from channels.base import ChannelError
from models.conversations import Conversation, ConversationListRepository, ConversationRepository
from models.jobs import UPDATES, Job, JobQueue, Permanent
from models.state import SEND_MODE, ManagerStateRepository
from models.users import User
from services.claims import ChatClaims, ClaimResult, Outcome, pin_kind
from services.notices import Notice, Notices, Says
from services.results import Refusal, Refused
from utils.clock import utc_now


@dataclass(frozen=True)
class ReadRequested:
    job_id: int | None             # None: this update asked already


class ChatActions:
    def __init__(self, db, jobs: JobQueue, claims: ChatClaims,
                 clock: Callable[[], datetime] = utc_now, beside: Callable | None = None, *,
                 notices: Notices | None = None, orders=None, log_chat_id: int | None = None) -> None:
        self.jobs = jobs
        self.notices = notices
        self.orders = orders     # services/orders.py: a chat taken shows its order as it is now
        self.log_chat_id = log_chat_id
        self.beside = beside     # an admin joined beside the holder writes too (Joins.beside)
        self.claims = claims
        self.clock = clock
        self.conversations = ConversationRepository(db)
        self.lists = ConversationListRepository(db)
        self.state = ManagerStateRepository(db)

    def _held_by_other(self, user: User, conversation: Conversation) -> User | None:
        holder = self.claims.holder(conversation.id, self.clock())
        if holder is not None and holder[1].tg_id != user.tg_id:
            return holder[1]
        return None

    def take(self, user: User, conversation_id: int, *, answering_message_id: int | None = None,
             take_over: bool = False) -> ClaimResult:
        """Take the chat (a tap on the shared post, /connect_to_chat, taking over from a
        colleague) with the pin it calls for, and what follows a chat taken: writing mode
        for the taker, the log chat's #CHANGE_PIN, the previous holder told, the order
        fetched afresh."""
        conversation = self.conversations.get(conversation_id)
        result = self.claims.claim(conversation_id, user, now=self.clock(), kind=pin_kind(conversation),
                                   answering_message_id=answering_message_id, take_over=take_over)
        if result.outcome in (Outcome.CLAIMED, Outcome.ALREADY_MINE) and conversation is not None:
            self.state.set(user.tg_id, conversation_id, SEND_MODE)   # the taker writes to it now
        if result.outcome is not Outcome.CLAIMED or self.notices is None or conversation is None:
            return result
        previous = result.previous if take_over else None
        what = (Says("change_pin_taken_over", {"previous": previous.display_name}) if previous is not None
                else Says("change_pin_claimed"))
        self.notices.tell(Notice(self.log_chat_id, "log_change_pin",
                                 {"who": user.display_name, "what": what, "id_i": conversation.ref},
                                 key=self.notices.key(f"pin:{conversation_id}"), purpose="log"))
        if previous is not None and previous.tg_id != user.tg_id and previous.reachable:
            self.notices.tell(Notice(previous.tg_id, "taken_over_from_you",
                                     {"id_i": conversation.ref, "name": user.display_name},
                                     key=self.notices.key("taken_over")))
        if self.orders is not None and self.orders.offered(conversation):
            self.orders.request(conversation_id)
        return result

    def request_read(self, user: User, conversation_id: int,
                     key: str | None = None) -> ReadRequested | Refused:
        """Ask for the "read" status of the conversation at its channel, as a durable step."""
        conversation = self.conversations.get(conversation_id)
        if conversation is None:
            return Refused(Refusal.UNKNOWN_CHAT)
        other = self._held_by_other(user, conversation)
        if other is not None and not user.is_admin:
            return Refused(Refusal.TAKEN_BY, other)
        job_id = self.jobs.enqueue_id(UPDATES, "mark_read",
                                      {"conversation_id": conversation_id, "by": user.tg_id},
                                      dedupe_key=f"seen:{key}" if key else None,
                                      lane=f"conv:{conversation_id}", priority=1)
        return ReadRequested(job_id)

    def enter_writing(self, user: User, conversation_id: int) -> Conversation | Refused:
        """Writing mode for a conversation that is the manager's or nobody's."""
        conversation = self.conversations.get(conversation_id)
        if conversation is None:
            return Refused(Refusal.UNKNOWN_CHAT)
        other = self._held_by_other(user, conversation)
        if other is not None and not (self.beside is not None
                                      and self.beside(None, conversation_id, user)):
            return Refused(Refusal.TAKEN_BY, other)
        self.state.set(user.tg_id, conversation_id, SEND_MODE)
        return conversation


class MarkReadStep:
    """The `mark_read` job: the channel marks the conversation read, then its unread
    counter is 0."""

    def __init__(self, db, channels: Channels) -> None:
        self.channels = channels
        self.conversations = ConversationRepository(db)
        self.lists = ConversationListRepository(db)

    def __call__(self, job: Job) -> None:
        conversation = self.conversations.get(int(job.payload["conversation_id"]))
        if conversation is None:
            return
        channel = self.channels.of(conversation)
        try:
            channel.mark_read(conversation)
        except ChannelError as exc:
            if not exc.transient:
                raise Permanent(f"{channel.label} refused the read status", str(exc)) from exc
            raise
        self.lists.mark_read(conversation.id)
