"""Benchmark 4: growth. KeepDesk's cost must not grow with the shop.

1. CRM calls and time per signal with 1k, 10k and 100k chats in the CRM (goal: flat).
2. History page, chat list and claim latency with 100k chats and 1M messages in MariaDB
   (goal: p99 ≤ 10 ms).
3. A worker process's RSS while it processes 100k updates (goal: ≤ 150 MB and flat).
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import requests

from bench import common
from bench.common import LINK_KEY, machine, percentile, stack, verdict
from config import ROOT

CRM_SIZES = (1_000, 10_000, 100_000)
KNOWN_SIGNALS = 50
DB_CHATS, DB_MESSAGES = 100_000, 1_000_000
SAMPLES = 300
UPDATES = 100_000


def signal_cost(desk, tg, crm, size: int) -> dict:
    # Reconciliation runs once when the desk starts; let it, so that its syncs of the
    # newest chats are not counted against a signal.
    while not db_scalar(desk, "SELECT run_after > NOW(6) FROM jobs WHERE dedupe_key = 'periodic:reconcile'"):
        time.sleep(0.05)
    desk.idle()
    crm.reset()
    for n in range(size):
        crm.add_chat(1_000_000 + n, email=f"c{n}@example.com", product="Product")
    desk.idle()
    session = requests.Session()
    url = f"{desk.listener_url}/messages/{LINK_KEY}"
    known = [1_000_000 + n for n in random.sample(range(size), 10)]

    def one_signal(id_i: int) -> tuple[float, int]:
        before_calls = crm.count_calls()
        before_posts = tg.count_calls("sendMessage")
        crm.customer_writes(id_i, "hello")
        started = time.perf_counter()
        session.post(url, json={"InvoiceId": id_i}, timeout=10)
        while tg.count_calls("sendMessage") == before_posts:
            time.sleep(0.001)
        elapsed = (time.perf_counter() - started) * 1000
        desk.idle()
        return elapsed, crm.count_calls() - before_calls

    first = [one_signal(id_i) for id_i in known]            # first sight: metadata too
    again = [one_signal(random.choice(known)) for _ in range(KNOWN_SIGNALS)]
    tg.reset()
    return {"first_calls": percentile([c for _, c in first], 50),
            "first_calls_max": max(c for _, c in first),
            "known_calls": percentile([c for _, c in again], 50),
            "known_calls_max": max(c for _, c in again),
            "known_p50": percentile([t for t, _ in again], 50)}


def db_scalar(desk, sql: str):
    return desk.db.scalar(sql)


def fill_database(db) -> None:
    """100k chats and 1M messages, made by MariaDB itself (the SEQUENCE engine)."""
    db.execute("INSERT INTO conversations (id, channel, external_id, customer_email, title,"
               " last_date, cnt_msg, kind)"
               " SELECT seq, 'keepingcrm', seq, CONCAT('c', seq, '@example.com'), 'Product',"
               " NOW() - INTERVAL seq MINUTE, 10, 'ordinary' FROM seq_1_to_%s" % DB_CHATS)
    db.execute("INSERT INTO messages (id, conversation_id, external_id, direction, text,"
               " date_written, announced_at)"
               " SELECT seq, 1 + seq MOD %s, seq, IF(seq MOD 2, 'client', 'shop'),"
               " CONCAT('message number ', seq), NOW() - INTERVAL seq SECOND, NOW()"
               " FROM seq_1_to_%s" % (DB_CHATS, DB_MESSAGES))
    db.execute("INSERT INTO users (tg_id, username, role) SELECT seq, CONCAT('m', seq), 'manager'"
               " FROM seq_1_to_50")
    db.execute("INSERT INTO pins (conversation_id, manager_id, state, kind) SELECT seq, 1 + seq MOD 50,"
               " IF(seq MOD 10 = 0, 'ACTIVE', 'UN_PIN'), 'PIN' FROM seq_1_to_20000")


def timed(action, samples: int = SAMPLES) -> list[float]:
    return common.timed(action, samples)


def database_latency(desk, db) -> dict[str, list[float]]:
    from handlers.common import Desk
    from handlers.menus import render_list
    from models.users import User
    fill_database(db)
    handlers_desk = Desk(None, desk.deps)
    manager = User(7, "m7", None, "uk", "manager", True)
    claims = handlers_desk.claims
    results = {
        "history page": timed(lambda: handlers_desk.messages.page(random.randint(1, DB_CHATS), 0, 9)),
        "chat list (all chats, page 1)": timed(lambda: render_list(handlers_desk, manager, "history", 0)),
        "chat list (all chats, page 500)": timed(lambda: render_list(handlers_desk, manager, "history", 500)),
        "chat list (my pinned chats)": timed(lambda: render_list(handlers_desk, manager, "messages", 0)),
    }

    claimed = []

    def claim():
        id_i = random.randint(30_001, DB_CHATS)
        claims.claim(id_i, manager, now=desk.deps.clock())
        claimed.append(id_i)
    results["claim"] = timed(claim)
    for id_i in claimed:
        claims.release(id_i, manager, now=desk.deps.clock())
    return results


def worker_rss(db, env: dict) -> list[tuple[int, float]]:
    """RSS of one worker process as it works through UPDATES queued updates."""
    db.execute("INSERT INTO users (tg_id, role) SELECT 20000000 + seq, 'banned' FROM seq_1_to_%s" % UPDATES)
    db.execute(
        "INSERT INTO jobs (queue, kind, dedupe_key, lane, seq, priority, payload)"
        " SELECT 'updates', 'tg_update', CONCAT('tg:', 50000000 + seq), CONCAT('tg:', 20000000 + seq),"
        " 50000000 + seq, 1, CONCAT('{\"update_id\":', 50000000 + seq, ',\"message\":{\"message_id\":1,"
        "\"date\":0,\"text\":\"hi\",\"chat\":{\"id\":', 20000000 + seq, ',\"type\":\"private\"},"
        "\"from\":{\"id\":', 20000000 + seq, ',\"is_bot\":false,\"first_name\":\"x\"}}}')"
        " FROM seq_1_to_%s" % UPDATES)
    worker = subprocess.Popen([sys.executable, "-m", "bot", "worker"], cwd=ROOT, env=env)
    samples: list[tuple[int, float]] = []
    try:
        next_mark = 0
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            done = db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'tg_update' AND status = 'done'")
            if done >= next_mark:
                samples.append((done, rss_mb(worker.pid)))
                next_mark += UPDATES // 5
            if done >= UPDATES:
                break
            time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    return samples


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    print(f"machine: {machine()}")
    random.seed(7)
    unlimited = {"TG_LIMIT_GROUP_PER_MIN": "1000000", "TG_LIMIT_GLOBAL_PER_S": "100000"}
    with stack(**unlimited) as (desk, tg, crm, db):
        costs = {size: signal_cost(desk, tg, crm, size) for size in CRM_SIZES}
    for size, cost in costs.items():
        print(f"CRM with {size:>7,} chats: CRM calls per signal: new chat {cost['first_calls']:.0f} "
              f"(max {cost['first_calls_max']}), known chat {cost['known_calls']:.0f} "
              f"(max {cost['known_calls_max']}); time per signal (known chat) p50 {cost['known_p50']:.1f} ms")
    flat = len({c["known_calls"] for c in costs.values()}) == 1 and \
        max(c["known_p50"] for c in costs.values()) <= 2 * min(c["known_p50"] for c in costs.values())
    print(f"flat from 1k to 100k chats: {verdict(flat)}")

    with stack(durable=True) as (desk, tg, crm, db):
        desk.stop_event.set()  # the timing below is of the queries alone
        latencies = database_latency(desk, db)
        env = dict(os.environ, **{k: v for k, v in _database_env(desk).items()})
        samples = worker_rss(db, env)
    for name, values in latencies.items():
        p99 = percentile(values, 99)
        print(f"{DB_CHATS:,} chats / {DB_MESSAGES:,} messages — {name}: p50 {percentile(values, 50):.2f} ms "
              f"p99 {p99:.2f} ms {verdict(p99 <= 10)}")
    trail = ", ".join(f"{done:,} → {rss:.0f} MB" for done, rss in samples)
    print(f"worker RSS by updates processed: {trail}")
    if len(samples) < 3 or samples[-1][0] < UPDATES:
        print("worker RSS: the worker did not finish the updates in time: NOT MET")
        return 0
    growth = samples[-1][1] - samples[1][1]
    print(f"≤ 150 MB: {verdict(max(r for _, r in samples) <= 150)}; flat (growth after the first "
          f"{samples[1][0]:,}: {growth:+.1f} MB): {verdict(abs(growth) <= 10)}")
    return 0


def _database_env(desk) -> dict[str, str]:
    s = desk.settings
    return {"BOT_TOKEN": s.bot_token, "TELEGRAM_API_URL": s.telegram_api_url,
            "MYSQL_SOCKET": s.mysql_socket or "", "MYSQL_USER": s.mysql_user,
            "MYSQL_PASSWORD": s.mysql_password, "MYSQL_DB": s.mysql_db, "MYSQL_HOST": "",
            "LOG_LEVEL": "WARNING", "WORKER_THREADS": "4"}


if __name__ == "__main__":
    sys.exit(main())
