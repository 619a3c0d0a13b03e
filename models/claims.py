"""Claiming a chat: one business action with one entry point and a result that says what
happened (SPEC §3, flow 2).

The per-chat lock (MariaDB GET_LOCK) serialises the decision across processes; the unique
key on active pins makes a double pin impossible even without it. Order of the checks:
the tapping manager already holds it → ALREADY_MINE; the client message was answered
after it (e.g. from the CRM web page) → ALREADY_ANSWERED; another manager holds a live
pin → TAKEN_BY; otherwise the chat is pinned to the manager → CLAIMED. An active pin past
its window counts as expired and is moved to history on the way.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

import pymysql

from models.db import Database
from models.locks import LockManager
from models.messages import MessageRepository
from models.pins import DELETE_PIN, PIN, Pin, PinRepository
from models.users import User


class Outcome(enum.Enum):
    CLAIMED = "claimed"
    ALREADY_MINE = "already_mine"
    TAKEN_BY = "taken_by"
    ALREADY_ANSWERED = "already_answered"


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
        self.pin_ttl_hours = pin_ttl_hours

    def claim(self, id_i: int, manager: User, *, now: datetime, kind: str = PIN,
              answering_message_id: int | None = None, take_over: bool = False) -> ClaimResult:
        """Pin chat `id_i` to `manager` unless it is theirs, answered, or someone else's.

        `answering_message_id`: the client message the manager tapped "reply" under.
        `take_over`: an admin's /connect_to_chat ends another manager's pin.
        """
        with self.locks.chat_lock(id_i):
            with self.db.transaction() as cur:
                current = self.pins.active(id_i, cur, lock=True)
                if current is not None and current[0].manager_id == manager.tg_id:
                    return ClaimResult(Outcome.ALREADY_MINE, holder=manager)
                if answering_message_id is not None and self.messages.answered_after(
                        id_i, answering_message_id, cur):
                    return ClaimResult(Outcome.ALREADY_ANSWERED,
                                       holder=current[1] if current else None)
                previous = None
                if current is not None:
                    pin, holder = current
                    live = pin.expires_at(self.pin_ttl_hours) > now
                    if live and not take_over:
                        return ClaimResult(Outcome.TAKEN_BY, holder=holder)
                    self.pins.end(cur, pin.id, DELETE_PIN if live else pin.expired_state, now)
                    previous = holder
                try:
                    self.pins.create(cur, id_i, manager.tg_id, kind, now)
                except pymysql.err.IntegrityError:
                    # Only reachable if someone bypassed the lock: the database still decides.
                    cur.connection.rollback()
                    other = self.pins.active(id_i)
                    return ClaimResult(Outcome.TAKEN_BY, holder=other[1] if other else None)
                if kind != PIN:
                    cur.execute("UPDATE chats SET status = 'in_work' WHERE id_i = %s"
                                " AND status IN ('new', 'done', 'archive')", (id_i,))
                return ClaimResult(Outcome.CLAIMED, holder=manager, previous=previous)

    def release(self, id_i: int, manager: User, *, now: datetime) -> Pin | None:
        """The manager removes their own pin (DELETE_PIN); None if it was not theirs."""
        with self.locks.chat_lock(id_i):
            with self.db.transaction() as cur:
                current = self.pins.active(id_i, cur, lock=True)
                if current is None or current[0].manager_id != manager.tg_id:
                    return None
                self.pins.end(cur, current[0].id, DELETE_PIN, now)
                return current[0]
