"""The 24-hour window (CHANNELS.md §3): outside it a WhatsApp customer may only be sent
an approved template. Before the manager types (on taking the chat, on entering writing
mode, or when a free-form answer is refused) the desk says so and offers the shop's
templates as buttons; a template with parameters asks for them, one per line. The send
itself is the writing service's durable step, like any answer."""
from __future__ import annotations

from functools import partial

from telebot import TeleBot, types

from bot import answers
from bot.keyboards import inline
from handlers.common import Desk, callback_args
from models.conversations import Conversation
from models.state import SEND_MODE
from models.users import User
from services.writing import ManagerMessage

MODE = "tpl:"


def offer(desk: Desk, user: User, chat_id: int, chat: Conversation) -> bool:
    """Say the window is closed and offer the templates; False when it is open."""
    channel = desk.deps.channels.get(chat.channel)
    if channel is None or not channel.window_closed(chat, desk.clock()):
        return False
    templates = channel.templates()
    if not templates:
        desk.send(chat_id, desk.t(user, "wa_window_no_templates"), key="window")
        return True
    rows = [[(f"📋 {name}" + (f" ({count})" if count else ""), desk.codec.encode("tpl", chat.id, index))]
            for index, (name, count) in enumerate(templates)]
    desk.send(chat_id, desk.t(user, "wa_window_closed"), inline(rows), conversation_id=chat.id,
              purpose="templates", key="templates")
    return True


def _template(desk: Desk, chat: Conversation | None, index: int) -> tuple[str, int] | None:
    channel = desk.deps.channels.get(chat.channel) if chat else None
    templates = channel.templates() if channel else ()
    return templates[index] if 0 <= index < len(templates) else None


def send(desk: Desk, user: User, tg_chat_id: int, tg_message_id: int, chat: Conversation,
         name: str, params: list[str]) -> str | None:
    """Record the template as the manager's answer; the refusal's text, if any."""
    template = {"name": name, "language": desk.settings.whatsapp_template_language, "params": params}
    summary = f"📋 {name}" + (": " + ", ".join(params) if params else "")
    result = desk.writer.perform(user, chat.id, ManagerMessage(tg_chat_id, tg_message_id, summary,
                                                               template=template))
    return answers.refusal_text(result, chat.ref, desk.lang(user))


def choose(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    conversation_id, index = callback_args(desk, call)
    chat = desk.chats.get(conversation_id)
    found = _template(desk, chat, index)
    if found is None:
        desk.answer(call, desk.t(user, "wa_template_unknown"))
        return
    name, count = found
    if count:
        desk.state.set(user.tg_id, conversation_id, f"{MODE}{index}")
        desk.say(user.tg_id, desk.t(user, "wa_template_params", name=name, count=count))
        desk.answer(call)
        return
    refusal = send(desk, user, call.message.chat.id, call.message.message_id, chat, name, [])
    desk.answer(call, refusal or desk.t(user, "wa_template_chosen", name=name), alert=refusal is not None)


def in_template_mode(desk: Desk, message: types.Message) -> bool:
    if message.chat.type != "private" or message.reply_to_message is not None:
        return False
    mode = desk.state.get(message.from_user.id).mode or ""
    return mode.startswith(MODE)


def parameters(desk: Desk, message: types.Message, user: User) -> None:
    state = desk.state.get(user.tg_id)
    chat = desk.chats.get(state.conversation_id) if state.conversation_id else None
    found = _template(desk, chat, int(state.mode[len(MODE):]))
    if found is None:
        desk.state.set(user.tg_id, state.conversation_id, SEND_MODE)
        desk.reply(message, desk.t(user, "wa_template_unknown"))
        return
    name, count = found
    values = [line.strip() for line in (message.text or "").split("\n") if line.strip()]
    if len(values) != count:
        desk.reply(message, desk.t(user, "wa_template_wrong_count", name=name, count=count,
                                   given=len(values)))
        return
    desk.state.set(user.tg_id, chat.id, SEND_MODE)
    refusal = send(desk, user, message.chat.id, message.message_id, chat, name, values)
    if refusal:
        desk.reply(message, refusal)


def register(bot: TeleBot, desk: Desk) -> None:
    bot.register_callback_query_handler(partial(choose, desk), func=None, action="tpl", role="manager")
    bot.register_message_handler(partial(parameters, desk), content_types=["text"], role="manager",
                                 func=partial(in_template_mode, desk))
