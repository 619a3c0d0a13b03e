"""Workers: claim jobs from the durable queue, run them, and settle them.

How a failed run is settled — retried after a capped backoff, or made a dead letter and
reported — is decided by `scripts/failures.py`, the one failure policy. While a job runs,
its lease is renewed, so only a dead worker's job is taken over. A handler returns None
(done), a number of seconds (periodic work: run again then), or `Done(then=…)`: the next
steps it decided, stored in the same transaction that marks it done.
"""
from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from typing import Callable, Iterable

from models.db import is_conflict, is_unavailable
from models.jobs import ALL_QUEUES, Done, Job, JobQueue, NewJob, RetryLater, worker_name  # noqa: F401
from scripts.failures import cause_of, decide, is_transient
from utils.bell import Bell
from utils.metrics import JOBS_PROCESSED
from utils.redact import redact

log = logging.getLogger(__name__)

# A handler returns None when done, seconds to run again after (periodic work), or Done.
Handler = Callable[[Job], "float | Done | None"]
Reporter = Callable[..., object]        # ErrorReporter.report(cause, detail, job_id=)
DeadHook = Callable[[Job, BaseException], None]

# How often a worker makes sure the periodic jobs exist (they can never stop).
PERIODIC_CHECK_SECONDS = 60.0
# Tries to settle a finished job while the database is briefly away (about 6 s in all).
SETTLE_TRIES = 6
# A job of a kind this worker has no handler for waits this long, this many times (an hour).
UNKNOWN_KIND_WAIT = 30.0
UNKNOWN_KIND_DEFERRALS = 120


def _period_of(job: Job) -> float | None:
    """A periodic job's period, stored by its last successful run (JobQueue.complete)."""
    every = job.payload.get("every") if isinstance(job.payload, dict) else None
    return float(every) if isinstance(every, (int, float)) and every > 0 else None


class Comeback:
    """Ends an outage's backoff within a second of the service's return: a failed run of a
    job that waits for it (`kinds`) marks the service away; while away, one thread of the
    process probes it at most once per `interval`, and when it answers, the waiting jobs
    run now instead of sleeping out their backoff (up to a minute)."""

    def __init__(self, kinds: tuple[str, ...], probe: Callable[[], bool], wake: Callable[[], int], *,
                 interval: float = 1.0) -> None:
        self.kinds = kinds
        self.probe = probe
        self.wake = wake
        self.interval = interval
        self._away = False
        self._last = 0.0
        self._lock = threading.Lock()

    def failed(self, job: Job, exc: BaseException) -> None:
        if job.kind in self.kinds and is_transient(exc) and not getattr(exc, "retry_after", None):
            self._away = True

    def tick(self) -> None:
        if not self._away or time.monotonic() - self._last < self.interval:
            return
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._last = time.monotonic()
            if self.probe():
                self._away = False
                woken = self.wake()
                if woken:
                    log.info("%s back: %s waiting job(s) run now", "/".join(self.kinds), woken)
        finally:
            self._lock.release()


class Executor:
    """Runs one claimed job and settles it by the failure policy. Used by the worker
    loop, and by "send now" (a send run at once by the thread that decided it)."""

    def __init__(self, jobs: JobQueue, handlers: dict[str, Handler], *,
                 report: Reporter | None = None, on_dead: DeadHook | None = None,
                 comebacks: Iterable[Comeback] = ()) -> None:
        self.jobs = jobs
        self.handlers = handlers
        self.report = report
        self.on_dead = on_dead
        self.comebacks = tuple(comebacks)
        self.leases = LeaseKeeper(jobs)

    def execute(self, job: Job) -> str:
        """Run `job`; returns how it was settled: done, later, retry or dead."""
        handler = self.handlers.get(job.kind)
        if handler is None:
            # A kind this release does not know: during a rolling upgrade a newer host's
            # work (its new periodic jobs, say) is left for a worker that has it; only a kind
            # nobody took for an hour is a dead letter.
            if job.deferrals < UNKNOWN_KIND_DEFERRALS:
                self._try(lambda: self.jobs.defer(job, f"no handler for {job.kind!r} in this release:"
                                                       " left for a worker that has one", UNKNOWN_KIND_WAIT))
                return "later"
            return self._dead(job, LookupError(f"no handler for job kind {job.kind!r}"))
        with self.leases.holding(job):
            try:
                result = handler(job)
            except RetryLater as exc:
                self._try(lambda: self.jobs.defer(job, str(exc), exc.delay))
                JOBS_PROCESSED.labels(job.kind, "later").inc()
                return "later"
            except Exception as exc:  # settle the job whatever went wrong, then go on
                return self._settle_failure(job, exc)
        again_in, then = _outcome(result)
        self._try(lambda: self.jobs.complete(job, again_in=again_in, then=then))
        JOBS_PROCESSED.labels(job.kind, "done").inc()
        return "done"

    def _settle_failure(self, job: Job, exc: Exception) -> str:
        reason = redact(f"{type(exc).__name__}: {exc}")
        verdict = decide(job.kind, job.attempts, exc, periodic=job.periodic,
                         period=_period_of(job))
        if verdict.dead:
            return self._dead(job, exc, reason)
        log.warning("job %s (%s) attempt %s: %s; retrying in %.1fs",
                    job.id, job.kind, job.attempts, reason, verdict.delay)
        for comeback in self.comebacks:
            comeback.failed(job, exc)
        self._try(lambda: self.jobs.retry(job, reason, verdict.delay))
        JOBS_PROCESSED.labels(job.kind, "retry").inc()
        if verdict.report and self.report is not None:
            self._try(lambda: self.report(f"{cause_of(job.kind, exc)} (still failing)",
                                          f"{job.attempts} attempts; last: {reason}", job_id=job.id))
        return "retry"

    def _dead(self, job: Job, exc: BaseException, reason: str | None = None) -> str:
        reason = reason or redact(f"{type(exc).__name__}: {exc}")
        log.error("job %s (%s) is a dead letter after %s attempts: %s",
                  job.id, job.kind, job.attempts, reason)
        self._try(lambda: self.jobs.fail(job, reason))
        JOBS_PROCESSED.labels(job.kind, "failed").inc()
        if self.report is not None:
            self._try(lambda: self.report(cause_of(job.kind, exc), reason, job_id=job.id))
        if self.on_dead is not None:
            self._try(lambda: self.on_dead(job, exc))
        return "dead"

    @staticmethod
    def _try(action: Callable[[], object]) -> None:
        # The database away for a moment (a Galera node leaving, the balancer moving to the
        # next writer) must not leave a finished job to its lease: settling is tried again
        # for a few seconds. Away for longer, the lease expires and another claim takes the
        # job up again, which is exactly what we want.
        for attempt in range(1, SETTLE_TRIES + 1):
            try:
                action()
                return
            except Exception as exc:
                if attempt == SETTLE_TRIES or not (is_unavailable(exc) or is_conflict(exc)):
                    log.warning("could not settle job: %s", redact(str(exc)))
                    return
                time.sleep(min(2.0, 0.1 * 2 ** attempt) * random.uniform(0.5, 1.0))


def _outcome(result: "float | Done | None") -> tuple[float | None, Iterable[NewJob]]:
    if isinstance(result, Done):
        return result.again_in, result.then
    return result, ()


class Worker:
    def __init__(self, jobs: JobQueue, handlers: dict[str, Handler], *,
                 queues: Iterable[str] = ALL_QUEUES, idle_sleep: float = 0.02,
                 max_idle_sleep: float = 0.5, bell: Bell | None = None,
                 report: Reporter | None = None, on_dead: DeadHook | None = None,
                 ensure_periodic: Callable[[], None] | None = None,
                 comebacks: Iterable[Comeback] = ()) -> None:
        self.jobs = jobs
        self.executor = Executor(jobs, handlers, report=report, on_dead=on_dead, comebacks=comebacks)
        self.queues = tuple(queues)
        self.idle_sleep = idle_sleep
        self.max_idle_sleep = max_idle_sleep
        self.bell = bell or Bell()
        self.ensure_periodic = ensure_periodic
        self._periodic_checked = time.monotonic()

    @property
    def handlers(self) -> dict[str, Handler]:
        return self.executor.handlers

    def run_once(self, hint: int | None = None) -> bool:
        """Claim and run one job — the hinted one (just stored, its id came with the
        wake-up) when it is still to do, else the next due — False when there was none."""
        with self.jobs.db.session():
            job = self.jobs.claim_id(hint, worker_name()) if hint is not None else None
            if job is None:
                claimed = self.jobs.claim(self.queues, worker_name(), limit=1)
                if not claimed:
                    return False
                job = claimed[0]
            self.execute(job)
        return True

    def execute(self, job: Job) -> str:
        return self.executor.execute(job)

    def _keep_periodic_alive(self) -> None:
        if self.ensure_periodic is None:
            return
        now = time.monotonic()
        if now - self._periodic_checked >= PERIODIC_CHECK_SECONDS:
            self._periodic_checked = now
            self.ensure_periodic()

    def run(self, stop: threading.Event) -> None:
        """Loop until `stop` is set: work while there is work; when idle, sleep until the
        bell rings (a door stored a job) or the poll interval passes."""
        sleep = self.idle_sleep
        while not stop.is_set():
            rings = self.bell.rings
            try:
                self._keep_periodic_alive()
                for comeback in self.executor.comebacks:
                    comeback.tick()
                worked = self.run_once(self.bell.take_hint())
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


class LeaseKeeper:
    """Renews the leases of the jobs a process is running, from one thread, while their
    handlers run: only a dead worker's job is ever taken over."""

    def __init__(self, jobs: JobQueue) -> None:
        self.jobs = jobs
        self._held: dict[int, Job] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def holding(self, job: Job):
        with self._lock:
            self._held[job.id] = job
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._renew, daemon=True, name="leases")
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(job.id, None)

    def _renew(self) -> None:
        interval = max(0.2, self.jobs.lease_seconds / 3)
        while True:
            time.sleep(interval)
            with self._lock:
                held = list(self._held.values())
            for job in held:
                try:
                    if not self.jobs.extend(job):
                        log.warning("job %s lease lost", job.id)
                        with self._lock:
                            self._held.pop(job.id, None)
                except Exception as exc:
                    log.warning("could not renew lease of job %s: %s", job.id, exc)


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
