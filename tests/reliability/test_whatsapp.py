"""WhatsApp under crashes and Graph API faults (issue 11; SPEC §6).

* `kill -9` of bot workers and of an integrations-door worker while WhatsApp customers
  write: the WhatsApp sandbox re-delivers a webhook that got no 200, as Meta does; every
  message answered 200 reaches the shared chat, at most one duplicate per kill.
* Graph API 5xx and throughput 429s (130429: the number's real limit is lower than the
  one KeepDesk was told) while 1C sends a burst of appointment notices: every notice
  reaches its customer exactly once, nothing is a dead letter.

Real processes (gunicorn doors, `python -m bot worker`), the session's MariaDB, the
sandboxes over loopback.
"""
import random
import threading
import time

import pytest
import requests

from conftest import SHARED_CHAT
from harness import wait_for
from reliability.report import sized
from reliability.traffic import record_delivery, settle, tag_counts, unfinished_jobs, wait_delivered

pytestmark = pytest.mark.reliability

MESSAGES = sized(24, 120)
CUSTOMERS = sized(8, 30)
WORKERS = sized(2, 3)
KILL_PLAN = sized(["worker", "door"], ["worker", "door", "worker", "worker"])
TRAFFIC_SECONDS = sized(2.5, 8.0)
NOTICES = sized(30, 200)


def whatsapp_env(wa, **extra) -> dict:
    return {"WHATSAPP_CLOUD_TOKEN": wa.token, "WHATSAPP_CLOUD_PHONE_NUMBER_ID": wa.phone_number_id,
            "WHATSAPP_CLOUD_APP_SECRET": wa.app_secret, "WHATSAPP_CLOUD_VERIFY_TOKEN": wa.verify_token,
            "WHATSAPP_CLOUD_GRAPH_URL": wa.url,
            "WHATSAPP_LIMIT_CUSTOMER_SECONDS": str(wa.pair_seconds + 0.05), **extra}


def test_kill_9_while_whatsapp_customers_write_loses_nothing(cluster_factory, figures, wa, tg, db):
    rng = random.Random()
    cluster = cluster_factory(workers=WORKERS, **whatsapp_env(wa))
    assert wa.subscribe(f"{cluster.listener_url}/whatsapp/cloud").status_code == 200
    figures.add("trials")
    run = f"w{rng.randrange(10**6):06d}"
    phones = [f"3806700{k:05d}" for k in range(CUSTOMERS)]
    plan = [(phones[n % CUSTOMERS], f"[{run}/{n + 1}] чи є в наявності?") for n in range(MESSAGES)]
    shares = [plan[k::4] for k in range(4)]

    def write(share):
        for phone, text in share:
            wa.customer_writes(phone, text, name="Клієнт")      # re-delivered until answered 200
            time.sleep(TRAFFIC_SECONDS / max(1, len(share)))

    senders = [threading.Thread(target=write, args=(share,), daemon=True) for share in shares]
    kills_before = figures.kills
    for sender in senders:
        sender.start()
    for moment, target in zip(sorted(rng.uniform(0.2, TRAFFIC_SECONDS) for _ in KILL_PLAN), KILL_PLAN):
        time.sleep(max(0.0, moment - 0.2))
        if target == "door":
            cluster.kill_door_worker("listener", rng)
        else:
            cluster.kill_worker(rng)
            time.sleep(rng.uniform(0.2, 0.8))
            cluster.restart_workers()
    for sender in senders:
        sender.join(timeout=120)
    cluster.restart_workers()
    cluster.wait_doors_whole()
    expected = set(range(1, MESSAGES + 1))
    wait_delivered(tg, SHARED_CHAT, run, expected, timeout=sized(60, 120))
    settle(db, timeout=30)
    counts = tag_counts(tg, SHARED_CHAT, run)
    missing, duplicates = record_delivery(figures, expected, counts)
    kills = figures.kills - kills_before
    unanswered = [w for w in wa.webhook_log if w["status"] != 200]
    figures.note(f"webhook deliveries not answered 200 (re-delivered by the sandbox): {len(unanswered)}")
    assert not missing, f"never reached the shared chat: {sorted(missing)}\n" + unfinished_jobs(db)
    assert duplicates <= kills, f"{duplicates} duplicates after {kills} kills"
    cluster.assert_all_alive()
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed'") == 0


def test_graph_api_5xx_and_429_delay_notices_but_each_arrives_once(cluster_factory, figures, wa, db):
    from services.api_tokens import ApiTokens
    figures.add("trials")
    wa.add_template("appointment", 3)
    saved = wa.per_number_per_s
    wa.per_number_per_s = 10      # Meta's real limit for this number: lower than KeepDesk was told
    try:
        cluster = cluster_factory(workers=2, **whatsapp_env(
            wa, WHATSAPP_TEMPLATE_APPOINTMENT="appointment", WHATSAPP_LIMIT_PER_NUMBER_PER_S="80"))
        token = ApiTokens(db).create("1c-reliability")
        wa.fail_next(503, 2, "Service temporarily unavailable", times=sized(5, 20))
        figures.fault("5xx", sized(5, 20))
        phones = [f"3806711{k:05d}" for k in range(NOTICES)]
        session = requests.Session()
        for n, phone in enumerate(phones):
            answer = session.post(f"{cluster.listener_url}/appointment", timeout=10, data={
                "token": token, "phone": phone, "doctor": f"Лікар {n}", "date": "05.12", "time": "10:30"})
            assert answer.text == "OK"
            if n == NOTICES // 2:
                wa.set_down(502)          # Meta away for a moment, in the middle of the burst
                figures.fault("5xx")
                time.sleep(0.5)
                wa.set_down(None)
        wait_for(lambda: len([m for m in wa.sent() if m["type"] == "template"]) >= NOTICES,
                 timeout=sized(90, 300))
        settle(db, timeout=60)
        sent = [m["to"] for m in wa.sent() if m["type"] == "template"]
        throttled = wa.refusals.count(130429)
        figures.fault("429", throttled)
        figures.messages(NOTICES, len(set(sent)), len(sent) - len(set(sent)))
        figures.note(f"{NOTICES} appointment notices; the Graph API refused {len(wa.refusals)} calls"
                     f" ({throttled} × 130429)")
        assert sorted(sent) == sorted(phones), "a notice was lost or sent twice"
        assert db.scalar("SELECT COUNT(*) FROM wa_outbox WHERE status = 'sent'") == NOTICES
        assert db.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed'") == 0
    finally:
        wa.per_number_per_s = saved
