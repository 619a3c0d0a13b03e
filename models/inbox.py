"""Taking work in: what a door received becomes a durable job, before the door answers.

The Telegram door (and the long-polling loop) stores each update once per update_id, in
the lane that keeps it in order with the updates it must follow (`bot/updates.py` reads
those from the update); a channel's door or poller asks for the work a signal means ("sync
this conversation"), coalesced so that a burst of signals is one run.
"""
from __future__ import annotations

from models.jobs import SYNC, UPDATES, JobQueue


class Inbox:
    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue

    def take_update(self, update_id: int, lane: str | None, update: dict) -> int | None:
        """Store a Telegram update once per update_id: the job's id, None for a
        re-delivery (ignored)."""
        return self.queue.enqueue_id(UPDATES, "tg_update", update, dedupe_key=f"tg:{update_id}",
                                     lane=lane, seq=update_id, priority=1)

    def request(self, kind: str, key: str, payload: dict, *, queue: str = SYNC) -> str:
        """Ask for a run of the one job behind `key`; however many requests arrive, one
        run is waiting and one running at most (see JobQueue.enqueue_coalesced)."""
        return self.request_id(kind, key, payload, queue=queue)[0]

    def request_id(self, kind: str, key: str, payload: dict, *,
                   queue: str = SYNC) -> tuple[str, int]:
        """`request`, and the job's id."""
        return self.queue.enqueue_coalesced_id(queue, kind, payload, dedupe_key=key)
