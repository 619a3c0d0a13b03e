"""Finding a chat (SPEC §8): `/open_chat_<n>`, `/find <words>` and "🔎 Пошук" (the next
message is the query), answered with the usual chat card (one result) or a list of chats;
"⚡ Відкрити чат" under a notification opens the chat straight into writing mode."""
from __future__ import annotations

import re
from functools import partial

from telebot import TeleBot, types

from bot import desk_views
from bot.keyboards import to_markup
from bot.texts import key_of_label
from handlers.admin import resolve_chat
from handlers.chats import enter_send_mode, show_chat
from handlers.common import Desk, known_chat
from models.users import User
from services.results import Refusal, Refused

SEARCH_MODE = "search"
_OPEN = re.compile(r"^/open_chat_(\d{1,19})(?:@\w+)?$")


def open_command(desk: Desk, message: types.Message, user: User) -> None:
    match = _OPEN.match((message.text or "").strip())
    if match is None:
        desk.say(message.chat.id, desk.t(user, "bad_command", example="/open_chat_12345"))
        return
    number = int(match.group(1))
    chat = resolve_chat(desk, number) if 0 < number < 2**63 else None
    if chat is None:
        desk.say(message.chat.id, desk.t(user, "unknown_chat", id_i=match.group(1)))
        return
    show_chat(desk, user, message.chat.id, chat)


_LINK = re.compile(r"^/(link|unlink)_(\d{1,19})_(\d{1,19})(?:@\w+)?$")


def link_command(desk: Desk, message: types.Message, user: User) -> None:
    """/link_12_34: one customer; /unlink_12_34: two customers, whatever their phones say."""
    match = _LINK.match((message.text or "").strip())
    if match is None:
        desk.say(message.chat.id, desk.t(user, "bad_command", example="/link_12_34"))
        return
    chats = []
    for number in (match.group(2), match.group(3)):
        chat = resolve_chat(desk, int(number)) if 0 < int(number) < 2**63 else None
        if chat is None:
            desk.say(message.chat.id, desk.t(user, "unknown_chat", id_i=number))
            return
        chats.append(chat)
    linked = match.group(1) == "link"
    if not desk.deps.tools.customers.link(user, chats[0], chats[1], linked, desk.clock()):
        desk.say(message.chat.id, desk.t(user, "link_same"))
        return
    desk.say(message.chat.id, desk.t(user, "linked_done" if linked else "unlinked_done",
                                     a=chats[0].ref, b=chats[1].ref))


def find_command(desk: Desk, message: types.Message, user: User) -> None:
    words = (message.text or "").split(maxsplit=1)
    if len(words) > 1:
        answer_search(desk, message.chat.id, user, words[1])
        return
    ask_query(desk, message.chat.id, user)


def ask_query(desk: Desk, chat_id: int, user: User) -> None:
    desk.state.set(user.tg_id, None, SEARCH_MODE)
    desk.say(chat_id, desk.t(user, "search_prompt"), key="search_prompt")


def find_label(desk: Desk, message: types.Message, user: User) -> None:
    ask_query(desk, message.chat.id, user)


def answer_search(desk: Desk, chat_id: int, user: User, query: str) -> None:
    """The card of the one chat found, a list of several, or why nothing was looked up."""
    found = desk.deps.tools.search.find(query)
    if isinstance(found, Refused):
        key = "search_too_short" if found.why is Refusal.TOO_SHORT else "search_nothing"
        desk.say(chat_id, desk.t(user, key, limit=found.limit), key="search_refused")
        return
    if desk.state.get(user.tg_id).mode == SEARCH_MODE:
        desk.state.clear(user.tg_id)
    if len(found) == 1:
        show_chat(desk, user, chat_id, found[0], key="search_card")
        return
    if not found:
        desk.say(chat_id, desk.t(user, "search_nothing"), key="search_none")
        return
    body, keyboard = desk_views.results(desk.codec, desk.lang(user), found, query)
    desk.say(chat_id, body, to_markup(keyboard), key="search_results")


def open_writing(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    """From a notification: the card, and writing mode at once (one tap, not two)."""
    chat = known_chat(desk, call, user)
    if chat is None:
        return
    show_chat(desk, user, user.tg_id, chat)
    refusal = enter_send_mode(desk, user, user.tg_id, chat.id)
    desk.answer(call, refusal, alert=refusal is not None)


def register(bot: TeleBot, desk: Desk) -> None:
    bot.register_message_handler(partial(open_command, desk), role="manager", content_types=["text"],
                                 func=lambda m: (m.text or "").startswith("/open_chat"))
    bot.register_message_handler(partial(link_command, desk), role="manager", content_types=["text"],
                                 func=lambda m: (m.text or "").startswith(("/link_", "/unlink_")))
    bot.register_message_handler(partial(find_command, desk), role="manager", content_types=["text"],
                                 commands=["find"])
    bot.register_message_handler(partial(find_label, desk), chat_types=["private"], role="manager",
                                 content_types=["text"],
                                 func=lambda m: key_of_label(m.text or "", ("find_chat",)) is not None)
    bot.register_callback_query_handler(partial(open_writing, desk), func=None, action="openw",
                                        role="manager")
