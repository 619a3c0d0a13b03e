"""Handler areas, registered in one visible order (first match wins in telebot)."""
from __future__ import annotations

from telebot import TeleBot

from bot.deps import Deps
from handlers import start

# Order matters: commands before free text.
AREAS = (start,)


def register_all(bot: TeleBot, deps: Deps) -> None:
    for area in AREAS:
        area.register(bot, deps)
