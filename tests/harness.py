"""A whole KeepDesk on one machine for end-to-end tests.

Real parts only: the sandbox Telegram and CRM servers over loopback HTTP, the two doors
served by werkzeug on real ports, workers running on threads with the real
pyTelegramBotAPI, and the session's MariaDB.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from bot.deps import Deps
from bot.factory import create_bot
from config import Settings
from models.db import Database
from sandbox._server import ServerThread
from scripts.worker import Worker, run_threads, wait_all
from scripts.worker_main import job_handlers


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


class Desk:
    def __init__(self, settings: Settings, db: Database, tg, crm=None, *, threads: int = 2) -> None:
        self.settings = settings
        self.db = db
        self.tg = tg
        self.crm = crm
        self.threads = threads
        self.stop_event = threading.Event()
        self._workers: list[threading.Thread] = []
        self._servers: list[ServerThread] = []

    def start(self, *, workers: bool = True) -> "Desk":
        import crm_listener
        import webhook_server
        self.webhook = ServerThread(webhook_server.create_app(self.settings, db=self.db)).start()
        self.listener = ServerThread(crm_listener.create_app(self.settings, db=self.db)).start()
        self._servers = [self.webhook, self.listener]
        create_bot(self.settings).set_webhook(
            url=f"{self.webhook.url}/telegram/{self.settings.webhook_secret_path}",
            secret_token=self.settings.webhook_secret_token)
        self.deps = Deps.build(self.settings, self.db)
        if workers:
            self.start_workers()
        return self

    def start_workers(self) -> None:
        worker = Worker(self.deps.jobs, job_handlers(self.deps))
        self._workers = run_threads(worker, self.threads, self.stop_event)

    @property
    def listener_url(self) -> str:
        return self.listener.url

    def idle(self, timeout: float = 10.0) -> None:
        """Wait until the queue has nothing left to do."""
        wait_for(lambda: self.deps.jobs.depth() == 0, timeout)

    def stop(self) -> None:
        self.stop_event.set()
        wait_all(self._workers, timeout=10)
        for server in self._servers:
            server.stop()
