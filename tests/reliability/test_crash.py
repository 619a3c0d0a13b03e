"""Crash: `kill -9` of bot workers and of a listener (gunicorn) worker at random moments
during a fan-out of client messages (SPEC §6: "a crash or kill -9 at any moment loses
nothing … at most the one message that was on the wire may be sent twice").

Every message is written in the CRM and signalled through the real listener; a signal
that got no answer (its door worker was killed) is repeated, as the CRM's next signal
would. Reconciliation is off (once an hour), so nothing but the acknowledged signals can
bring the messages in.
"""
import os
import random
import threading
import time

import pytest

from conftest import SHARED_CHAT
from harness import wait_for
from reliability.report import sized
from reliability.traffic import (Customers, record_delivery, settle, unfinished_jobs,
                                 wait_delivered)

pytestmark = pytest.mark.reliability

MESSAGES = sized(60, 200)
CHATS = sized(20, 50)
TRIALS = sized(1, 5)
WORKERS = sized(2, 3)
# Each trial's kills: bot worker processes and one gunicorn worker of the listener door.
KILL_PLAN = sized(["worker", "door"], ["worker", "worker", "door", "worker"])
TRAFFIC_SECONDS = sized(3.0, 8.0)


def test_kill_9_during_a_fan_out_loses_nothing(cluster_factory, figures, tg, crm, db):
    seed = int(os.environ.get("KEEPDESK_RELIABILITY_SEED", time.time_ns() % 10**6))
    rng = random.Random(seed)
    figures.note(f"seed {seed} (KEEPDESK_RELIABILITY_SEED to replay)")
    cluster = cluster_factory(workers=WORKERS)
    # The start-up reconciliation runs once, then not for an hour: wait it out.
    wait_for(lambda: db.scalar("SELECT run_after > NOW(6) + INTERVAL 60 SECOND FROM jobs"
                               " WHERE dedupe_key = 'periodic:reconcile'"), timeout=30)
    for trial in range(TRIALS):
        figures.add("trials")
        started = time.time()
        customers = Customers(crm, cluster.listener_url, figures)
        chats = [60_000 + trial * 1_000 + k for k in range(CHATS)]
        targets = list(KILL_PLAN)
        rng.shuffle(targets)
        kills_before = figures.kills
        chaos_errors: list[BaseException] = []
        chaos = threading.Thread(target=_chaos, args=(cluster, targets, rng, chaos_errors),
                                 daemon=True)
        chaos.start()
        # A signal without an answer is repeated for up to 30 s (its door worker may be
        # dead and respawning); every fifth is sent twice, as the CRM does in bursts.
        messages = [chats[i % CHATS] for i in range(MESSAGES)]
        customers.stream(messages, TRAFFIC_SECONDS, senders=4, retry_for=30, repeat_every=5)
        chaos.join(timeout=60)
        assert not chaos_errors, f"the chaos thread failed: {chaos_errors[0]!r}"
        cluster.restart_workers()
        kills = figures.kills - kills_before

        counts = wait_delivered(tg, SHARED_CHAT, customers.run, customers.numbers(),
                                timeout=sized(60, 120))
        settle(db, timeout=30)
        counts = wait_delivered(tg, SHARED_CHAT, customers.run, customers.numbers(), timeout=1)
        missing, duplicates = record_delivery(figures, customers.numbers(), counts)

        unacknowledged = [w.tag for w in customers.written if not w.acknowledged]
        assert not unacknowledged, f"signals never answered 200: {unacknowledged}"
        assert not missing, (f"trial {trial}: {len(missing)} acknowledged messages never "
                             f"reached Telegram: {sorted(missing)[:20]}\n" + unfinished_jobs(db))
        assert duplicates <= kills, (f"trial {trial}: {duplicates} duplicate posts after "
                                     f"{kills} kills: {[n for n, c in counts.items() if c > 1]}")
        reconciliations = [c for c in crm.calls("/debates/v2/chats")
                           if c["params"].get("filter_new") == "1" and c["time"] >= started]
        assert not reconciliations, "reconciliation ran: the proof must rest on signals alone"
    takeovers = len(cluster.log_lines("after its lease expired"))
    figures.note(f"jobs taken over from killed workers after their lease: {takeovers}")
    cluster.assert_all_alive()
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed'") == 0


def _chaos(cluster, targets: list[str], rng: random.Random, errors: list) -> None:
    """Kill at random moments of the traffic and of the fan-out right after it."""
    try:
        _kill_at_random_moments(cluster, targets, rng)
    except BaseException as exc:  # handed to the test, which fails with it
        errors.append(exc)


def _kill_at_random_moments(cluster, targets: list[str], rng: random.Random) -> None:
    window = TRAFFIC_SECONDS * 1.3
    moments = sorted(rng.uniform(0.2, window) for _ in targets)
    began = time.monotonic()
    for moment, target in zip(moments, targets):
        time.sleep(max(0.0, began + moment - time.monotonic()))
        if target == "door":
            cluster.kill_door_worker("listener", rng)
        else:
            cluster.kill_worker(rng)
            # A supervisor restarts it after a moment; meanwhile the others carry on.
            time.sleep(rng.uniform(0.2, 1.0))
            cluster.restart_workers()
    cluster.wait_doors_whole()
