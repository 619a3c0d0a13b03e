"""Telegram accounts ↔ Planfix under faults (issue 13): `kill -9` of the accounts process in
the middle of the relay, and Planfix answering 5xx for a while. Nothing accepted is lost;
at most one duplicate per kill (the one send on the wire when the process died).

Real processes: `python -m bot accounts` (killed and started again, as `make run`'s
supervisor does), KeepDesk's door and workers, the account and Planfix emulators.
"""
from __future__ import annotations

import collections
import threading
import time

import pytest
import requests

from harness import Desk, wait_for
from reliability.report import sized
from test_planfix_e2e import NUMBER, received, start_account

pytestmark = pytest.mark.reliability

CUSTOMERS = sized(4, 20)
MESSAGES = sized(24, 200)
PLANFIX_MESSAGES = sized(8, 60)
KILLS = sized(2, 5)
DOWN_SECONDS = sized(4.0, 60.0)
SPREAD = sized(2.0, 10.0)          # seconds the traffic of the kill scenario lasts


@pytest.fixture
def relay(planfix_settings, db, tg, crm, tga, planfix, accounts_env):
    running = Desk(planfix_settings, db, tg, crm, threads=3).start()
    running.accounts_env = accounts_env
    running.accounts = running.start_accounts(accounts_env)
    yield running
    running.stop()


def counts(texts) -> collections.Counter:
    return collections.Counter(texts)


def tally(figures, expected: list[str], got: collections.Counter) -> tuple[list[str], int]:
    missing = [t for t in expected if got[t] == 0]
    duplicated = sum(got[t] - 1 for t in expected if got[t] > 1)
    figures.add("accepted", len(expected))
    figures.add("delivered", len(expected) - len(missing))
    figures.add("duplicated", duplicated)
    figures.add("lost", len(missing))
    return missing, duplicated


def test_kill_9_of_the_accounts_process_mid_relay_loses_nothing(relay, tga, planfix, tmp_path, figures, db):
    figures.add("trials")
    token = start_account(relay, tga, planfix, tmp_path)
    people = [tga.add_user(f"Customer {i}") for i in range(CUSTOMERS)]
    for person in people:   # every customer has written once: Planfix may answer them
        tga.customer_writes(NUMBER, person["id"], f"hello from {person['id']}")
    wait_for(lambda: len(received(planfix)) == CUSTOMERS, timeout=30)
    inbound = [f"in-{k}" for k in range(MESSAGES)]
    outbound = [f"out-{k}" for k in range(PLANFIX_MESSAGES)]
    refused = collections.Counter()

    def customers_write():
        for k, text in enumerate(inbound):
            tga.customer_writes(NUMBER, people[k % CUSTOMERS]["id"], text)
            time.sleep(SPREAD / MESSAGES)   # the traffic spans every kill

    def planfix_answers():
        for k, text in enumerate(outbound):
            person = people[k % CUSTOMERS]
            while True:   # Planfix repeats a call that was not answered 200 (the account restarting)
                try:
                    answer = planfix.send(relay.listener_url, token=token, message=text, chat_id=str(person["id"]),
                                          channel=NUMBER, message_id=f"pf-{text}")
                except requests.RequestException:
                    answer = None
                if answer is not None and answer.status_code == 200:
                    break
                refused["planfix"] += 1
                time.sleep(0.2)
            time.sleep(SPREAD / PLANFIX_MESSAGES)

    threads = [threading.Thread(target=customers_write, daemon=True),
               threading.Thread(target=planfix_answers, daemon=True)]
    for thread in threads:
        thread.start()
    figures.processes = 1
    figures.add("processes_started")
    for _ in range(KILLS):
        time.sleep(SPREAD / (KILLS + 1))
        relay.accounts.kill()                      # kill -9, mid-relay
        figures.add("kills")
        figures.fault("kill_accounts")
        relay.accounts = relay.start_accounts(relay.accounts_env)   # the supervisor's restart
        figures.add("processes_started")
    for thread in threads:
        thread.join(timeout=120)
    wait_for(lambda: all(t in {r["message"] for r in received(planfix)} for t in inbound), timeout=sized(60, 180))
    wait_for(lambda: all(t in {m["text"] for m in tga.sent(NUMBER)} for t in outbound), timeout=sized(60, 180))
    relay.idle(timeout=60)
    missing_in, dup_in = tally(figures, inbound, counts(r["message"] for r in received(planfix)))
    missing_out, dup_out = tally(figures, outbound, counts(m["text"] for m in tga.sent(NUMBER)))
    figures.note(f"Planfix calls refused while the account restarted: {refused['planfix']}")
    assert missing_in == [] and missing_out == []
    assert dup_in + dup_out <= KILLS
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed'") == 0


def test_planfix_answering_5xx_for_a_while_loses_nothing(relay, tga, planfix, tmp_path, figures, db):
    figures.add("trials")
    start_account(relay, tga, planfix, tmp_path)
    people = [tga.add_user(f"Customer {i}") for i in range(CUSTOMERS)]
    texts = [f"while-down-{k}" for k in range(MESSAGES)]
    planfix.set_down(503, DOWN_SECONDS)
    figures.fault("5xx")
    started = time.monotonic()
    for k, text in enumerate(texts):
        tga.customer_writes(NUMBER, people[k % CUSTOMERS]["id"], text)
        time.sleep(min(0.05, DOWN_SECONDS / len(texts)))
    time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - started)))
    assert received(planfix) == []                   # nothing got through while it was down
    wait_for(lambda: len(received(planfix)) >= len(texts), timeout=sized(60, 120))
    relay.idle(timeout=60)
    missing, duplicated = tally(figures, texts, counts(r["message"] for r in received(planfix)))
    assert missing == [] and duplicated == 0
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed'") == 0
