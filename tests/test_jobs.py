"""The durable work queue: dedupe, coalescing, concurrent claims, leases, lane order."""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import ROOT
from models.jobs import SEND, SYNC, UPDATES, JobQueue
from bot.updates import take_update
from channels.keepingcrm.listener import request_sync
from models.inbox import Inbox
from scripts.worker import RetryLater, Worker


@pytest.fixture
def jobs(db):
    return JobQueue(db, lease_seconds=5)


def status_of(db, dedupe_key):
    return db.fetchone("SELECT * FROM jobs WHERE dedupe_key = %s", (dedupe_key,))


def test_an_update_is_stored_once_per_update_id(db, jobs):
    inbox = Inbox(jobs)
    update = {"update_id": 100, "message": {"message_id": 1, "chat": {"id": 5}, "text": "hi"}}
    assert [bool(take_update(inbox, update)) for _ in range(3)] == [True, False, False]
    assert db.scalar("SELECT COUNT(*) FROM jobs") == 1
    row = status_of(db, "tg:100")
    assert (row["queue"], row["lane"], row["seq"]) == (UPDATES, "tg:5", 100)


def test_a_burst_of_signals_is_one_sync_and_a_signal_during_a_sync_runs_it_again(db, jobs):
    inbox = Inbox(jobs)
    outcomes = [request_sync(inbox, 42) for _ in range(5)]
    assert outcomes == ["created"] + ["pending"] * 4
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE queue = %s", (SYNC,)) == 1

    [job] = jobs.claim([SYNC], "w1")
    assert request_sync(inbox, 42) == "rerun"       # news arrived while syncing
    jobs.complete(job)
    assert status_of(db, "sync:42")["status"] == "pending"  # so it runs once more
    [job] = jobs.claim([SYNC], "w1")
    jobs.complete(job)
    assert status_of(db, "sync:42")["status"] == "done"
    assert request_sync(inbox, 42) == "restarted"
    assert status_of(db, "sync:42")["status"] == "pending"


def test_concurrent_claims_never_hand_out_a_job_twice(db, jobs):
    for n in range(60):
        jobs.enqueue(SEND, "noop", {"n": n})
    seen: list[int] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        while True:
            claimed = jobs.claim([SEND], name, limit=2)
            if not claimed:
                return
            for job in claimed:
                with lock:
                    seen.append(job.payload["n"])
                jobs.complete(job)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(60))


def test_jobs_of_one_lane_run_one_at_a_time_in_order(db, jobs):
    for update_id in (12, 10, 11):  # arrival order differs from update order
        jobs.enqueue(UPDATES, "tg_update", {"u": update_id}, lane="tg:7", seq=update_id)
    jobs.enqueue(UPDATES, "tg_update", {"u": 99}, lane="tg:8", seq=99)
    first = jobs.claim([UPDATES], "w1", limit=10)
    assert sorted(j.payload["u"] for j in first) == [10, 99]  # heads of both lanes only
    assert jobs.claim([UPDATES], "w2", limit=10) == []        # lane 7 busy, lane 8 empty
    order = []
    job = next(j for j in first if j.payload["u"] == 10)
    while job is not None:
        order.append(job.payload["u"])
        jobs.complete(job)
        nxt = jobs.claim([UPDATES], "w1")
        job = nxt[0] if nxt else None
    assert order == [10, 11, 12]


def test_a_job_whose_worker_stopped_is_claimed_again_after_its_lease(db):
    jobs = JobQueue(db, lease_seconds=0.5)
    jobs.enqueue(SYNC, "crm_sync", {"id_i": 1})
    [job] = jobs.claim([SYNC], "dead-worker")
    assert jobs.claim([SYNC], "w2") == []  # leased
    time.sleep(0.7)
    [again] = jobs.claim([SYNC], "w2")
    assert again.id == job.id and again.attempts == 2
    jobs.complete(job)  # the dead worker's late completion must not settle w2's job
    assert db.scalar("SELECT status FROM jobs WHERE id = %s", (job.id,)) == "running"


CLAIM_AND_HANG = """
import sys, time
from config import load_settings
from models.db import Database
from models.jobs import JobQueue
jobs = JobQueue(Database(load_settings(env_file=None)), lease_seconds=1.0)
[job] = jobs.claim(["sync"], "doomed-worker")
print(job.id, flush=True)
time.sleep(600)
"""


def test_a_killed_worker_process_loses_no_job(db, subprocess_env):
    jobs = JobQueue(db, lease_seconds=1.0)
    jobs.enqueue(SYNC, "crm_sync", {"id_i": 9})
    child = subprocess.Popen([sys.executable, "-c", CLAIM_AND_HANG], cwd=ROOT,
                             env=subprocess_env, stdout=subprocess.PIPE, text=True)
    try:
        job_id = int(child.stdout.readline())
        assert db.scalar("SELECT worker FROM jobs WHERE id = %s", (job_id,)) == "doomed-worker"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + 10
        claimed = []
        while not claimed and time.monotonic() < deadline:
            claimed = jobs.claim(["sync"], "survivor")
            time.sleep(0.1)
        assert [j.id for j in claimed] == [job_id]
        jobs.complete(claimed[0])
        assert db.scalar("SELECT status FROM jobs WHERE id = %s", (job_id,)) == "done"
    finally:
        if child.poll() is None:
            child.kill()


def test_worker_retries_transient_failures_and_gives_up_on_persistent_ones(db, jobs):
    calls = {"flaky": 0, "broken": 0}

    def flaky(job):
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise RetryLater("CRM down", 0)

    def broken(job):
        calls["broken"] += 1
        raise ValueError("bug")

    failures = []
    worker = Worker(jobs, {"flaky": flaky, "broken": broken},
                    on_dead=lambda job, exc: failures.append((job.kind, str(exc))))
    jobs.enqueue(SYNC, "flaky", {})
    jobs.enqueue(SYNC, "broken", {})
    for _ in range(20):
        db.execute("UPDATE jobs SET run_after = NOW(6) WHERE status = 'pending'")  # skip backoff
        if not worker.run_once():
            break
    assert calls == {"flaky": 2, "broken": 3}
    statuses = {r["kind"]: r["status"] for r in db.fetchall("SELECT kind, status FROM jobs")}
    assert statuses == {"flaky": "done", "broken": "failed"}
    assert failures == [("broken", "bug")]
    assert "ValueError: bug" in db.scalar("SELECT last_error FROM jobs WHERE kind = 'broken'")


def test_a_persons_taps_and_private_messages_share_one_lane_group_messages_their_group():
    from bot.updates import lane_of
    assert lane_of({"update_id": 1, "message": {"chat": {"id": -100}, "from": {"id": 7}}}) == "tg:-100"
    # A tap under a shared-chat post and the person's private messages: one lane, so
    # "📩 Написати" for chat X followed at once by text can never send the text to chat Y.
    tap = {"update_id": 2, "callback_query": {"id": "q", "from": {"id": 7},
                                              "message": {"chat": {"id": -100}}}}
    private = {"update_id": 3, "message": {"chat": {"id": 7, "type": "private"}, "from": {"id": 7}}}
    assert lane_of(tap) == lane_of(private) == "tg:7"
    assert lane_of({"update_id": 4}) is None
