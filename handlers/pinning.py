"""Taking a chat: the "✍ Відповісти" / "🔑 Підключитися" buttons under shared-chat posts
(SPEC §3, flow 2), and the shared post kept up to date with who has the chat."""
from __future__ import annotations

import logging
from functools import partial

from telebot import TeleBot, types

from bot import claim_views
from bot import formatting as fmt
from bot.keyboards import inline, to_markup
from bot.texts import text
from handlers.chats import history, send_mode_prompt
from handlers.common import Desk, callback_args
from models.locks import LockTimeout
from models.users import User
from services.claims import ClaimResult, Outcome

log = logging.getLogger(__name__)


def show_taken(desk: Desk, user: User, conversation_id: int, result: ClaimResult) -> None:
    """A chat that is the manager's now (services/chat_actions.py::ChatActions.take did the
    rest, writing mode included): its history and the send-message prompt (two separate sends: one failing never
    keeps the other back)."""
    if result.outcome not in (Outcome.CLAIMED, Outcome.ALREADY_MINE):
        return
    chat = desk.chats.get(conversation_id)
    body, keyboard = history(desk, chat, 0, user)
    desk.send(user.tg_id, body, to_markup(keyboard), conversation_id=conversation_id,
              purpose="history")
    send_mode_prompt(desk, user, user.tg_id, chat)


def note_on_post(desk: Desk, call: types.CallbackQuery, user: User, result: ClaimResult) -> None:
    """Write on the shared post who has the chat, who else tapped, or that it was answered."""
    message = call.message
    with desk.deps.locks.lock("post", f"{message.chat.id}:{message.message_id}", timeout=5):
        mapped = desk.message_map.lookup(message.chat.id, message.message_id)
        if mapped is None or mapped.html is None:
            return
        notes = dict(mapped.notes or {})
        keep_button = True
        if result.outcome is Outcome.CLAIMED:
            notes["manager"] = result.holder.display_name
        elif result.outcome is Outcome.TAKEN_BY:
            notes["manager"] = result.holder.display_name if result.holder else notes.get("manager")
            tapped = notes.setdefault("tapped", [])
            if user.display_name not in tapped:
                tapped.append(user.display_name)
        elif result.outcome is Outcome.ALREADY_ANSWERED:
            notes["answered"] = True
            keep_button = False     # "✍ Відповісти" goes; "👉 Відкрити чат" stays
        else:
            return
        desk.message_map.set_notes(message.chat.id, message.message_id, notes)
    desk.edit(message.chat.id, message.message_id,
              mapped.html + "\n" + notes_html(notes, desk.lang(None)),
              message.reply_markup if keep_button else inline(
                  [[(text("btn_open_answered", desk.lang(None)),
                     desk.codec.encode("open", mapped.conversation_id))]]),
              caption=message.content_type == "photo")


# What the notes under a post may take: the post left NOTES_ROOM for them (bot/posts.py).
NOTE_NAME_ROOM = 50
NOTE_TAPPED_ROOM = 80


def notes_html(notes: dict, language: str) -> str:
    """Who has the chat, who else tapped, whether it was answered — within the room the
    post keeps for them, however many people tapped and however long their names."""
    lines = []
    if notes.get("manager"):
        lines.append(text("post_manager", language,
                          name=fmt.shorten(notes["manager"], NOTE_NAME_ROOM)))
    tapped = notes.get("tapped") or []
    if tapped:
        shown: list[str] = []
        for name in tapped:
            if len(", ".join(shown + [fmt.shorten(name, 30)])) > NOTE_TAPPED_ROOM:
                break
            shown.append(fmt.shorten(name, 30))
        rest = len(tapped) - len(shown)
        lines.append(text("post_also_tapped", language,
                          names=", ".join(shown) + (f" +{rest}" if rest else "")))
    if notes.get("answered"):
        lines.append(text("post_answered", language))
    return "\n".join(lines)


def take(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    client_message = desk.messages.get(callback_args(desk, call)[0])
    if client_message is None:
        desk.answer(call, desk.t(user, "stale_button"))
        return
    conversation_id = client_message.conversation_id
    try:
        result = desk.actions.take(user, conversation_id, answering_message_id=client_message.id)
    except LockTimeout:
        result = None
    chat = desk.chats.get(conversation_id)
    said, alert = claim_views.tap_answer(result, chat.ref if chat else conversation_id, desk.lang(user))
    desk.answer(call, said, alert=alert)
    if result is None:
        return
    if call.message is not None and call.message.chat.id == desk.settings.chat_new_message:
        note_on_post(desk, call, user, result)
    show_taken(desk, user, conversation_id, result)


def register(bot: TeleBot, desk: Desk) -> None:
    bot.register_callback_query_handler(partial(take, desk), func=None,
                                        action=("reply", "connect"), role="manager")
