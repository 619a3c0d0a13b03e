"""The composition root: everything a KeepDesk process needs, built once and passed
explicitly — the database, the queue, the channels, the services, the Telegram desk's
outbox. The worker runtime (`scripts/worker_main.py`), the doors and the sandbox stack
build one `Container` each; nothing else constructs services.

    doors ──▶ intake (models/inbox) ──▶ jobs ──▶ services ──▶ channels / desks
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from bot.callbacks import CallbackCodec
from bot.fanout import TelegramDesk
from bot.outbox import TelegramOut
from bot.watchers import WatchersDesk
from channels import Channels, build_channels
from config import Settings
from models.db import Database
from models.inbox import Inbox
from models.jobs import JobQueue
from models.locks import LockManager
from models.users import UserManager
from services.chat_actions import ChatActions
from services.after_hours import AfterHours
from services.albums import Albums
from services.claims import ChatClaims
from services.dead_letters import DeadLetters
from services.desk import DeskTools
from services.digest import Digests
from services.errors import ErrorReporter
from services.ingest import Ingest
from services.panel import Team
from services.statuses import DeliveryStatuses
from services.writing import WriteToCustomer
from utils import redact
from utils.clock import utc_now


@dataclass
class Container:
    settings: Settings
    db: Database
    jobs: JobQueue
    users: UserManager
    locks: LockManager
    codec: CallbackCodec
    channels: Channels
    clock: Callable[[], datetime] = utc_now    # replaceable in tests
    inbox: Inbox = field(default=None)           # type: ignore[assignment]
    out: TelegramOut = field(default=None)       # type: ignore[assignment]
    claims: ChatClaims = field(default=None)     # type: ignore[assignment]
    actions: ChatActions = field(default=None)   # type: ignore[assignment]
    writer: WriteToCustomer = field(default=None)  # type: ignore[assignment]
    reporter: ErrorReporter = field(default=None)  # type: ignore[assignment]
    desk: TelegramDesk = field(default=None)     # type: ignore[assignment]
    ingest: Ingest = field(default=None)         # type: ignore[assignment]
    tools: DeskTools = field(default=None)       # type: ignore[assignment]  (SPEC §8)
    team: Team = field(default=None)             # type: ignore[assignment]
    dead_letters: DeadLetters = field(default=None)  # type: ignore[assignment]
    digests: Digests = field(default=None)       # type: ignore[assignment]  (docs/digest.md)
    # Set by a worker's runtime: sync one KeepingCRM chat now (an admin's /get_chat_N).
    sync_now: Callable[[int], object] | None = None

    def __post_init__(self) -> None:
        now = lambda: self.clock()  # noqa: E731  (late: tests move the clock)
        settings = self.settings
        self.inbox = self.inbox or Inbox(self.jobs)
        self.dead_letters = self.dead_letters or DeadLetters(self.jobs)
        self.digests = self.digests or Digests(settings, self.db, self.jobs, now)
        self.out = self.out or TelegramOut(self.jobs, codec=self.codec)
        self.claims = self.claims or ChatClaims(self.db, self.locks,
                                                pin_ttl_hours=settings.pin_ttl_hours)
        self.desk = self.desk or TelegramDesk(settings, self.codec, self.jobs, self.channels, self.out)
        self.tools = self.tools or DeskTools.build(self)
        tools = self.tools
        self.claims.on_claim = tools.waits.rearm   # a chat taken: its wait re-armed for the taker
        self.actions = self.actions or ChatActions(self.db, self.jobs, self.claims, now,
                                                   beside=tools.joins.beside, notices=self.out,
                                                   orders=tools.orders, log_chat_id=settings.channel_log)
        self.writer = self.writer or WriteToCustomer(self.db, self.jobs, self.locks, self.claims,
                                                     self.channels, clock=now,
                                                     beside=tools.joins.beside,
                                                     on_answer=tools.waits.answered,
                                                     notices=self.out, log_chat_id=settings.channel_log)
        tools.albums = tools.albums or Albums(self.db, self.jobs, self.users, self.writer)
        self.reporter = self.reporter or ErrorReporter(self.db, self.out, settings.channel_log, now)
        self.team = self.team or Team(self.users, self.claims, self.out, settings.channel_log, now, self.db)
        if "whatsapp" in self.channels:   # a gateway's instance logged out: #ERROR once
            self.channels["whatsapp"].report = self.reporter.report
        if isinstance(self.desk, TelegramDesk) and self.desk.watchers is None:
            self.desk.watchers = WatchersDesk(self.db, self.out, self.codec, self.desk.source_of,
                                              settings.bot_language)
        self.ingest = self.ingest or Ingest(self.db, self.claims, [self.desk],
                                            retention_days=settings.retention_days,
                                            task_pattern=settings.task_product_pattern, clock=now,
                                            statuses=DeliveryStatuses(self.db, self.out,
                                                                      self.reporter.report, now),
                                            interceptors=business_dialogues(self, now)
                                            + (tools.scores,),
                                            waits=tools.waits, orders=tools.orders,
                                            assign=tools.assign,
                                            after_hours=AfterHours(settings, self.db, self.jobs,
                                                                   self.channels, now))

    @classmethod
    def build(cls, settings: Settings, db: Database | None = None, **channel_overrides) -> "Container":
        """`channel_overrides`: name → a ready channel (the sandbox's clients retry less)."""
        redact.register(settings.secrets)
        db = db or Database(settings)
        return cls(settings=settings, db=db,
                   jobs=JobQueue(db, lease_seconds=settings.job_lease_seconds),
                   users=UserManager.instance(db, admin_ids=settings.admin_ids),
                   locks=LockManager.instance(db),
                   codec=CallbackCodec(settings.bot_token),
                   channels=build_channels(settings, db, **channel_overrides))


def business_dialogues(deps: "Container", now) -> tuple:
    """Services that answer some customer messages themselves before the desk sees them:
    the 1C notifications' dialogue (confirm, unsubscribe, reviews) on WhatsApp."""
    from services.dialogue import NotificationDialogue
    if "whatsapp" not in deps.channels:
        return ()
    return (NotificationDialogue(deps.settings, deps.db, deps.jobs, deps.channels, now),)
