"""A rolling upgrade (docs/deploy.md): two app hosts on one database, the previous release
on both; one host's traffic moves to a host of this release while the old one still
serves, the migrations are applied under it, then the old host is upgraded too. Every
chat, pin and message is kept, no signal is refused, nothing becomes a dead letter.

The previous release is the commit this release began from, taken out of git as it was
(`git archive`): its own code, the same Python environment.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, SHARED_CHAT
from models.db import Database, migrate, pending_migrations
from reliability.cluster import Cluster, child_environment, set_webhook
from reliability.report import FULL, sized
from reliability.traffic import (Customers, add_manager, poll, record_delivery, settle, take_chat,
                                 unfinished_jobs, wait_delivered, wait_post)

pytestmark = [pytest.mark.reliability, pytest.mark.slow,
              pytest.mark.skipif(not FULL, reason="a make reliability scenario (KEEPDESK_RELIABILITY=full)")]

PREVIOUS_RELEASE = "4d6e51e"      # main when this release began
DATABASE = "keepdesk_rolling"
MESSAGES = sized(30, 60)


@pytest.fixture(scope="module")
def previous_release():
    folder = Path(tempfile.mkdtemp(prefix="keepdesk-previous-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", PREVIOUS_RELEASE],
                             capture_output=True)
    assert archive.returncode == 0, (f"the previous release {PREVIOUS_RELEASE} is not in this clone's"
                                     f" history: {archive.stderr.decode()[-300:]}")
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_rolling_upgrade_from_the_previous_release_keeps_every_chat_pin_and_message(
        previous_release, settings, mariadb, sandboxes, figures, tmp_path):
    tg, crm = sandboxes
    figures.add("trials")
    mariadb.create_database(DATABASE, drop=True)
    db = Database(settings.replace(mysql_db=DATABASE))
    prometheus = tmp_path / "prometheus"
    prometheus.mkdir()
    hosts: list[Cluster] = []

    def host(name: str, root: Path) -> Cluster:
        workdir = tmp_path / name
        (workdir / "var").mkdir(parents=True)
        env = child_environment(mariadb, tg, crm, prometheus, MYSQL_DB=DATABASE, PYTHONPATH=str(root),
                                KEEPDESK_VAR_DIR=str(workdir / "var"), HOST_NAME=name)
        started = Cluster(env, workdir, db, figures, workers=1, http_workers=1, root=root).start()
        hosts.append(started)
        return started

    try:
        old_env = child_environment(mariadb, tg, crm, prometheus, MYSQL_DB=DATABASE,
                                    PYTHONPATH=str(previous_release))
        migrated = subprocess.run([sys.executable, "-m", "bot", "migrate"], cwd=previous_release, env=old_env,
                                  capture_output=True, text=True, timeout=120)
        assert migrated.returncode == 0, migrated.stderr[-2000:]
        assert pending_migrations(db), "this release brings no migration: the scenario proves little"
        a = host("old-a", previous_release)
        set_webhook(tg, a.webhook_endpoint)
        manager = add_manager(db, 8850, "olena")
        customers = Customers(crm, a.listener_url, figures)
        first = customers.write_and_signal(79_500)
        post = wait_post(tg, first, timeout=30)
        assert post is not None, unfinished_jobs(db)
        take_chat(tg, manager, post, username="olena")
        assert poll(lambda: db.scalar("SELECT manager_id FROM pins WHERE conversation_id = 79500"
                                      " AND state = 'ACTIVE'"), timeout=20) == manager

        plan = [79_600 + k for k in range(MESSAGES)]
        traffic = threading.Thread(target=customers.stream, args=(plan, sized(12.0, 24.0)),
                                   kwargs={"senders": 2, "retry_for": 0}, daemon=True)
        traffic.start()
        time.sleep(2)
        migrate(db)                                  # expand, while the old host serves
        b = host("new-b", ROOT)                      # a host of this release beside it
        customers.listener_url = b.listener_url      # the balancer moves the traffic over
        set_webhook(tg, b.webhook_endpoint)
        time.sleep(2)
        a.stop()                                     # the old host, stopped as an upgrade does
        a2 = host("new-a", ROOT)
        customers.listener_url = a2.listener_url
        traffic.join(timeout=120)

        count = wait_delivered(tg, SHARED_CHAT, customers.run, customers.numbers(), timeout=sized(60, 90))
        settle(db, timeout=60)
        missing, duplicates = record_delivery(figures, customers.numbers(), count)
        refused = [w for w in customers.written if w.signals and w.signals[0] != 200]
        figures.note(f"{len(customers.written)} messages over the upgrade, {len(refused)} signals refused;"
                     f" pins kept: {db.scalar('SELECT COUNT(*) FROM pins WHERE state = %s', ('ACTIVE',))}")
        assert not missing, f"lost: {sorted(missing)}\n" + unfinished_jobs(db)
        assert not refused, [(w.n, w.signals) for w in refused]
        assert duplicates == 0
        assert db.scalar("SELECT manager_id FROM pins WHERE conversation_id = 79500 AND state = 'ACTIVE'") == manager
        assert db.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed'") == 0, \
            db.fetchall("SELECT kind, last_error FROM jobs WHERE status = 'failed'")
        assert pending_migrations(db) == []
        for running in (b, a2):
            running.assert_all_alive()
    finally:
        for running in hosts:
            running.stop()
        db.close()
