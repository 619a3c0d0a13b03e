"""The dead letters — what could not be done, each already told with #ERROR — as admins
see and retry them: `/errors` and `/retry_<id>` in Telegram and the panel's errors page
both come here."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from models.jobs import DeadLetter, JobQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Retried:
    job_id: int
    done: bool                 # it will run again from its first step not done
    status: str | None = None  # not retried: what it is instead (done, pending, running; None: no such job)


class DeadLetters:
    def __init__(self, jobs: JobQueue) -> None:
        self.jobs = jobs

    def page(self, size: int, page: int = 0) -> tuple[list[DeadLetter], int]:
        """The newest first, and how many there are."""
        return self.jobs.dead_letters(size, page * size)

    def retry(self, job_id: int, *, by: str) -> Retried:
        if self.jobs.revive(job_id):
            log.info("%s retried job %s", by, job_id)
            return Retried(job_id, True)
        return Retried(job_id, False, self.jobs.status_of(job_id))
