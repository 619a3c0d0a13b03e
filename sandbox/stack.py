"""A whole KeepDesk in one process, for end-to-end tests, benchmarks and the demo.

Real parts only: the sandbox Telegram and CRM servers over loopback HTTP, the two doors
served by werkzeug on real ports, workers running on threads with the real
pyTelegramBotAPI, and a real MariaDB.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable

from channels.keepingcrm import KeepingCrm
from container import Container
from bot.factory import create_bot
from config import ROOT, Settings
from models.db import Database
from sandbox._server import ServerThread
from utils.bell import Bell
from scripts.worker import run_threads, wait_all
from scripts.worker_main import WorkerRuntime, schedule_periodic
from crm.client import CrmClient


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def _devino(settings: Settings) -> bool:
    """Devino calls back: the integrations door's own address is its public one here."""
    from channels.whatsapp.accounts import load_accounts
    return settings.whatsapp_configured and any(a.provider == "devino" for a in load_accounts(settings).values())


class LocalDesk:
    def __init__(self, settings: Settings, db: Database, tg, crm=None, *, threads: int = 2,
                 wa=None) -> None:
        """`tg`, `crm`, `wa`: the running sandboxes (TelegramSandbox, CrmSandbox,
        WhatsAppSandbox — subscribed to this desk's webhook when given)."""
        self.settings = settings
        self.wa = wa
        self.db = db
        self.tg = tg
        self.crm = crm
        self.threads = threads
        self.stop_event = threading.Event()
        self.bell = Bell()  # doors and workers share one process: wake-ups need no UDP
        self._workers: list[threading.Thread] = []
        self._servers: list[ServerThread] = []
        self._accounts: list[AccountsProcess] = []

    def start(self, *, workers: bool = True) -> "LocalDesk":
        import crm_listener
        import webhook_server
        self.webhook = ServerThread(webhook_server.create_app(self.settings, db=self.db,
                                                              bell=self.bell)).start()
        self.listener = ServerThread(crm_listener.create_app(self.settings, db=self.db,
                                                             bell=self.bell)).start()
        self._servers = [self.webhook, self.listener]
        create_bot(self.settings).set_webhook(
            url=f"{self.webhook.url}/telegram/{self.settings.webhook_secret_path}",
            secret_token=self.settings.webhook_secret_token)
        if self.settings.planfix_configured or _devino(self.settings) or (
                self.settings.sms_configured and self.settings.sms_devino_callback_secret):
            # Here the integrations door is reached where it listens: Planfix's downloads too.
            self.settings = self.settings.replace(public_url=self.listener.url)
        overrides = {}
        if KeepingCrm.configured(self.settings):
            # Tests need not wait out production's patient retries inside one call.
            overrides["keepingcrm"] = KeepingCrm(self.settings, self.db, CrmClient.from_settings(
                self.settings, retries=1, backoff=0.05))
        self.deps = Container.build(self.settings, self.db, **overrides)
        schedule_periodic(self.deps)
        self.runtime = WorkerRuntime(self.deps, self.bell)
        if workers:
            self.start_workers()
        if self.wa is not None:
            self.connect_whatsapp(self.wa)
        return self

    def connect_whatsapp(self, server) -> None:
        """Point a WhatsApp sandbox at this desk as the shop would in its console: Meta's
        webhook subscription, a Green-API instance's webhook URL and token (none when the
        desk polls), Devino's incoming URL."""
        kind = type(server).__name__
        if kind == "WhatsAppSandbox":
            server.subscribe(f"{self.listener.url}/whatsapp/cloud", self.settings.whatsapp_cloud_verify_token)
        elif kind == "GreenApiSandbox":
            if self.settings.whatsapp_greenapi_receive == "poll":
                server.use_queue()
            else:
                server.use_webhook(f"{self.listener.url}/whatsapp/greenapi",
                                   self.settings.whatsapp_greenapi_webhook_token)
        elif kind == "DevinoSandbox":
            server.use_incoming(f"{self.listener.url}/whatsapp/devino/"
                                f"{self.settings.whatsapp_devino_callback_secret}/incoming")

    def start_workers(self) -> None:
        self._workers = run_threads(self.runtime.worker, self.threads, self.stop_event)

    @property
    def listener_url(self) -> str:
        return self.listener.url

    def idle(self, timeout: float = 10.0) -> None:
        """Wait until the queue has nothing left to do."""
        wait_for(lambda: self.deps.jobs.depth() == 0, timeout)

    def start_accounts(self, env: dict[str, str]) -> "AccountsProcess":
        """The accounts process (`python -m bot accounts`), as production runs it."""
        process = AccountsProcess(env).start()
        self._accounts.append(process)
        return process

    def stop(self) -> None:
        for process in getattr(self, "_accounts", []):
            process.stop()
        self.stop_event.set()
        self.bell.ring_all()
        wait_all(self._workers, timeout=10)
        for server in self._servers:
            server.stop()


class AccountsProcess:
    """`python -m bot accounts` in a process of its own (the one that holds the Telegram
    accounts' sessions); `kill()` is kill -9."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self) -> "AccountsProcess":
        self.process = subprocess.Popen([sys.executable, "-m", "bot", "accounts"], cwd=ROOT, env=self.env,
                                        start_new_session=True)
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
