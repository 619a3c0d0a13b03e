"""The one failure policy (SPEC §6, "Nothing fails silently"): what is retried and how
soon, what becomes a dead letter, what the log chat hears, and that nothing secret is
kept of an error.

Unit tests of `scripts.failures.decide`, then the worker against the session's MariaDB
with the Telegram sandbox as the log chat: assertions are what an operator notices — the
`#ERROR` text in CHANNEL_LOG, the job's state in `/errors`, the time a lane waits.
"""
from __future__ import annotations

import secrets
import socket
import threading
import time
from datetime import datetime, timedelta

import pymysql
import pytest
import requests
from telebot.apihelper import ApiTelegramException

import scripts.worker as worker_module
from bot.factory import create_bot
from bot.outbox import TelegramOut
from bot.ratelimit import RateLimiter
from bot.sender import Sender
from config import load_settings
from conftest import LOG_CHAT, SHARED_CHAT, base_environment
from harness import wait_for
from models.jobs import SEND, SYNC, UPDATES, Done, JobQueue, NewJob, Permanent
from models.message_map import MessageMapRepository
from models.users import UserManager
from scripts.failures import PERIODIC, POLICIES, decide, is_transient
from scripts.worker import Worker
from services.errors import ErrorReporter
from utils.redact import redact

# --------------------------------------------------------------------------- helpers


def telegram_error(code: int, description: str = "", retry_after: int | None = None):
    body = {"ok": False, "error_code": code, "description": description or f"error {code}"}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return ApiTelegramException("sendMessage", None, body)


TRANSIENT = [
    requests.ConnectionError("Connection refused"),
    requests.Timeout("read timed out"),
    telegram_error(429, "Too Many Requests: retry after 5", retry_after=5),
    telegram_error(500, "Internal Server Error"),
    telegram_error(502, "Bad Gateway"),
    pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock"),
    pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"),
    pymysql.err.OperationalError(2003, "Can't connect to MySQL server"),
]
PERMANENT = [
    telegram_error(400, "Bad Request: chat not found"),
    telegram_error(403, "Forbidden: bot was kicked from the supergroup chat"),
    ValueError("a bug"),
    KeyError("id_i"),
    Permanent("the CRM refused the answer", "HTTP 422"),
]


def due_now(db, job_id=None):
    """Skip a backoff: make pending jobs (or one job) due at once."""
    if job_id is None:
        db.execute("UPDATE jobs SET run_after = NOW(6) WHERE status = 'pending'")
    else:
        db.execute("UPDATE jobs SET run_after = NOW(6) WHERE id = %s", (job_id,))


def job_row(db, job_id):
    return db.fetchone("SELECT *, TIMESTAMPDIFF(MICROSECOND, NOW(6), run_after) / 1e6 AS wait"
                       " FROM jobs WHERE id = %s", (job_id,))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens there once the socket is closed


def realistic_token() -> str:
    """A token shaped like BotFather's: digits, a colon, 35 characters."""
    return f"{secrets.randbelow(9 * 10**9) + 10**9}:AA{secrets.token_urlsafe(26)[:33]}"


@pytest.fixture
def jobs(db):
    return JobQueue(db, lease_seconds=5)


@pytest.fixture
def sender(db, sandbox_settings, jobs):
    return Sender(create_bot(sandbox_settings), RateLimiter(db, sandbox_settings), jobs,
                  MessageMapRepository(db), UserManager.instance(db),
                  ErrorReporter(db, TelegramOut(jobs), LOG_CHAT).report)


def deliver_sends(db, jobs, sender, rounds=20):
    """Perform every queued Telegram send (the log chat's #ERROR posts among them)."""
    worker = Worker(jobs, {"tg_send": sender}, queues=[SEND])
    for _ in range(rounds):
        db.execute("UPDATE tg_rate SET stamps = ''")
        due_now(db)
        if not worker.run_once():
            return


def log_texts(tg):
    return [m["visible_text"] for m in tg.messages(LOG_CHAT) if not m.get("deleted")]


# --------------------------------------------------------------------------- 1. decide

@pytest.mark.parametrize("exc", TRANSIENT, ids=lambda e: type(e).__name__ + str(getattr(e, "error_code", "")))
def test_the_outside_world_being_away_or_busy_is_transient(exc):
    assert is_transient(exc)


@pytest.mark.parametrize("exc", PERMANENT, ids=lambda e: type(e).__name__ + str(getattr(e, "error_code", "")))
def test_a_refusal_a_bug_or_permanent_is_not_transient(exc):
    assert not is_transient(exc)


@pytest.mark.parametrize("exc", [telegram_error(502, "Bad Gateway"), requests.ConnectionError("down"),
                                 requests.Timeout("slow"), telegram_error(429, "Too Many Requests")],
                         ids=["502", "network", "timeout", "429-without-retry-after"])
def test_a_send_never_waits_more_than_10_s_between_tries_and_is_never_given_up(exc):
    """The ✅ confirmation of issue 9 waited 35 s after a few 502s: its chat's lane must
    not be held that long by a backoff, however many attempts went before."""
    delays = []
    for attempt in range(1, 200):
        verdict = decide("tg_send", attempt, exc)
        assert not verdict.dead, attempt
        delays.append(verdict.delay)
    assert 0 < min(delays) and max(delays) <= 10.0
    assert max(delays[:2]) <= 2.0  # the first retries come quickly


def test_only_telegrams_retry_after_makes_a_send_wait_longer(db, jobs, sender, tg):
    """The worker and the sender against the sandbox: a 429 with retry_after 35 puts the
    send off 35 s (not counted as a failure); a 502 after it waits at most 10 s."""
    worker = Worker(jobs, {"tg_send": sender}, queues=[SEND])
    job_id = jobs.enqueue_id(SEND, "tg_send", {"chat_id": 905, "method": "sendMessage",
                                               "text": "✅ Надіслано клієнту"}, lane="send:905")
    tg.fail_next("sendMessage", 429, retry_after=35)
    assert worker.run_once()
    row = job_row(db, job_id)
    assert row["status"] == "pending" and 34 <= row["wait"] <= 35.5 and row["attempts"] == 0
    for attempt in range(1, 8):
        tg.fail_next("sendMessage", 502)
        db.execute("UPDATE tg_rate SET stamps = '', blocked_until = 0")
        due_now(db, job_id)
        assert worker.run_once()
        row = job_row(db, job_id)
        assert row["status"] == "pending" and 0 < row["wait"] <= 10.0, attempt
    db.execute("UPDATE tg_rate SET stamps = '', blocked_until = 0")
    due_now(db, job_id)
    assert worker.run_once()
    assert job_row(db, job_id)["status"] == "done"
    assert [m["visible_text"] for m in tg.messages(905)] == ["✅ Надіслано клієнту"]


def test_when_telegram_is_back_a_send_in_a_long_backoff_goes_out_at_the_next_probe(db, jobs, sender, tg,
                                                                                   sandbox_settings):
    """Telegram away for a while: the send's backoff has grown (up to a minute for some
    kinds). A probe, not the sleep, ends it: while getMe fails the send keeps waiting; the
    first probe Telegram answers makes it due, and it goes out."""
    from bot.sender import TelegramApi
    from scripts.worker import Comeback
    from scripts.worker_main import TELEGRAM_KINDS
    api = TelegramApi(create_bot(sandbox_settings))
    comeback = Comeback(TELEGRAM_KINDS, api.alive, lambda: jobs.wake(TELEGRAM_KINDS), interval=0.0)
    worker = Worker(jobs, {"tg_send": sender}, queues=[SEND], comebacks=(comeback,))
    job_id = jobs.enqueue_id(SEND, "tg_send", {"chat_id": 906, "method": "sendMessage",
                                               "text": "Клієнт чекає на відповідь"}, lane="send:906")
    tg.fail_next("*", 502)
    assert worker.run_once()                                   # Telegram away: the send fails
    db.execute("UPDATE jobs SET run_after = NOW(6) + INTERVAL 60 SECOND WHERE id = %s", (job_id,))
    assert not worker.run_once()                               # … and waits out its backoff
    tg.fail_next("*", 502)
    comeback.tick()                                            # still away: getMe fails
    assert job_row(db, job_id)["wait"] > 50 and not worker.run_once()
    comeback.tick()                                            # Telegram answers again
    assert job_row(db, job_id)["wait"] <= 0
    db.execute("UPDATE tg_rate SET stamps = '', blocked_until = 0")
    assert worker.run_once()
    assert job_row(db, job_id)["status"] == "done"
    assert [m["visible_text"] for m in tg.messages(906)] == ["Клієнт чекає на відповідь"]
    comeback.tick()                                            # not away any more: no probe
    assert tg.count_calls("getMe") == 2


def test_a_job_finished_while_the_database_node_steps_out_is_settled_when_it_is_back(db, jobs):
    """The job's work is done, but the node answering its settle is leaving the cluster for
    a moment (1047, then a lost connection): the settle is tried again and lands, so the
    job is not left to its lease and run a second time by someone else."""
    runs = []
    worker = Worker(jobs, {"mark_read": lambda job: runs.append(job.id)}, queues=[SYNC])
    job_id = jobs.enqueue_id(SYNC, "mark_read", {"conversation_id": 1})
    real, failures = jobs.complete, [pymysql.err.OperationalError(1047, "WSREP has not yet prepared node"),
                                     pymysql.err.OperationalError(2013, "Lost connection to server")]

    def complete(job, **kwargs):
        if failures:
            raise failures.pop(0)
        return real(job, **kwargs)
    jobs.complete = complete
    assert worker.run_once()
    assert runs == [job_id] and failures == []
    assert job_row(db, job_id)["status"] == "done"


def test_a_job_of_a_kind_an_older_worker_does_not_know_is_left_for_a_newer_one(db, jobs):
    """A rolling upgrade: a new host stores a kind of job the old host's workers have no
    handler for. The old worker leaves it (no dead letter, no #ERROR); a new one runs it."""
    runs = []
    old = Worker(jobs, {"mark_read": lambda job: None}, queues=[SYNC])
    new = Worker(jobs, {"mark_read": lambda job: None, "digest_schedule": lambda job: runs.append(job.id)},
                 queues=[SYNC])
    job_id = jobs.enqueue_id(SYNC, "digest_schedule", {})
    assert old.run_once()
    row = job_row(db, job_id)
    assert row["status"] == "pending" and row["attempts"] == 0 and "in this release" in row["last_error"]
    due_now(db, job_id)
    assert new.run_once()
    assert runs == [job_id] and job_row(db, job_id)["status"] == "done"


def test_a_send_telegram_refuses_is_a_dead_letter_at_once_and_reported():
    verdict = decide("tg_send", 1, telegram_error(400, "Bad Request: chat not found"))
    assert verdict.dead and verdict.report


def test_a_persons_update_gives_up_after_its_attempts_so_their_lane_moves_on():
    attempts = POLICIES["tg_update"].transient_attempts
    assert attempts and attempts <= 10
    total_wait = 0.0
    for attempt in range(1, attempts):
        verdict = decide("tg_update", attempt, requests.ConnectionError("Telegram away"))
        assert not verdict.dead and verdict.delay <= 5.0
        total_wait += verdict.delay
    assert total_wait <= 60.0  # a person's lane is held a minute at most
    last = decide("tg_update", attempts, requests.ConnectionError("Telegram away"))
    assert last.dead and last.report


def test_a_persons_update_that_hits_a_bug_is_tried_twice_then_dead():
    assert not decide("tg_update", 1, ValueError("bug")).dead
    assert decide("tg_update", 2, ValueError("bug")).dead


def test_permanent_is_a_dead_letter_at_the_first_attempt_whatever_the_kind():
    for kind in ("tg_update", "tg_send", "deliver", "mark_read", "crm_sync", "clean", "other"):
        verdict = decide(kind, 1, Permanent("cannot", "ever"))
        assert verdict.dead and verdict.report, kind


def test_an_answer_to_a_customer_waits_for_the_crm_for_long_with_a_30_s_cap():
    from crm.client import CrmUnavailable
    exc = CrmUnavailable("CRM answered 503")
    for attempt in (1, 5, 50, 500, 2999):
        verdict = decide("deliver", attempt, exc)
        assert not verdict.dead and verdict.delay <= 30.0
    reported = [a for a in range(1, 100) if decide("deliver", a, exc).report]
    assert len(reported) == 1  # "still failing" is said once, not at every retry


def test_a_poison_crm_answer_is_not_retried_forever():
    from crm.client import CrmBadAnswer
    attempts = POLICIES["crm_sync"].transient_attempts
    assert 0 < attempts <= 1000
    assert decide("crm_sync", attempts, CrmBadAnswer("not JSON")).dead


@pytest.mark.parametrize("exc", TRANSIENT[:3] + PERMANENT, ids=lambda e: type(e).__name__)
def test_periodic_work_is_never_a_dead_letter_and_is_reported_from_the_third_failure(exc):
    for attempt in range(1, 500):
        verdict = decide("reconcile", attempt, exc, periodic=True, period=60.0)
        assert not verdict.dead, attempt
        assert 0 < verdict.delay <= PERIODIC.backoff_cap
        assert verdict.report == (attempt >= 3), attempt


def test_a_periodic_jobs_retry_never_waits_longer_than_its_period():
    for attempt in range(1, 50):
        assert decide("expire_pins", attempt, ValueError("bug"), periodic=True, period=5.0).delay <= 5.0


# --------------------------------------------------------------------------- 2. the worker

def test_a_permanent_failure_is_a_dead_letter_with_error_in_the_log_chat_and_the_hook(db, jobs, sender, tg):
    dead, runs = [], []
    reporter = ErrorReporter(db, TelegramOut(jobs), LOG_CHAT)

    def refuse(job):
        runs.append(job.id)
        raise Permanent("the CRM refused the answer", "HTTP 422 text too long")

    worker = Worker(jobs, {"deliver": refuse}, queues=[UPDATES], report=reporter.report,
                    on_dead=lambda job, exc: dead.append((job.id, type(exc).__name__)))
    job_id = jobs.enqueue_id(UPDATES, "deliver", {"outbound_id": 1})
    assert worker.run_once()
    due_now(db)
    assert not worker.run_once()          # never run again by itself
    assert runs == [job_id]
    row = job_row(db, job_id)
    assert row["status"] == "failed" and "HTTP 422" in row["last_error"]
    assert dead == [(job_id, "Permanent")]
    letters, total = jobs.dead_letters()
    assert total == 1 and letters[0].id == job_id

    deliver_sends(db, jobs, sender)
    [post] = log_texts(tg)
    assert post.startswith("#ERROR deliver: the CRM refused the answer")
    assert f"/retry_{job_id}" in post and "HTTP 422 text too long" in post


def test_a_post_telegram_refuses_is_a_dead_letter_and_the_log_chat_says_so(db, jobs, sender, tg):
    """Issue 9: "chat not found" after the bot was removed was dropped with a log line."""
    tg.remove_bot_from_chat(SHARED_CHAT, chat_exists=False)
    dead = []
    reporter = ErrorReporter(db, TelegramOut(jobs), LOG_CHAT)
    worker = Worker(jobs, {"tg_send": sender}, queues=[SEND], report=reporter.report,
                    on_dead=lambda job, exc: dead.append(job.id))
    post_id = jobs.enqueue_id(SEND, "tg_send", {"chat_id": SHARED_CHAT, "method": "sendMessage",
                                                "text": "📧 Повідомлення від клієнта"},
                              lane=f"send:{SHARED_CHAT}")
    assert worker.run_once()
    assert job_row(db, post_id)["status"] == "failed" and dead == [post_id]
    deliver_sends(db, jobs, sender)
    [post] = log_texts(tg)
    assert post.startswith(f"#ERROR tg_send: Telegram refused sendMessage to chat {SHARED_CHAT}")
    assert "chat not found" in post and f"/retry_{post_id}" in post


def test_a_broken_log_chat_does_not_feed_on_itself(db, jobs, sender, tg):
    tg.remove_bot_from_chat(LOG_CHAT)
    tg.remove_bot_from_chat(SHARED_CHAT)
    reporter = ErrorReporter(db, TelegramOut(jobs), LOG_CHAT)
    worker = Worker(jobs, {"tg_send": sender}, queues=[SEND], report=reporter.report)
    for n in range(3):
        jobs.enqueue(SEND, "tg_send", {"chat_id": SHARED_CHAT, "method": "sendMessage",
                                       "text": f"post {n}"}, lane=f"send:{SHARED_CHAT}")
    for _ in range(40):
        db.execute("UPDATE tg_rate SET stamps = ''")
        due_now(db)
        if not worker.run_once():
            break
    else:
        pytest.fail("the queue never settles: reports about the log chat feed on themselves")
    tries = [c for c in tg.calls("sendMessage") if c["params"].get("chat_id") == LOG_CHAT]
    assert 1 <= len(tries) <= 2


def test_a_periodic_job_that_always_fails_is_rescheduled_forever_and_reported_after_3_failures(db, jobs):
    reports, runs = [], []
    failures = [RuntimeError("CRM login answered 403 (maintenance page)"),
                Permanent("the CRM refused the login", "403"), ValueError("bug")]

    def reconcile(job):
        runs.append(job.attempts)
        raise failures[len(runs) % 3]

    worker = Worker(jobs, {"reconcile": reconcile}, queues=[SYNC],
                    report=lambda cause, detail="", job_id=None: reports.append((cause, job_id)))
    jobs.ensure_periodic(SYNC, "reconcile")
    job_id = db.scalar("SELECT id FROM jobs WHERE dedupe_key = 'periodic:reconcile'")
    for n in range(1, 13):
        due_now(db)
        assert worker.run_once(), n
        row = job_row(db, job_id)
        assert row["status"] == "pending", n
        assert 0 < row["wait"] <= 60.5, n
        assert len(reports) == max(0, n - 2), n
    assert all(cause.startswith("reconcile: ") and cause.endswith("(still failing)")
               for cause, _ in reports)
    assert {job for _, job in reports} == {job_id}

    # The CRM is back: the next run succeeds and the job goes on at its own pace.
    worker.handlers["reconcile"] = lambda job: 60.0
    due_now(db)
    assert worker.run_once()
    row = job_row(db, job_id)
    assert row["status"] == "pending" and row["attempts"] == 0 and row["last_error"] is None
    assert 55 < row["wait"] <= 60.5


def test_a_periodic_job_failing_for_a_day_keeps_its_pace_and_its_reports(db, jobs):
    """A reconciliation failing every minute for a day has made over a thousand attempts:
    the backoff must still be computed (no overflow), the job rescheduled, the report made."""
    reports = []

    def reconcile(job):
        raise RuntimeError("CRM login answered 403 (maintenance page)")

    worker = Worker(jobs, {"reconcile": reconcile}, queues=[SYNC],
                    report=lambda cause, detail="", job_id=None: reports.append(cause))
    jobs.ensure_periodic(SYNC, "reconcile")
    db.execute("UPDATE jobs SET attempts = 1439 WHERE kind = 'reconcile'")
    assert worker.run_once()
    row = db.fetchone("SELECT status, attempts, TIMESTAMPDIFF(MICROSECOND, NOW(6), run_after) / 1e6"
                      " AS wait FROM jobs WHERE kind = 'reconcile'")
    assert row["status"] == "pending" and row["attempts"] == 1440
    assert 0 < row["wait"] <= 60.5
    assert reports == ["reconcile: RuntimeError (still failing)"]


def test_a_periodic_job_run_every_few_seconds_retries_at_its_own_pace_during_an_outage(db, jobs):
    """Reconciliation every 2 s: a CRM maintenance window of minutes must not stretch its
    retries to the 60 s cap, or messages whose signal was lost wait long after the CRM is back."""
    outage = []

    def reconcile(job):
        if outage:
            raise RuntimeError("CRM login answered 403 (maintenance page)")
        return 2.0

    worker = Worker(jobs, {"reconcile": reconcile}, queues=[SYNC])
    other_process = Worker(jobs, {"reconcile": reconcile}, queues=[SYNC])
    jobs.ensure_periodic(SYNC, "reconcile")
    job_id = db.scalar("SELECT id FROM jobs WHERE dedupe_key = 'periodic:reconcile'")
    assert worker.run_once()
    outage.append(True)
    for n in range(1, 10):
        due_now(db)
        assert (worker if n % 2 else other_process).run_once(), n
        assert 0 < job_row(db, job_id)["wait"] <= 2.5, n


def test_an_answer_waiting_hours_for_the_crm_is_still_retried_every_30_s(db, jobs):
    from crm.client import CrmUnavailable

    def deliver(job):
        raise CrmUnavailable("CRM answered 503")

    worker = Worker(jobs, {"deliver": deliver}, queues=[UPDATES])
    job_id = jobs.enqueue_id(UPDATES, "deliver", {"outbound_id": 1})
    db.execute("UPDATE jobs SET attempts = 1199 WHERE id = %s", (job_id,))  # ten hours of 30 s
    assert worker.run_once()
    row = job_row(db, job_id)
    assert row["status"] == "pending" and 0 < row["wait"] <= 30.5
    assert "CrmUnavailable" in (row["last_error"] or "")


def test_a_periodic_job_left_failed_or_done_is_brought_back_by_the_worker_loop(db, jobs, monkeypatch):
    jobs.ensure_periodic(SYNC, "expire_pins")
    jobs.ensure_periodic(SYNC, "expire_pins")  # idempotent: still one job
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'expire_pins'") == 1
    db.execute("UPDATE jobs SET status = 'failed', run_after = NOW(6) + INTERVAL 1 DAY"
               " WHERE kind = 'expire_pins'")
    runs = []
    monkeypatch.setattr(worker_module, "PERIODIC_CHECK_SECONDS", 0.05)
    worker = Worker(jobs, {"expire_pins": lambda job: runs.append(job.id) or 60.0}, queues=[SYNC],
                    ensure_periodic=lambda: jobs.ensure_periodic(SYNC, "expire_pins"))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: runs, timeout=5)
    finally:
        stop.set()
        worker.bell.ring_all()
        thread.join(5)
    assert db.scalar("SELECT status FROM jobs WHERE kind = 'expire_pins'") == "pending"
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'expire_pins'") == 1


def test_dead_letters_are_kept_until_retried_or_purged(db, jobs):
    def fail(job):
        raise Permanent("refused")

    worker = Worker(jobs, {"doomed": fail, "fine": lambda job: None}, queues=[SYNC])
    dead_id = jobs.enqueue_id(SYNC, "doomed", {})
    done_id = jobs.enqueue_id(SYNC, "fine", {})
    while worker.run_once():
        pass
    db.execute("UPDATE jobs SET updated_at = NOW(6) - INTERVAL 40 DAY")
    jobs.purge_finished(7)                     # the daily clean forgets done jobs…
    assert job_row(db, done_id) is None
    assert job_row(db, dead_id)["status"] == "failed"  # …never a dead letter
    assert jobs.purge_dead(180) == 0           # kept for RETENTION_DAYS
    assert not jobs.revive(done_id) and not jobs.revive(10**9)
    assert jobs.revive(dead_id) and not jobs.revive(dead_id)  # revived once, now pending
    assert job_row(db, dead_id)["status"] == "pending" and job_row(db, dead_id)["attempts"] == 0
    worker.run_once()
    db.execute("UPDATE jobs SET updated_at = NOW(6) - INTERVAL 200 DAY")
    assert jobs.purge_dead(180) == 1 and job_row(db, dead_id) is None


def follow_up(job):
    return Done(then=(NewJob(SEND, "tg_send", {"chat_id": 700, "method": "sendMessage",
                                                "text": f"✅ step after job {job.id}"}),))


def follow_ups(db):
    return db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'tg_send'")


def test_a_follow_up_step_is_stored_by_the_completion_that_marks_the_job_done(db, jobs):
    worker = Worker(jobs, {"step": follow_up}, queues=[UPDATES])
    job_id = jobs.enqueue_id(UPDATES, "step", {})
    assert worker.run_once()
    assert job_row(db, job_id)["status"] == "done"
    [row] = db.fetchall("SELECT payload, status FROM jobs WHERE kind = 'tg_send'")
    assert f"step after job {job_id}" in row["payload"] and row["status"] == "pending"


def test_a_job_killed_before_its_completion_stores_no_follow_up_and_the_rerun_stores_one(db):
    jobs = JobQueue(db, lease_seconds=0.5)
    job_id = jobs.enqueue_id(UPDATES, "step", {})
    [doomed] = jobs.claim([UPDATES], "doomed-worker")
    follow_up(doomed)                      # the handler ran; the process died before completing
    assert follow_ups(db) == 0
    time.sleep(0.7)                        # its lease runs out
    worker = Worker(jobs, {"step": follow_up}, queues=[UPDATES])
    assert worker.run_once()
    assert job_row(db, job_id)["status"] == "done"
    assert follow_ups(db) == 1


def test_a_late_completion_by_a_worker_that_lost_its_lease_stores_no_second_follow_up(db):
    """A worker stalled past its lease (a long GC pause, the database away for a while):
    its job was taken over and finished by another worker. When the stalled worker wakes
    and completes, the next steps must not be stored a second time."""
    jobs = JobQueue(db, lease_seconds=0.5)
    job_id = jobs.enqueue_id(UPDATES, "step", {})
    [stalled] = jobs.claim([UPDATES], "stalled-worker")
    decided = follow_up(stalled)
    time.sleep(0.7)
    worker = Worker(jobs, {"step": follow_up}, queues=[UPDATES])
    assert worker.run_once()               # taken over and completed: one follow-up
    assert follow_ups(db) == 1
    jobs.complete(stalled, then=decided.then)  # the stalled worker wakes up
    assert job_row(db, job_id)["worker"] != "stalled-worker"
    assert follow_ups(db) == 1, "the follow-up step was stored twice"


def test_a_completion_whose_follow_up_cannot_be_stored_leaves_the_job_unfinished(db, jobs):
    """Same transaction: either the job is done and its steps are stored, or neither."""
    def step(job):
        return Done(then=(NewJob(SEND, "tg_send", {"text": "fits"}),
                          NewJob(SEND, "tg_send", {"text": "cannot be stored", "at": object()})))

    worker = Worker(jobs, {"step": step}, queues=[UPDATES])
    job_id = jobs.enqueue_id(UPDATES, "step", {})
    worker.run_once()
    assert job_row(db, job_id)["status"] == "running"  # taken up again after its lease
    assert follow_ups(db) == 0


# --------------------------------------------------------------------------- 3. ErrorReporter

class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 5, 17, 10, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


CAUSE = f"tg_send: Telegram refused sendMessage to chat {SHARED_CHAT}"


def test_ten_reports_of_one_cause_are_one_post_then_a_count_of_the_others(db, jobs, sender, tg):
    clock = Clock()
    reporter = ErrorReporter(db, TelegramOut(jobs), LOG_CHAT, clock=clock)
    posted = []
    for n in range(10):
        posted.append(reporter.report(CAUSE, f"403 bot was kicked (post {n})", job_id=100 + n))
        clock.advance(seconds=20)          # all within the five minutes
    assert posted == [True] + [False] * 9
    assert reporter.flush() == 0           # the window is not over yet
    deliver_sends(db, jobs, sender)
    [first] = log_texts(tg)
    assert first.startswith(f"#ERROR {CAUSE} (×1) /retry_100")

    clock.advance(minutes=5)
    assert reporter.flush() == 1
    assert reporter.flush() == 0           # said once
    deliver_sends(db, jobs, sender)
    first_again, summary = log_texts(tg)
    assert summary.startswith(f"#ERROR {CAUSE} (×9)")
    assert "post 9" in summary             # the latest detail
    clock.advance(minutes=10)
    assert reporter.flush() == 0           # nothing new, nothing said


def test_two_causes_are_two_posts(db, jobs, sender, tg):
    clock = Clock()
    reporter = ErrorReporter(db, TelegramOut(jobs), LOG_CHAT, clock=clock)
    assert reporter.report(CAUSE, "kicked", job_id=1)
    assert reporter.report("deliver: the CRM refused the answer", "HTTP 422", job_id=2)
    assert not reporter.report(CAUSE, "kicked", job_id=3)
    deliver_sends(db, jobs, sender)
    texts = log_texts(tg)
    assert len(texts) == 2
    assert texts[0].startswith(f"#ERROR {CAUSE} (×1) /retry_1")
    assert texts[1].startswith("#ERROR deliver: the CRM refused the answer (×1) /retry_2")


def test_a_cause_seen_again_after_the_window_is_posted_again_with_its_count(db, jobs):
    clock = Clock()
    reporter = ErrorReporter(db, TelegramOut(jobs), LOG_CHAT, clock=clock)
    assert reporter.report(CAUSE, "a")
    clock.advance(minutes=4, seconds=59)
    assert not reporter.report(CAUSE, "b")
    clock.advance(seconds=2)               # 5 min 1 s after the post
    assert reporter.report(CAUSE, "c")
    posts = db.fetchall("SELECT payload FROM jobs WHERE lane = %s ORDER BY id", (f"send:{LOG_CHAT}",))
    assert len(posts) == 2
    assert '"count":2' in posts[1]["payload"]


# --------------------------------------------------------------------------- 4. no secret kept

def test_a_network_error_quoting_the_bot_api_url_leaves_no_token_in_the_job_or_the_report(db, mariadb):
    """The worker's own composition (Container.build registers the secrets), against a Bot
    API that cannot be reached: requests' error text quotes /bot<token>/sendMessage."""
    from container import Container
    from scripts.worker_main import WorkerRuntime
    from utils.bell import Bell

    token = realistic_token()
    settings = load_settings(base_environment(
        mariadb, BOT_TOKEN=token, TELEGRAM_API_URL=f"http://127.0.0.1:{closed_port()}"), env_file=None)
    deps = Container.build(settings, db)
    runtime = WorkerRuntime(deps, Bell())
    job_id = deps.out.enqueue(777, "Вітаємо!")
    errors = []
    for _ in range(12):                    # the send is reported as still failing at the 12th
        db.execute("UPDATE tg_rate SET stamps = ''")
        due_now(db, job_id)
        job = deps.jobs.claim_id(job_id, "test-worker")
        assert job is not None
        assert runtime.worker.execute(job) == "retry"
        errors.append(job_row(db, job_id)["last_error"])
    assert all("ConnectionError" in e for e in errors)   # still a useful error
    stored = "\n".join(errors)
    stored += "\n".join(r["payload"] for r in db.fetchall("SELECT payload FROM jobs WHERE id <> %s", (job_id,)))
    stored += "\n".join(r["last_detail"] or "" for r in db.fetchall("SELECT last_detail FROM error_causes"))
    assert "still failing" in stored                     # the report was made…
    secret_part = token.split(":", 1)[1]
    assert token not in stored and secret_part not in stored  # …and holds no token


def test_any_bot_token_in_a_bot_api_url_is_hidden_even_if_never_registered():
    """utils/redact.py promises "…/bot123456:AAE…/sendMessage — any bot token, registered
    or not": the safety net for a process that did not register its secrets."""
    token = realistic_token()
    text = (f"HTTPSConnectionPool(host='api.telegram.org', port=443): Max retries exceeded"
            f" with url: /bot{token}/sendMessage (Caused by NewConnectionError(...))")
    hidden = redact(text)
    assert token.split(":", 1)[1] not in hidden
    assert "sendMessage" in hidden


SECRETS = {
    "BOT_TOKEN": "5550001234:AAFsecretBOTtokenVALUE0123456789abcd",
    "KEEPING_API_KEY": "crm-api-key-VALUE-0123",
    "LINK_KEY": "link-key-VALUE-0123",
    "MYSQL_PASSWORD": "mysql-password-VALUE-0123",
    "WEBHOOK_SECRET_PATH": "webhook-path-VALUE-0123",
    "WEBHOOK_SECRET_TOKEN": "webhook-token-VALUE-0123",
    "METRICS_TOKEN": "metrics-token-VALUE-0123",
    "SECRET_KEY": "master-secret-VALUE-0123456789-abcdefgh",
}


def test_settings_printed_in_any_way_show_no_secret(mariadb):
    settings = load_settings(base_environment(mariadb, WEBHOOK_URL="https://desk.example.com",
                                              **SECRETS), env_file=None)
    assert settings.metrics_token == SECRETS["METRICS_TOKEN"]  # the values did arrive
    for shown in (repr(settings), str(settings), f"{settings}", f"{settings!r}",
                  repr(settings.replace(log_level="DEBUG")), repr([settings]), repr({"s": settings})):
        for name, value in SECRETS.items():
            assert value not in shown, name
        assert "AAFsecretBOTtoken" not in shown
    assert "desk.example.com" in repr(settings)  # the rest is still there to read
    assert set(SECRETS.values()) <= set(settings.secrets)


def test_while_an_older_workers_generation_runs_the_periodic_kinds_it_cannot_run_wait(desk, db):
    """A rolling upgrade: the older host's workers would take up a periodic job they have
    no handler for; the kind is stored only once the last of them is gone."""
    from scripts.worker_main import schedule_periodic
    db.execute("DELETE FROM jobs WHERE kind = 'digest_schedule'")
    db.execute("INSERT INTO worker_bells (endpoint, seen_at) VALUES ('127.0.0.1:9', NOW(6))")  # no generation
    schedule_periodic(desk.deps)
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'digest_schedule'") == 0
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'expire_pins'") == 1     # known to both
    db.execute("DELETE FROM worker_bells WHERE endpoint = '127.0.0.1:9'")
    schedule_periodic(desk.deps)
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'digest_schedule'") == 1
