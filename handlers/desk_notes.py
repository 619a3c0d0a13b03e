"""Internal notes (SPEC §8): "📝 Нотатка" on a chat (the next message is the note) or
`/note <text>` for the current chat. A note is stored and shown to colleagues on the
card and in the history; it is never sent to the customer."""
from __future__ import annotations

from functools import partial

from telebot import TeleBot, types

from handlers.common import Desk, known_chat, private_chat_of
from models.users import User
from services.results import Refusal, Refused

NOTE_MODE = "note"


def note_tap(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    chat = known_chat(desk, call, user)
    if chat is None:
        return
    desk.state.set(user.tg_id, chat.id, NOTE_MODE)
    desk.say(private_chat_of(call, user), desk.t(user, "note_prompt", id_i=chat.ref), key="note_prompt")
    desk.answer(call)


def note_command(desk: Desk, message: types.Message, user: User) -> None:
    words = (message.text or "").split(maxsplit=1)
    state = desk.state.get(user.tg_id)
    save(desk, message, user, state.conversation_id, words[1] if len(words) > 1 else "")


def save(desk: Desk, message: types.Message, user: User, conversation_id: int | None,
         body: str) -> None:
    saved = desk.deps.tools.notes.add(user, conversation_id, body)
    if isinstance(saved, Refused):
        desk.reply(message, refused_text(desk, user, saved))
        return
    state = desk.state.get(user.tg_id)
    if state.mode == NOTE_MODE:
        desk.state.set(user.tg_id, saved.id, None)
    desk.reply(message, desk.t(user, "note_saved", id_i=saved.ref), conversation_id=saved.id)


def refused_text(desk: Desk, user: User, refused: Refused) -> str:
    if refused.why is Refusal.TOO_LONG:
        return desk.t(user, "note_too_long", length=refused.detail, limit=refused.limit)
    if refused.why is Refusal.EMPTY:
        return desk.t(user, "note_empty")
    return desk.t(user, "note_no_chat")


def register(bot: TeleBot, desk: Desk) -> None:
    bot.register_message_handler(partial(note_command, desk), role="manager", content_types=["text"],
                                 commands=["note"])
    bot.register_callback_query_handler(partial(note_tap, desk), func=None, action="note",
                                        role="manager")
