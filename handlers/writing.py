"""Writing to the client (SPEC §3, flow 3): text, photo or document, in send-message mode
or as a Telegram reply to any bot message about the chat. Files are uploaded to the CRM
first, then attached. The manager gets ✅ or a clear error; the pin's window restarts."""
from __future__ import annotations

import logging
import mimetypes

from telebot import TeleBot, types

from crm.client import CrmError, CrmRejected
from handlers.common import Desk
from handlers.pinning import claim
from models.claims import Outcome
from models.users import User

log = logging.getLogger(__name__)

TELEGRAM_DOWNLOAD_LIMIT = 20 * 1024 * 1024
SUPPORTED = ("text", "photo", "document")
OTHER_CONTENT = ["audio", "video", "voice", "video_note", "sticker", "animation", "location",
                 "contact", "venue", "poll", "dice"]


class Refused(Exception):
    """Nothing was sent to the client; the message says why (already in the user's language)."""


def target_chat(desk: Desk, message: types.Message, user: User) -> int | None:
    """The CRM chat a manager's message is for: the chat of the bot message they replied
    to, else the chat of their send-message mode."""
    replied = message.reply_to_message
    if replied is not None:
        mapped = desk.message_map.lookup(message.chat.id, replied.message_id)
        if mapped is not None:
            return mapped.id_i
    if message.chat.type != "private":
        return None  # in a group only replies to our posts are messages to clients
    state = desk.state.get(user.tg_id)
    return state.current_id_i if state.sending else None


def ensure_holder(desk: Desk, user: User, id_i: int) -> None:
    """A manager writes only into a chat pinned to them; an unpinned chat is taken."""
    result = claim(desk, user, id_i)
    if result.outcome is Outcome.TAKEN_BY:
        name = result.holder.display_name if result.holder else "?"
        raise Refused(desk.t(user, "taken_by", name=name))
    if result.outcome is Outcome.CLAIMED:
        desk.log_change_pin(user, desk.t(None, "change_pin_claimed"), id_i)


def attachment(desk: Desk, user: User, message: types.Message) -> tuple[str, bytes, str] | None:
    if message.content_type == "photo":
        photo = max(message.photo, key=lambda p: (p.width or 0) * (p.height or 0))
        return f"photo_{message.message_id}.jpg", _download(desk, user, photo.file_id, photo.file_size), "image/jpeg"
    if message.content_type == "document":
        document = message.document
        name = document.file_name or f"file_{message.message_id}"
        mime = document.mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        return name, _download(desk, user, document.file_id, document.file_size), mime
    return None


def _download(desk: Desk, user: User, file_id: str, size: int | None) -> bytes:
    if size and size > TELEGRAM_DOWNLOAD_LIMIT:
        raise Refused(desk.t(user, "file_too_big"))
    return desk.bot.download_file(desk.bot.get_file(file_id).file_path)


def write_to_client(desk: Desk, user: User, message: types.Message, id_i: int) -> None:
    body = (message.text if message.content_type == "text" else message.caption) or ""
    limit = desk.settings.crm_max_message_len
    if len(body) > limit:
        raise Refused(desk.t(user, "too_long", length=len(body), limit=limit))
    ensure_holder(desk, user, id_i)
    crm = desk.deps.crm
    try:
        files = []
        upload = attachment(desk, user, message)
        if upload is not None:
            files = crm.upload([upload], lang=desk.lang(user))
        crm.send(id_i, body, files)
    except CrmRejected as exc:
        if exc.max_length:
            raise Refused(desk.t(user, "too_long", length=len(body), limit=exc.max_length)) from exc
        raise Refused(desk.t(user, "crm_refused", reason=exc.error_text or str(exc.status))) from exc
    except CrmError as exc:
        log.warning("sending to chat %s failed: %s", id_i, exc)
        raise Refused(desk.t(user, "crm_unavailable")) from exc
    desk.pins.touch(id_i, user.tg_id, desk.clock())
    desk.inbox.take_signal(id_i)  # store the shop's message: the client counts as answered


def register(bot: TeleBot, desk: Desk) -> None:
    def content(message: types.Message, user: User) -> None:
        if message.content_type == "text" and message.text.startswith("/"):
            return  # a command nobody handled: never forwarded to a client
        id_i = target_chat(desk, message, user)
        if id_i is None:
            if message.chat.type == "private":
                bot.send_message(message.chat.id, desk.t(user, "choose_chat_first"))
            return
        if desk.deps.crm is None or desk.chats.get(id_i) is None:
            bot.send_message(message.chat.id, desk.t(user, "unknown_chat", id_i=id_i))
            return
        try:
            write_to_client(desk, user, message, id_i)
        except Refused as refusal:
            desk.reply(message, str(refusal))
            return
        desk.reply(message, desk.t(user, "sent_ok", id_i=id_i))

    def unsupported(message: types.Message, user: User) -> None:
        if target_chat(desk, message, user) is not None:
            desk.reply(message, desk.t(user, "unsupported_content"))

    bot.register_message_handler(content, content_types=list(SUPPORTED), role="manager")
    bot.register_message_handler(unsupported, content_types=OTHER_CONTENT, role="manager")
