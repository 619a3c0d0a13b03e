"""Admin commands (SPEC §4, §6). Registered for admins only: anyone else gets no reaction.

`/approve_<tg_id>`, `/ban_<tg_id>`, `/admin_<tg_id>`, `/all_users`, `/get_chat_<n>`,
`/get_connected_users_<n>`, `/connect_to_chat_<n>` (n: a CRM chat's order number, else the
desk's number of a conversation), `/clean`, and the dead letters:
`/errors` (the newest, each with its `/retry_<id>`) and `/retry_<id>`. A command with a
bad argument gets an answer with an example, and changes nothing.
"""
from __future__ import annotations

from functools import partial

from telebot import TeleBot, types

from bot import formatting as fmt
from bot import views
from bot.keyboards import inline, to_markup
from handlers.chats import show_chat
from handlers.common import Desk, callback_args
from handlers.pinning import show_taken
from models.conversations import KEEPINGCRM
from models.inbound import ConversationKey
from models.jobs import SYNC
from models.locks import LockTimeout
from models.users import ADMIN, BANNED, MANAGER, User
from services.claims import Outcome
from services.panel_auth import PanelAuth

USERS_PAGE = 20
ERRORS_PAGE = 15
WITH_ARGUMENT = ("approve", "ban", "admin", "get_chat", "get_connected_users", "connect_to_chat",
                 "retry")
WITHOUT_ARGUMENT = ("all_users", "clean", "errors", "web_access")
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


def errors_page(desk: Desk, admin: User) -> str:
    letters, total = desk.deps.dead_letters.page(ERRORS_PAGE)
    if not letters:
        return desk.t(admin, "errors_none")
    lines = [desk.t(admin, "errors_title", total=total, shown=len(letters))]
    for letter in letters:
        lines.append(desk.t(admin, "errors_line", id=letter.id, kind=letter.kind,
                            when=f"{letter.failed_at:%d.%m %H:%M}",
                            error=fmt.escape(letter.error[:160])))
    return "\n".join(lines)


# -- the commands --------------------------------------------------------------------------

def _reply(desk: Desk, message: types.Message, html: str, markup=None, key: str | None = None) -> None:
    desk.say(message.chat.id, html, markup, key=key)


def set_role(desk: Desk, message, admin: User, target_id: int, role: str, done_key: str) -> None:
    """The rules live in `services/panel.py::Team` (the panel's team page uses them too)."""
    target = desk.deps.team.set_role(target_id, role, by_tg_id=admin.tg_id, key=desk.out.key)
    if target is None:  # an admin can neither lock themselves out nor demote themselves
        _reply(desk, message, desk.t(admin, "cannot_change_self"))
        return
    _reply(desk, message, desk.t(admin, done_key, name=fmt.escape(target.display_name)))


def resolve_chat(desk: Desk, number: int):
    """The conversation an admin names by number: a CRM chat by its order number (synced
    from the CRM when KeepDesk has not seen it yet), else the desk's own number."""
    chat = desk.chats.find(ConversationKey(KEEPINGCRM, "", str(number))) or desk.chats.get(number)
    if chat is None and desk.deps.sync_now is not None:
        desk.deps.sync_now(number)
        chat = desk.chats.find(ConversationKey(KEEPINGCRM, "", str(number)))
    return chat


def connect_to_chat(desk: Desk, message: types.Message, user: User, target: int) -> None:
    chat = resolve_chat(desk, target)
    if chat is None:
        _reply(desk, message, desk.t(user, "unknown_chat", id_i=target))
        return
    try:
        result = desk.actions.take(user, chat.id, take_over=True)
    except LockTimeout:
        _reply(desk, message, desk.t(user, "busy_try_again"))
        return
    if result.outcome is Outcome.CLAIMED:
        _reply(desk, message, desk.t(user, "claimed", id_i=chat.ref), key="claimed")
    show_taken(desk, user, chat.id, result)


def connected_users(desk: Desk, user: User, target: int) -> str:
    chat = resolve_chat(desk, target)
    pins = desk.pins.of_chat(chat.id) if chat else []
    lines = [desk.t(user, "connected_users", id_i=chat.ref if chat else target)]
    lines += [f"{fmt.escape(u.display_name)} · {p.kind} · {p.state} · "
              f"{p.created_at:%d.%m %H:%M}–{p.ended_at:%d.%m %H:%M}" if p.ended_at else
              f"{fmt.escape(u.display_name)} · {p.kind} · {p.state} · {p.created_at:%d.%m %H:%M}"
              for p, u in pins] or [desk.t(user, "no_pins")]
    return "\n".join(lines)


def retry(desk: Desk, user: User, job_id: int) -> str:
    retried = desk.deps.dead_letters.retry(job_id, by=f"admin {user.tg_id}")
    if retried.done:
        return desk.t(user, "retry_queued", id=job_id)
    if retried.status is None:
        return desk.t(user, "retry_unknown", id=job_id)
    return desk.t(user, "retry_not_dead", id=job_id, status=retried.status)


def web_access(desk: Desk, message: types.Message, admin: User) -> None:
    """The admin panel for a Telegram admin (WEB.md §1): a one-time code, in private only."""
    if message.chat.type != "private":
        _reply(desk, message, desk.t(admin, "web_access_private_only"))
        return
    login, code = PanelAuth(desk.deps.db, desk.clock).grant_setup(admin.tg_id, admin.username)
    settings = desk.settings
    _reply(desk, message, desk.t(admin, "web_access_code", login=fmt.escape(login), code=code,
                                 url=fmt.escape(f"http://{settings.web_bind}:{settings.web_port}/setup")))


def command(desk: Desk, message: types.Message, user: User) -> None:
    name, argument = parse_command(message.text)
    target = None
    if name in WITH_ARGUMENT:
        target = positive_id(argument)
        if target is None:
            _reply(desk, message, desk.t(user, "bad_command", example=f"/{name}_12345"))
            return
    if name in ("approve", "ban", "admin"):
        role, done = {"approve": (MANAGER, "approved"), "ban": (BANNED, "banned_done"),
                      "admin": (ADMIN, "made_admin")}[name]
        set_role(desk, message, user, target, role, done)
    elif name == "all_users":
        body, keyboard = users_page(desk, user, 0)
        _reply(desk, message, body, to_markup(keyboard))
    elif name == "get_chat":
        chat = resolve_chat(desk, target)
        if chat is None:
            _reply(desk, message, desk.t(user, "unknown_chat", id_i=target))
        else:
            show_chat(desk, user, message.chat.id, chat)
    elif name == "get_connected_users":
        _reply(desk, message, connected_users(desk, user, target))
    elif name == "connect_to_chat":
        connect_to_chat(desk, message, user, target)
    elif name == "clean":
        desk.deps.jobs.enqueue(SYNC, "clean", {"admin_id": user.tg_id},
                               dedupe_key=desk.out.key("clean"))
        _reply(desk, message, desk.t(user, "clean_started"))
    elif name == "errors":
        _reply(desk, message, errors_page(desk, user))
    elif name == "web_access":
        web_access(desk, message, user)
    elif name == "retry":
        _reply(desk, message, retry(desk, user, target))


def users_list_page(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    (page,) = callback_args(desk, call)
    body, keyboard = users_page(desk, user, max(0, page))
    desk.edit(call.message.chat.id, call.message.message_id, body, to_markup(keyboard))
    desk.answer(call)


def auto_assign(desk: Desk, message: types.Message, user: User) -> None:
    """/auto_assign — each channel's state; /auto_assign whatsapp on|off switches one."""
    words = (message.text or "").split("@", 1)[0].replace("_", " ").split()[2:]
    assign = desk.deps.tools.assign
    if words:
        if len(words) != 2 or words[1] not in ("on", "off") or not assign.switch(words[0], words[1] == "on"):
            _reply(desk, message, desk.t(user, "auto_assign_bad"))
            return
    lines = "\n".join(desk.t(user, "auto_assign_line", channel=channel,
                             state=desk.t(user, "auto_assign_on" if on else "auto_assign_off"))
                      for channel, on in assign.states().items())
    _reply(desk, message, desk.t(user, "auto_assign_state", lines=fmt.Html(lines)))


def _is_auto_assign(line: str | None) -> bool:
    word = (line or "").strip().split("@", 1)[0]
    return word == "/auto_assign" or word.startswith(("/auto_assign ", "/auto_assign_"))


def register(bot: TeleBot, desk: Desk) -> None:
    bot.register_message_handler(partial(auto_assign, desk), content_types=["text"], role="admin",
                                 func=lambda m: _is_auto_assign(m.text))
    bot.register_message_handler(partial(command, desk), content_types=["text"], role="admin",
                                 func=lambda m: parse_command(m.text) is not None)
    bot.register_callback_query_handler(partial(users_list_page, desk), func=None,
                                        action="users", role="admin")
