"""CRM faults (SPEC §6): the CRM API flapping (503, then refusing connections, then back,
again and again) delays messages but loses none; a chat whose every CRM answer takes 5 s
does not hold back the posts of the other chats.
"""
import threading
import time

import pytest

from conftest import SHARED_CHAT
from reliability.report import sized
from reliability.traffic import (Customers, record_delivery, settle, slowest_delivery,
                                 unfinished_jobs, wait_delivered)

pytestmark = pytest.mark.reliability

FLAPS = sized(3, 8)
DOWN_SECONDS = sized(1.5, 3.0)
UP_SECONDS = sized(1.5, 2.0)
FLAP_MESSAGES = sized(30, 100)
FLAP_CHATS = sized(15, 40)
SLOW_SECONDS = 5.0
OTHER_CHATS = sized(10, 40)


def test_crm_flapping_delays_but_loses_nothing(cluster_factory, figures, tg, crm, db):
    figures.add("trials")
    cluster = cluster_factory(workers=2)
    customers = Customers(crm, cluster.listener_url, figures)
    chats = [76_000 + k for k in range(FLAP_CHATS)]
    plan = [chats[i % FLAP_CHATS] for i in range(FLAP_MESSAGES)]
    traffic = threading.Thread(target=customers.stream,
                               args=(plan, FLAPS * (DOWN_SECONDS + UP_SECONDS)),
                               kwargs={"retry_for": 10}, daemon=True)
    traffic.start()
    for flap in range(FLAPS):
        if flap % 2:
            crm.set_refuse(True)     # not even answering
        else:
            crm.set_down(503)
        figures.fault("crm_down")
        time.sleep(DOWN_SECONDS)
        crm.set_refuse(False)
        crm.set_up()
        time.sleep(UP_SECONDS)
    traffic.join(timeout=60)
    expected = customers.numbers()
    counts = wait_delivered(tg, SHARED_CHAT, customers.run, expected, timeout=sized(60, 120))
    settle(db)
    missing, duplicates = record_delivery(figures, expected, counts)
    figures.note(f"slowest message took {slowest_delivery(tg, customers):.1f}s to reach Telegram")
    assert not missing, f"lost while the CRM flapped: {sorted(missing)}\n" + unfinished_jobs(db)
    assert duplicates == 0
    cluster.assert_all_alive()
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed'") == 0


def test_a_slow_crm_chat_does_not_delay_the_others(cluster_factory, figures, tg, crm, db):
    figures.add("trials")
    cluster = cluster_factory(workers=2)
    customers = Customers(crm, cluster.listener_url, figures)
    slow, others = 77_000, [77_001 + k for k in range(OTHER_CHATS)]
    crm.set_delay(SLOW_SECONDS, id_i=slow)
    figures.fault("crm_slow")
    slow_message = customers.write_and_signal(slow, retry_for=10)
    signalled_at = time.time()
    customers.stream(others, seconds=1.0, retry_for=10)
    expected = customers.numbers()
    counts = wait_delivered(tg, SHARED_CHAT, customers.run, expected, timeout=30)
    settle(db)
    missing, duplicates = record_delivery(figures, expected, counts)
    assert not missing and duplicates == 0, counts

    arrived = {}
    for call in tg.calls("sendMessage"):
        text = str(call["params"].get("text", ""))
        for written in customers.written:
            if call["status"] == 200 and written.tag in text:
                arrived.setdefault(written.n, call["time"] - signalled_at)
    slow_arrival = arrived[slow_message.n]
    others_last = max(t for n, t in arrived.items() if n != slow_message.n)
    figures.note(f"other chats all posted {others_last:.1f}s after the slow chat's signal; "
                 f"the slow chat ({SLOW_SECONDS:.0f}s CRM answers) after {slow_arrival:.1f}s")
    assert slow_arrival >= SLOW_SECONDS
    assert others_last < slow_arrival - 2.0, "the slow chat held the others back"
