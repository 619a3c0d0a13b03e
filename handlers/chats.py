"""One chat: its card and menu, history pages, read status, task status, unpin, and the
send-message mode (SPEC §3, flows 4–8)."""
from __future__ import annotations

from telebot import TeleBot, types

from bot import formatting as fmt
from bot import views
from bot.keyboards import main_menu, send_mode_keyboard, to_markup
from bot.texts import key_of_label, text
from crm.client import CrmError
from handlers.common import Desk, callback_args
from models.chats import Chat
from models.pins import PIN
from models.state import SEND_MODE
from models.users import User

RECENT = 5
SEND_MODE_KEYS = ("history_chat", "send_status_read", "back_to_chat")


def show_chat(desk: Desk, user: User, chat_id: int, chat: Chat) -> None:
    """Send the chat's card with its last messages and its menu; the chat becomes current."""
    body, keyboard = render_chat(desk, user, chat)
    desk.state.set(user.tg_id, chat.id_i, None)
    desk.send(chat_id, body, to_markup(keyboard), id_i=chat.id_i, purpose="card")


def render_chat(desk: Desk, user: User, chat: Chat, *, recent: int = RECENT) -> tuple[str, dict]:
    holder = desk.pins.active(chat.id_i)
    mine = holder is not None and holder[0].manager_id == user.tg_id
    language = desk.lang(user)
    card = views.chat_card(chat, holder[1] if holder else None, language)
    blocks = [views.message_block(m, language) for m in desk.messages.recent(chat.id_i, recent)]
    body = card
    # Whole message blocks only, newest kept: finished HTML is never cut.
    while blocks:
        body = card + "\n\n" + "\n\n".join(blocks)
        if fmt.visible_len(body) <= fmt.TEXT_LIMIT:
            break
        blocks.pop(0)
        body = card
    keyboard = views.chat_menu(desk.codec, language, chat, mine=mine,
                               mine_kind=holder[0].kind if mine else None)
    return body, keyboard


def history(desk: Desk, chat: Chat, page: int, user: User) -> tuple[str, dict]:
    offset = page * views.HISTORY_PAGE
    rows = desk.messages.page(chat.id_i, offset, views.HISTORY_PAGE + 1)
    has_older = len(rows) > views.HISTORY_PAGE
    shown = list(reversed(rows[:views.HISTORY_PAGE]))
    language = desk.lang(user)
    return (views.history_page(chat, shown, page, language),
            views.history_keyboard(desk.codec, language, chat.id_i, page, has_older))


def enter_send_mode(desk: Desk, user: User, chat_id: int, chat: Chat) -> None:
    desk.state.set(user.tg_id, chat.id_i, SEND_MODE)
    prompt = desk.t(user, "you_answer", id_i=chat.id_i, email=fmt.escape(chat.email or "—"))
    prompt += "\n" + desk.t(user, "send_mode_on")
    desk.send(chat_id, prompt, send_mode_keyboard(desk.lang(user)), id_i=chat.id_i, purpose="prompt")


def mark_read(desk: Desk, user: User, id_i: int) -> str:
    try:
        desk.deps.crm.seen(id_i)
    except CrmError:
        return desk.t(user, "crm_unavailable")
    desk.lists.mark_read(id_i)
    return desk.t(user, "read_ok")


def register(bot: TeleBot, desk: Desk) -> None:
    def known_chat(call: types.CallbackQuery, user: User) -> Chat | None:
        id_i = callback_args(desk, call)[0]
        chat = desk.chats.get(id_i)
        if chat is None:
            desk.answer(call, desk.t(user, "unknown_chat", id_i=id_i))
        return chat

    def open_chat(call: types.CallbackQuery, user: User) -> None:
        chat = known_chat(call, user)
        if chat is not None:
            show_chat(desk, user, call.message.chat.id if call.message.chat.type == "private"
                      else user.tg_id, chat)
            desk.answer(call)

    def history_page(call: types.CallbackQuery, user: User) -> None:
        id_i, page = callback_args(desk, call)
        chat = desk.chats.get(id_i)
        if chat is None or page < 0:
            desk.answer(call, desk.t(user, "stale_button"))
            return
        body, keyboard = history(desk, chat, page, user)
        if _is_history(desk, call):  # ◀ ▶ turn the page in place
            desk.edit(call.message.chat.id, call.message.message_id, body, to_markup(keyboard))
        else:
            desk.send(call.message.chat.id, body, to_markup(keyboard), id_i=id_i, purpose="history")
        desk.answer(call)

    def write(call: types.CallbackQuery, user: User) -> None:
        chat = known_chat(call, user)
        if chat is not None:
            enter_send_mode(desk, user, user.tg_id, chat)
            desk.answer(call)

    def read(call: types.CallbackQuery, user: User) -> None:
        chat = known_chat(call, user)
        if chat is not None:
            desk.answer(call, mark_read(desk, user, chat.id_i))

    def toggle_status(call: types.CallbackQuery, user: User) -> None:
        chat = known_chat(call, user)
        if chat is None:
            return
        if not chat.is_task:
            desk.answer(call, desk.t(user, "not_a_task"))
            return
        status = "done" if chat.status in ("new", "in_work") else "in_work"
        desk.lists.set_status(chat.id_i, status)
        desk.answer(call, desk.t(user, "status_changed", id_i=chat.id_i,
                                 status=desk.t(user, f"status_{status}")))
        mapped = desk.message_map.lookup(call.message.chat.id, call.message.message_id)
        if mapped is not None and mapped.purpose == "card":  # the card shows the new status
            body, keyboard = render_chat(desk, user, desk.chats.get(chat.id_i))
            desk.edit(call.message.chat.id, call.message.message_id, body, to_markup(keyboard))

    def unpin(call: types.CallbackQuery, user: User) -> None:
        chat = known_chat(call, user)
        if chat is None:
            return
        holder = desk.pins.active(chat.id_i)
        if holder is None or holder[0].manager_id != user.tg_id:
            desk.answer(call, desk.t(user, "not_your_pin"))
            return
        if holder[0].kind != PIN:
            desk.answer(call, desk.t(user, "unpin_task_refused"), alert=True)
            return
        if desk.claims.release(chat.id_i, user, now=desk.clock()) is None:
            desk.answer(call, desk.t(user, "not_your_pin"))
            return
        desk.state.clear(user.tg_id)
        desk.log_change_pin(user, text("change_pin_removed", desk.lang(None)), chat.id_i)
        desk.answer(call, desk.t(user, "unpinned", id_i=chat.id_i))
        bot.send_message(user.tg_id, desk.t(user, "unpinned", id_i=chat.id_i),
                         reply_markup=main_menu(desk.lang(user)))

    def send_mode_label(message: types.Message, user: User) -> None:
        """The reply-keyboard buttons shown while writing to a client."""
        state = desk.state.get(user.tg_id)
        chat = desk.chats.get(state.current_id_i) if state.current_id_i else None
        if chat is None:
            bot.send_message(message.chat.id, desk.t(user, "choose_chat_first"),
                             reply_markup=main_menu(desk.lang(user)))
            return
        key = key_of_label(message.text, SEND_MODE_KEYS)
        if key == "history_chat":
            body, keyboard = history(desk, chat, 0, user)
            desk.send(message.chat.id, body, to_markup(keyboard), id_i=chat.id_i, purpose="history")
        elif key == "send_status_read":
            bot.send_message(message.chat.id, mark_read(desk, user, chat.id_i))
        else:
            bot.send_message(message.chat.id, desk.t(user, "main_menu"),
                             reply_markup=main_menu(desk.lang(user)))
            show_chat(desk, user, message.chat.id, chat)

    bot.register_callback_query_handler(open_chat, func=None, action="open", role="manager")
    bot.register_callback_query_handler(history_page, func=None, action="hist", role="manager")
    bot.register_callback_query_handler(write, func=None, action="write", role="manager")
    bot.register_callback_query_handler(read, func=None, action="read", role="manager")
    bot.register_callback_query_handler(toggle_status, func=None, action="status", role="manager")
    bot.register_callback_query_handler(unpin, func=None, action="unpin", role="manager")
    bot.register_message_handler(
        send_mode_label, chat_types=["private"], role="manager", content_types=["text"],
        func=lambda m: key_of_label(m.text or "", SEND_MODE_KEYS) is not None)


def _is_history(desk: Desk, call: types.CallbackQuery) -> bool:
    mapped = desk.message_map.lookup(call.message.chat.id, call.message.message_id)
    return mapped is not None and mapped.purpose == "history"
