"""One chat: its card and menu, history pages, read status, task status, unpin, and the
send-message mode (SPEC §3, flows 4–8). Each handler decodes the tap or message, calls
the service that performs the action (which checks who holds the chat), and shows the
result."""
from __future__ import annotations

from functools import partial

from telebot import TeleBot, types

from bot import formatting as fmt
from bot import desk_views, views
from bot.keyboards import main_menu, send_mode_keyboard, to_markup
from bot.texts import key_of_label, text
from handlers import templates
from handlers.common import Desk, callback_args, known_chat, private_chat_of
from models.conversations import Conversation as Chat
from models.pins import PIN
from models.users import User
from services.results import Refusal, Refused
from services.tasks import StatusChanged

RECENT = 5
SEND_MODE_KEYS = ("history_chat", "send_status_read", "back_to_chat")


# -- views of a chat, shared with other handler areas ---------------------------------

def show_chat(desk: Desk, user: User, chat_id: int, chat: Chat, *, key: str = "card") -> None:
    """Send the chat's card with its last messages and its menu; the chat becomes current."""
    body, keyboard = render_chat(desk, user, chat)
    desk.state.set(user.tg_id, chat.id, None)
    desk.send(chat_id, body, to_markup(keyboard), conversation_id=chat.id, purpose="card", key=key)


def render_chat(desk: Desk, user: User, chat: Chat, *, recent: int = RECENT) -> tuple[str, dict]:
    holder = desk.pins.active(chat.id)
    mine = holder is not None and holder[0].manager_id == user.tg_id
    language = desk.lang(user)
    card = views.chat_card(chat, holder[1] if holder else None, language)
    extras = desk_card_extras(desk, chat, language)
    card = fmt.join("\n", [card, extras]) if extras else card
    others = [(other, source_label(desk, other)) for other in desk.deps.tools.customers.others(chat)]
    if others:
        card = fmt.join("\n", [card, desk.t(user, "card_also", chats=", ".join(
            f"{label} #{other.ref}" for other, label in others))])
    blocks = [views.message_block(m, language) for m in desk.messages.recent(chat.id, recent)]
    body = card
    # Whole message blocks only, newest kept: finished HTML is never cut.
    while blocks:
        body = card + "\n\n" + "\n\n".join(blocks)
        if fmt.visible_len(body) <= fmt.TEXT_LIMIT:
            break
        blocks.pop(0)
        body = card
    keyboard = views.chat_menu(desk.codec, language, chat, mine=mine,
                               mine_kind=holder[0].kind if mine else None)
    joined = user.is_admin and desk.deps.tools.joins.joins.is_joined(chat.id, user.tg_id)
    keyboard = desk_views.with_rows(keyboard, desk_views.desk_rows(
        desk.codec, language, chat, user, holder=holder[1] if holder else None, joined=joined)
        + [[(desk.t(user, "btn_also", chat=f"{label} #{other.ref}"), desk.codec.encode("open", other.id))]
           for other, label in others])
    return body, keyboard


def source_label(desk: Desk, chat: Chat) -> str:
    """The channel's name as people know it (also for a channel this process does not run)."""
    from channels import REGISTRY
    labels = {kind.name: kind.label for kind in REGISTRY}
    return labels.get(chat.channel, chat.channel)


def desk_card_extras(desk: Desk, chat: Chat, language: str) -> str:
    """The order, the admins watching beside the holder, the latest notes (SPEC §8)."""
    tools = desk.deps.tools
    return desk_views.card_extras(tools.orders.of(chat), tools.notes.latest(chat.id),
                                  tools.joins.joins.watchers(chat.id), language)


def history(desk: Desk, chat: Chat, page: int, user: User) -> tuple[str, dict]:
    offset = page * views.HISTORY_PAGE
    rows = desk.messages.page(chat.id, offset, views.HISTORY_PAGE + 1)
    has_older = len(rows) > views.HISTORY_PAGE
    shown = list(reversed(rows[:views.HISTORY_PAGE]))
    language = desk.lang(user)
    notes = desk.deps.tools.notes.for_page(chat.id, shown[0].id if shown else None,
                                           shown[-1].id if shown else None,
                                           newest=page == 0, oldest=not has_older)
    notes = notes[-desk_views.NOTES_ON_PAGE:]   # each note bounded: the block fits beside the page
    block = desk_views.notes_block(notes, language)
    limit = fmt.TEXT_LIMIT - (fmt.visible_len(block) + 2 if notes else 0)
    body = views.history_page(chat, shown, page, language, limit=limit)
    if notes:
        body = fmt.join("\n\n", [body, block])
    return body, views.history_keyboard(desk.codec, language, chat.id, page, has_older)


def refusal_text(desk: Desk, user: User, refused: Refused, conversation_id: int) -> str:
    if refused.why is Refusal.TAKEN_BY:
        return desk.t(user, "taken_by", name=fmt.escape(refused.who.display_name
                                                          if refused.who else "?"))
    if refused.why is Refusal.NOT_HOLDER:
        return desk.t(user, "not_your_task")
    if refused.why is Refusal.NOT_A_TASK:
        return desk.t(user, "not_a_task")
    return desk.t(user, "unknown_chat", id_i=conversation_id)


def enter_send_mode(desk: Desk, user: User, chat_id: int, conversation_id: int) -> str | None:
    """Writing mode for the conversation, with the prompt; the refusal's text when it is
    not this manager's to write to."""
    entered = desk.actions.enter_writing(user, conversation_id)
    if isinstance(entered, Refused):
        return refusal_text(desk, user, entered, conversation_id)
    send_mode_prompt(desk, user, chat_id, entered)
    return None


def send_mode_prompt(desk: Desk, user: User, chat_id: int, chat) -> None:
    """The manager writes to this chat now: the prompt, and WhatsApp's templates when its
    24-hour window is closed (before they type)."""
    prompt = desk.t(user, "you_answer", id_i=chat.ref, email=fmt.escape(chat.customer or "—"))
    prompt += "\n" + desk.t(user, "send_mode_on")
    desk.send(chat_id, prompt, send_mode_keyboard(desk.lang(user)), conversation_id=chat.id,
              purpose="prompt")
    templates.offer(desk, user, chat_id, chat)


def mark_read(desk: Desk, user: User, conversation_id: int) -> str:
    """The "read" status as a durable step, performed at once when the channel answers."""
    requested = desk.actions.request_read(user, conversation_id, key=desk.out.key("read"))
    if isinstance(requested, Refused):
        return refusal_text(desk, user, requested, conversation_id)
    if requested.job_id is None or desk.out.run_now is None:
        return desk.t(user, "read_ok")
    outcome = desk.out.run_now(requested.job_id)
    if outcome == "done":
        return desk.t(user, "read_ok")
    if outcome == "dead":
        return desk.t(user, "read_failed")
    return desk.t(user, "read_waits_for_crm")


# -- handlers ----------------------------------------------------------------------------

def open_chat(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    chat = known_chat(desk, call, user)
    if chat is not None:
        show_chat(desk, user, private_chat_of(call, user), chat)
        desk.answer(call)


def history_page(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    conversation_id, page = callback_args(desk, call)
    chat = desk.chats.get(conversation_id)
    if chat is None or page < 0:
        desk.answer(call, desk.t(user, "stale_button"))
        return
    body, keyboard = history(desk, chat, page, user)
    if _is_history(desk, call):  # ◀ ▶ turn the page in place
        desk.edit(call.message.chat.id, call.message.message_id, body, to_markup(keyboard))
    else:
        desk.send(private_chat_of(call, user), body, to_markup(keyboard),
                  conversation_id=conversation_id, purpose="history")
    desk.answer(call)


def write(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    chat = known_chat(desk, call, user)
    if chat is None:
        return
    refusal = enter_send_mode(desk, user, user.tg_id, chat.id)
    desk.answer(call, refusal, alert=refusal is not None)


def read(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    chat = known_chat(desk, call, user)
    if chat is not None:
        desk.answer(call, mark_read(desk, user, chat.id))


def toggle_status(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    chat = known_chat(desk, call, user)
    if chat is None:
        return
    changed = desk.deps.tools.tasks.toggle(user, chat.id)
    if isinstance(changed, Refused):
        desk.answer(call, refusal_text(desk, user, changed, chat.id),
                    alert=changed.why is not Refusal.NOT_A_TASK)
        return
    assert isinstance(changed, StatusChanged)
    desk.answer(call, desk.t(user, "status_changed", id_i=chat.ref,
                             status=desk.t(user, f"status_{changed.status}")))
    mapped = desk.message_map.lookup(call.message.chat.id, call.message.message_id)
    if mapped is not None and mapped.purpose == "card":  # the card shows the new status
        body, keyboard = render_chat(desk, user, desk.chats.get(chat.id))
        desk.edit(call.message.chat.id, call.message.message_id, body, to_markup(keyboard))


def unpin(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    chat = known_chat(desk, call, user)
    if chat is None:
        return
    holder = desk.pins.active(chat.id)
    if holder is None or holder[0].manager_id != user.tg_id:
        desk.answer(call, desk.t(user, "not_your_pin"))
        return
    if holder[0].kind != PIN:
        desk.answer(call, desk.t(user, "unpin_task_refused"), alert=True)
        return
    if desk.claims.release(chat.id, user, now=desk.clock()) is None:
        desk.answer(call, desk.t(user, "not_your_pin"))
        return
    desk.state.clear(user.tg_id)
    desk.log_change_pin(user, text("change_pin_removed", desk.lang(None)), chat.id)
    desk.answer(call, desk.t(user, "unpinned", id_i=chat.ref))
    desk.say(user.tg_id, desk.t(user, "unpinned", id_i=chat.ref), main_menu(desk.lang(user)),
             key="unpinned")


def mark_done(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    """"🏁 Розмову завершено": the pin ends, the chat is done, the customer asked for a score."""
    chat = known_chat(desk, call, user)
    if chat is None:
        return
    done = desk.deps.tools.scores.mark_done(user, chat.id)
    if isinstance(done, Refused):
        desk.answer(call, refusal_text(desk, user, done, chat.id), alert=True)
        return
    answer = desk.t(user, "marked_done_asked" if done.asked else "marked_done", id_i=chat.ref)
    desk.state.clear(user.tg_id)
    desk.log_change_pin(user, text("change_pin_removed", desk.lang(None)), chat.id)
    desk.answer(call, answer)
    desk.say(user.tg_id, answer, main_menu(desk.lang(user)), key="marked_done")


def send_mode_label(desk: Desk, message: types.Message, user: User) -> None:
    """The reply-keyboard buttons shown while writing to a client."""
    state = desk.state.get(user.tg_id)
    chat = desk.chats.get(state.conversation_id) if state.conversation_id else None
    if chat is None:
        desk.say(message.chat.id, desk.t(user, "choose_chat_first"), main_menu(desk.lang(user)))
        return
    key = key_of_label(message.text, SEND_MODE_KEYS)
    if key == "history_chat":
        body, keyboard = history(desk, chat, 0, user)
        desk.send(message.chat.id, body, to_markup(keyboard), conversation_id=chat.id,
                  purpose="history")
    elif key == "send_status_read":
        desk.say(message.chat.id, mark_read(desk, user, chat.id))
    else:
        desk.say(message.chat.id, desk.t(user, "main_menu"), main_menu(desk.lang(user)),
                 key="menu")
        show_chat(desk, user, message.chat.id, chat)


def _is_history(desk: Desk, call: types.CallbackQuery) -> bool:
    mapped = desk.message_map.lookup(call.message.chat.id, call.message.message_id)
    return mapped is not None and mapped.purpose == "history"


def register(bot: TeleBot, desk: Desk) -> None:
    for handler, action in ((open_chat, "open"), (history_page, "hist"), (write, "write"),
                            (read, "read"), (toggle_status, "status"), (unpin, "unpin"),
                            (mark_done, "done")):
        bot.register_callback_query_handler(partial(handler, desk), func=None, action=action,
                                            role="manager")
    bot.register_message_handler(
        partial(send_mode_label, desk), chat_types=["private"], role="manager",
        content_types=["text"], func=lambda m: key_of_label(m.text or "", SEND_MODE_KEYS) is not None)
