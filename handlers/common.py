"""What every handler area shares: the desk's services, languages, safe Telegram calls."""
from __future__ import annotations

import logging
from datetime import datetime

from telebot import TeleBot, types
from telebot.custom_filters import AdvancedCustomFilter
from telebot.apihelper import ApiTelegramException

from bot import formatting as fmt
from bot.deps import Deps
from bot.sender import queue_post
from bot.texts import language_for, text
from models.chats import ChatListRepository, ChatRepository
from models.claims import ChatClaims
from models.inbox import Inbox
from models.message_map import MessageMapRepository
from models.messages import MessageRepository
from models.pins import PinRepository
from models.state import ManagerStateRepository
from models.users import User, UserRepository

log = logging.getLogger(__name__)


class Desk:
    """The services behind the handlers, built once per bot."""

    def __init__(self, bot: TeleBot, deps: Deps) -> None:
        self.bot = bot
        self.deps = deps
        self.settings = deps.settings
        self.codec = deps.codec
        db = deps.db
        self.chats = ChatRepository(db)
        self.lists = ChatListRepository(db)
        self.messages = MessageRepository(db)
        self.pins = PinRepository(db)
        self.state = ManagerStateRepository(db)
        self.message_map = MessageMapRepository(db)
        self.user_repo = UserRepository(db)
        self.inbox = Inbox(deps.jobs)
        self.claims = ChatClaims(db, deps.locks, pin_ttl_hours=deps.settings.pin_ttl_hours)

    def clock(self) -> datetime:
        return self.deps.clock()

    def lang(self, user: User | None) -> str:
        return language_for(user.language if user else None, self.settings.bot_language)

    def t(self, user: User | None, key: str, **values) -> str:
        return text(key, self.lang(user), **values)

    def log_change_pin(self, who: User, what: str, id_i: int) -> None:
        queue_post(self.deps.jobs, self.settings.channel_log,
                   text("log_change_pin", language_for(None, self.settings.bot_language),
                        who=fmt.escape(who.display_name), what=what, id_i=id_i))

    def log_error(self, message: str) -> None:
        log.error(message)
        queue_post(self.deps.jobs, self.settings.channel_log,
                   text("log_error", None, text=fmt.escape(message)[:3500]))

    # -- Telegram calls whose failure must not undo the work already done --------------

    def answer(self, call, message: str | None = None, *, alert: bool = False) -> None:
        try:
            self.bot.answer_callback_query(call.id, message, show_alert=alert)
        except ApiTelegramException as exc:  # a stale query: the tap's effect stands
            log.info("could not answer callback: %s", exc.description)

    def edit(self, chat_id: int, message_id: int, html: str, markup=None, *, caption: bool = False) -> None:
        try:
            if caption:
                self.bot.edit_message_caption(html, chat_id, message_id, parse_mode="HTML",
                                              reply_markup=markup)
            else:
                self.bot.edit_message_text(html, chat_id, message_id, parse_mode="HTML",
                                           reply_markup=markup)
        except ApiTelegramException as exc:
            if "message is not modified" not in (exc.description or ""):
                log.warning("could not edit message %s in %s: %s", message_id, chat_id, exc.description)

    def reply(self, message, html: str) -> None:
        """Answer a person's message, quoting it when Telegram still has it."""
        self.bot.send_message(message.chat.id, html, parse_mode="HTML",
                              reply_parameters=types.ReplyParameters(
                                  message.message_id, allow_sending_without_reply=True))

    def send(self, chat_id: int, html: str, markup=None, *, id_i: int | None = None,
             purpose: str = "desk"):
        """Send now (an answer to a person) and map it to its chat, so a reply finds it."""
        sent = self.bot.send_message(chat_id, html, parse_mode="HTML", reply_markup=markup)
        if id_i is not None:
            self.message_map.record(chat_id, sent.message_id, id_i, None, purpose, html=html)
        return sent


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
