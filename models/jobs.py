"""The durable work queue (table `jobs`).

Three kinds of work flow through it: Telegram updates taken in by the webhook door or the
poller, CRM signals taken in by the listener (one sync job per chat, so a burst of signals
is one sync), and outgoing Telegram sends. A job is stored before the door answers 200;
from then on it survives any crash:

* several workers claim at once with `FOR UPDATE SKIP LOCKED`;
* a claim is a lease: a worker that dies leaves its job `running` with an expired lease,
  and the next claim takes it up again (so a job runs at least once; handlers are
  idempotent or accept the one duplicate SPEC §6 allows);
* jobs that share a lane run one at a time in (seq, id) order — the updates of one
  Telegram chat stay in order even with many workers.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any, Iterable

from models.db import Database, again_on_conflict
from utils.redact import redact

log = logging.getLogger(__name__)

MAX_ERROR_TEXT = 4000

# Queues, in the order a general-purpose worker serves them: what people do in Telegram
# first, then CRM syncs, then background sends.
UPDATES, SYNC, SEND = "updates", "sync", "send"
ALL_QUEUES = (UPDATES, SYNC, SEND)

_CLAIMABLE = ("((j.status = 'pending' AND j.run_after <= NOW(6))"
              " OR (j.status = 'running' AND j.lease_until < NOW(6)))")

# A lane's head is its first unfinished job; only the head may be claimed. A non-locking
# read under READ COMMITTED sees an earlier job as unfinished until its worker commits it
# done, so two workers can never run two jobs of one lane at once.
_IS_LANE_HEAD = ("(j.lane IS NULL OR NOT EXISTS ("
                 "SELECT 1 FROM jobs e WHERE e.lane = j.lane"
                 " AND e.status IN ('pending', 'running')"
                 " AND (e.seq < j.seq OR (e.seq = j.seq AND e.id < j.id))))")


def worker_name() -> str:
    """Who holds a job's lease: this host, process and thread."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"[:64]


class RetryLater(Exception):
    """Raised by a job's handler: not now, try again after `delay` seconds (not a failure)."""

    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.delay = delay


class Permanent(Exception):
    """Raised by a job's handler: this job cannot succeed; it becomes a dead letter now.

    `cause` groups reports ("Telegram refused the post"), `detail` says what happened."""

    def __init__(self, cause: str, detail: str = "") -> None:
        super().__init__(f"{cause}: {detail}" if detail else cause)
        self.cause = cause
        self.detail = detail


@dataclass(frozen=True)
class NewJob:
    """A job to store, e.g. the next step decided by a finishing job (see `complete`)."""
    queue: str
    kind: str
    payload: dict
    dedupe_key: str | None = None
    lane: str | None = None
    seq: int = 0
    priority: int = 0
    delay: float = 0.0


@dataclass(frozen=True)
class Done:
    """What a handler may return besides None: the next steps it decided (stored in the
    transaction that marks this job done) and, for periodic work, when to run again."""
    then: tuple[NewJob, ...] = ()
    again_in: float | None = None


@dataclass(frozen=True)
class DeadLetter:
    id: int
    kind: str
    queue: str
    attempts: int
    error: str
    created_at: object
    failed_at: object


@dataclass(frozen=True)
class Job:
    id: int
    queue: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    deferrals: int
    lane: str | None
    dedupe_key: str | None
    worker: str

    @property
    def periodic(self) -> bool:
        return bool(self.dedupe_key and self.dedupe_key.startswith("periodic:"))

    @classmethod
    def from_row(cls, row: dict, worker: str) -> "Job":
        return cls(id=row["id"], queue=row["queue"], kind=row["kind"],
                   payload=json.loads(row["payload"]), attempts=row["attempts"],
                   deferrals=row.get("deferrals", 0),
                   lane=row["lane"], dedupe_key=row["dedupe_key"], worker=worker)


class JobQueue:
    def __init__(self, db: Database, *, lease_seconds: float = 60.0) -> None:
        self.db = db
        self.lease_seconds = lease_seconds

    # -- putting work in ---------------------------------------------------------------

    def enqueue(self, queue: str, kind: str, payload: dict, *, dedupe_key: str | None = None,
                lane: str | None = None, seq: int = 0, priority: int = 0,
                delay: float = 0.0, cur=None) -> bool:
        """Store a job durably (inside the caller's transaction when `cur` is given).

        Returns False when `dedupe_key` was already stored.
        """
        return self.enqueue_id(queue, kind, payload, dedupe_key=dedupe_key, lane=lane, seq=seq,
                               priority=priority, delay=delay, cur=cur) is not None

    def enqueue_id(self, queue: str, kind: str, payload: dict, *, dedupe_key: str | None = None,
                   lane: str | None = None, seq: int = 0, priority: int = 0,
                   delay: float = 0.0, cur=None) -> int | None:
        """Like `enqueue`; returns the new job's id, or None when `dedupe_key` was stored."""
        sql = ("INSERT IGNORE INTO jobs (queue, kind, dedupe_key, lane, seq, priority, payload,"
               " run_after) VALUES (%s, %s, %s, %s, %s, %s, %s,"
               " NOW(6) + INTERVAL %s MICROSECOND)")
        args = (queue, kind, dedupe_key, lane, seq, priority, _dump(payload), int(delay * 1e6))
        if cur is None:
            def store() -> int | None:
                with self.db.single() as conn, conn.cursor() as own:
                    return own.lastrowid if own.execute(sql, args) == 1 else None
            return again_on_conflict(store)
        return cur.lastrowid if cur.execute(sql, args) == 1 else None

    def enqueue_leased(self, queue: str, kind: str, payload: dict, *, dedupe_key: str | None,
                       lane: str | None, cur, priority: int = 0) -> Job | None:
        """Store a job already leased to the calling thread, which will run it right after
        its transaction commits (no claim round trip); None when `dedupe_key` was stored.
        Only for a lane with nothing unfinished (see `lane_busy`): order stays intact. If the
        caller dies first, the lease runs out and any worker takes the job up."""
        worker = worker_name()
        if cur.execute(
                "INSERT IGNORE INTO jobs (queue, kind, dedupe_key, lane, priority, payload, status,"
                " attempts, worker, lease_until) VALUES (%s, %s, %s, %s, %s, %s, 'running', 1, %s,"
                " NOW(6) + INTERVAL %s MICROSECOND)",
                (queue, kind, dedupe_key, lane, priority, _dump(payload), worker,
                 int(self.lease_seconds * 1e6))) != 1:
            return None
        return Job(id=cur.lastrowid, queue=queue, kind=kind, payload=payload, attempts=1,
                   deferrals=0, lane=lane, dedupe_key=dedupe_key, worker=worker)

    def lane_busy(self, cur, lane: str) -> bool:
        cur.execute("SELECT 1 AS busy FROM jobs WHERE lane = %s AND status IN ('pending', 'running')"
                    " LIMIT 1", (lane,))
        return cur.fetchone() is not None

    def enqueue_all(self, jobs: Iterable[NewJob], cur) -> None:
        for job in jobs:
            self.enqueue_id(job.queue, job.kind, job.payload, dedupe_key=job.dedupe_key,
                            lane=job.lane, seq=job.seq, priority=job.priority, delay=job.delay,
                            cur=cur)

    def ensure_periodic(self, queue: str, kind: str, payload: dict | None = None) -> None:
        """Make sure the one job of a periodic kind (e.g. reconciliation) exists and runs."""
        self.db.execute(
            "INSERT INTO jobs (queue, kind, dedupe_key, payload) VALUES (%s, %s, %s, %s)"
            " ON DUPLICATE KEY UPDATE run_after = IF(status IN ('done', 'failed'), NOW(6), run_after),"
            " status = IF(status IN ('done', 'failed'), 'pending', status)",
            (queue, kind, f"periodic:{kind}", _dump(payload or {})))

    def enqueue_coalesced(self, queue: str, kind: str, payload: dict, *, dedupe_key: str,
                          priority: int = 0) -> str:
        """Ask for a run of the one job behind `dedupe_key` (e.g. "sync chat 42").

        However many times this is called, at most one run is pending and one running;
        a call while the job runs makes it run once more afterwards, so work that arrived
        during a run is never missed. Returns 'created', 'pending' (merged into the
        waiting run), 'rerun' (will run again after the current run) or 'restarted'.
        """
        return self.enqueue_coalesced_id(queue, kind, payload, dedupe_key=dedupe_key,
                                         priority=priority)[0]

    def enqueue_coalesced_id(self, queue: str, kind: str, payload: dict, *, dedupe_key: str,
                             priority: int = 0) -> tuple[str, int]:
        """`enqueue_coalesced`, and the job's id. One atomic statement (a door's request
        costs one round trip); the assignments read the row as it was, so `status` is set
        last."""
        with self.db.single() as conn, conn.cursor() as cur:
            affected = cur.execute(
                "INSERT INTO jobs (queue, kind, dedupe_key, priority, payload)"
                " VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id),"
                " rerun = IF(status = 'running', 1, rerun),"
                " attempts = IF(status IN ('done', 'failed'), 0, attempts),"
                " payload = IF(status IN ('done', 'failed'), VALUES(payload), payload),"
                " run_after = IF(status IN ('done', 'failed'), NOW(6), run_after),"
                " last_error = IF(status IN ('done', 'failed'), NULL, last_error),"
                " lease_until = IF(status IN ('done', 'failed'), NULL, lease_until),"
                " worker = IF(status IN ('done', 'failed'), NULL, worker),"
                " status = IF(status IN ('done', 'failed'), 'pending', status)",
                (queue, kind, dedupe_key, priority, _dump(payload)))
            job_id = cur.lastrowid
            if affected == 1:
                return "created", job_id
            if affected == 0:
                # Waiting already (or running, asked to run again already): nothing changed.
                return "pending", job_id
            cur.execute("SELECT status FROM jobs WHERE id = %s", (job_id,))
            status = cur.fetchone()["status"]
        return ("rerun" if status == "running" else "restarted"), job_id

    # -- taking work out ---------------------------------------------------------------

    def claim(self, queues: Iterable[str], worker: str, *, limit: int = 1) -> list[Job]:
        """Lease up to `limit` claimable jobs of these queues (earlier queues first)."""
        claimed: list[Job] = []
        expired, due = self._candidates(tuple(queues), limit * 4)
        for job_id in expired + due:
            job = self._claim_one(job_id, worker)
            if job is not None:
                if job_id in expired:
                    log.warning("job %s (%s) taken over after its lease expired", job.id, job.kind)
                claimed.append(job)
                if len(claimed) >= limit:
                    break
        return claimed

    def _candidates(self, queues: tuple[str, ...], wanted: int) -> tuple[list[int], list[int]]:
        """Ids worth trying: jobs whose worker died, then due jobs queue by queue.

        Each query walks an index in the order it returns rows (ix_jobs_lease,
        ix_jobs_claim) and stops after `wanted` lane heads: its cost does not grow with
        the length of the queue.
        """
        placeholders = ", ".join(["%s"] * len(queues))
        expired = [r["id"] for r in self.db.fetchall(
            f"SELECT j.id FROM jobs j WHERE j.status = 'running' AND j.lease_until < NOW(6)"
            f" AND j.queue IN ({placeholders}) AND {_IS_LANE_HEAD} LIMIT %s", (*queues, wanted))]
        due: list[int] = []
        for queue in queues:
            if len(expired) + len(due) >= wanted:
                break
            due += [r["id"] for r in self.db.fetchall(
                f"SELECT j.id FROM jobs j WHERE j.queue = %s AND j.status = 'pending'"
                f" AND j.run_after <= NOW(6) AND {_IS_LANE_HEAD}"
                f" ORDER BY j.priority DESC, j.run_after LIMIT %s",
                (queue, wanted - len(expired) - len(due)))]
        return expired, due

    def claim_id(self, job_id: int, worker: str) -> Job | None:
        """Lease this one job if it is claimable now (due, and the head of its lane)."""
        return self._claim_one(job_id, worker)

    def _claim_one(self, job_id: int, worker: str) -> Job | None:
        """One conditional UPDATE decides (claimable, and the head of its lane, evaluated
        under the row's lock: two workers can never both win); then the row is read."""
        with self.db.single() as conn, conn.cursor() as cur:
            if cur.execute(
                    f"UPDATE jobs j SET j.status = 'running', j.worker = %s,"
                    f" j.attempts = j.attempts + 1,"
                    f" j.lease_until = NOW(6) + INTERVAL %s MICROSECOND"
                    f" WHERE j.id = %s AND {_CLAIMABLE} AND {_IS_LANE_HEAD}",
                    (worker, int(self.lease_seconds * 1e6), job_id)) != 1:
                return None  # another worker got it first, or it is not its lane's turn
            cur.execute("SELECT * FROM jobs WHERE id = %s", (job_id,))
            return Job.from_row(cur.fetchone(), worker)

    def extend(self, job: Job) -> bool:
        """Renew the lease of a long job; False if the job is no longer ours."""
        return self.db.execute(
            "UPDATE jobs SET lease_until = NOW(6) + INTERVAL %s MICROSECOND"
            " WHERE id = %s AND status = 'running' AND worker = %s",
            (int(self.lease_seconds * 1e6), job.id, job.worker)) == 1

    # -- finishing ---------------------------------------------------------------------

    def complete(self, job: Job, *, again_in: float | None = None,
                 then: Iterable[NewJob] = ()) -> None:
        """Mark done — or pending again when a coalesced request came in meanwhile, or
        after `again_in` seconds for periodic work. `then`: the next steps this job decided,
        stored in the same transaction, so a step is never lost nor stored twice."""
        then = list(then)
        with self.db.transaction() as cur:
            if again_in is not None:
                settled = cur.execute(
                    # The period is kept in the payload: every worker then knows how long
                    # this job's retries may wait at most (scripts/failures.py).
                    "UPDATE jobs SET status = 'pending', attempts = 0, rerun = 0, lease_until = NULL,"
                    " last_error = NULL, run_after = NOW(6) + INTERVAL %s MICROSECOND,"
                    " payload = JSON_SET(payload, '$.every', %s)"
                    " WHERE id = %s AND worker = %s",
                    (int(again_in * 1e6), float(again_in), job.id, job.worker))
            else:
                settled = cur.execute(
                    "UPDATE jobs SET status = IF(rerun, 'pending', 'done'),"
                    " attempts = IF(rerun, 0, attempts), run_after = NOW(6), rerun = 0,"
                    " lease_until = NULL, last_error = NULL WHERE id = %s AND worker = %s",
                    (job.id, job.worker))
            # A worker that lost its lease (another took the job over) settles nothing and
            # decides nothing: the one that holds the job now does.
            if then and settled:
                self.enqueue_all(then, cur)

    def defer(self, job: Job, reason: str, delay: float) -> None:
        """Not now, but nothing failed (e.g. no send budget yet): run again after `delay`
        without counting this claim as an attempt."""
        self.db.execute(
            "UPDATE jobs SET status = 'pending', lease_until = NULL, last_error = %s,"
            " attempts = GREATEST(attempts - 1, 0), deferrals = deferrals + 1,"
            " run_after = NOW(6) + INTERVAL %s MICROSECOND WHERE id = %s AND worker = %s",
            (_error_text(reason), int(delay * 1e6), job.id, job.worker))

    def retry(self, job: Job, error: str, delay: float) -> None:
        self.db.execute(
            "UPDATE jobs SET status = 'pending', lease_until = NULL, last_error = %s,"
            " run_after = NOW(6) + INTERVAL %s MICROSECOND WHERE id = %s AND worker = %s",
            (_error_text(error), int(delay * 1e6), job.id, job.worker))

    def wake(self, kinds: tuple[str, ...]) -> int:
        """Jobs of `kinds` waiting out a failure's backoff run now (the service they wait
        for is back); how many."""
        placeholders = ", ".join(["%s"] * len(kinds))
        with self.db.connection() as conn, conn.cursor() as cur:
            cur.execute(f"UPDATE jobs SET run_after = NOW(6) WHERE status = 'pending' AND attempts > 0"
                        f" AND kind IN ({placeholders}) AND run_after > NOW(6)", kinds)
            return cur.rowcount

    def fail(self, job: Job, error: str) -> None:
        """Give up on a job: a dead letter (status 'failed'), kept until retried or purged.
        (A coalesced job asked for again meanwhile runs once more instead.)"""
        self.db.execute(
            "UPDATE jobs SET status = IF(rerun, 'pending', 'failed'), rerun = 0,"
            " attempts = IF(rerun, 0, attempts), lease_until = NULL, last_error = %s"
            " WHERE id = %s AND worker = %s",
            (_error_text(error), job.id, job.worker))

    # -- dead letters --------------------------------------------------------------------

    def dead_letters(self, limit: int = 20, offset: int = 0) -> tuple[list[DeadLetter], int]:
        """The newest dead letters first, and how many there are."""
        rows = self.db.fetchall(
            "SELECT id, kind, queue, attempts, last_error, created_at, updated_at FROM jobs"
            " WHERE status = 'failed' ORDER BY updated_at DESC, id DESC LIMIT %s OFFSET %s",
            (limit, offset))
        total = self.db.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed'")
        return [DeadLetter(r["id"], r["kind"], r["queue"], r["attempts"], r["last_error"] or "",
                           r["created_at"], r["updated_at"]) for r in rows], total

    def status_of(self, job_id: int) -> str | None:
        return self.db.scalar("SELECT status FROM jobs WHERE id = %s", (job_id,))

    def revive(self, job_id: int) -> bool:
        """/retry_<id>: a dead letter runs again from its first step not done. False when
        the job is not a dead letter (done, waiting, running, or unknown)."""
        return self.db.execute(
            "UPDATE jobs SET status = 'pending', attempts = 0, deferrals = 0, rerun = 0,"
            " run_after = NOW(6), lease_until = NULL, worker = NULL"
            " WHERE id = %s AND status = 'failed'", (job_id,)) == 1

    def purge_dead(self, older_than_days: float) -> int:
        return self.db.execute(
            "DELETE FROM jobs WHERE status = 'failed' AND updated_at < NOW(6) - INTERVAL %s SECOND",
            (int(older_than_days * 86400),))

    # -- looking -----------------------------------------------------------------------

    def depth(self, queue: str | None = None) -> int:
        """Unfinished jobs (periodic jobs, which are never finished, do not count)."""
        sql = ("SELECT COUNT(*) FROM jobs WHERE status IN ('pending','running')"
               " AND (dedupe_key IS NULL OR dedupe_key NOT LIKE 'periodic:%%')")
        if queue is None:
            return self.db.scalar(sql)
        return self.db.scalar(sql + " AND queue = %s", (queue,))

    def purge_finished(self, older_than_days: float) -> int:
        """Forget done jobs (dead letters stay until retried or purged by `purge_dead`).
        Telegram update ids are kept long enough to drop redeliveries."""
        return self.db.execute(
            "DELETE FROM jobs WHERE status = 'done'"
            " AND updated_at < NOW(6) - INTERVAL %s SECOND", (int(older_than_days * 86400),))

    def depth_by_queue(self) -> list[dict]:
        """Per queue: unfinished jobs and the age of the oldest (periodic jobs not counted)."""
        return self.db.fetchall(
            "SELECT queue, COUNT(*) AS n,"
            " TIMESTAMPDIFF(MICROSECOND, MIN(created_at), NOW(6)) AS oldest FROM jobs"
            " WHERE status IN ('pending', 'running')"
            " AND (dedupe_key IS NULL OR dedupe_key NOT LIKE 'periodic:%%') GROUP BY queue")

    def fold_waiting(self, job: Job, fold) -> tuple[int, dict]:
        """Fold the jobs waiting behind `job` in its lane into it, in one transaction:
        `fold(payload, [(id, payload), …]) -> (new payload, ids folded in)`. The folded
        jobs are marked done only together with the payload that now carries them, so
        nothing is lost; jobs another transaction holds are left for the next fold.
        Returns how many were folded, and the job's payload as it now is."""
        with self.db.transaction() as cur:
            cur.execute("SELECT payload FROM jobs WHERE id = %s FOR UPDATE", (job.id,))
            current = json.loads(cur.fetchone()["payload"])  # may hold earlier folds
            cur.execute("SELECT id, payload FROM jobs WHERE lane = %s AND status = 'pending'"
                        " AND kind = %s AND id <> %s ORDER BY seq, id FOR UPDATE SKIP LOCKED",
                        (job.lane, job.kind, job.id))
            waiting = [(r["id"], json.loads(r["payload"])) for r in cur.fetchall()]
            payload, folded = fold(current, waiting)
            if not folded:
                return 0, current
            cur.execute("UPDATE jobs SET payload = %s WHERE id = %s", (_dump(payload), job.id))
            placeholders = ", ".join(["%s"] * len(folded))
            cur.execute(f"UPDATE jobs SET status = 'done', last_error = %s WHERE id IN ({placeholders})",
                        (f"merged into job {job.id}", *folded))
        return len(folded), payload

    def news_in_progress(self, cur=None) -> int:
        """Syncs waiting or running (not periodic ones): news on its way to the desk."""
        sql = ("SELECT COUNT(*) AS n FROM jobs WHERE queue = %s AND status IN ('pending', 'running')"
               " AND (dedupe_key IS NULL OR dedupe_key NOT LIKE 'periodic:%%')")
        if cur is None:
            return self.db.scalar(sql, (SYNC,))
        cur.execute(sql, (SYNC,))
        return cur.fetchone()["n"]

    def lane_waiting(self, lane: str) -> int:
        """Jobs waiting in a lane (e.g. posts queued for one group)."""
        return self.db.scalar("SELECT COUNT(*) FROM jobs WHERE lane = %s AND status = 'pending'",
                              (lane,))


def _dump(payload: dict) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def _error_text(error: str) -> str:
    """What is stored of an error: no secret (a network error quotes the URL, and a Bot API
    URL carries the bot token), bounded."""
    return redact(error)[:MAX_ERROR_TEXT]
