"""The main menu and the paged lists of chats (SPEC §3, flow 4)."""
from __future__ import annotations

from functools import partial

from telebot import TeleBot, types

from bot import desk_views, views
from bot.keyboards import main_menu, to_markup
from bot.texts import MENU_KEYS, key_of_label
from handlers.common import Desk, callback_args
from models.pins import ACTIVATE_KEY, PIN
from models.users import User

# List kinds travel in callback data as numbers.
LISTS = {"messages": 1, "pin_chats": 2, "history_messages": 3, "history_pin_chats": 4,
         "history": 5, "stats_pin_chats": 6}
LIST_BY_NUMBER = {number: key for key, number in LISTS.items()}


def render_list(desk: Desk, user: User, key: str, page: int) -> tuple[str, dict]:
    """The `page` of list `key` for this manager, as (text, inline keyboard). A page past
    the end (the list shrank since the button was drawn) shows the last page."""
    entries, total = list_entries(desk, user, key, page)
    last = views.pages_of(total) - 1
    if page > last:
        page = last
        entries, total = list_entries(desk, user, key, page)
    title_key = "list_title_stats" if key == "stats_pin_chats" else f"list_title_{key}"
    return views.chat_list(desk.codec, desk.lang(user), title_key, entries, LISTS[key], page, total)


def list_entries(desk: Desk, user: User, key: str, page: int) -> tuple[list[tuple[str, int]], int]:
    size, offset = views.PAGE_SIZE, page * views.PAGE_SIZE
    if key == "history":
        chats, total = desk.lists.newest(offset, size)
        entries = [(views.chat_label(c), c.id) for c in chats]
    elif key == "stats_pin_chats":   # who holds each task and since when; done ones for a day
        rows, total = desk.deps.tools.tasks.board(offset, size)
        entries = [(desk_views.board_label(r, desk.clock(), desk.lang(user)), r.conversation.id)
                   for r in rows]
    else:
        kinds = (PIN,) if key in ("messages", "history_messages") else (ACTIVATE_KEY,)
        active = key in ("messages", "pin_chats")
        ids, total = desk.pins.of_manager(user.tg_id, kinds, active, offset, size)
        chats = desk.lists.by_ids(ids)
        entries = [(views.chat_label(chats[i]), i) for i in ids if i in chats]
    return entries, total


def menu_label(desk: Desk, message: types.Message, user: User) -> None:
    key = key_of_label(message.text, MENU_KEYS)
    body, keyboard = render_list(desk, user, key, 0)
    desk.say(message.chat.id, body, to_markup(keyboard))


def list_page(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    number, page = callback_args(desk, call)
    key = LIST_BY_NUMBER.get(number)
    if key is None or page < 0:
        desk.answer(call, desk.t(user, "stale_button"))
        return
    body, keyboard = render_list(desk, user, key, page)
    desk.edit(call.message.chat.id, call.message.message_id, body, to_markup(keyboard))
    desk.answer(call)


def back_to_menu(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    desk.state.clear(user.tg_id)
    desk.say(call.message.chat.id, desk.t(user, "main_menu"), main_menu(desk.lang(user)))
    desk.answer(call)


def register(bot: TeleBot, desk: Desk) -> None:
    bot.register_message_handler(
        partial(menu_label, desk), chat_types=["private"], role="manager", content_types=["text"],
        func=lambda m: key_of_label(m.text or "", MENU_KEYS) is not None)
    bot.register_callback_query_handler(partial(list_page, desk), func=None, action="list",
                                        role="manager")
    bot.register_callback_query_handler(partial(back_to_menu, desk), func=None, action="menu",
                                        role="manager")
