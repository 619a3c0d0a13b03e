"""The composition root of a process: repositories and services built once, passed
explicitly to the handlers and jobs that need them."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from bot.callbacks import CallbackCodec
from bot.outbox import TelegramOut
from config import Settings
from crm.client import CrmClient
from models.db import Database
from models.jobs import JobQueue
from models.locks import LockManager
from models.users import UserManager
from services.chat_actions import ChatActions
from services.claims import ChatClaims
from services.errors import ErrorReporter
from services.writing import WriteToCustomer
from utils import redact
from utils.clock import utc_now


@dataclass
class Deps:
    settings: Settings
    db: Database
    jobs: JobQueue
    users: UserManager
    locks: LockManager
    codec: CallbackCodec
    crm: CrmClient | None  # None for a bare desk (no CRM settings)
    clock: Callable[[], datetime] = utc_now  # replaceable in tests
    out: TelegramOut = field(default=None)            # type: ignore[assignment]
    claims: ChatClaims = field(default=None)          # type: ignore[assignment]
    actions: ChatActions = field(default=None)        # type: ignore[assignment]
    writer: WriteToCustomer = field(default=None)     # type: ignore[assignment]
    reporter: ErrorReporter = field(default=None)     # type: ignore[assignment]
    # Set by a worker's composition root: sync one CRM chat now (an admin's /get_chat_N).
    sync_now: Callable[[int], object] | None = None

    def __post_init__(self) -> None:
        now = lambda: self.clock()  # noqa: E731  (late: tests move the clock)
        self.out = self.out or TelegramOut(self.jobs)
        self.claims = self.claims or ChatClaims(self.db, self.locks,
                                                pin_ttl_hours=self.settings.pin_ttl_hours)
        self.actions = self.actions or ChatActions(self.db, self.jobs, self.claims, now)
        self.writer = self.writer or WriteToCustomer(
            self.db, self.jobs, self.locks, self.claims,
            max_length=self.settings.crm_max_message_len, clock=now)
        self.reporter = self.reporter or ErrorReporter(self.db, self.jobs,
                                                       self.settings.channel_log, now)

    @classmethod
    def build(cls, settings: Settings, db: Database | None = None) -> "Deps":
        redact.register(settings.secrets)
        db = db or Database(settings)
        return cls(settings=settings, db=db,
                   jobs=JobQueue(db, lease_seconds=settings.job_lease_seconds),
                   users=UserManager.instance(db, admin_ids=settings.admin_ids),
                   locks=LockManager.instance(db),
                   codec=CallbackCodec(settings.bot_token),
                   crm=CrmClient.from_settings(settings) if settings.crm_configured else None)
