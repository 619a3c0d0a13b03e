"""Workers: claim jobs from the durable queue, run them, and settle them.

A job that raises a transient error (database, network, Telegram 5xx/429, CRM down) is
retried with exponential backoff for as long as it takes; any other error is retried a
few times and then the job is marked failed and reported. While a job runs, its lease is
renewed, so only a dead worker's job is taken over.
"""
from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from typing import Callable, Iterable

import pymysql
import requests
from telebot.apihelper import ApiTelegramException

from models.db import is_unavailable
from models.jobs import ALL_QUEUES, Job, JobQueue
from utils.bell import Bell
from utils.metrics import JOBS_PROCESSED

log = logging.getLogger(__name__)

# A handler returns None when done, or a number of seconds to run the job again after
# (periodic work such as reconciliation).
Handler = Callable[[Job], "float | None"]

MAX_PERMANENT_ATTEMPTS = 3
MAX_BACKOFF = 60.0


class RetryLater(Exception):
    """Raised by a handler: not now, try again after `delay` seconds (not a failure)."""

    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.delay = delay


# Deadlock, lock wait timeout: the database asks us to try the transaction again.
_RETRY_TRANSACTION = (1213, 1205)


def is_transient(exc: BaseException) -> bool:
    if is_unavailable(exc) or isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return True
    if isinstance(exc, pymysql.err.OperationalError) and exc.args and exc.args[0] in _RETRY_TRANSACTION:
        return True
    if isinstance(exc, ApiTelegramException):
        return exc.error_code == 429 or exc.error_code >= 500
    return bool(getattr(exc, "transient", False))


def backoff(attempt: int) -> float:
    """1, 2, 4 … seconds up to a minute, with jitter so retries do not march in step."""
    base = min(MAX_BACKOFF, 2.0 ** max(0, attempt - 1))
    return base * random.uniform(0.8, 1.2)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"[:64]


class Worker:
    def __init__(self, jobs: JobQueue, handlers: dict[str, Handler], *,
                 queues: Iterable[str] = ALL_QUEUES, idle_sleep: float = 0.02,
                 max_idle_sleep: float = 0.5, bell: Bell | None = None,
                 on_failure: Callable[[Job, BaseException], None] | None = None) -> None:
        self.jobs = jobs
        self.handlers = handlers
        self.queues = tuple(queues)
        self.idle_sleep = idle_sleep
        self.max_idle_sleep = max_idle_sleep
        self.bell = bell or Bell()
        self.on_failure = on_failure

    def run_once(self) -> bool:
        """Claim and run one job; False when there was nothing to do."""
        claimed = self.jobs.claim(self.queues, worker_name(), limit=1)
        if not claimed:
            return False
        self.execute(claimed[0])
        return True

    def execute(self, job: Job) -> None:
        handler = self.handlers.get(job.kind)
        if handler is None:
            self.jobs.fail(job, f"no handler for job kind {job.kind!r}")
            log.error("job %s has unknown kind %r", job.id, job.kind)
            return
        with _LeaseKeeper(self.jobs, job):
            try:
                again_in = handler(job)
            except RetryLater as exc:
                self.jobs.defer(job, str(exc), exc.delay)
                JOBS_PROCESSED.labels(job.kind, "later").inc()
                return
            except Exception as exc:  # settle the job whatever went wrong, then go on
                self._settle_failure(job, exc)
                return
        self.jobs.complete(job, again_in=again_in)
        JOBS_PROCESSED.labels(job.kind, "done").inc()

    def _settle_failure(self, job: Job, exc: Exception) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        if is_transient(exc):
            delay = getattr(exc, "retry_after", None) or backoff(job.attempts)
            log.warning("job %s (%s) attempt %s: %s; retrying in %.1fs",
                        job.id, job.kind, job.attempts, reason, delay)
            self._try(lambda: self.jobs.retry(job, reason, delay))
            JOBS_PROCESSED.labels(job.kind, "retry").inc()
            return
        if job.attempts < MAX_PERMANENT_ATTEMPTS:
            log.exception("job %s (%s) attempt %s failed; retrying", job.id, job.kind, job.attempts)
            self._try(lambda: self.jobs.retry(job, reason, backoff(job.attempts)))
            JOBS_PROCESSED.labels(job.kind, "retry").inc()
            return
        log.exception("job %s (%s) failed for good after %s attempts", job.id, job.kind, job.attempts)
        self._try(lambda: self.jobs.fail(job, reason))
        JOBS_PROCESSED.labels(job.kind, "failed").inc()
        if self.on_failure is not None:
            self._try(lambda: self.on_failure(job, exc))

    @staticmethod
    def _try(action: Callable[[], object]) -> None:
        # If the database is away we cannot settle the job; its lease will expire and
        # another claim will take it up again, which is exactly what we want.
        try:
            action()
        except Exception as exc:
            log.warning("could not settle job: %s", exc)

    def run(self, stop: threading.Event) -> None:
        """Loop until `stop` is set: work while there is work; when idle, sleep until the
        bell rings (a door stored a job) or the poll interval passes."""
        sleep = self.idle_sleep
        while not stop.is_set():
            rings = self.bell.rings
            try:
                worked = self.run_once()
            except Exception as exc:
                if not is_unavailable(exc):
                    log.exception("worker loop error")
                else:
                    log.warning("database unavailable: %s", exc)
                worked = False
                sleep = 1.0
            if worked:
                sleep = self.idle_sleep
                continue
            if self.bell.wait(rings, sleep):
                sleep = self.idle_sleep
            else:
                sleep = min(self.max_idle_sleep, sleep * 2)


class _LeaseKeeper:
    """Renews a job's lease in the background while its handler runs."""

    def __init__(self, jobs: JobQueue, job: Job) -> None:
        self.jobs, self.job = jobs, job
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True,
                                        name=f"lease-{job.id}")

    def __enter__(self) -> "_LeaseKeeper":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        self._thread.join()

    def _renew(self) -> None:
        interval = max(0.2, self.jobs.lease_seconds / 3)
        while not self._done.wait(interval):
            try:
                if not self.jobs.extend(self.job):
                    log.warning("job %s lease lost", self.job.id)
                    return
            except Exception as exc:
                log.warning("could not renew lease of job %s: %s", self.job.id, exc)


def run_threads(worker: Worker, count: int, stop: threading.Event) -> list[threading.Thread]:
    threads = [threading.Thread(target=worker.run, args=(stop,), name=f"worker-{i}", daemon=True)
               for i in range(count)]
    for thread in threads:
        thread.start()
    return threads


def wait_all(threads: list[threading.Thread], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
