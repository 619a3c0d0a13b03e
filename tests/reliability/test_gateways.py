"""WhatsApp through the gateways under crashes and gateway faults (issue 12; SPEC §6).

* `kill -9` of bot workers and of an integrations-door worker while customers write
  through a Green-API-compatible gateway (by webhook, and polled with no public URL) and
  through Devino: every message the gateway handed over reaches the shared chat, at most
  one duplicate per kill. A polled notification is deleted only after it is stored, so a
  worker killed in between gets it again (the same message id: stored once).
* Gateway 5xx, 429 (the gateway stricter than its documentation; Devino's
  too.many.messages), timeouts (the send taken, its answer lost) and a worker killed
  mid-burst while 1C sends a burst of appointment notices: every notice reaches its
  customer exactly once, nothing is a dead letter. A lost Green-API answer is settled by
  the chat's history, a lost Devino batch answer by the status callbacks naming each
  message — never by a blind resend.

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
from wa_providers import DEVINO_SECRET, GREENAPI_WEBHOOK_TOKEN

pytestmark = pytest.mark.reliability

MESSAGES = sized(20, 120)
CUSTOMERS = sized(6, 30)
WORKERS = sized(2, 3)
KILL_PLAN = sized(["worker", "door"], ["worker", "door", "worker", "worker"])
TRAFFIC_SECONDS = sized(2.5, 8.0)
NOTICES = sized(30, 200)
# `make test` runs one scenario of each kind (the ones with the most moving parts); `make
# reliability` runs them all, at full size.
KILL_MODES = sized(["greenapi-poll"], ["greenapi-webhook", "greenapi-poll", "devino"])
FAULT_PROVIDERS = sized(["greenapi"], ["greenapi", "devino"])


def greenapi_env(ga, receive="webhook", **extra) -> dict:
    return {"WHATSAPP_PROVIDER": "greenapi", "WHATSAPP_GREENAPI_URL": ga.url, "WHATSAPP_GREENAPI_ID": ga.instance,
            "WHATSAPP_GREENAPI_TOKEN": ga.token, "WHATSAPP_GREENAPI_WEBHOOK_TOKEN": GREENAPI_WEBHOOK_TOKEN,
            "WHATSAPP_GREENAPI_RECEIVE": receive, **extra}


def devino_env(dv, **extra) -> dict:
    return {"WHATSAPP_PROVIDER": "devino", "WHATSAPP_DEVINO_URL": dv.url, "WHATSAPP_DEVINO_KEY": dv.key,
            "WHATSAPP_DEVINO_FROM": dv.sender, "WHATSAPP_DEVINO_CALLBACK_SECRET": DEVINO_SECRET, **extra}


def connect(mode, server, cluster):
    if mode == "greenapi-webhook":
        server.use_webhook(f"{cluster.listener_url}/whatsapp/greenapi", GREENAPI_WEBHOOK_TOKEN)
    elif mode == "greenapi-poll":
        server.use_queue()
    else:
        server.use_incoming(f"{cluster.listener_url}/whatsapp/devino/{DEVINO_SECRET}/incoming")


@pytest.mark.parametrize("mode", KILL_MODES)
def test_kill_9_while_gateway_customers_write_loses_nothing(mode, cluster_factory, figures, ga, dv, tg, db):
    rng = random.Random()
    server = dv if mode == "devino" else ga
    env = devino_env(dv) if mode == "devino" else greenapi_env(ga, "poll" if mode == "greenapi-poll" else "webhook")
    cluster = cluster_factory(workers=WORKERS, public_url=True, **env)
    connect(mode, server, cluster)
    figures.add("trials")
    run = f"g{rng.randrange(10**6):06d}"
    phones = [f"3806800{k:05d}" for k in range(CUSTOMERS)]
    plan = [(phones[n % CUSTOMERS], f"[{run}/{n + 1}] є доставка?") for n in range(MESSAGES)]
    shares = [plan[k::4] for k in range(4)]

    def write(share):
        for phone, text in share:
            server.customer_writes(phone, text, name="Клієнт")   # re-sent until answered 2xx
            time.sleep(TRAFFIC_SECONDS / max(1, len(share)))

    senders = [threading.Thread(target=write, args=(share,), daemon=True) for share in shares]
    kills_before = figures.kills
    for sender in senders:
        sender.start()
    for moment, target in zip(sorted(rng.uniform(0.2, TRAFFIC_SECONDS) for _ in KILL_PLAN), KILL_PLAN):
        time.sleep(max(0.0, moment - 0.2))
        if target == "door" and mode != "greenapi-poll":
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
    if mode == "greenapi-poll":
        wait_for(lambda: ga.queue_size() == 0, timeout=30)
        figures.note(f"{mode}: {len(ga.deleted)} notifications deleted after being stored")
    assert not missing, f"never reached the shared chat: {sorted(missing)}\n" + unfinished_jobs(db)
    assert duplicates <= kills, f"{duplicates} duplicates after {kills} kills"
    cluster.assert_all_alive()
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed'") == 0


@pytest.mark.parametrize("provider", FAULT_PROVIDERS)
def test_gateway_5xx_429_timeouts_and_a_kill_delay_notices_but_each_arrives_once(
        provider, cluster_factory, figures, ga, dv, db):
    from services.api_tokens import ApiTokens
    rng = random.Random()
    figures.add("trials")
    faults = sized(4, 12)
    if provider == "greenapi":
        ga.limits["send"] = 10             # the gateway is stricter than its documentation
        env = greenapi_env(ga)
        server = ga
    else:
        dv.per_second = 10                 # Devino answers too.many.messages beyond this
        dv.add_template("appointment", 3)
        # A batch a killed worker may or may not have sent waits this long for its callbacks.
        env = devino_env(dv, WHATSAPP_DEVINO_BATCH="25", WHATSAPP_DEVINO_CONFIRM_SECONDS="3")
        server = dv
    # The gateway's timeout stays well under the jobs' lease (2 s here), as in production.
    cluster = cluster_factory(workers=2, public_url=True, WHATSAPP_TEMPLATE_APPOINTMENT="appointment",
                              WHATSAPP_GATEWAY_TIMEOUT_SECONDS="0.6", **env)
    token = ApiTokens(db).create(f"1c-{provider}")
    server.fail_next(503, times=faults)
    figures.fault("5xx", faults)
    if provider == "greenapi":
        ga.slow_next(1.2, times=2)         # taken, but answered after KeepDesk stopped waiting
    else:
        dv.lose_next_answer(0.3)           # a whole batch taken, its answer lost
    figures.fault("timeouts", 2 if provider == "greenapi" else 1)
    phones = [f"3806722{k:05d}" for k in range(NOTICES)]
    session = requests.Session()
    kills_before = figures.kills
    for n, phone in enumerate(phones):
        answer = session.post(f"{cluster.listener_url}/appointment", timeout=10, data={
            "token": token, "phone": phone, "doctor": f"Лікар {n}", "date": "05.12", "time": "10:30"})
        assert answer.text == "OK"
        if n == NOTICES // 3:
            server.set_down(502)           # the gateway away for a moment, in the middle of the burst
            figures.fault("5xx")
            time.sleep(0.5)
            server.set_down(None)
        if n == NOTICES // 2:
            cluster.kill_worker(rng)
            time.sleep(0.3)
            cluster.restart_workers()
    wait_for(lambda: len({m["to"] for m in server.sent()}) >= NOTICES, timeout=sized(90, 300))
    settle(db, timeout=60)
    time.sleep(1.0)                         # late answers and callbacks
    sent = [m["to"] for m in server.sent()]
    kills = figures.kills - kills_before
    if provider == "greenapi":
        figures.fault("429", ga.throttled["send"])
        figures.note(f"greenapi: {NOTICES} notices; 429 answered {ga.throttled['send']} times")
    else:
        figures.note(f"devino: {NOTICES} notices in {len(dv.calls)} calls {dv.calls}")
    figures.messages(NOTICES, len(set(sent)), len(sent) - len(set(sent)))
    assert sorted(set(sent)) == sorted(phones), "a notice was lost"
    assert len(sent) - len(set(sent)) <= kills, f"sent twice: {len(sent) - len(set(sent))} after {kills} kills"
    assert db.scalar("SELECT COUNT(*) FROM wa_outbox WHERE status = 'sent'") == NOTICES
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed'") == 0
