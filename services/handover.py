"""Handing a chat over, joining it, shifts (SPEC §8 "Handing over", "Nobody holds a
customer hostage").

* `HandOver.perform`: the holder (or an admin) gives the chat to a colleague who is a
  manager, not banned and on shift — a stale button naming someone who went off shift or
  was banned gets a clear refusal and changes nothing. Both are told, the log chat gets
  `#CHANGE_PIN`, the customer's wait restarts its reminders for the new holder.
* `Joins`: an admin *joins* a held chat to watch and answer beside its holder — they get
  the customer's new messages too and may write to the customer; the holder keeps the
  pin (its window, task status, unpinning stay the holder's), and the join ends with that
  pin or when the admin leaves. *Taking over* (`/connect_to_chat_N`, "⚡ Забрати собі")
  ends the holder's pin instead.
* `Shifts`: on / off shift per manager; going off shift offers each of the manager's
  chats to the others in the shared chat ("🙋 Взяти чат"); an offer is taken only while
  its holder is still off shift.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from models.conversations import Conversation, ConversationRepository
from models.db import Database
from models.desk_extras import JoinRepository
from models.pins import PinRepository
from models.shifts import ShiftRepository
from models.users import User, UserManager
from services.notices import Button, Notice, Notices
from services.results import Refusal, Refused
from services.claims import ChatClaims, Outcome
from services.sla import Waits


@dataclass(frozen=True)
class Handed:
    conversation: Conversation
    previous: User
    to: User


class HandOver:
    def __init__(self, db: Database, claims: ChatClaims, users: UserManager, notices: Notices,
                 waits: Waits, *, log_chat_id: int | None, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.claims = claims
        self.users = users
        self.notices = notices
        self.waits = waits
        self.log_chat_id = log_chat_id
        self.clock = clock
        self.conversations = ConversationRepository(db)
        self.shifts = ShiftRepository(db)

    def perform(self, conversation_id: int, by: User, to_id: int, *,
                offer: bool = False) -> Handed | Refused:
        conversation = self.conversations.get(conversation_id)
        if conversation is None:
            return Refused(Refusal.UNKNOWN_CHAT)
        to = self.users.get(to_id)
        if to is None or not to.is_manager:
            return Refused(Refusal.NOT_A_MANAGER, to)
        if to.tg_id == by.tg_id and not offer:
            return Refused(Refusal.SELF, to)
        if not self.shifts.on_shift(to.tg_id):
            return Refused(Refusal.OFF_SHIFT, to)
        now = self.clock()
        giver = by
        if offer:  # taking an off-shift colleague's chat: handed over in the holder's name
            holder = self.claims.holder(conversation_id, now)
            if holder is None:
                return Refused(Refusal.NOBODY_HOLDS)
            if self.shifts.on_shift(holder[1].tg_id):
                return Refused(Refusal.HOLDER_BACK, holder[1])
            giver = holder[1]
        result = self.claims.transfer(conversation_id, giver, to, now=now)
        if result.outcome is Outcome.NOT_HOLDER:
            return Refused(Refusal.NOT_HOLDER, result.holder)
        if result.outcome is not Outcome.TRANSFERRED:
            return Refused(Refusal.SELF, to)
        with self.db.transaction() as cur:
            self.waits.rearm(cur, conversation_id, now)
            self._tell(cur, conversation, by, result.previous, to, offer)
        return Handed(conversation, result.previous, to)

    def _tell(self, cur, conversation: Conversation, by: User, previous: User, to: User,
              offer: bool) -> None:
        # Keyed by the update that decided it (a re-run update tells nobody twice).
        key = self.notices.key(f"handover:{conversation.id}") or \
            f"handover:{conversation.id}:{to.tg_id}:{self.clock().timestamp()}"
        values = {"id_i": conversation.ref, "giver": by.display_name,
                  "customer": conversation.customer or "—"}
        tell = self.notices.tell
        tell(Notice(to.tg_id, "handed_to_you", values, key=f"{key}:to",
                    button=Button("btn_open_chat", "openw", (conversation.id,)),
                    conversation_id=conversation.id, purpose="notify"), cur)
        if offer:
            tell(Notice(previous.tg_id, "offer_taken_from_you",
                        {"id_i": conversation.ref, "to": to.display_name}, key=f"{key}:from"), cur)
        elif previous.tg_id != by.tg_id:
            tell(Notice(previous.tg_id, "handed_from_you",
                        {"id_i": conversation.ref, "to": to.display_name, "giver": by.display_name},
                        key=f"{key}:from"), cur)
        tell(Notice(self.log_chat_id, "log_offer_taken" if offer else "log_handover",
                    {"who": by.display_name, "id_i": conversation.ref,
                     "previous": previous.display_name, "to": to.display_name},
                    key=f"{key}:log", purpose="log"), cur)


class Joins:
    def __init__(self, db: Database, claims: ChatClaims, notices: Notices, *,
                 log_chat_id: int | None, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.claims = claims
        self.notices = notices
        self.log_chat_id = log_chat_id
        self.clock = clock
        self.joins = JoinRepository(db)
        self.conversations = ConversationRepository(db)

    def join(self, conversation_id: int, admin: User) -> User | Refused:
        """The admin joins the holder: the holder is returned."""
        conversation = self.conversations.get(conversation_id)
        if conversation is None:
            return Refused(Refusal.UNKNOWN_CHAT)
        now = self.clock()
        holder = self.claims.holder(conversation_id, now)
        if holder is None:
            return Refused(Refusal.NOBODY_HOLDS)
        pin, user = holder
        if user.tg_id == admin.tg_id:
            return Refused(Refusal.OWN_CHAT)
        if self.joins.join(conversation_id, pin.id, admin.tg_id, now):
            key = self.notices.key(f"join:{pin.id}") or f"join:{pin.id}:{admin.tg_id}:{now.timestamp()}"
            self.notices.tell(Notice(user.tg_id, "admin_joined_you",
                                     {"id_i": conversation.ref, "admin": admin.display_name},
                                     key=f"{key}:holder"))
            self.notices.tell(Notice(self.log_chat_id, "log_join",
                                     {"who": admin.display_name, "id_i": conversation.ref,
                                      "holder": user.display_name}, key=f"{key}:log", purpose="log"))
        return user

    def leave(self, conversation_id: int, admin: User) -> bool:
        return self.joins.leave(conversation_id, admin.tg_id, self.clock())

    def beside(self, cur, conversation_id: int, user: User) -> bool:
        """May `user` write beside the holder (an admin joined to the current pin)?"""
        return user.is_admin and self.joins.is_joined(conversation_id, user.tg_id, cur)


class Shifts:
    def __init__(self, db: Database, notices: Notices, *,
                 shared_chat_id: int | None, clock: Callable[[], datetime]) -> None:
        self.notices = notices
        self.shared_chat_id = shared_chat_id
        self.clock = clock
        self.shifts = ShiftRepository(db)
        self.pins = PinRepository(db)
        self.conversations = ConversationRepository(db)

    def on_shift(self, user: User) -> bool:
        return self.shifts.on_shift(user.tg_id)

    def set(self, user: User, on_shift: bool) -> int | None:
        """Set the manager's shift; going off shift offers their chats (how many), None
        when nothing changed."""
        now = self.clock()
        changed = self.shifts.set(user.tg_id, on_shift, now)
        if on_shift:
            return 0 if changed else None
        # Offers are keyed by the pin and the moment the shift ended: a re-run of this
        # update (or a second tap) offers nothing twice, and one lost to a crash is made.
        since = self.shifts.changed_at(user.tg_id) or now
        offered = 0
        for pin in self.pins.active_of_manager(user.tg_id):
            conversation = self.conversations.get(pin.conversation_id)
            if conversation is not None and self._offer(user, conversation, pin.id, since):
                offered += 1
        return offered if changed else None

    def _offer(self, holder: User, conversation: Conversation, pin_id: int, now: datetime) -> bool:
        if self.shared_chat_id is None:
            return False
        return self.notices.tell(Notice(
            self.shared_chat_id, "offer_off_shift",
            {"name": holder.display_name, "id_i": conversation.ref,
             "customer": conversation.customer or "—", "product": conversation.title or "—"},
            button=Button("btn_take_offer", "offer", (conversation.id,)),
            key=f"offer:{pin_id}:{now.timestamp()}",
            conversation_id=conversation.id, purpose="offer")) is not None
