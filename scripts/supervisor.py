"""`python -m bot run`: everything KeepDesk needs, in one process group.

The supervisor starts a local MariaDB under var/ when no database is configured, applies
the schema, then starts the three HTTP doors in one gunicorn and the worker processes, and
takes updates from Telegram — by webhook when WEBHOOK_URL is set, by long polling
otherwise. A child that dies is restarted. Ctrl-C (or SIGTERM) stops everything it
started, the database last.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from config import ROOT, Settings
from models.db import Database, migrate
from bot.updates import take_update
from models.inbox import Inbox
from models.jobs import JobQueue
from models.mariadb import LocalMariaDB, local_settings
from utils.logs import configure_logging
from utils.private_files import private_folder
from utils.signals import StopSignal

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = field(default=0.0)


class Supervisor:
    def __init__(self, settings: Settings, *, polling: bool | None = None) -> None:
        self.settings = settings
        self.polling = (not settings.webhook_url) if polling is None else polling
        self.env_overrides: dict[str, str] = {}
        self.database: LocalMariaDB | None = None
        self.children: list[Child] = []
        self.stop = StopSignal()
        self._poller: threading.Thread | None = None

    # -- start-up --------------------------------------------------------------------

    def start(self) -> None:
        if not self.settings.crm_configured:
            log.warning("CRM not configured (CHAT_NEW_MESSAGE, KEEPING_*, LINK_KEY unset): "
                        "running as a bare desk; customer messages will not be brought in")
        if self.settings.uses_local_mariadb:
            self.database, self.settings = local_settings(self.settings)
            self.env_overrides = self.database.environment(self.settings.mysql_db)
            configure_logging(self.settings.log_level, self.settings.secrets)  # its password too
            log.info("local MariaDB running on %s", self.database.socket)
        else:
            private_folder(self.settings.var_dir)   # keys made under var/ stay ours
        db = Database(self.settings, pool_size=2)
        applied = migrate(db)
        log.info("database up to date (%s)", ", ".join(applied) if applied else "no migration to apply")
        python = sys.executable
        bind = self.settings.bind_host
        # The three doors — Telegram's, the integrations', the admin panel (WEB.md §1) — in
        # one WSGI server, each on its port (doors/all.py).
        self.children.append(Child("doors", [
            python, "-m", "gunicorn", "--workers", str(self.settings.http_workers),
            "--worker-class", "gthread", "--threads", "8",
            "--bind", f"{bind}:{self.settings.webhook_port}", "--bind", f"{bind}:{self.settings.listener_port}",
            "--bind", f"{self.settings.web_bind}:{self.settings.web_port}",
            "--graceful-timeout", "5", "--log-level", "warning", "doors.all:app"]))
        for index in range(self.settings.workers):
            self.children.append(Child(f"worker-{index}", [python, "-m", "bot", "worker"]))
        if self.settings.planfix_configured:  # the Telegram accounts' sessions (CHANNELS.md §5)
            self.children.append(Child("accounts", [python, "-m", "bot", "accounts"]))
        for child in self.children:
            self._spawn(child)
        log.info("admin panel on http://%s:%s/ (a user: python -m bot create-admin LOGIN)",
                 self.settings.web_bind, self.settings.web_port)
        self._connect_telegram(db)

    def _connect_telegram(self, db: Database) -> None:
        from bot.factory import create_bot
        from bot.sender import TelegramApi

        api = TelegramApi(create_bot(self.settings))
        if self.polling:
            api.drop_webhook()
            inbox = Inbox(JobQueue(db))
            self._poller = threading.Thread(target=poll_updates, name="poller", daemon=True,
                                            args=(api, inbox, self.stop.event))
            self._poller.start()
            log.info("taking updates by long polling")
        else:
            url = webhook_endpoint(self.settings)
            api.point_webhook(url, self.settings.webhook_secret_token, ALLOWED_UPDATES)
            log.info("webhook set to %s/telegram/***", self.settings.webhook_url)

    def _spawn(self, child: Child) -> None:
        env = dict(os.environ, **self.env_overrides)
        child.process = subprocess.Popen(child.argv, cwd=ROOT, env=env)
        log.info("started %s (pid %s)", child.name, child.process.pid)

    # -- running ---------------------------------------------------------------------

    def watch(self) -> None:
        """Restart children that die, until asked to stop."""
        while not self.stop.sleep(0.5):
            now = time.monotonic()
            for child in self.children:
                if child.process is None or child.process.poll() is None:
                    continue
                if child.next_start == 0.0:
                    delay = min(30.0, 2.0 ** child.restarts)
                    log.error("%s exited with %s; restarting in %.0fs",
                              child.name, child.process.returncode, delay)
                    child.next_start = now + delay
                elif now >= child.next_start:
                    child.restarts += 1
                    child.next_start = 0.0
                    self._spawn(child)

    def shutdown(self) -> None:
        self.stop.event.set()
        if self.stop.signum == signal.SIGINT:
            # Ctrl-C reached the whole process group: let the children finish on their own
            # first; a second signal on top would cut gunicorn's graceful stop short.
            self._wait_children(5.0)
        for child in self._running():
            child.process.send_signal(signal.SIGTERM)
        self._wait_children(15.0)
        for child in self._running():
            log.warning("%s did not stop in time; killing it", child.name)
            child.process.kill()
            child.process.wait()
        if self._poller is not None:
            self._poller.join(timeout=1)  # a daemon; an unconfirmed update is simply fetched again
        if self.database is not None:
            self.database.stop()
            log.info("local MariaDB stopped")

    def _running(self) -> list[Child]:
        return [c for c in self.children if c.process is not None and c.process.poll() is None]

    def _wait_children(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._running() and time.monotonic() < deadline:
            time.sleep(0.05)


def webhook_endpoint(settings: Settings) -> str:
    return f"{settings.webhook_url}/telegram/{settings.webhook_secret_path}"


def poll_updates(api, inbox: Inbox, stop: threading.Event, timeout: int = 20) -> None:
    """Long polling: store each update durably before confirming it to Telegram.

    The offset only moves past an update once it is stored, so a crash here means the
    update is fetched again (and de-duplicated by update_id), never lost.
    """
    offset = None
    failures = 0
    while not stop.is_set():
        try:
            updates = api.updates(offset, timeout, ALLOWED_UPDATES)
            for update in updates:
                take_update(inbox, update)
                offset = update["update_id"] + 1
            failures = 0
        except Exception as exc:  # keep polling whatever happened; report and back off
            failures += 1
            delay = min(30.0, 2.0 ** failures)
            log.warning("getUpdates failed (%s); retrying in %.0fs", exc, delay)
            stop.wait(delay)


def run(settings: Settings, *, polling: bool | None = None) -> int:
    supervisor = Supervisor(settings, polling=polling)
    try:
        supervisor.start()
        supervisor.watch()
        log.info("signal %s received; stopping", supervisor.stop.signum)
    finally:
        supervisor.shutdown()
    return 0
