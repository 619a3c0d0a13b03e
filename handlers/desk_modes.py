"""What a manager's next message is, when the desk asked for one (search, note, a new
canned reply), and a manager's album (SPEC §8). Registered before `writing`, so such a
message is never taken for an answer to a customer."""
from __future__ import annotations

from functools import partial

from telebot import TeleBot, types

from handlers import desk_find, desk_notes, desk_replies
from handlers.common import Desk
from handlers.writing import Unmapped, decode, target_chat
from models.users import User

MODES = (desk_find.SEARCH_MODE, desk_notes.NOTE_MODE, desk_replies.CANNED_MODE)


def mode_of(desk: Desk, message: types.Message) -> str | None:
    """The mode this message answers: only in the private chat, not a Telegram reply (a
    reply to a post goes to its chat), not a command."""
    if message.chat.type != "private" or message.reply_to_message is not None:
        return None
    if message.content_type == "text" and (message.text or "").startswith("/"):
        return None
    mode = desk.state.get(message.from_user.id).mode
    return mode if mode in MODES else None


def in_mode(desk: Desk, message: types.Message, user: User) -> None:
    mode = desk.state.get(user.tg_id)
    if mode.mode == desk_find.SEARCH_MODE and message.content_type == "text":
        desk_find.answer_search(desk, message.chat.id, user, message.text)
    elif mode.mode == desk_notes.NOTE_MODE and message.content_type == "text":
        desk_notes.save(desk, message, user, mode.conversation_id, message.text)
    elif mode.mode == desk_replies.CANNED_MODE and user.is_admin:
        desk_replies.save_reply(desk, message, user)
    else:
        desk.state.clear(user.tg_id)
        desk.reply(message, desk.t(user, "mode_cancelled"))


def album_part(desk: Desk, message: types.Message, user: User) -> None:
    """One photo or file of an album for a customer: kept; the album goes as one message."""
    try:
        conversation_id = target_chat(desk, message, user)
    except Unmapped:
        conversation_id = None
    if conversation_id is None:
        desk.say(message.chat.id, desk.t(user, "choose_chat_first"), once=f"album:{message.media_group_id}")
        return
    desk.deps.tools.albums.collect(user.tg_id, conversation_id, message.media_group_id, decode(message))


def register(bot: TeleBot, desk: Desk) -> None:
    bot.register_message_handler(partial(in_mode, desk), role="manager",
                                 content_types=["text", "photo", "document"],
                                 func=partial(mode_of, desk))
    bot.register_message_handler(partial(album_part, desk), role="manager",
                                 content_types=["photo", "document"],
                                 func=lambda m: bool(getattr(m, "media_group_id", None)))
