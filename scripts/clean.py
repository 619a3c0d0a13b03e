"""/clean, in the background (SPEC §4).

Deletes the bot's posts in the shared chat older than CLEAN_AFTER_HOURS where Telegram
still allows it (a bot may delete its messages for 48 hours), purges stored history
older than RETENTION_DAYS and finished queue jobs, and reports what it did to the admin.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Callable

from telebot.apihelper import ApiTelegramException

from bot.outbox import TelegramOut
from bot.texts import language_for, text
from config import Settings
from models.gateways import FileRepository
from models.tgaccounts import MediaRepository
from models.db import Database
from models.jobs import JobQueue
from models.message_map import MessageMapRepository
from models.messages import MessageRepository
from models.users import UserManager
from utils.clock import utc_now

log = logging.getLogger(__name__)

WA_FILES_KEPT_DAYS = 3

TELEGRAM_DELETE_WINDOW = timedelta(hours=47, minutes=50)  # a little inside Telegram's 48 h
DELETE_BATCH = 200
JOBS_KEPT_DAYS = 7  # long enough to recognise a re-delivered Telegram update


class Cleaner:
    def __init__(self, settings: Settings, db: Database, api, jobs: JobQueue,
                 users: UserManager, out: TelegramOut, clock: Callable = utc_now) -> None:
        self.settings = settings
        self.db = db
        self.api = api      # bot/sender.py::TelegramApi
        self.jobs = jobs
        self.users = users
        self.out = out
        self.clock = clock
        self.messages = MessageRepository(db)
        self.message_map = MessageMapRepository(db)

    def __call__(self, job) -> None:
        report = self.run()
        admin_id = job.payload.get("admin_id")
        if admin_id:
            admin = self.users.get(admin_id)
            language = language_for(admin.language if admin else None, self.settings.bot_language)
            self.out.enqueue(admin_id, text("clean_report", language, **report),
                             key=f"clean:{job.id}:report")

    def run(self) -> dict[str, int]:
        now = self.clock()
        posts, failed = self.delete_old_posts(now)
        retention = now - timedelta(days=self.settings.retention_days)
        messages = self.messages.purge_older_than(retention)
        maps = self.message_map.purge_older_than(retention)
        MediaRepository(self.messages.db).purge_older_than(retention)  # files from Telegram accounts
        # Files kept for a WhatsApp gateway (sent within minutes; a few days is ample).
        FileRepository(self.messages.db).purge_older_than(now - timedelta(days=WA_FILES_KEPT_DAYS))
        jobs = self.jobs.purge_finished(JOBS_KEPT_DAYS)
        # Dead letters stay until retried, or until they are as old as the history kept.
        jobs += self.jobs.purge_dead(self.settings.retention_days)
        log.info("clean: %s posts deleted (%s failed), %s messages, %s map rows, %s jobs purged",
                 posts, failed, messages, maps, jobs)
        return {"posts": posts, "failed": failed, "messages": messages, "maps": maps, "jobs": jobs}

    def delete_old_posts(self, now) -> tuple[int, int]:
        older_than = now - timedelta(hours=self.settings.clean_after_hours)
        newer_than = now - TELEGRAM_DELETE_WINDOW
        shared = self.settings.chat_new_message
        posts = self.message_map.shared_posts_between(shared, older_than, newer_than, DELETE_BATCH)
        deleted = failed = 0
        for tg_message_id in posts:
            try:
                self.api.delete_post(shared, tg_message_id)
                deleted += 1
            except ApiTelegramException as exc:
                if exc.error_code == 429:
                    break  # the rest waits for the next /clean
                failed += 1
                log.info("could not delete post %s: %s", tg_message_id, exc.description)
            self.message_map.forget(shared, tg_message_id)
        return deleted, failed
