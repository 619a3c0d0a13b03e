"""What every handler area shares: the desk's services, languages, and the one way to
talk to Telegram (`TelegramOut`: send now, edit, enqueue — durable, within the limits)."""
from __future__ import annotations

import logging
from datetime import datetime

from telebot import TeleBot, types
from telebot.custom_filters import AdvancedCustomFilter

from bot import formatting as fmt
from bot.outbox import TelegramOut
from bot.sender import TelegramApi
from bot.texts import language_for, text
from models.conversations import ConversationListRepository, ConversationRepository
from models.message_map import MessageMapRepository
from models.messages import MessageRepository
from models.pins import PinRepository
from models.state import ManagerStateRepository
from models.users import User, UserRepository

log = logging.getLogger(__name__)


class Desk:
    """The services behind the handlers, built once per bot. `deps`: the process's
    composition root (`container.Container`)."""

    def __init__(self, bot: TeleBot, deps) -> None:
        self.bot = bot
        self.api = TelegramApi(bot)
        self.deps = deps
        self.settings = deps.settings
        self.codec = deps.codec
        self.out: TelegramOut = deps.out
        self.claims = deps.claims
        self.actions = deps.actions
        self.writer = deps.writer
        db = deps.db
        self.chats = ConversationRepository(db)
        self.lists = ConversationListRepository(db)
        self.messages = MessageRepository(db)
        self.pins = PinRepository(db)
        self.state = ManagerStateRepository(db)
        self.message_map = MessageMapRepository(db)
        self.user_repo = UserRepository(db)

    def clock(self) -> datetime:
        return self.deps.clock()

    def lang(self, user: User | None) -> str:
        return language_for(user.language if user else None, self.settings.bot_language)

    def t(self, user: User | None, key: str, **values) -> str:
        return text(key, self.lang(user), **values)

    def log_change_pin(self, who: User, what: str, conversation_id: int) -> None:
        chat = self.chats.get(conversation_id)
        self.out.enqueue(self.settings.channel_log,
                         text("log_change_pin", language_for(None, self.settings.bot_language),
                              who=fmt.escape(who.display_name), what=what,
                              id_i=chat.ref if chat else conversation_id),
                         key=self.out.key(f"pin:{conversation_id}"), purpose="log")

    # -- talking to Telegram -------------------------------------------------------------

    def answer(self, call, message: str | None = None, *, alert: bool = False) -> None:
        """Stop the tap's spinner, with a short plain-text answer. Not a durable step: an
        answer is only useful now, and a repeated one is harmless."""
        self.api.answer_callback(call.id, message, alert=alert)

    def say(self, chat_id: int, html: str, markup=None, *, key: str | None = None,
            conversation_id: int | None = None, purpose: str = "desk",
            reply_to: int | None = None, once: str | None = None) -> bool:
        """Send now (an answer to a person); mapped to its conversation when one is given,
        so a reply to it finds the conversation."""
        return self.out.send_now(chat_id, html, markup, key=key, once=once,
                                 conversation_id=conversation_id, purpose=purpose,
                                 reply_to=reply_to)

    def reply(self, message, html: str, *, key: str | None = None,
              conversation_id: int | None = None) -> None:
        """Answer a person's message, quoting it when Telegram still has it."""
        self.say(message.chat.id, html, key=key, conversation_id=conversation_id,
                 reply_to=message.message_id,
                 purpose="confirm" if conversation_id is not None else "desk")

    def send(self, chat_id: int, html: str, markup=None, *, conversation_id: int | None = None,
             purpose: str = "desk", key: str | None = None) -> None:
        self.say(chat_id, html, markup, key=key or purpose, conversation_id=conversation_id,
                 purpose=purpose)

    def edit(self, chat_id: int, message_id: int, html: str, markup=None, *,
             caption: bool = False) -> None:
        self.out.edit(chat_id, message_id, html, markup, caption=caption)


class ActionFilter(AdvancedCustomFilter):
    """`action="hist"` (or a tuple) on a callback handler: only valid button data of that
    action reaches it. Forged or garbage data matches nothing."""

    key = "action"

    def __init__(self, codec) -> None:
        self.codec = codec

    def check(self, call, action) -> bool:
        decoded = self.codec.decode(getattr(call, "data", None))
        if decoded is None:
            return False
        return decoded.action in ((action,) if isinstance(action, str) else tuple(action))


def callback_args(desk: Desk, call) -> tuple[int, ...]:
    return desk.codec.decode(call.data).args


def known_chat(desk: Desk, call: types.CallbackQuery, user: User):
    """The chat a tap names (its first argument), or None after telling the person it is
    unknown."""
    conversation_id = callback_args(desk, call)[0]
    chat = desk.chats.get(conversation_id)
    if chat is None:
        desk.answer(call, desk.t(user, "unknown_chat", id_i=conversation_id))
    return chat


def private_chat_of(call: types.CallbackQuery, user: User) -> int:
    """Where to answer a tap: its private chat, or the person's private chat for a tap in
    a group."""
    message = call.message
    return message.chat.id if message is not None and message.chat.type == "private" else user.tg_id
