"""The job handlers and periodic jobs of the desk of SPEC §8, for the worker runtime."""
from __future__ import annotations

from bot.answers import AlbumAnswers
from bot.commands import CommandMenus
from models.desk_extras import ChoreRepository
from models.jobs import SEND, SYNC, UPDATES
from scripts.desk_chores import CommandMenusKeeper, DailyCleaning, ExpiryNotices

DESK_PERIODIC = ((UPDATES, "sla_sweep"), (SYNC, "daily_clean"), (SEND, "pin_notices"),
                 (SEND, "command_menus"))


def desk_jobs(deps, api, cleaner, clock) -> dict:
    tools = deps.tools
    return {
        "sla_sweep": tools.sweep,
        "daily_clean": DailyCleaning(deps.settings, cleaner, ChoreRepository(deps.db), deps.out, clock),
        "pin_notices": ExpiryNotices(deps.settings, deps.db, deps.out, clock),
        "command_menus": CommandMenusKeeper(deps.settings, deps.db, deps.jobs),
        "tg_commands": CommandMenus(api),
        "order_context": tools.orders.refresh,
        "send_album": AlbumAnswers(tools.albums, deps.out),
    }
