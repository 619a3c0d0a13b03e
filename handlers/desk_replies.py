"""Canned replies (SPEC §8): admins keep them with /replies (➕ add: the next message is the
reply — first line its title, then its text with placeholders, optionally as a photo's or
a file's caption; 🗑 delete); a manager picks one in a chat with one tap ("💬 Шаблони")
or with inline mode (`@bot word`).

Editable before sending: a picked reply comes to the manager as a *draft* — filled for
the chat — with "✅ Надіслати" (sends it as it is) and "📋 Копіювати" (copies it, to change
and send as an ordinary message). A reply chosen in inline mode lands in the manager's
chat as their own message "via @bot": it is taken as a draft too, never sent on its own.
"""
from __future__ import annotations

from functools import partial

from telebot import TeleBot, types

from bot import answers
from bot import desk_views
from bot import formatting as fmt
from bot.keyboards import to_markup
from handlers.common import Desk, callback_args, private_chat_of
from models.outbound import Attachment
from models.users import User
from services.desk_tools import PLACEHOLDERS
from services.results import Refusal, Refused
from services.writing import ManagerMessage

CANNED_MODE = "canned_add"
INLINE_RESULTS = 20


def replies_command(desk: Desk, message: types.Message, user: User) -> None:
    replies, total = desk.deps.tools.replies.page(0, 50)
    body, keyboard = desk_views.replies_list(desk.codec, desk.lang(user), None, replies, 0, total,
                                             admin=True)
    desk.say(message.chat.id, body, to_markup(keyboard), key="replies")


def add_tap(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    desk.state.set(user.tg_id, None, CANNED_MODE)
    desk.say(private_chat_of(call, user), desk.t(user, "canned_add_prompt",
                                                 names=", ".join("{" + n + "}" for n in PLACEHOLDERS)),
             key="canned_prompt")
    desk.answer(call)


def save_reply(desk: Desk, message: types.Message, user: User) -> None:
    """The message after ➕: a reply, refused with a clear answer when it is not right."""
    body = (message.text if message.content_type == "text" else message.caption) or ""
    file = {}
    if message.content_type == "photo":
        photo = max(message.photo, key=lambda p: (p.width or 0) * (p.height or 0))
        file = dict(file_id=photo.file_id, file_kind="photo", file_name="photo.jpg",
                    file_mime="image/jpeg", file_size=photo.file_size)
    elif message.content_type == "document":
        document = message.document
        file = dict(file_id=document.file_id, file_kind="document", file_name=document.file_name,
                    file_mime=document.mime_type, file_size=document.file_size)
    saved = desk.deps.tools.replies.add(user, body, **file)
    if isinstance(saved, Refused):
        desk.reply(message, refused_text(desk, user, saved))
        return
    desk.state.clear(user.tg_id)
    desk.reply(message, desk.t(user, "canned_saved", title=saved.title))


def refused_text(desk: Desk, user: User, refused: Refused) -> str:
    names = ", ".join("{" + n + "}" for n in PLACEHOLDERS)
    if refused.why is Refusal.UNKNOWN_PLACEHOLDER:
        return desk.t(user, "canned_unknown_placeholder", name=refused.detail, names=names)
    if refused.why is Refusal.BAD_BRACES:
        return desk.t(user, "canned_bad_braces", names=names)
    if refused.why is Refusal.TOO_LONG:
        return desk.t(user, "canned_too_long", limit=refused.limit)
    return desk.t(user, "canned_empty_reply")


def delete_tap(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    (reply_id,) = callback_args(desk, call)
    deleted = desk.deps.tools.replies.delete(reply_id)
    replies, total = desk.deps.tools.replies.page(0, 50)
    body, keyboard = desk_views.replies_list(desk.codec, desk.lang(user), None, replies, 0, total,
                                             admin=True)
    desk.edit(call.message.chat.id, call.message.message_id, body, to_markup(keyboard))
    desk.answer(call, desk.t(user, "canned_deleted" if deleted else "stale_button"))


def chat_replies(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    conversation_id, page = callback_args(desk, call)
    chat = desk.chats.get(conversation_id)
    if chat is None or page < 0:
        desk.answer(call, desk.t(user, "stale_button"))
        return
    replies, total = desk.deps.tools.replies.page(page * desk_views.PAGE, desk_views.PAGE)
    body, keyboard = desk_views.replies_list(desk.codec, desk.lang(user), chat, replies, page,
                                             total, admin=user.is_admin)
    desk.send(private_chat_of(call, user), body, to_markup(keyboard), conversation_id=chat.id,
              purpose="canned")
    desk.answer(call)


def pick(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    reply_id, conversation_id = callback_args(desk, call)
    send_draft(desk, private_chat_of(call, user), user, reply_id, conversation_id)
    desk.answer(call)


def send_draft(desk: Desk, chat_id: int, user: User, reply_id: int, conversation_id: int | None) -> None:
    tools = desk.deps.tools
    reply = tools.replies.get(reply_id)
    chat = desk.chats.get(conversation_id) if conversation_id else None
    if reply is None or chat is None:
        desk.say(chat_id, desk.t(user, "draft_no_chat" if reply else "stale_button"), key="draft")
        return
    body, keyboard = desk_views.draft(desk.codec, desk.lang(user), chat, reply,
                                      tools.replies.filled(reply, chat.id, user))
    desk.send(chat_id, body, keyboard, conversation_id=chat.id, purpose="draft", key="draft")


def send_picked(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    """✅ under a draft: the reply goes to the customer as it is (once, however often tapped)."""
    reply_id, conversation_id = callback_args(desk, call)
    reply = desk.deps.tools.replies.get(reply_id)
    if reply is None or desk.chats.get(conversation_id) is None:
        desk.answer(call, desk.t(user, "stale_button"))
        return
    attachment = (Attachment(reply.file_id, reply.file_name or "file", reply.file_mime or
                             "application/octet-stream", reply.file_size) if reply.file_id else None)
    text = desk.deps.tools.replies.filled(reply, conversation_id, user)
    result = desk.writer.perform(user, conversation_id, ManagerMessage(
        call.message.chat.id, call.message.message_id, text, attachment))
    show_written(desk, call, user, result, conversation_id)


def show_written(desk: Desk, call: types.CallbackQuery, user: User, result, conversation_id: int) -> None:
    """✅ only when the reply was recorded for the customer; a refusal, as an alert."""
    said = answers.refusal_text(result, desk.writer.chat_ref(conversation_id), desk.lang(user))
    if said is None:
        desk.answer(call, desk.t(user, "draft_sending"))
    else:
        desk.answer(call, said, alert=True)


def inline_query(desk: Desk, query: types.InlineQuery, user: User) -> None:
    """`@bot word`: the replies matching the words, filled for the manager's current chat."""
    state = desk.state.get(user.tg_id)
    replies, _ = desk.deps.tools.replies.page(0, INLINE_RESULTS, query.query or "")
    results = []
    for reply in replies:
        filled = desk.deps.tools.replies.filled(reply, state.conversation_id, user) or reply.title
        results.append(types.InlineQueryResultArticle(
            id=f"r{reply.id}", title=reply.title[:64], description=fmt.shorten(filled, 120),
            input_message_content=types.InputTextMessageContent(filled[:4096])))
    desk.api.answer_inline(query.id, results)


def chosen_draft(desk: Desk, message: types.Message, user: User) -> None:
    """A reply chosen in inline mode: a draft for the current chat, not sent by itself."""
    state = desk.state.get(user.tg_id)
    chat = desk.chats.get(state.conversation_id) if state.conversation_id else None
    if chat is None:
        desk.reply(message, desk.t(user, "draft_no_chat"))
        return
    keyboard = {"inline_keyboard": [[{"text": desk.t(user, "btn_draft_send"),
                                      "callback_data": desk.codec.encode("dsend", chat.id)}]]}
    desk.say(message.chat.id, desk.t(user, "draft_inline_hint", id_i=chat.ref), keyboard,
             key="draft_hint", conversation_id=chat.id, reply_to=message.message_id)


def send_chosen(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    """✅ under an inline draft: the manager's message it answers goes to the customer."""
    (conversation_id,) = callback_args(desk, call)
    chosen = call.message.reply_to_message if call.message else None
    if chosen is None or not chosen.text or desk.chats.get(conversation_id) is None:
        desk.answer(call, desk.t(user, "stale_button"))
        return
    result = desk.writer.perform(user, conversation_id, ManagerMessage(
        chosen.chat.id, chosen.message_id, chosen.text))
    show_written(desk, call, user, result, conversation_id)


def _via_our_bot(desk: Desk, message: types.Message) -> bool:
    via = getattr(message, "via_bot", None)
    return via is not None and str(via.id) == desk.settings.bot_token.split(":", 1)[0]


def register(bot: TeleBot, desk: Desk) -> None:
    bot.register_message_handler(partial(replies_command, desk), role="admin", content_types=["text"],
                                 commands=["replies"])
    bot.register_message_handler(partial(chosen_draft, desk), role="manager",
                                 content_types=["text"], func=partial(_via_our_bot, desk))
    for handler, action, role in ((add_tap, "cadd", "admin"), (delete_tap, "cdel", "admin"),
                                  (chat_replies, "canned", "manager"), (pick, "cpick", "manager"),
                                  (send_picked, "csend", "manager"), (send_chosen, "dsend", "manager")):
        bot.register_callback_query_handler(partial(handler, desk), func=None, action=action, role=role)
    bot.register_inline_handler(partial(inline_query, desk), func=lambda q: True, role="manager")
