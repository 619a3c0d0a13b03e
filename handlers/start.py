"""/start: registration of new people, and the main menu for the approved."""
from __future__ import annotations

import logging

from telebot import TeleBot, types

from bot import formatting as fmt
from bot.keyboards import main_menu
from bot.sender import queue_post
from handlers.common import Desk

log = logging.getLogger(__name__)


def register(bot: TeleBot, desk: Desk) -> None:
    users = desk.deps.users

    def start(message: types.Message, sender) -> None:
        user, created = users.register(sender.id, sender.username, sender.first_name,
                                       sender.language_code)
        if not user.reachable:
            users.set_reachable(user.tg_id, True)  # /start again after blocking the bot
        name = fmt.escape(user.display_name)
        if user.is_manager:
            desk.state.clear(user.tg_id)
            bot.send_message(message.chat.id, desk.t(user, "welcome", name=name),
                             reply_markup=main_menu(desk.lang(user)))
            return
        bot.send_message(message.chat.id, desk.t(user, "waiting_approval"))
        if created:
            # Through the durable queue: an admin who blocked the bot must not keep the
            # others from hearing, nor make this update run twice.
            for admin in users.admins():
                queue_post(desk.deps.jobs, admin.tg_id,
                           desk.t(admin, "new_user_for_admins", name=name, tg_id=user.tg_id))

    bot.register_message_handler(start, commands=["start"], chat_types=["private"])
