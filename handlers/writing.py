"""Writing to the client (SPEC §3, flow 3): text, photo or document, in send-message mode
or as a Telegram reply to a bot message about the chat.

The handler only decodes the message and asks the writing service to record it; the
delivery is a durable step that confirms with ✅ (or tells why not) when it is done. So
a Telegram hiccup while confirming can never send the customer a second copy."""
from __future__ import annotations

import logging
import mimetypes
from functools import partial

from telebot import TeleBot, types

from bot import answers
from handlers import templates
from handlers.common import Desk
from models.outbound import Attachment
from models.users import User
from services.writing import ManagerMessage, Outcome

log = logging.getLogger(__name__)

SUPPORTED = ("text", "photo", "document")
OTHER_CONTENT = ["audio", "video", "voice", "video_note", "sticker", "animation", "location",
                 "contact", "venue", "poll", "dice"]
MAX_FILE_NAME = 200


class Unmapped(Exception):
    """A reply to a bot message that is about no chat (a list, a notice)."""


def target_chat(desk: Desk, message: types.Message, user: User) -> int | None:
    """The conversation a manager's message is for: the one of the bot message they
    replied to, else (in their private chat) the one of their send-message mode. A reply
    to a bot message about no conversation is for none: it never falls through to the
    send mode."""
    replied = message.reply_to_message
    if replied is not None:
        mapped = desk.message_map.lookup(message.chat.id, replied.message_id)
        if mapped is not None:
            return mapped.conversation_id
        if replied.from_user is not None and replied.from_user.is_bot:
            raise Unmapped()
    if message.chat.type != "private":
        return None  # in a group only replies to our posts are messages to clients
    state = desk.state.get(user.tg_id)
    return state.conversation_id if state.sending else None


def decode(message: types.Message) -> ManagerMessage:
    """The manager's Telegram message as what the writing service needs."""
    body = (message.text if message.content_type == "text" else message.caption) or ""
    attachment = None
    if message.content_type == "photo":
        photo = max(message.photo, key=lambda p: (p.width or 0) * (p.height or 0))
        attachment = Attachment(photo.file_id, f"photo_{message.message_id}.jpg", "image/jpeg",
                                photo.file_size)
    elif message.content_type == "document":
        document = message.document
        name = (document.file_name or f"file_{message.message_id}")[:MAX_FILE_NAME]
        mime = document.mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        attachment = Attachment(document.file_id, name, mime, document.file_size)
    return ManagerMessage(message.chat.id, message.message_id, body, attachment)


def content(desk: Desk, message: types.Message, user: User) -> None:
    if message.content_type == "text" and message.text.startswith("/"):
        return  # a command nobody handled: never forwarded to a client
    try:
        conversation_id = target_chat(desk, message, user)
    except Unmapped:
        desk.reply(message, desk.t(user, "reply_to_unknown"))
        return
    if conversation_id is None:
        if message.chat.type == "private":
            desk.say(message.chat.id, desk.t(user, "choose_chat_first"))
        return
    result = desk.writer.perform(user, conversation_id, decode(message))
    if result.outcome is Outcome.WINDOW_CLOSED:   # in a message: the templates it may send
        templates.offer(desk, user, message.chat.id, desk.chats.get(conversation_id))
        return
    said = answers.refusal_text(result, conversation_id, desk.lang(user))
    if said is not None:
        desk.reply(message, said)
    # accepted: the ✅ comes with the delivery (a re-delivered update: nothing to say).


def unsupported(desk: Desk, message: types.Message, user: User) -> None:
    try:
        target = target_chat(desk, message, user)
    except Unmapped:
        target = None
    if target is not None:
        desk.reply(message, desk.t(user, "unsupported_content"))


def register(bot: TeleBot, desk: Desk) -> None:
    bot.register_message_handler(partial(content, desk), content_types=list(SUPPORTED),
                                 role="manager")
    bot.register_message_handler(partial(unsupported, desk), content_types=OTHER_CONTENT,
                                 role="manager")
