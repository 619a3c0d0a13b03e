"""Task chats done right (SPEC §8): the 📊 board shows who holds each task and since when,
done tasks stay on it for a day, only the holder or an admin changes a task's status,
and reopening a done task gives it back to the manager who held it (their pin again,
and they are told) — whoever reopens it.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from models.conversations import ConversationRepository
from models.db import Database
from models.pins import ACTIVATE_KEY
from models.tasks import BoardRow, TaskBoardRepository
from models.users import User, UserManager
from services.results import Refusal, Refused
from services.claims import ChatClaims, Outcome
from services.notices import Notice, Notices


@dataclass(frozen=True)
class StatusChanged:
    status: str
    returned_to: User | None = None     # reopening gave the task back to this manager


class Tasks:
    def __init__(self, db: Database, claims: ChatClaims, users: UserManager, notices: Notices,
                 clock: Callable[[], datetime]) -> None:
        self.claims = claims
        self.users = users
        self.notices = notices
        self.clock = clock
        # A task marked done: its customer is asked for a score (services/scores.py).
        self.on_done: Callable[[int, int | None], None] | None = None
        self.board_repo = TaskBoardRepository(db)
        self.conversations = ConversationRepository(db)

    def board(self, offset: int, limit: int) -> tuple[list[BoardRow], int]:
        return self.board_repo.board(self.clock(), offset, limit)

    def toggle(self, user: User, conversation_id: int) -> StatusChanged | Refused:
        """in work ↔ done, by the task's holder or an admin; done → in work reopens it."""
        conversation = self.conversations.get(conversation_id)
        if conversation is None:
            return Refused(Refusal.UNKNOWN_CHAT)
        if not conversation.is_task:
            return Refused(Refusal.NOT_A_TASK)
        now = self.clock()
        holder = self.claims.holder(conversation_id, now)
        last = self.board_repo.last_holder(conversation_id)
        allowed = user.is_admin or (holder is not None and holder[1].tg_id == user.tg_id) or (
            holder is None and last == user.tg_id)
        if not allowed:
            return Refused(Refusal.NOT_HOLDER, holder[1] if holder else None)
        if conversation.status in ("new", "in_work"):
            self.board_repo.set_status(conversation_id, "done", now)
            if self.on_done is not None:
                self.on_done(conversation_id, holder[1].tg_id if holder else last)
            return StatusChanged("done")
        self.board_repo.set_status(conversation_id, "in_work", now)
        return StatusChanged("in_work", self._give_back(conversation, holder, last, user, now))

    def _give_back(self, conversation, holder, last: int | None, by: User, now: datetime) -> User | None:
        """A reopened task goes back to the manager who held it."""
        if holder is not None or last is None:
            return holder[1] if holder else None
        manager = self.users.get(last)
        if manager is None or not manager.is_manager:
            return None
        result = self.claims.claim(conversation.id, manager, now=now, kind=ACTIVATE_KEY)
        if result.outcome is not Outcome.CLAIMED:
            return None
        if manager.tg_id != by.tg_id:
            self.notices.tell(Notice(manager.tg_id, "task_returned_to_you",
                                     {"id_i": conversation.ref, "by": by.display_name},
                                     key=self.notices.key(f"reopen:{conversation.id}")
                                     or f"task:reopen:{conversation.id}:{now.timestamp()}"))
        return manager
