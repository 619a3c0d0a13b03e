"""Shifts, hand-over, and admins beside a chat (SPEC §8): "🕘 Моя зміна" and /shift,
/on_shift, /off_shift; "🙋 Взяти чат" under an off-shift colleague's offer; "🔁 Передати"
and the colleagues with their open load; an admin's "👀 Приєднатися" / "🚪 Вийти" /
"⚡ Забрати собі" on a chat's card."""
from __future__ import annotations

from functools import partial

from telebot import TeleBot, types

from bot import desk_views
from bot import formatting as fmt
from bot.keyboards import inline, to_markup
from bot.texts import key_of_label
from handlers.chats import enter_send_mode, show_chat
from handlers.common import Desk, callback_args, private_chat_of
from handlers.pinning import show_taken
from models.users import User
from services.claims import Outcome
from services.handover import Handed
from services.results import Refusal, Refused


def shift_panel(desk: Desk, user: User) -> tuple[str, dict]:
    on = desk.deps.tools.shifts.on_shift(user)
    button = ("btn_shift_off", 0) if on else ("btn_shift_on", 1)
    return (desk.t(user, "shift_on_now" if on else "shift_off_now"),
            inline([[(desk.t(user, button[0]), desk.codec.encode("shift", button[1]))]]))


def shift_menu(desk: Desk, message: types.Message, user: User) -> None:
    word = (message.text or "").split("@")[0].strip()
    if word in ("/on_shift", "/off_shift"):
        desk.say(message.chat.id, set_shift(desk, user, word == "/on_shift"))
        return
    body, keyboard = shift_panel(desk, user)
    desk.say(message.chat.id, body, to_markup(keyboard))


def set_shift(desk: Desk, user: User, on_shift: bool) -> str:
    offered = desk.deps.tools.shifts.set(user, on_shift)
    if offered is None:
        return desk.t(user, "shift_on_now" if on_shift else "shift_off_now")
    if on_shift:
        return desk.t(user, "shift_started")
    return desk.t(user, "shift_ended", offered=offered)


def shift_tap(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    (on,) = callback_args(desk, call)
    answer = set_shift(desk, user, bool(on))
    body, keyboard = shift_panel(desk, user)
    desk.edit(call.message.chat.id, call.message.message_id, body + "\n" + answer, to_markup(keyboard))
    desk.answer(call, answer)


def refusal(desk: Desk, user: User, refused: Refused, conversation_id: int) -> str:
    name = fmt.escape(refused.who.display_name) if refused.who else "?"
    texts = {Refusal.UNKNOWN_CHAT: ("unknown_chat", {"id_i": conversation_id}),
             Refusal.NOT_HOLDER: ("handover_not_holder", {}),
             Refusal.OFF_SHIFT: ("handover_off_shift", {"name": name}),
             Refusal.NOT_A_MANAGER: ("handover_not_manager", {"name": name}),
             Refusal.SELF: ("handover_self", {}),
             Refusal.NOBODY_HOLDS: ("join_nobody", {}),
             Refusal.OWN_CHAT: ("join_own", {}),
             Refusal.HOLDER_BACK: ("offer_holder_back", {"name": name})}
    key, values = texts[refused.why]
    return desk.t(user, key, **values)


def handover_list(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    conversation_id, page = callback_args(desk, call)
    chat = desk.chats.get(conversation_id)
    if chat is None or page < 0:
        desk.answer(call, desk.t(user, "stale_button"))
        return
    people, total = desk.deps.tools.shifts.shifts.colleagues(
        page * desk_views.PAGE, desk_views.PAGE, exclude=user.tg_id)
    body, keyboard = desk_views.colleagues(desk.codec, desk.lang(user), chat, people, page, total)
    desk.send(private_chat_of(call, user), body, to_markup(keyboard), conversation_id=chat.id,
              purpose="handover")
    desk.answer(call)


def hand_to(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    conversation_id, to_id = callback_args(desk, call)
    done = desk.deps.tools.handover.perform(conversation_id, user, to_id)
    if isinstance(done, Refused):
        desk.answer(call, refusal(desk, user, done, conversation_id), alert=True)
        return
    assert isinstance(done, Handed)
    answer = desk.t(user, "handed_done", id_i=done.conversation.ref,
                    name=fmt.escape(done.to.display_name))
    desk.state.clear(user.tg_id)
    desk.say(private_chat_of(call, user), answer, key="handed")
    desk.answer(call, answer)


def take_offer(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    (conversation_id,) = callback_args(desk, call)
    done = desk.deps.tools.handover.perform(conversation_id, user, user.tg_id, offer=True)
    if isinstance(done, Refused):
        desk.answer(call, refusal(desk, user, done, conversation_id), alert=True)
        return
    desk.answer(call, desk.t(user, "claimed", id_i=done.conversation.ref))
    desk.edit(call.message.chat.id, call.message.message_id,
              desk.t(None, "offer_taken", id_i=done.conversation.ref,
                     name=fmt.escape(user.display_name)))
    show_chat(desk, user, user.tg_id, done.conversation, key="offer_card")
    enter_send_mode(desk, user, user.tg_id, conversation_id)


def pass_on(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    """"🔁 Передати" under a chat assigned automatically: to the next manager, or back."""
    (conversation_id,) = callback_args(desk, call)
    done = desk.deps.tools.assign.pass_on(user, conversation_id)
    if isinstance(done, Refused):
        desk.answer(call, refusal(desk, user, done, conversation_id), alert=True)
        return
    answer = (desk.t(user, "passed_to", id_i=done.conversation.ref, name=fmt.escape(done.to.display_name))
              if done.to is not None else desk.t(user, "passed_back", id_i=done.conversation.ref))
    desk.state.clear(user.tg_id)
    desk.edit(call.message.chat.id, call.message.message_id, answer)
    desk.answer(call, answer)


def join(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    (conversation_id,) = callback_args(desk, call)
    joined = desk.deps.tools.joins.join(conversation_id, user)
    if isinstance(joined, Refused):
        desk.answer(call, refusal(desk, user, joined, conversation_id), alert=True)
        return
    chat = desk.chats.get(conversation_id)
    desk.answer(call, desk.t(user, "joined", id_i=chat.ref, name=fmt.escape(joined.display_name)))
    enter_send_mode(desk, user, user.tg_id, conversation_id)


def leave(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    (conversation_id,) = callback_args(desk, call)
    desk.deps.tools.joins.leave(conversation_id, user)
    desk.state.clear(user.tg_id)
    desk.answer(call, desk.t(user, "left_chat"))


def take_over(desk: Desk, call: types.CallbackQuery, user: User) -> None:
    (conversation_id,) = callback_args(desk, call)
    chat = desk.chats.get(conversation_id)
    if chat is None:
        desk.answer(call, desk.t(user, "stale_button"))
        return
    result = desk.actions.take(user, conversation_id, take_over=True)
    desk.answer(call, desk.t(user, "claimed" if result.outcome is Outcome.CLAIMED
                             else "already_mine", id_i=chat.ref))
    show_taken(desk, user, conversation_id, result)


def register(bot: TeleBot, desk: Desk) -> None:
    bot.register_message_handler(
        partial(shift_menu, desk), chat_types=["private"], role="manager", content_types=["text"],
        func=lambda m: key_of_label(m.text or "", ("shift_menu",)) is not None
        or (m.text or "").split("@")[0].strip() in ("/shift", "/on_shift", "/off_shift"))
    for handler, action, role in ((shift_tap, "shift", "manager"), (handover_list, "handover", "manager"),
                                  (hand_to, "handto", "manager"), (take_offer, "offer", "manager"),
                                  (pass_on, "aapass", "manager"),
                                  (join, "join", "admin"), (leave, "leave", "admin"),
                                  (take_over, "takeover", "admin")):
        bot.register_callback_query_handler(partial(handler, desk), func=None, action=action, role=role)
