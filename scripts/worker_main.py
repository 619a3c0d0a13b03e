"""One worker process: the desk bot and every job handler, on a few threads."""
from __future__ import annotations

import logging

from bot.deps import Deps
from bot.factory import create_desk_bot, process_update
from config import Settings
from scripts.worker import Worker, run_threads, wait_all
from utils.signals import StopSignal

log = logging.getLogger(__name__)


def job_handlers(deps: Deps) -> dict:
    bot = create_desk_bot(deps)
    return {
        "tg_update": lambda job: process_update(bot, job.payload),
    }


def serve(settings: Settings, stop: StopSignal, *, threads: int | None = None) -> None:
    deps = Deps.build(settings)
    worker = Worker(deps.jobs, job_handlers(deps))
    running = run_threads(worker, threads or settings.worker_threads, stop.event)
    log.info("worker started with %s threads", len(running))
    stop.wait()
    wait_all(running)
    deps.db.close()
