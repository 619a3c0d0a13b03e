"""Admin commands (SPEC §4). Registered for admins only: anyone else gets no reaction.

`/approve_<tg_id>`, `/ban_<tg_id>`, `/admin_<tg_id>`, `/all_users`, `/get_chat_<id_i>`,
`/get_connected_users_<id_i>`, `/connect_to_chat_<id_i>`, `/clean`. A command with a bad
argument gets an answer with an example, and changes nothing.
"""
from __future__ import annotations

from telebot import TeleBot, types

from bot import formatting as fmt
from bot import views
from bot.keyboards import inline, main_menu_dict, to_markup
from bot.sender import queue_post
from bot.texts import text
from handlers.chats import show_chat
from handlers.common import Desk, callback_args
from handlers.pinning import after_claim, claim
from models.claims import Outcome
from models.jobs import SYNC
from models.locks import LockTimeout
from models.pins import DELETE_PIN
from models.users import ADMIN, BANNED, MANAGER, User

USERS_PAGE = 20
WITH_ARGUMENT = ("approve", "ban", "admin", "get_chat", "get_connected_users", "connect_to_chat")
WITHOUT_ARGUMENT = ("all_users", "clean")
_MAX_ID = 2**63 - 1


def parse_command(line: str | None) -> tuple[str, str | None] | None:
    """('approve', '123') for '/approve_123' (also '/approve_123@bot'); None when the line
    is not one of our commands at all."""
    if not line or not line.startswith("/"):
        return None
    word = line.strip()[1:].split("@", 1)[0]
    for name in sorted(WITH_ARGUMENT + WITHOUT_ARGUMENT, key=len, reverse=True):
        if word == name:
            return name, None if name in WITHOUT_ARGUMENT else ""
        if name in WITH_ARGUMENT and word.startswith(name + "_"):
            return name, word[len(name) + 1:]
    return None


def positive_id(argument: str | None) -> int | None:
    if argument is None or not argument.isdigit() or not argument.isascii():
        return None
    value = int(argument)
    return value if 0 < value <= _MAX_ID else None


def users_page(desk: Desk, admin: User, page: int) -> tuple[str, dict]:
    users, total = desk.user_repo.page(page * USERS_PAGE, USERS_PAGE)
    pages = views.pages_of(total, USERS_PAGE)
    lines = [desk.t(admin, "users_title", page=page + 1, pages=pages)]
    for user in users:
        lines.append(f"{fmt.escape(user.display_name)} · <code>{user.tg_id}</code> · "
                     f"{desk.t(admin, 'role_' + user.role)}")
    row = views.paging_row(desk.lang(admin), lambda p: desk.codec.encode("users", p), page, pages)
    return "\n".join(lines), inline([row] if row else [])


def register(bot: TeleBot, desk: Desk) -> None:
    users = desk.deps.users

    def reply(message: types.Message, html: str, markup=None) -> None:
        bot.send_message(message.chat.id, html, reply_markup=markup)

    def set_role(message, admin: User, target_id: int, role: str, done_key: str) -> None:
        if target_id == admin.tg_id:  # an admin can neither lock themselves out nor demote themselves
            reply(message, desk.t(admin, "cannot_change_self"))
            return
        target = users.set_role(target_id, role)
        reply(message, desk.t(admin, done_key, name=fmt.escape(target.display_name)))
        if role == BANNED:
            end_pins_of(target)
            desk.state.clear(target_id)
            return
        if target.reachable:
            # Queued: a person who never opened the bot or blocked it costs nothing here.
            note = "you_are_admin" if role == ADMIN else "you_are_approved"
            queue_post(desk.deps.jobs, target_id, desk.t(target, note),
                       reply_markup=main_menu_dict(desk.lang(target)))

    def end_pins_of(target: User) -> None:
        now = desk.clock()
        for pin in desk.pins.active_of_manager(target.tg_id):
            if desk.pins.end(None, pin.id, DELETE_PIN, now):
                desk.log_change_pin(target, text("change_pin_banned", desk.lang(None)), pin.id_i)

    def known_chat_or_sync(id_i: int):
        chat = desk.chats.get(id_i)
        if chat is None and desk.deps.crm is not None:
            from scripts.sync import ChatSync
            ChatSync(desk.settings, desk.deps.db, desk.deps.jobs, desk.deps.crm, desk.codec).sync(id_i)
            chat = desk.chats.get(id_i)
        return chat

    def command(message: types.Message, user: User) -> None:
        name, argument = parse_command(message.text)
        if name in WITH_ARGUMENT:
            target = positive_id(argument)
            if target is None:
                reply(message, desk.t(user, "bad_command", example=f"/{name}_12345"))
                return
        if name == "approve":
            set_role(message, user, target, MANAGER, "approved")
        elif name == "ban":
            set_role(message, user, target, BANNED, "banned_done")
        elif name == "admin":
            set_role(message, user, target, ADMIN, "made_admin")
        elif name == "all_users":
            body, keyboard = users_page(desk, user, 0)
            reply(message, body, to_markup(keyboard))
        elif name == "get_chat":
            chat = known_chat_or_sync(target)
            if chat is None:
                reply(message, desk.t(user, "unknown_chat", id_i=target))
            else:
                show_chat(desk, user, message.chat.id, chat)
        elif name == "get_connected_users":
            pins = desk.pins.of_chat(target)
            lines = [desk.t(user, "connected_users", id_i=target)]
            lines += [f"{fmt.escape(u.display_name)} · {p.kind} · {p.state} · "
                      f"{p.created_at:%d.%m %H:%M}–{p.ended_at:%d.%m %H:%M}" if p.ended_at else
                      f"{fmt.escape(u.display_name)} · {p.kind} · {p.state} · {p.created_at:%d.%m %H:%M}"
                      for p, u in pins] or [desk.t(user, "no_pins")]
            reply(message, "\n".join(lines))
        elif name == "connect_to_chat":
            chat = known_chat_or_sync(target)
            if chat is None:
                reply(message, desk.t(user, "unknown_chat", id_i=target))
                return
            try:
                result = claim(desk, user, target, take_over=True)
            except LockTimeout:
                reply(message, desk.t(user, "busy_try_again"))
                return
            if result.outcome is Outcome.CLAIMED:
                reply(message, desk.t(user, "claimed", id_i=target))
                previous = result.previous
                if previous is not None and previous.tg_id != user.tg_id and previous.reachable:
                    queue_post(desk.deps.jobs, previous.tg_id,
                               desk.t(previous, "taken_over_from_you", id_i=target,
                                      name=fmt.escape(user.display_name)))
            after_claim(desk, user, target, result, take_over=True)
        elif name == "clean":
            desk.deps.jobs.enqueue(SYNC, "clean", {"admin_id": user.tg_id})
            reply(message, desk.t(user, "clean_started"))

    def users_list_page(call: types.CallbackQuery, user: User) -> None:
        (page,) = callback_args(desk, call)
        body, keyboard = users_page(desk, user, max(0, page))
        desk.edit(call.message.chat.id, call.message.message_id, body, to_markup(keyboard))
        desk.answer(call)

    bot.register_message_handler(command, content_types=["text"], role="admin",
                                 func=lambda m: parse_command(m.text) is not None)
    bot.register_callback_query_handler(users_list_page, func=None, action="users", role="admin")
