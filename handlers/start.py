"""/start: registration of new people and the first word to everyone else."""
from __future__ import annotations

import html
import logging

from telebot import TeleBot, types

from bot.deps import Deps
from bot.texts import language_for, text

log = logging.getLogger(__name__)


def register(bot: TeleBot, deps: Deps) -> None:
    def start(message: types.Message, user, sender) -> None:
        user, created = deps.users.register(sender.id, sender.username, sender.first_name,
                                            sender.language_code)
        if not user.reachable:
            deps.users.set_reachable(user.tg_id, True)  # /start again after blocking the bot
        language = language_for(user.language, deps.settings.bot_language)
        name = html.escape(user.display_name)
        if user.is_manager:
            bot.send_message(message.chat.id, text("welcome", language, name=name))
            return
        bot.send_message(message.chat.id, text("waiting_approval", language))
        if created:
            for admin in deps.users.admins():
                admin_language = language_for(admin.language, deps.settings.bot_language)
                bot.send_message(admin.tg_id, text("new_user_for_admins", admin_language,
                                                   name=name, tg_id=user.tg_id))

    bot.register_message_handler(start, commands=["start"], chat_types=["private"])
