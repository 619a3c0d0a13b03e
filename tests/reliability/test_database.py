"""Database away (SPEC §6): the session's MariaDB is stopped and started again in the
middle of traffic.

While it is away the doors answer 503 (nothing is acknowledged that is not on disk, and
Telegram delivers again); afterwards the workers reconnect by themselves and every
message is delivered — those whose signal was answered 200, and, through reconciliation,
those whose signal got a 503 and was never repeated by the CRM.
"""
import threading
import time
from datetime import datetime, timedelta

import pytest
import requests

from conftest import SHARED_CHAT
from harness import wait_for
from reliability.cluster import LINK_KEY, set_webhook
from reliability.report import sized
from reliability.traffic import (Customers, record_delivery, settle, unfinished_jobs,
                                 wait_delivered)

pytestmark = pytest.mark.reliability

OUTAGES = sized(1, 3)
OUTAGE_SECONDS = sized(2.0, 5.0)
MESSAGES = sized(30, 90)


def test_mariadb_restart_in_the_middle_of_traffic_loses_nothing(cluster_factory, figures, tg, crm,
                                                                db, mariadb):
    figures.add("trials")
    cluster = cluster_factory(workers=2, RECONCILE_EVERY="1")
    set_webhook(tg, cluster.webhook_endpoint)
    customers = Customers(crm, cluster.listener_url, figures)
    # One chat per message, so each refused signal stands for one message.
    plan = [73_000 + k for k in range(MESSAGES)]
    seconds = OUTAGES * (OUTAGE_SECONDS + 4) + 1
    # The CRM does not repeat a refused signal here: reconciliation must catch it.
    traffic = threading.Thread(target=customers.stream, args=(plan, seconds),
                               kwargs={"senders": 2, "retry_for": 0}, daemon=True)
    traffic.start()
    refused_updates, health = [], []
    for outage in range(OUTAGES):
        time.sleep(1.5)
        try:
            mariadb.stop()
            figures.fault("db_restarts")
            away_until = time.monotonic() + OUTAGE_SECONDS
            health += [_health(cluster.webhook_url), _health(cluster.listener_url)]
            # A manager's /start while the database is away: refused, so Telegram retries.
            update = tg.user_sends_text(4100 + outage, "/start", username=f"late{outage}")
            refused_updates.append(update)
            time.sleep(max(0.0, away_until - time.monotonic()))
        finally:
            mariadb.start()
        # Telegram delivers again until the door takes it.
        for update in refused_updates[-1:]:
            wait_for(lambda: tg.deliver(update) == 200, timeout=30, interval=0.5)
    traffic.join(timeout=120)

    expected = customers.numbers()
    counts = wait_delivered(tg, SHARED_CHAT, customers.run, expected, timeout=sized(60, 90))
    settle(db)
    missing, duplicates = record_delivery(figures, expected, counts)
    refused_signals = [w for w in customers.written if not w.acknowledged]
    statuses = {u["update_id"]: [d["status"] for d in tg.deliveries()
                                 if d["update_id"] == u["update_id"]] for u in refused_updates}
    figures.add("updates_refused", sum(s.count(503) for s in statuses.values()))
    figures.note(f"{len(refused_signals)} messages whose only signal got 503 were caught by "
                 "reconciliation; doors' /healthz while away: " + ",".join(map(str, health)))

    assert set(health) == {503}, f"/healthz while the database was away: {health}"
    assert refused_signals, "no signal met the outage: the scenario proved nothing"
    assert {s for w in refused_signals for s in w.signals} == {503}
    assert all(s[0] == 503 and s[-1] == 200 for s in statuses.values()), statuses
    assert not missing, (f"lost: {sorted(missing)} (refused: {[w.n for w in refused_signals]})\n"
                         + unfinished_jobs(db))
    assert duplicates <= OUTAGES, f"{duplicates} duplicates after {OUTAGES} restarts"
    for outage in range(OUTAGES):  # the re-delivered /start was answered
        wait_for(lambda: tg.messages(4100 + outage), timeout=30)
    cluster.assert_all_alive()
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed'") == 0


def _health(url: str) -> int:
    try:
        return requests.get(f"{url}/healthz", timeout=5).status_code
    except requests.RequestException:
        return 0


@pytest.mark.parametrize("id_i, later", [
    pytest.param(74_001, timedelta(seconds=1.5), id="next-second"),
    # The CRM's dates have one-second resolution: only the message count tells this one.
    pytest.param(74_002, timedelta(milliseconds=600), id="same-second"),
])
def test_reconciliation_catches_a_lost_signal_in_a_known_chat(reconciling_desk, crm, tg, id_i, later):
    now = datetime.now().replace(microsecond=0)
    crm.customer_writes(id_i, f"[{id_i}] перше", at=now)
    assert crm.signal(reconciling_desk.listener_url, LINK_KEY, id_i) == [200]
    wait_for(lambda: any(f"[{id_i}] перше" in m["visible_text"] for m in tg.messages(SHARED_CHAT)))
    # Let every sync already asked for (a re-run, a reconciliation that saw the chat as
    # new) finish, so that only reconciliation can find what comes next.
    reconciling_desk.idle()
    time.sleep(1.0)
    reconciling_desk.idle()
    # The customer's next line; the CRM's signal for it is lost.
    crm.customer_writes(id_i, f"[{id_i}] друге", at=now + later)
    # Eight reconciliation periods.
    wait_for(lambda: any(f"[{id_i}] друге" in m["visible_text"] for m in tg.messages(SHARED_CHAT)),
             timeout=4)
