"""The reliability suite: crash, database, Telegram and CRM faults, several processes.

Fast by default (part of `make test`); `KEEPDESK_RELIABILITY=full` runs the long sizes
(`make reliability`). Nothing leaks: every child process is stopped at the end of its test
(and, as a last resort, at the end of the session), the session's MariaDB is running
again after every test, and the sandboxes are back to their defaults.
"""
from __future__ import annotations

import os

import pytest

from conftest import METRICS_TOKEN
from reliability.cluster import ALL_CHILDREN, Cluster, child_environment, delete_webhook, stop_children
from reliability.report import REPORT, SIZE_NAME, session_outcome


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "reliability: crash and fault scenarios with real processes "
                   "(fast by default; KEEPDESK_RELIABILITY=full for the long sizes)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    lines = REPORT.lines()
    if not lines:
        return
    terminalreporter.section(f"KeepDesk reliability figures ({SIZE_NAME})")
    for line in lines:
        terminalreporter.write_line(line)
    for figures in REPORT.scenarios:
        for note in figures.notes:
            terminalreporter.write_line(f"  {figures.scenario}: {note}")
    target = os.environ.get("KEEPDESK_RELIABILITY_JSON")
    if target:
        REPORT.write_json(target)
        terminalreporter.write_line(f"figures written to {target}")
    written = REPORT.write_docs(session_outcome(terminalreporter.stats))   # full run only
    if written:
        terminalreporter.write_line(written)


def _outcome(item) -> str:
    for when in ("setup", "call", "teardown"):
        report = getattr(item, f"rep_{when}", None)
        if report is None:
            continue
        if hasattr(report, "wasxfail"):
            return "xfailed" if report.skipped else "xpassed"
        if report.failed:
            return "failed" if when == "call" else "error"
        if report.skipped:
            return "skipped"
    return "passed"


@pytest.fixture(scope="session", autouse=True)
def _no_child_outlives_the_session():
    yield
    stop_children([c for c in ALL_CHILDREN if c.alive()], grace=2.0)


@pytest.fixture(autouse=True)
def _session_database_running_again(mariadb):
    """Whatever a scenario did to the session's MariaDB, it runs again afterwards."""
    yield
    if not mariadb.is_running():
        mariadb.start()


@pytest.fixture
def figures(request):
    name = request.node.name.removeprefix("test_")
    record = REPORT.scenario(name)
    yield record
    record.finish(_outcome(request.node))


@pytest.fixture
def sandboxes(tg, crm):
    """The sandboxes as tests found them afterwards: limits, webhook, server up, no faults."""
    limits = (tg.enforce_limits, tg.global_per_s, tg.private_per_s, tg.group_per_min)
    yield tg, crm
    tg.start()  # a scenario may have stopped it to play "Telegram unreachable"
    tg.set_limits(limits[0], global_per_s=limits[1], private_per_s=limits[2],
                  group_per_min=limits[3])
    delete_webhook(tg)
    tg.reset()
    crm.set_up()
    crm.reset()


@pytest.fixture
def cluster_factory(request, mariadb, db, sandboxes, figures, tmp_path):
    """make(workers=N, **settings) → a started Cluster; all of them stopped at teardown."""
    tg, crm = sandboxes
    made: list[Cluster] = []
    prometheus_dir = tmp_path / "prometheus"
    prometheus_dir.mkdir()

    def make(*, workers: int = 2, public_url: bool = False, **settings: str) -> Cluster:
        env = child_environment(mariadb, tg, crm, prometheus_dir, **settings)
        workdir = tmp_path / f"cluster{len(made) + 1}"
        workdir.mkdir()
        cluster = Cluster(env, workdir, db, figures, workers=workers)
        if public_url:   # the integrations door's own address is its public one (Devino's callbacks)
            env["PUBLIC_URL"] = cluster.listener_url
            env.setdefault("METRICS_TOKEN", METRICS_TOKEN)   # required with a public address
        made.append(cluster)
        return cluster.start()

    yield make
    for cluster in made:
        cluster.stop()
    if _outcome(request.node) in ("failed", "error"):
        for cluster in made:
            print(f"\n===== logs of {cluster.workdir} =====\n{cluster.log_tail(3000)}")
