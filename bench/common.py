"""What the benchmarks share: a complete KeepDesk on this machine, and percentiles."""
from __future__ import annotations

import contextlib
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import requests

from config import Settings, load_settings
from models.db import Database, migrate
from models.singleton import ProcessSingleton
from sandbox.crm import CrmSandbox
from sandbox.stack import LocalDesk
from sandbox.telegram import TelegramSandbox
from models.mariadb import LocalMariaDB

TOKEN = "123456:sandbox-token"
SHARED_CHAT = -1001000000001
LINK_KEY = "bench-link-key"
SECRET_KEY = "bench-master-secret-0123456789-abcdefXYZ"   # utils/keys.py
METRICS_TOKEN = "bench-metrics-token-0123"   # required with PUBLIC_URL


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values_ms: list[float]) -> str:
    return (f"n={len(values_ms)} p50={percentile(values_ms, 50):.1f} ms "
            f"p99={percentile(values_ms, 99):.1f} ms mean={statistics.fmean(values_ms):.1f} ms")


def machine() -> str:
    import os
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


@contextlib.contextmanager
def database(durable: bool = True) -> Iterator[LocalMariaDB]:
    directory = tempfile.mkdtemp(prefix="keepdesk-bench-")
    server = LocalMariaDB(directory, durable=durable, buffer_pool="512M").start()
    server.create_database("keepdesk_bench", drop=True)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def environment_for(server: LocalMariaDB, tg: TelegramSandbox, crm: CrmSandbox,
                    **extra: str) -> dict[str, str]:
    return {
        "BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": tg.url, "CHAT_NEW_MESSAGE": str(SHARED_CHAT),
        "WEBHOOK_SECRET_PATH": "bench-webhook-path", "WEBHOOK_SECRET_TOKEN": "bench-secret",
        "KEEPING_API_URL": crm.api_url, "KEEPING_SELLER_ID": str(crm.seller_id),
        "KEEPING_API_KEY": crm.api_key, "KEEPING_WEB_URL": crm.web_url, "LINK_KEY": LINK_KEY,
        "SECRET_KEY": SECRET_KEY, "RECONCILE_EVERY": "3600", "LOG_LEVEL": "WARNING",
        **server.environment("keepdesk_bench"), **extra,
    }


def settings_for(server: LocalMariaDB, tg: TelegramSandbox, crm: CrmSandbox, **extra: str) -> Settings:
    return load_settings(environment_for(server, tg, crm, **extra), env_file=None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def process_stack(*, workers: int = 1, port: int | None = None, **extra: str):
    """KeepDesk as production runs it — the integrations door under gunicorn and
    `python -m bot worker` processes — against the sandboxes, which run in this process
    (with the load generator). Yields (listener_url, tg, crm, db)."""
    ProcessSingleton.reset_all()
    root = Path(__file__).resolve().parent.parent
    with database(True) as server:
        tg = TelegramSandbox(TOKEN).start()
        crm = CrmSandbox().start()
        values = environment_for(server, tg, crm, **extra)
        db = Database(load_settings(values, env_file=None))
        migrate(db)
        env = dict(os.environ, **values, PYTHONPATH=os.pathsep.join(
            filter(None, [str(root), os.environ.get("PYTHONPATH")])))
        port = port or free_port()
        children = [subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "gthread",
             "--threads", "8", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
             "crm_listener:app"], cwd=root, env=env)]
        children += [subprocess.Popen([sys.executable, "-m", "bot", "worker"], cwd=root, env=env)
                     for _ in range(workers)]
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (requests.get(url + "/healthz", timeout=1).ok
                            and db.scalar("SELECT COUNT(*) FROM worker_bells") >= workers):
                        break
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("KeepDesk's processes did not come up within 30 s")
                time.sleep(0.1)
            yield url, tg, crm, db
        finally:
            for child in children:
                child.terminate()
            for child in children:
                try:
                    child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
            tg.stop()
            crm.stop()
            db.close()


@contextlib.contextmanager
def stack(*, enforce_limits: bool = False, threads: int = 4, durable: bool = True,
          **extra: str) -> Iterator[tuple[LocalDesk, TelegramSandbox, CrmSandbox, Database]]:
    """MariaDB, both sandboxes and a running KeepDesk (doors + worker threads)."""
    ProcessSingleton.reset_all()  # each stack has its own database
    with database(durable) as server:
        tg = TelegramSandbox(TOKEN, enforce_limits=enforce_limits).start()
        crm = CrmSandbox().start()
        settings = settings_for(server, tg, crm, **extra)
        db = Database(settings)
        migrate(db)
        desk = LocalDesk(settings, db, tg, crm, threads=threads).start()
        try:
            yield desk, tg, crm, db
        finally:
            desk.stop()
            tg.stop()
            crm.stop()
            db.close()


def timed(action, samples: int) -> list[float]:
    """Milliseconds of `samples` calls of action(), one after another."""
    values = []
    for _ in range(samples):
        started = time.perf_counter()
        action()
        values.append((time.perf_counter() - started) * 1000)
    return values


def post_appointments(url: str, token: str, phones: list[str], doctor: str, senders: int = 8) -> None:
    """1C's burst: one `/appointment` request per phone from `senders` threads at once."""
    import threading

    def post(share: list[str]) -> None:
        session = requests.Session()
        for phone in share:
            answer = session.post(f"{url}/appointment", timeout=30, data={
                "token": token, "phone": phone, "doctor": doctor, "date": "05.12", "time": "10:30"})
            assert answer.text == "OK", answer.text

    threads = [threading.Thread(target=post, args=(phones[k::senders],)) for k in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
