"""One worker process: the desk bot and every job handler, on a few threads.

`WorkerRuntime` wires a worker from the process's composition root (`container.py`): the
Telegram desk (bot, handlers, sender), every channel's jobs, the services' durable steps,
the failure policy's reports and dead-letter hooks, and "send now", which runs a job on
the thread that decided it (`InlineRunner`).
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from bot.factory import process_update
from bot.files import TelegramFiles
from bot.outbox import SEND_KIND
from bot.ratelimit import RateLimiter
from bot.sender import Sender, TelegramApi
from channels.media import MediaFetcher
from config import Settings
from container import Container
from handlers import create_desk_bot
from models.bells import GENERATION, BellRegistry
from models.jobs import SEND, SYNC, Job, JobQueue
from models.message_map import MessageMapRepository
from scripts.clean import Cleaner
from scripts.desk_jobs import DESK_PERIODIC, desk_jobs
from scripts.expiry import PinExpiry
from scripts.worker import Comeback, Executor, Worker, run_threads, wait_all, worker_name
from services.chat_actions import MarkReadStep
from services.digest import DIGEST_SCHEDULE, DIGEST_SEND
from services.gateways import BatchSend, ConfirmSweep
from services.sms import SmsFallback, SmsSend, SmsStatuses, sms_periodic
from services.notifications import SendOutbox, summary
from services.tgrelay import relay_handlers
from services.writing import DeliverToCustomer
from utils.bell import STALE_AFTER as BELL_STALE_AFTER, Bell, BellListener
from utils.signals import StopSignal

log = logging.getLogger(__name__)

# Periodic kinds the workers of an older generation do not know, by the generation that
# brought them (models/bells.py::GENERATION).
PERIODIC_SINCE = {DIGEST_SCHEDULE: 2, "sms_fallback": 2, "sms_confirm": 2}
# Jobs that wait for Telegram itself (its outage is probed, not slept out).
TELEGRAM_KINDS = (SEND_KIND, "tg_commands", "clean")


class InlineRunner:
    """Runs one stored job now, on the calling thread, under the failure policy; when it
    cannot run now (not yet due, behind earlier jobs of its lane) the workers will."""

    def __init__(self, jobs: JobQueue, executor: Executor, ring: Callable[[], object]) -> None:
        self.jobs = jobs
        self.executor = executor
        self.ring = ring

    def __call__(self, job_id: int, patience: float = 1.2) -> str | None:
        """How the job was settled (done, retry, dead, later), or None if it is left to
        the workers."""
        deadline = time.monotonic() + patience
        while True:
            job = self.jobs.claim_id(job_id, worker_name())
            if job is not None:
                outcome = self.executor.execute(job)
                if outcome != "later":
                    return outcome
            if time.monotonic() >= deadline:
                self.ring()
                return None
            time.sleep(0.05)


class WorkerRuntime:
    def __init__(self, deps: Container, bell: Bell) -> None:
        self.deps = deps
        settings = deps.settings
        clock = lambda: deps.clock()  # noqa: E731  (late: tests move the clock)
        self.bot = create_desk_bot(deps)
        self.api = TelegramApi(self.bot)
        limiter = RateLimiter(deps.db, settings)
        self.sender = Sender(self.bot, limiter, deps.jobs,
                             MessageMapRepository(deps.db), deps.users, deps.reporter.report,
                             bot_language=settings.bot_language, locks=deps.locks,
                             media=MediaFetcher(deps.db, deps.channels))
        deliver = DeliverToCustomer(deps.db, deps.jobs, deps.channels, notices=deps.out,
                                    download=TelegramFiles(self.api).download, clock=clock)
        fallback = SmsFallback(settings, deps.db, clock) if settings.sms_configured else None
        self.handlers: dict[str, Callable] = {
            "tg_update": self.handle_update,
            SEND_KIND: self.sender,
            "deliver": deliver,
            "mark_read": MarkReadStep(deps.db, deps.channels),
            "expire_pins": PinExpiry(deps.claims, clock),
            "clean": Cleaner(settings, deps.db, self.api, deps.jobs, deps.users, deps.out, clock),
            "report_errors": deps.reporter,
            "wa_send": (send_outbox := SendOutbox(deps.db, deps.channels, clock, batches=BatchSend(
                settings, deps.db, deps.reporter.report, summary, clock), fallback=fallback)),
            "wa_confirm": ConfirmSweep(deps.db, deps.reporter.report, clock,
                                       confirm_seconds=settings.whatsapp_devino_confirm_seconds),
        }
        if fallback is not None:
            # SMS when WhatsApp cannot reach a customer (services/sms.py)
            whatsapp = deps.channels.get("whatsapp")
            self.handlers.update({
                "sms_fallback": fallback,
                "sms_send": SmsSend(settings, deps.db, deps.reporter.report, whatsapp, clock=clock),
                "sms_status": SmsStatuses(deps.db, whatsapp, settings, clock),
                "sms_confirm": ConfirmSweep(deps.db, deps.reporter.report, clock, channel="sms",
                                            confirm_seconds=settings.sms_devino_confirm_seconds)})
        self.handlers.update(desk_jobs(deps, self.api, self.handlers["clean"], clock))
        self.handlers.update({DIGEST_SCHEDULE: deps.digests.schedule, DIGEST_SEND: deps.digests.send})
        for channel in deps.channels.values():
            self.handlers.update(channel.job_handlers(deps.ingest, deps.inbox))
        self.handlers.update(relay_handlers(settings, deps.db, deps.jobs, deps.ingest,
                                            getattr(deps.channels.get("tgaccount"), "control", None)))
        if "crm_sync" in self.handlers:
            deps.sync_now = self.handlers["crm_sync"].sync
        self.dead_hooks: dict[str, Callable[[Job, BaseException], None]] = {
            "tg_update": self.update_failed,
            "deliver": deliver.dead,
            "wa_send": send_outbox.dead,
        }
        if "sms_send" in self.handlers:
            self.dead_hooks["sms_send"] = self.handlers["sms_send"].dead
        # Telegram away: its sends back off up to a minute; a probe ends that on its return.
        telegram = Comeback(TELEGRAM_KINDS, self.api.alive, lambda: deps.jobs.wake(TELEGRAM_KINDS))
        self.worker = Worker(deps.jobs, self.handlers, bell=bell, report=deps.reporter.report,
                             on_dead=self.on_dead, ensure_periodic=lambda: schedule_periodic(deps),
                             comebacks=(telegram,))
        deps.out.ring = bell.ring
        deps.out.run_now = InlineRunner(deps.jobs, self.worker.executor, bell.ring)
        # The short path: the worker that synced a conversation sends its first post itself.
        deps.desk.limiter = limiter
        deps.desk.run_leased = self.worker.executor.execute

    def handle_update(self, job: Job) -> None:
        with self.deps.out.for_update(int(job.dedupe_key.split(":", 1)[1])
                                      if job.dedupe_key else None):
            process_update(self.bot, job.payload)

    def on_dead(self, job: Job, exc: BaseException) -> None:
        hook = self.dead_hooks.get(job.kind)
        if hook is not None:
            hook(job, exc)

    def update_failed(self, job: Job, exc: BaseException) -> None:
        """A person's message or tap could not be handled: they are told (admins got #ERROR)."""
        chat_id = _private_chat_of(job.payload)
        if chat_id is not None:
            self.deps.out.enqueue(chat_id, notice="update_failed", values={},
                                  key=f"upd:{job.dedupe_key}:failed")


def _private_chat_of(update: dict) -> int | None:
    for part in ("message", "edited_message", "callback_query"):
        value = update.get(part)
        if isinstance(value, dict):
            sender = value.get("from") or {}
            if isinstance(sender.get("id"), int) and sender["id"] > 0:
                return sender["id"]
    return None


def schedule_periodic(deps: Container) -> None:
    """Start-up chores of a worker process (repeated every minute by the worker loop):
    bootstrap admins, and the periodic jobs — which can never stop."""
    deps.users.ensure_bootstrap_admins()
    periodic = [(SYNC, "expire_pins"), (SEND, "report_errors"), (SYNC, DIGEST_SCHEDULE), *DESK_PERIODIC,
                *sms_periodic(deps.settings)]
    for channel in deps.channels.values():
        periodic += channel.periodic()
    # A rolling upgrade: while workers of an older generation run, the kinds they cannot
    # run are not stored (they would take them up and fail); the first check after the
    # last of them is gone stores them.
    oldest = BellRegistry(deps.db).oldest_generation(BELL_STALE_AFTER)
    for queue, kind in periodic:
        if PERIODIC_SINCE.get(kind, 1) <= oldest:
            deps.jobs.ensure_periodic(queue, kind)


def serve(settings: Settings, stop: StopSignal, *, threads: int | None = None) -> None:
    deps = Container.build(settings)
    schedule_periodic(deps)
    bell = Bell()
    listener = BellListener(BellRegistry(deps.db, generation=GENERATION), bell).start()
    runtime = WorkerRuntime(deps, bell)
    running = run_threads(runtime.worker, threads or settings.worker_threads, stop.event)
    log.info("worker started with %s threads", len(running))
    stop.wait()
    bell.ring_all()  # idle threads look at the stop flag now
    wait_all(running)
    listener.stop()
    deps.db.close()
