"""The one authorisation point: every update passes here before any handler runs.

The middleware loads the sender (through the process-wide UserManager) and puts it in
`data["user"]`; handlers receive it and never look the user up or check roles by hand.
Banned people are dropped here without an answer. Which role a handler needs is said
where it is registered, with the `role` custom filter.
"""
from __future__ import annotations

from telebot import TeleBot
from telebot.custom_filters import AdvancedCustomFilter
from telebot.handler_backends import BaseMiddleware, CancelUpdate

from models.users import ADMIN, BANNED, MANAGER, PENDING, User, UserManager

# Who may use what: a handler registered with role="manager" is open to managers and admins.
_ALLOWED = {
    PENDING: {PENDING, MANAGER, ADMIN},
    MANAGER: {MANAGER, ADMIN},
    ADMIN: {ADMIN},
}


def sender_of(update_part) -> object | None:
    return getattr(update_part, "from_user", None)


class AuthMiddleware(BaseMiddleware):
    update_types = ["message", "edited_message", "callback_query", "inline_query"]

    def __init__(self, users: UserManager) -> None:
        super().__init__()
        self.users = users

    def pre_process(self, update_part, data: dict):
        sender = sender_of(update_part)
        if sender is None or getattr(sender, "is_bot", False):
            return CancelUpdate()
        user = self.users.get(sender.id)
        if user is not None and user.role == BANNED:
            return CancelUpdate()
        data["user"] = user
        data["sender"] = sender
        return None

    def post_process(self, update_part, data: dict, exception):
        return None


class RoleFilter(AdvancedCustomFilter):
    """`role="manager"` on a handler: only people with that role (or above) reach it.

    Unknown people (no /start yet) pass only handlers registered with role=None.
    """

    key = "role"

    def __init__(self, users: UserManager) -> None:
        self.users = users

    def check(self, update_part, role: str) -> bool:
        sender = sender_of(update_part)
        if sender is None:
            return False
        user: User | None = self.users.get(sender.id)
        return user is not None and user.role in _ALLOWED[role]


def install(bot: TeleBot, users: UserManager) -> None:
    bot.setup_middleware(AuthMiddleware(users))
    bot.add_custom_filter(RoleFilter(users))
