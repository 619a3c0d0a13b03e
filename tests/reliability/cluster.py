"""A KeepDesk made of real processes, for the reliability scenarios.

Both doors under gunicorn (2 workers each, gthread) and N `python -m bot worker`
processes, all against the session's MariaDB and the Telegram / CRM sandboxes over
loopback. Every child runs in its own session (process group), so a teardown can stop a
gunicorn master together with its workers; every child started here is remembered in
`ALL_CHILDREN` so the package's session teardown can kill whatever a failed test left.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from conftest import ROOT, base_environment, free_port

LINK_KEY = "test-link-key"
WEBHOOK_PATH = "test-webhook-path"
WEBHOOK_SECRET = "test-secret-token"

ALL_CHILDREN: list["Child"] = []


@dataclass
class Child:
    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


def children_of(pid: int) -> list[int]:
    """Live child pids of `pid` (gunicorn's workers), from /proc."""
    try:
        found = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        found = [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()]
    return [p for p in found if _parent_of(p) == pid]


def _parent_of(pid: int) -> int | None:
    """The parent of a live (not zombie) process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[1])


def stop_children(children: list[Child], grace: float = 5.0) -> None:
    """SIGTERM each live child's process group, then SIGKILL the groups still running.

    Only groups whose leader is still alive (and not reaped) are signalled: the number of
    a group that is gone may already belong to someone else's process.
    """
    for child in children:
        if child.alive():
            _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for child in children:
        if child.alive():
            _signal_group(child, signal.SIGKILL)
            child.popen.wait(timeout=10)


def _signal_group(child: Child, signum: int) -> None:
    try:
        os.killpg(child.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def child_environment(mariadb, tg, crm, prometheus_dir: Path, **overrides: str) -> dict[str, str]:
    """The environment of every KeepDesk child: test settings pointed at the sandboxes."""
    env = dict(os.environ)
    env.update(base_environment(mariadb))
    env.update({
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "TELEGRAM_API_URL": tg.url,
        "KEEPING_API_URL": crm.api_url,
        "KEEPING_WEB_URL": crm.web_url,
        "JOB_LEASE_SECONDS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(prometheus_dir),
        # The shared chat's 20 posts a minute would make a 200-message fan-out last ten
        # minutes; scenarios that test the limits set them explicitly.
        "TG_LIMIT_GROUP_PER_MIN": "6000",
        # Reconciliation would hide a lost signal; scenarios that rely on it set it.
        "RECONCILE_EVERY": "3600",
        "WORKER_THREADS": "4",
        "LOG_LEVEL": "INFO",
    })
    env.update(overrides)
    return env


class Cluster:
    """gunicorn(webhook_server:app) + gunicorn(crm_listener:app) + N bot workers."""

    def __init__(self, env: dict[str, str], workdir: Path, db, figures=None, *,
                 workers: int = 2, http_workers: int = 2, http_threads: int = 4,
                 root: Path = ROOT) -> None:
        self.env = env
        self.root = Path(root)           # the code it runs (another release's, for an upgrade)
        self.workdir = Path(workdir)
        self.db = db
        self.figures = figures
        self.worker_count = workers
        self.http_workers = http_workers
        self.http_threads = http_threads
        self.webhook_port = free_port()
        self.listener_port = free_port()
        self.doors: dict[str, Child] = {}
        self.workers: list[Child] = []
        self.children: list[Child] = []
        self.killed: set[int] = set()
        self._serial = 0

    # -- lifecycle -------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> "Cluster":
        for name, module, port in (("webhook", "webhook_server:app", self.webhook_port),
                                   ("listener", "crm_listener:app", self.listener_port)):
            self.doors[name] = self._spawn(name, [
                sys.executable, "-m", "gunicorn", "-w", str(self.http_workers),
                "-k", "gthread", "--threads", str(self.http_threads),
                "-b", f"127.0.0.1:{port}", "--graceful-timeout", "2",
                "--log-level", "warning", module])
        for _ in range(self.worker_count):
            self.start_worker()
        self._count_processes(self.http_workers * 2)
        if self.figures is not None:
            self.figures.processes = max(self.figures.processes,
                                         self.http_workers * 2 + self.worker_count)
        deadline = time.monotonic() + timeout
        for door in ("webhook", "listener"):
            self._wait(lambda: self.healthy(door), deadline, f"{door} door healthy")
        self._wait(lambda: self.db.scalar("SELECT COUNT(*) FROM worker_bells")
                   >= self.worker_count, deadline, "bot workers registered")
        return self

    def stop(self) -> None:
        stop_children(self.children)

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _spawn(self, name: str, argv: list[str]) -> Child:
        self._serial += 1
        log_path = self.workdir / f"{self._serial:02d}-{name}.log"
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(argv, cwd=self.root, env=self.env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        child = Child(name, popen, log_path)
        self.children.append(child)
        ALL_CHILDREN.append(child)
        return child

    def _count_processes(self, count: int) -> None:
        if self.figures is not None:
            self.figures.add("processes_started", count)

    def _wait(self, condition, deadline: float, what: str) -> None:
        while True:
            try:
                if condition():
                    return
            except Exception:
                pass
            dead = [c.name for c in self.children if not c.alive() and c.pid not in self.killed]
            if dead:
                raise AssertionError(f"{', '.join(dead)} exited while waiting for {what}:\n"
                                     + self.log_tail())
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n" + self.log_tail())
            time.sleep(0.1)

    # -- addresses -------------------------------------------------------------------

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_port}"

    @property
    def listener_url(self) -> str:
        return f"http://127.0.0.1:{self.listener_port}"

    @property
    def webhook_endpoint(self) -> str:
        return f"{self.webhook_url}/telegram/{WEBHOOK_PATH}"

    def healthy(self, door: str) -> bool:
        url = self.webhook_url if door == "webhook" else self.listener_url
        try:
            return requests.get(f"{url}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def metrics(self) -> str:
        token = self.env.get("METRICS_TOKEN")
        answer = requests.get(f"{self.webhook_url}/metrics", timeout=10,
                              headers={"Authorization": f"Bearer {token}"} if token else {})
        answer.raise_for_status()
        return answer.text

    # -- workers and faults ----------------------------------------------------------

    def start_worker(self) -> Child:
        child = self._spawn("worker", [sys.executable, "-m", "bot", "worker"])
        self.workers.append(child)
        self._count_processes(1)
        return child

    def live_workers(self) -> list[Child]:
        return [w for w in self.workers if w.alive()]

    def kill_worker(self, rng: random.Random) -> int | None:
        """kill -9 one live bot worker process; returns its pid."""
        live = self.live_workers()
        if not live:
            return None
        victim = rng.choice(live)
        self.killed.add(victim.pid)
        os.kill(victim.pid, signal.SIGKILL)
        victim.popen.wait()
        if self.figures is not None:
            self.figures.add("kills")
            self.figures.fault("kill_worker")
        return victim.pid

    def restart_workers(self) -> int:
        """Bring the bot worker count back up (a supervisor would); returns how many."""
        missing = self.worker_count - len(self.live_workers())
        for _ in range(missing):
            self.start_worker()
        return missing

    def door_workers(self, door: str) -> list[int]:
        return children_of(self.doors[door].pid)

    def kill_door_worker(self, door: str, rng: random.Random) -> int | None:
        """kill -9 one gunicorn worker of a door; its master starts another."""
        pids = self.door_workers(door)
        if not pids:
            return None
        victim = rng.choice(pids)
        if _parent_of(victim) != self.doors[door].pid:
            return None  # gone (and reaped) meanwhile: its number is no longer ours
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            return None
        if self.figures is not None:
            self.figures.add("kills")
            self.figures.fault("kill_door")
        self._count_processes(1)  # the master's replacement
        return victim

    def wait_doors_whole(self, timeout: float = 30.0) -> None:
        """Every door back to its full number of gunicorn workers, and healthy."""
        deadline = time.monotonic() + timeout
        for door in self.doors:
            self._wait(lambda: len(self.door_workers(door)) == self.http_workers
                       and self.healthy(door), deadline, f"{door} door whole again")

    def assert_all_alive(self) -> None:
        """Nothing crashed: the doors run, and no bot worker we did not kill died.

        Exit status 0 is a graceful stop on SIGTERM/SIGINT — something outside the test
        asked for it (the machine is shared), it is not a crash; it is noted, not failed.
        """
        ours = list(self.doors.values()) + self.workers
        gone = [c for c in ours if not c.alive() and c.pid not in self.killed]
        crashed = [f"{c.name} (pid {c.pid}, exit {c.popen.returncode})" for c in gone
                   if c.popen.returncode != 0 or c in self.doors.values()]
        stopped = [c for c in gone if c.popen.returncode == 0 and c not in self.doors.values()]
        if stopped and self.figures is not None:
            self.figures.note(f"{len(stopped)} bot workers were stopped by a signal from "
                              "outside the test (exit 0) and replaced")
        assert not crashed, f"processes died: {crashed}\n{self.log_tail()}"

    # -- diagnostics -----------------------------------------------------------------

    def log_tail(self, chars: int = 1500) -> str:
        parts = []
        for child in self.children:
            try:
                text = child.log_path.read_text(errors="replace")
            except OSError:
                continue
            if text.strip():
                parts.append(f"--- {child.log_path.name} (pid {child.pid}, "
                             f"{'alive' if child.alive() else f'exit {child.popen.returncode}'})"
                             f"\n{text[-chars:]}")
        return "\n".join(parts)

    def log_lines(self, needle: str) -> list[str]:
        found = []
        for child in self.children:
            try:
                text = child.log_path.read_text(errors="replace")
            except OSError:
                continue
            found += [line for line in text.splitlines() if needle in line]
        return found


def set_webhook(tg, url: str) -> None:
    """Point the Telegram sandbox's webhook at a door (plain HTTP, as telebot would)."""
    answer = requests.post(f"{tg.url}/bot{tg.token}/setWebhook",
                           json={"url": url, "secret_token": WEBHOOK_SECRET}, timeout=10)
    assert answer.status_code == 200, answer.text


def delete_webhook(tg) -> None:
    requests.post(f"{tg.url}/bot{tg.token}/deleteWebhook", json={}, timeout=10)


def metric_total(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of metric `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        if all(f'{key}="{want}"' in label_text for key, want in labels.items()):
            total += float(value)
    return total
