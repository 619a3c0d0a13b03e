"""Where each manager is in the desk (table `manager_state`).

Kept in MariaDB, not in process memory: the next update of a manager may be served by
any worker thread of any process.
"""
from __future__ import annotations

from dataclasses import dataclass

from models.repo import Repository

SEND_MODE = "send"


@dataclass(frozen=True)
class ManagerState:
    conversation_id: int | None = None
    mode: str | None = None

    @property
    def sending(self) -> bool:
        return self.mode == SEND_MODE and self.conversation_id is not None


class ManagerStateRepository(Repository):
    def get(self, tg_id: int) -> ManagerState:
        row = self.db.fetchone("SELECT conversation_id, mode FROM manager_state WHERE tg_id = %s",
                               (tg_id,))
        return ManagerState(row["conversation_id"], row["mode"]) if row else ManagerState()

    def set(self, tg_id: int, conversation_id: int | None, mode: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO manager_state (tg_id, conversation_id, mode) VALUES (%s, %s, %s)"
            " ON DUPLICATE KEY UPDATE conversation_id = VALUES(conversation_id), mode = VALUES(mode)",
            (tg_id, conversation_id, mode))

    def clear(self, tg_id: int) -> None:
        self.set(tg_id, None, None)
