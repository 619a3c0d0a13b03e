"""One worker process: the desk bot and every job handler, on a few threads."""
from __future__ import annotations

import logging

from bot.deps import Deps
from bot.factory import create_desk_bot, process_update
from bot.ratelimit import RateLimiter
from bot.sender import Sender
from config import Settings
from models.chats import ChatRepository
from models.inbox import Inbox
from models.jobs import SYNC
from models.message_map import MessageMapRepository
from scripts.clean import Cleaner
from scripts.expiry import PinExpiry
from scripts.reconcile import Reconciler
from scripts.sync import ChatSync
from scripts.worker import Worker, run_threads, wait_all
from utils.bell import Bell, BellListener
from utils.signals import StopSignal

log = logging.getLogger(__name__)


def job_handlers(deps: Deps) -> dict:
    """Job kind → handler. The CRM kinds exist only when the CRM is configured."""
    bot = create_desk_bot(deps)
    sender = Sender(bot, RateLimiter(deps.db, deps.settings), deps.jobs,
                    MessageMapRepository(deps.db), deps.users, deps.settings.channel_log)
    handlers = {
        "tg_update": lambda job: process_update(bot, job.payload),
        "tg_send": sender,
        "expire_pins": PinExpiry(deps.db, deps.settings.pin_ttl_hours, lambda: deps.clock()),
        "clean": Cleaner(deps.settings, deps.db, bot, deps.jobs, deps.users, lambda: deps.clock()),
    }
    if deps.crm is not None:
        handlers["crm_sync"] = ChatSync(deps.settings, deps.db, deps.jobs, deps.crm, deps.codec,
                                        lambda: deps.clock())
        handlers["reconcile"] = Reconciler(deps.settings, deps.crm, ChatRepository(deps.db),
                                           Inbox(deps.jobs))
    return handlers


def schedule_periodic(deps: Deps) -> None:
    """Start-up chores of a worker process: bootstrap admins and the periodic jobs."""
    deps.users.ensure_bootstrap_admins()
    deps.jobs.ensure_periodic(SYNC, "expire_pins")
    if deps.crm is not None:
        deps.jobs.ensure_periodic(SYNC, "reconcile")


def serve(settings: Settings, stop: StopSignal, *, threads: int | None = None) -> None:
    deps = Deps.build(settings)
    schedule_periodic(deps)
    bell = Bell()
    listener = BellListener(deps.db, bell).start()
    worker = Worker(deps.jobs, job_handlers(deps), bell=bell)
    running = run_threads(worker, threads or settings.worker_threads, stop.event)
    log.info("worker started with %s threads", len(running))
    stop.wait()
    bell.ring_all()  # idle threads look at the stop flag now
    wait_all(running)
    listener.stop()
    deps.db.close()
