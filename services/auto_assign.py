"""Auto-assignment (off by default; on per channel by an admin): a new conversation goes
to the manager on shift with the fewest open chats, round robin among equals, through the
claim service in the ingest's transaction — the same pin a tap makes, so never two
holders. The shared chat still sees the customer's message, saying who got it; the
manager is told, with "🔁 Передати" to pass it on: to the next manager on shift who has
not had it, or — nobody left — back to the shared chat with "✍ Відповісти".

Two new conversations of one channel are decided one after the other: the channel's
`auto_assign` row is locked in the deciding transaction, so each sees the other's pin.
Managers only (admins supervise), on shift, who have not blocked the bot.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence

from models.auto_assign import AutoAssignRepository, Candidate
from models.conversations import Conversation, ConversationRepository
from models.db import Database
from models.locks import LockManager
from models.messages import MessageRepository
from models.pins import DELETE_PIN, PinRepository
from models.responses import ResponseRepository
from models.users import User
from services.claims import ChatClaims, Outcome, pin_kind
from services.notices import Button, Notice, Notices, Says
from services.results import Refusal, Refused

CHANNELS = ("keepingcrm", "whatsapp", "tgaccount")


def next_in_turn(candidates: Sequence[Candidate], last_id: int | None) -> User | None:
    """The fewest open chats; among equals the first after the last one given a chat."""
    if not candidates:
        return None
    fewest = min(c.open_chats for c in candidates)
    equals = sorted((c.user for c in candidates if c.open_chats == fewest), key=lambda u: u.tg_id)
    after = [u for u in equals if last_id is not None and u.tg_id > last_id]
    return (after or equals)[0]


@dataclass(frozen=True)
class Passed:
    conversation: Conversation
    to: User | None          # None: back in the shared chat


class AutoAssign:
    def __init__(self, db: Database, claims: ChatClaims, locks: LockManager, notices: Notices,
                 desk, *, shared_chat_id: int | None, log_chat_id: int | None,
                 clock: Callable[[], datetime], on_claim: Callable | None = None) -> None:
        """`desk`: the Telegram desk, which posts a chat passed back to the shared chat
        (`repost_taken_back`)."""
        self.db = db
        self.claims = claims
        self.locks = locks
        self.notices = notices
        self.desk = desk
        self.shared_chat_id = shared_chat_id
        self.log_chat_id = log_chat_id
        self.clock = clock
        self.on_claim = on_claim
        self.repo = AutoAssignRepository(db)
        self.conversations = ConversationRepository(db)
        self.messages = MessageRepository(db)
        self.responses = ResponseRepository(db)
        self.pins = PinRepository(db)

    # -- the admin's switch ------------------------------------------------------------

    def switch(self, channel: str, enabled: bool) -> bool:
        if channel not in CHANNELS:
            return False
        self.repo.switch(channel, enabled)
        return True

    def states(self) -> dict[str, bool]:
        known = self.repo.states()
        return {channel: known.get(channel, False) for channel in CHANNELS}

    # -- a new conversation --------------------------------------------------------------

    def assign(self, cur, conversation: Conversation, now: datetime) -> User | None:
        """In the ingest's transaction: the manager the new conversation was given to."""
        enabled, last_id = self.repo.lock_turn(cur, conversation.channel)
        if not enabled:
            return None
        manager = next_in_turn(self.repo.candidates(cur), last_id)
        if manager is None:
            return None      # nobody on shift: the shared chat takes it as always
        result = self.claims.claim_locked(cur, conversation.id, manager, now=now,
                                          kind=pin_kind(conversation))
        if result.outcome is not Outcome.CLAIMED:
            return result.holder if result.outcome is Outcome.ALREADY_MINE else None
        self.repo.record_turn(cur, conversation.channel, manager.tg_id)
        self._tell(cur, conversation, manager, now, Says("change_pin_assigned"))
        return manager

    def _tell(self, cur, conversation: Conversation, manager: User, now: datetime, what: Says) -> None:
        stamp = f"{conversation.id}:{manager.tg_id}:{now.isoformat()}"
        self.notices.tell(Notice(manager.tg_id, "auto_assigned", {"id_i": conversation.ref},
                                 button=Button("btn_pass_on", "aapass", (conversation.id,)),
                                 key=f"assign:{stamp}", conversation_id=conversation.id,
                                 purpose="notify"), cur)
        self.notices.tell(Notice(self.log_chat_id, "log_change_pin",
                                 {"who": manager.display_name, "what": what, "id_i": conversation.ref},
                                 key=f"assign:{stamp}:log", purpose="log"), cur)

    # -- "🔁 Передати" -----------------------------------------------------------------

    def pass_on(self, user: User, conversation_id: int) -> Passed | Refused:
        conversation = self.conversations.get(conversation_id)
        if conversation is None:
            return Refused(Refusal.UNKNOWN_CHAT)
        now = self.clock()
        with self.locks.chat_lock(conversation_id):
            with self.db.transaction() as cur:
                current = self.claims.holder(conversation_id, now, cur)
                if current is None or current[1].tg_id != user.tg_id:
                    return Refused(Refusal.NOT_HOLDER, current[1] if current else None)
                pin = current[0]
                self.repo.lock_turn(cur, conversation.channel)
                had = self.repo.held_before(cur, conversation_id) + (user.tg_id,)
                manager = next_in_turn(self.repo.candidates(cur, exclude=had), None)
                self.pins.end(cur, pin.id, DELETE_PIN, now)
                if manager is not None:
                    self.pins.create(cur, conversation_id, manager.tg_id, pin.kind, now)
                    if self.on_claim is not None:
                        self.on_claim(cur, conversation_id, now)
                    self.repo.record_turn(cur, conversation.channel, manager.tg_id)
                    self._tell(cur, conversation, manager, now,
                               Says("change_pin_passed", {"previous": user.display_name}))
                    return Passed(conversation, manager)
                self._back_to_shared(cur, conversation, user, now)
                return Passed(conversation, None)

    def _back_to_shared(self, cur, conversation: Conversation, user: User, now: datetime) -> None:
        wait = self.responses.open_wait(conversation.id, cur)
        message = self.messages.get(wait.message_id) if wait is not None else None
        if message is None:
            newest = [m for m in self.messages.page(conversation.id, 0, 20) if m.from_client]
            message = newest[0] if newest else None
        if message is not None and self.shared_chat_id is not None:
            self.desk.repost_taken_back(cur, f"assign:back:{conversation.id}:{now.isoformat()}",
                                        conversation, message, user, "passed", 0)
        self.notices.tell(Notice(self.log_chat_id, "log_change_pin",
                                 {"who": user.display_name, "what": Says("change_pin_passed_back"),
                                  "id_i": conversation.ref},
                                 key=f"assign:back:{conversation.id}:{now.isoformat()}:log",
                                 purpose="log"), cur)
