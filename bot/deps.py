"""The services a handler or a worker needs, built once per process and passed explicitly."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from bot.callbacks import CallbackCodec
from config import Settings
from crm.client import CrmClient
from models.db import Database
from models.jobs import JobQueue
from models.locks import LockManager
from models.users import UserManager
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

    @classmethod
    def build(cls, settings: Settings, db: Database | None = None) -> "Deps":
        db = db or Database(settings)
        return cls(settings=settings, db=db,
                   jobs=JobQueue(db, lease_seconds=settings.job_lease_seconds),
                   users=UserManager.instance(db, admin_ids=settings.admin_ids),
                   locks=LockManager.instance(db),
                   codec=CallbackCodec(settings.bot_token),
                   crm=CrmClient.from_settings(settings) if settings.crm_configured else None)
