"""Housekeeping that runs itself (SPEC §8): the daily cleaning, the notice to a manager
whose pin expired, and keeping every person's command menu as their role wants it.
Each is a periodic job (they never stop, scripts/failures.py) that decides by the
injectable clock, so tests move time instead of waiting."""
from __future__ import annotations

import logging
from datetime import datetime, time, timedelta, timezone
from typing import Callable

from bot.commands import ADMIN_COMMANDS, MANAGER_COMMANDS, SHARED_CHAT_COMMANDS, menu, menu_job
from bot.outbox import TelegramOut
from bot.texts import TEXTS, language_for, text
from config import Settings
from models.conversations import ConversationRepository
from models.desk_extras import ChoreRepository, ExpiredPinRepository, MenuPeopleRepository
from models.jobs import SEND, JobQueue
from models.users import ADMIN, BANNED
from scripts.clean import Cleaner

log = logging.getLogger(__name__)

CLEAN_AT = time(4, 0)            # local time (TZ) of the daily cleaning
DAILY_CHECK_SECONDS = 600.0
NOTICES_EVERY_SECONDS = 60.0
NOTICE_HORIZON = timedelta(hours=6)  # expiries older than this are not announced any more
MENUS_EVERY_SECONDS = 300.0
MENUS_CHORE = "command_menus"     # desk_chores: the newest users row the menus followed


class DailyCleaning:
    """The `daily_clean` job: /clean's work once a day after CLEAN_AT (local time), its
    report to the log chat."""

    def __init__(self, settings: Settings, cleaner: Cleaner, chores: ChoreRepository,
                 out: TelegramOut, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.cleaner = cleaner
        self.chores = chores
        self.out = out
        self.clock = clock
        self.zone = settings.hours.zone

    def __call__(self, job) -> float:
        self.run_if_due()
        return DAILY_CHECK_SECONDS

    def due_since(self, now: datetime) -> datetime:
        """The latest CLEAN_AT (as naive UTC) at or before `now`."""
        local = now.replace(tzinfo=timezone.utc).astimezone(self.zone)
        moment = datetime.combine(local.date(), CLEAN_AT, tzinfo=self.zone)
        if moment > local:
            moment -= timedelta(days=1)
        return moment.astimezone(timezone.utc).replace(tzinfo=None)

    def run_if_due(self) -> dict | None:
        now = self.clock()
        last = self.chores.last_run("daily_clean")
        if last is None:   # a new installation: the first cleaning is at the next CLEAN_AT
            self.chores.claim_run("daily_clean", None, now)
            return None
        if last >= self.due_since(now):
            return None
        if not self.chores.claim_run("daily_clean", last, now):
            return None   # another process runs it
        report = self.cleaner.run()
        language = language_for(None, self.settings.bot_language)
        self.out.enqueue(self.settings.channel_log, text("daily_clean_report", language, **report),
                         key=f"daily_clean:{now:%Y-%m-%d}", purpose="log")
        return report


class ExpiryNotices:
    """The `pin_notices` job: the manager whose pin ran out is told, once per pin."""

    def __init__(self, settings: Settings, db, out: TelegramOut,
                 clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.out = out
        self.clock = clock
        self.expired = ExpiredPinRepository(db)
        self.conversations = ConversationRepository(db)

    def __call__(self, job) -> float:
        self.run()
        return NOTICES_EVERY_SECONDS

    def run(self) -> int:
        since = self.clock() - timedelta(hours=self.settings.pin_ttl_hours) - NOTICE_HORIZON
        told = 0
        for pin in self.expired.since(since):
            conversation = self.conversations.get(pin.conversation_id)
            ref = conversation.ref if conversation else str(pin.conversation_id)
            told += self.out.enqueue(pin.manager_id, notice="pin_expired",
                                     values={"id_i": ref, "hours": f"{self.settings.pin_ttl_hours:g}"},
                                     key=f"expired:{pin.pin_id}") is not None
        return told


class CommandMenusKeeper:
    """The `command_menus` job: every person's menu as their role wants it (each a
    `tg_commands` step, stored once per content)."""

    def __init__(self, settings: Settings, db, jobs: JobQueue) -> None:
        self.settings = settings
        self.jobs = jobs
        self.people = MenuPeopleRepository(db)
        self.chores = ChoreRepository(db)

    def __call__(self, job) -> float:
        self.run()
        return MENUS_EVERY_SECONDS

    def run(self) -> int:
        """The menus of the people whose row changed since the last run (everyone at the
        first): a shop of 100,000 people costs a few queries a run, not 100,000 inserts.
        A banned person's menu is removed only when one was set for them."""
        wanted = [menu_job({"type": "default"}, menu(("start",), "uk"))]
        wanted += [menu_job({"type": "default"}, menu(("start",), code), code)
                   for code in TEXTS if code != "uk"]
        previous = self.chores.last_run(MENUS_CHORE)
        people = self.people.people(changed_since=previous)
        for person in people:
            # A role changed since: the menu is set again (its key names the change).
            version = f"{person.changed_at:%Y%m%d%H%M%S%f}"
            scope = {"type": "chat", "chat_id": person.tg_id}
            language = language_for(person.language, self.settings.bot_language)
            if person.role == BANNED:   # one whose menu was set: it goes
                wanted.append(menu_job(scope, None, version=version))
                continue
            names = ADMIN_COMMANDS if person.role == ADMIN else MANAGER_COMMANDS
            wanted.append(menu_job(scope, menu(("start",) + names, language), version=version))
            if self.settings.chat_new_message is not None:
                wanted.append(menu_job({"type": "chat_member", "chat_id": self.settings.chat_new_message,
                                        "user_id": person.tg_id}, menu(SHARED_CHAT_COMMANDS, language),
                                       version=version))
        stored = 0
        for payload, key in wanted:
            stored += self.jobs.enqueue(SEND, "tg_commands", payload, dedupe_key=key,
                                        lane="tg_commands")
        if people:   # the newest change handled: the next run starts there
            self.chores.claim_run(MENUS_CHORE, previous, max(p.changed_at for p in people))
        return stored
