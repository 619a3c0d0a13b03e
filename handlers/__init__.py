"""Handler areas, registered in one visible order (first match wins in telebot).

1. start       /start for everyone
2. admin       admin commands (admins only; no reaction for anyone else)
3. menus       main-menu buttons and paged lists
4. chats       a chat's card, history, read status, task status, unpin, send mode keys
5. pinning     "✍ Відповісти" / "🔑 Підключитися" under shared posts
6. desk_*      the desk of SPEC §8: shifts and hand-over, finding, notes, canned replies,
                the next message the desk asked for, albums (before writing: never sent
                to a customer by mistake)
7. templates   the 24-hour window's approved templates (WhatsApp), and their parameters
8. writing     text, photos and files for clients
9. fallback    everything nobody handled: pending users, strangers, stale buttons
"""
from __future__ import annotations

from telebot import TeleBot

from bot import auth
from bot.factory import new_bot
from handlers import (admin, chats, desk_find, desk_modes, desk_notes, desk_replies, desk_shifts,
                      fallback, menus, pinning, start, templates, writing)
from handlers.common import ActionFilter, Desk

AREAS = (start, admin, menus, chats, pinning, desk_shifts, desk_find, desk_notes, desk_replies,
         desk_modes, templates, writing, fallback)


def register_all(bot: TeleBot, deps) -> Desk:
    desk = Desk(bot, deps)
    bot.add_custom_filter(ActionFilter(deps.codec))
    for area in AREAS:
        area.register(bot, desk)
    return desk


def create_desk_bot(deps) -> TeleBot:
    """The bot that processes updates: authorisation first, then every handler area.
    `deps`: the process's composition root (`container.Container`)."""
    bot = new_bot(deps.settings, middlewares=True)
    auth.install(bot, deps.users)
    register_all(bot, deps)
    return bot
