"""Who holds a chat: claim, release, end a banned manager's pins, and the holder check
every action on a chat goes through (SPEC §3, flow 2; §6).

Claiming is one business action with one entry point and a result that says what
happened.

The per-chat lock (a replicated row, models/locks.py) serialises the decision across processes and hosts; the unique
key on active pins makes a double pin impossible even without it. Order of the checks:
the tapping manager already holds it → ALREADY_MINE; the client message was answered
after it (e.g. from the CRM web page) → ALREADY_ANSWERED; another manager holds a live
pin → TAKEN_BY; otherwise the chat is pinned to the manager → CLAIMED. An active pin past
its window counts as expired and is moved to history on the way.
"""
from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import datetime

import pymysql

from models.conversations import ConversationListRepository
from models.db import Database
from models.locks import LockManager
from models.messages import MessageRepository
from models.pins import ACTIVATE_KEY, DELETE_PIN, PIN, Pin, PinRepository
from models.users import User

log = logging.getLogger(__name__)


def pin_kind(conversation) -> str:
    """The pin a conversation calls for: a task is always ACTIVATE_KEY."""
    return ACTIVATE_KEY if conversation is not None and conversation.is_task else PIN


class Outcome(enum.Enum):
    CLAIMED = "claimed"
    ALREADY_MINE = "already_mine"
    TAKEN_BY = "taken_by"
    ALREADY_ANSWERED = "already_answered"
    TRANSFERRED = "transferred"        # transfer: the colleague holds it now
    NOT_HOLDER = "not_holder"          # transfer/release: it is not this manager's to give
    REFUSED_TARGET = "refused_target"  # transfer: the colleague cannot take chats (pending, banned, self)


@dataclass(frozen=True)
class ClaimResult:
    outcome: Outcome
    holder: User | None = None        # who holds the chat after the claim (TAKEN_BY: the other)
    previous: User | None = None      # whose pin ended to make room (expired or taken over)


class ChatClaims:
    def __init__(self, db: Database, locks: LockManager, *, pin_ttl_hours: float) -> None:
        self.db = db
        self.locks = locks
        self.pins = PinRepository(db)
        self.messages = MessageRepository(db)
        self.lists = ConversationListRepository(db)
        self.pin_ttl_hours = pin_ttl_hours
        # In the claim's transaction (cur, conversation_id, now): the customer's wait starts
        # its reminders again for the new holder (services/sla.py::Waits.rearm).
        self.on_claim = None

    def claim(self, conversation_id: int, manager: User, *, now: datetime, kind: str = PIN,
              answering_message_id: int | None = None, take_over: bool = False) -> ClaimResult:
        """Pin chat `conversation_id` to `manager` unless it is theirs, answered, or someone else's.

        `answering_message_id`: the client message the manager tapped "reply" under.
        `take_over`: an admin's /connect_to_chat ends another manager's pin.
        """
        with self.locks.chat_lock(conversation_id):
            with self.db.transaction() as cur:
                return self.claim_locked(cur, conversation_id, manager, now=now, kind=kind,
                                         answering_message_id=answering_message_id,
                                         take_over=take_over)

    def claim_locked(self, cur, conversation_id: int, manager: User, *, now: datetime,
                     kind: str = PIN, answering_message_id: int | None = None,
                     take_over: bool = False) -> ClaimResult:
        """`claim`, for a caller that holds the chat's lock and its transaction (so that
        what it does next — record an answer — happens under the same decision)."""
        current = self.pins.active(conversation_id, cur, lock=True)
        live = current is not None and current[0].expires_at(self.pin_ttl_hours) > now
        if live and current[0].manager_id == manager.tg_id:
            return ClaimResult(Outcome.ALREADY_MINE, holder=manager)
        if answering_message_id is not None and self.messages.answered_after(
                conversation_id, answering_message_id, cur):
            return ClaimResult(Outcome.ALREADY_ANSWERED, holder=current[1] if live else None)
        previous = None
        if current is not None:
            pin, holder = current
            if live and not take_over:
                return ClaimResult(Outcome.TAKEN_BY, holder=holder)
            # Past its window (the expiry job may not have run yet), or taken over.
            self.pins.end(cur, pin.id, DELETE_PIN if live else pin.expired_state, now)
            previous = holder
        try:
            self.pins.create(cur, conversation_id, manager.tg_id, kind, now)
        except pymysql.err.IntegrityError:
            # Only reachable if someone bypassed the lock: the database still decides.
            other = self.pins.active(conversation_id, cur)
            return ClaimResult(Outcome.TAKEN_BY, holder=other[1] if other else None)
        if kind != PIN:
            self.lists.start_task(cur, conversation_id)
        if self.on_claim is not None:
            self.on_claim(cur, conversation_id, now)
        return ClaimResult(Outcome.CLAIMED, holder=manager, previous=previous)

    def release(self, conversation_id: int, manager: User, *, now: datetime) -> Pin | None:
        """The manager removes their own pin (DELETE_PIN); None if it was not theirs."""
        with self.locks.chat_lock(conversation_id):
            with self.db.transaction() as cur:
                current = self.pins.active(conversation_id, cur, lock=True)
                if current is None or current[0].manager_id != manager.tg_id:
                    return None
                self.pins.end(cur, current[0].id, DELETE_PIN, now)
                return current[0]

    def take_over(self, conversation_id: int, admin: User, *, now: datetime,
                  kind: str = PIN) -> ClaimResult:
        """An admin takes the conversation, ending whoever held it (DELETE_PIN)."""
        return self.claim(conversation_id, admin, now=now, kind=kind, take_over=True)

    def transfer(self, conversation_id: int, by: User, to: User, *, now: datetime) -> ClaimResult:
        """Hand the conversation to a colleague: its holder (or an admin) ends the pin
        (DELETE_PIN) and the colleague's starts, of the same kind, in one transaction."""
        if not to.is_manager or to.tg_id == by.tg_id:
            return ClaimResult(Outcome.REFUSED_TARGET, holder=to)
        with self.locks.chat_lock(conversation_id):
            with self.db.transaction() as cur:
                current = self.holder(conversation_id, now, cur)
                if current is None or (current[1].tg_id != by.tg_id and not by.is_admin):
                    return ClaimResult(Outcome.NOT_HOLDER, holder=current[1] if current else None)
                pin, previous = current
                if previous.tg_id == to.tg_id:
                    return ClaimResult(Outcome.ALREADY_MINE, holder=to)
                self.pins.end(cur, pin.id, DELETE_PIN, now)
                self.pins.create(cur, conversation_id, to.tg_id, pin.kind, now)
                return ClaimResult(Outcome.TRANSFERRED, holder=to, previous=previous)

    def holder(self, conversation_id: int, now: datetime, cur=None) -> tuple[Pin, User] | None:
        """The chat's live holder: an active pin still inside its window."""
        current = self.pins.active(conversation_id, cur, lock=cur is not None)
        if current is None or current[0].expires_at(self.pin_ttl_hours) <= now:
            return None
        return current

    def holder_or_expire(self, cur, conversation_id: int, now: datetime) -> User | None:
        """Inside the caller's transaction: the live holder, ending a pin past its window
        (conditionally on the window, so a concurrent reply that renewed it wins; the
        pin's row lock orders this with a claim, which locks the same row)."""
        current = self.pins.active(conversation_id, cur, lock=True)
        if current is None:
            return None
        if current[0].expires_at(self.pin_ttl_hours) > now:
            return current[1]
        self.pins.end_if_due(cur, current[0], now, self.pin_ttl_hours)
        return None

    def end_all_of(self, manager_id: int, now: datetime) -> list[Pin]:
        """A banned manager's pins end (DELETE_PIN), each under its chat's lock."""
        ended = []
        for pin in self.pins.active_of_manager(manager_id):
            with self.locks.chat_lock(pin.conversation_id):
                with self.db.transaction() as cur:
                    if self.pins.end(cur, pin.id, DELETE_PIN, now):
                        ended.append(pin)
        return ended

    def expire_due(self, now: datetime, conversation_id: int | None = None) -> list[Pin]:
        """Pins whose window has passed move to history. Each ends only if its manager did
        not reply meanwhile (the end is conditional on the window), so an expiry and a
        concurrent reply can never both win."""
        expired = []
        for pin in self.pins.due(now, self.pin_ttl_hours, conversation_id=conversation_id):
            with self.locks.chat_lock(pin.conversation_id):
                with self.db.transaction() as cur:
                    if self.pins.end_if_due(cur, pin, now, self.pin_ttl_hours):
                        expired.append(pin)
        return expired
