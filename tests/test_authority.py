"""Who may do what to a chat, in what order, and where a manager's words go (issue 9's
review: SPEC §3 flows 3, 6, 8; §4; §6 "Nothing fails silently").

End to end with the in-process desk (doors, workers, real pyTelegramBotAPI, MariaDB, the
Telegram and CRM sandboxes). Managers are rows in `users`; customers write in the CRM
sandbox and the listener is signalled. Everything is asserted as a person would notice
it: the answer to a tap, the bot's messages, what reached the customer in the CRM.
"""
from __future__ import annotations

import time
from datetime import datetime

import pytest

from conftest import ADMIN_ID, LOG_CHAT, SHARED_CHAT
from harness import wait_for
from bot.updates import lane_of
from models.state import SEND_MODE

LINK_KEY = "test-link-key"
OLENA, PETRO = 710, 711
NAMES = {OLENA: "olena", PETRO: "petro", ADMIN_ID: "boss"}
BASE_TIME = datetime(2024, 5, 17, 10, 0, 0)
TASK_PRODUCT = "Ключ активації Windows 11"

WRITE = "📩 Написати повідомлення"
READ = '✅ Надіслати статус "Прочитано"'
TASK_STATUS = "✅ Змінити статус діалогу"
HISTORY_CHAT = "📁 Історія чата"
ALL_CHATS = "📁 Історія всіх чатів"
MY_CHATS = "🔥 Мої переписки"
UNKNOWN_REPLY = ("Це повідомлення не про чат клієнта: відповідайте на пост клієнта або на "
                 "картку чату.")


# --------------------------------------------------------------------------- helpers

def add_user(db, tg_id, role="manager"):
    # REPLACE: the bootstrap admin (ADMIN_IDS) is already there when the desk starts.
    db.execute("REPLACE INTO users (tg_id, username, first_name, language, role)"
               " VALUES (%s, %s, %s, 'uk', %s)", (tg_id, NAMES[tg_id], NAMES[tg_id].title(), role))
    return tg_id


def customer_chat(crm, id_i, text="Добрий день! Є в наявності?", product="Телефон Nokia"):
    crm.customer_writes(id_i, text, email=f"c{id_i}@example.com", product=product, at=BASE_TIME)


def sync(desk, crm, db, *ids):
    for id_i in ids:
        assert crm.signal(desk.listener_url, LINK_KEY, id_i) == [200]
    desk.idle()
    wait_for(lambda: db.scalar("SELECT COUNT(*) FROM conversations WHERE id IN (%s)"
                               % ", ".join(["%s"] * len(ids)), ids) == len(ids))


def pin(db, id_i, manager_id, kind="PIN"):
    db.execute("INSERT INTO pins (conversation_id, manager_id, kind) VALUES (%s, %s, %s)", (id_i, manager_id, kind))


def chat_row(db, id_i):
    return db.fetchone("SELECT * FROM conversations WHERE id = %s", (id_i,))


def bot_messages(tg, chat_id):
    return [m for m in tg.messages(chat_id) if not m.get("deleted")]


def texts(tg, chat_id):
    return [m.get("visible_text") or "" for m in bot_messages(tg, chat_id)]


def last_text(tg, chat_id):
    return texts(tg, chat_id)[-1]


def buttons(message):
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def data_of(message, label):
    matching = [b["callback_data"] for b in buttons(message) if b["text"] == label]
    assert matching, f"no button {label!r} in {[b['text'] for b in buttons(message)]}"
    return matching[0]


def say(desk, tg, user_id, text, reply_to=None):
    update = tg.user_sends_text(user_id, text, username=NAMES.get(user_id),
                                first_name=NAMES.get(user_id, "user").title(),
                                reply_to_message_id=reply_to)
    desk.idle()
    return update


def press(desk, tg, user_id, message, label):
    """Tap an inline button; the tap's answer (every tap is answered once)."""
    update = tg.user_presses_button(user_id, message["chat_id"], message["message_id"],
                                    data_of(message, label), username=NAMES.get(user_id))
    desk.idle()
    query_id = update["callback_query"]["id"]
    answers = [a for a in tg.callback_answers() if a["callback_query_id"] == query_id]
    assert len(answers) == 1
    return answers[0]


def cards_of(desk, tg, user_id, *ids):
    """The chats' cards, reached as a manager would: all chats → each chat."""
    say(desk, tg, user_id, ALL_CHATS)
    listing = bot_messages(tg, user_id)[-1]
    cards = []
    for id_i in ids:
        label = next(b["text"] for b in buttons(listing) if f"#{id_i} " in b["text"] + " ")
        before = len(bot_messages(tg, user_id))
        press(desk, tg, user_id, listing, label)
        card = bot_messages(tg, user_id)[-1]
        assert len(bot_messages(tg, user_id)) == before + 1 and f"#{id_i}" in card["visible_text"]
        cards.append(card)
    return cards


def card_of(desk, tg, user_id, id_i):
    return cards_of(desk, tg, user_id, id_i)[0]


def seller_texts(crm, id_i):
    return [m["message"] for m in crm.messages(id_i) if m["seller"]]


def seen_calls(crm, id_i=None):
    return [c for c in crm.calls("/seen")
            if id_i is None or c["params"].get("id_i") == str(id_i)]


def send_mode_of(db, tg_id):
    return db.fetchone("SELECT conversation_id, mode FROM manager_state WHERE tg_id = %s", (tg_id,))


# --------------------------------------------------------------------------- 5. /errors, /retry

def refused_post(desk, tg, db, crm, id_i, text):
    """A customer's post the shared chat refuses (the bot was removed): a dead letter."""
    tg.remove_bot_from_chat(SHARED_CHAT)
    customer_chat(crm, id_i, text)
    sync(desk, crm, db, id_i)
    return wait_for(lambda: db.scalar("SELECT id FROM jobs WHERE status = 'failed'"
                                      " AND kind = 'tg_send'"))


def test_an_admin_lists_dead_letters_and_retries_one_which_then_goes_out(desk, tg, db, crm):
    add_user(db, ADMIN_ID, "admin")
    dead_id = refused_post(desk, tg, db, crm, 8101, "Чи є доставка у Львів?")
    assert bot_messages(tg, SHARED_CHAT) == []
    log = wait_for(lambda: [t for t in texts(tg, LOG_CHAT) if t.startswith("#ERROR")])
    assert f"/retry_{dead_id}" in log[0] and "kicked" in log[0]

    say(desk, tg, ADMIN_ID, "/errors")
    listing = last_text(tg, ADMIN_ID)
    assert listing.startswith("⚠️ Помилки: 1")
    assert f"/retry_{dead_id} · tg_send ·" in listing and "kicked" in listing

    tg.add_bot_to_chat(SHARED_CHAT)
    say(desk, tg, ADMIN_ID, f"/retry_{dead_id}")
    assert last_text(tg, ADMIN_ID) == f"🔁 Завдання {dead_id} знову в черзі."
    [post] = wait_for(lambda: bot_messages(tg, SHARED_CHAT))
    assert "Чи є доставка у Львів?" in post["visible_text"]
    assert [b["text"] for b in buttons(post)] == ["✍ Відповісти"]
    assert db.scalar("SELECT status FROM jobs WHERE id = %s", (dead_id,)) == "done"

    say(desk, tg, ADMIN_ID, "/errors")
    assert last_text(tg, ADMIN_ID) == "✅ Помилок немає."


def test_retry_of_a_done_or_unknown_job_says_so_and_changes_nothing(desk, tg, db, crm):
    add_user(db, ADMIN_ID, "admin")
    customer_chat(crm, 8102, "Доброго дня")
    sync(desk, crm, db, 8102)
    [post] = bot_messages(tg, SHARED_CHAT)
    done_id = db.scalar("SELECT id FROM jobs WHERE kind = 'tg_send' AND status = 'done'"
                        " AND payload LIKE %s", (f'%"chat_id":{SHARED_CHAT}%',))
    sends = tg.count_calls("sendMessage")

    say(desk, tg, ADMIN_ID, f"/retry_{done_id}")
    assert last_text(tg, ADMIN_ID) == f"Завдання {done_id} не є помилкою (стан: done)."
    say(desk, tg, ADMIN_ID, "/retry_987654321")
    assert last_text(tg, ADMIN_ID) == "Завдання 987654321 не знайдено."
    time.sleep(0.3)
    desk.idle()
    assert bot_messages(tg, SHARED_CHAT) == [post]          # nothing posted twice
    assert tg.count_calls("sendMessage") == sends + 2       # only the two answers
    assert db.scalar("SELECT status FROM jobs WHERE id = %s", (done_id,)) == "done"


def test_a_manager_gets_no_reaction_to_errors_or_retry_and_revives_nothing(desk, tg, db, crm):
    add_user(db, OLENA)
    dead_id = refused_post(desk, tg, db, crm, 8103, "Є гарантія?")
    before = len(bot_messages(tg, OLENA))
    say(desk, tg, OLENA, "/errors")
    say(desk, tg, OLENA, f"/retry_{dead_id}")
    time.sleep(0.3)
    desk.idle()
    assert len(bot_messages(tg, OLENA)) == before
    assert db.scalar("SELECT status FROM jobs WHERE id = %s", (dead_id,)) == "failed"


# --------------------------------------------------------------------------- 6. authority

@pytest.fixture
def held_by_olena(desk, tg, db, crm):
    """Olena holds an ordinary chat (8201, unread) and a task in work (8202); 8203 is free.
    Petro opened the three cards while they were still free: his buttons are real ones."""
    add_user(db, OLENA)
    add_user(db, PETRO)
    customer_chat(crm, 8201, "Чи є чохол до нього?")
    customer_chat(crm, 8202, "Ключ не активується", product=TASK_PRODUCT)
    customer_chat(crm, 8203, "Скільки коштує доставка?")
    sync(desk, crm, db, 8201, 8202, 8203)
    cards = dict(zip((8201, 8202, 8203), cards_of(desk, tg, PETRO, 8201, 8202, 8203)))
    pin(db, 8201, OLENA)
    pin(db, 8202, OLENA, "ACTIVATE_KEY")
    db.execute("UPDATE conversations SET status = 'in_work' WHERE id = 8202")
    crm.reset_calls()
    return cards


def test_a_colleague_cannot_mark_anothers_chat_read_and_is_told_who_holds_it(desk, tg, db, crm, held_by_olena):
    unread = chat_row(db, 8201)["cnt_new"]
    assert unread >= 1
    answer = press(desk, tg, PETRO, held_by_olena[8201], READ)
    assert answer["text"] == "Цей чат закріплено за @olena."
    time.sleep(0.3)
    desk.idle()
    assert seen_calls(crm) == []                             # the CRM was not told "read"
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'mark_read'") == 0
    assert chat_row(db, 8201)["cnt_new"] == unread
    assert crm.chat(8201)["cnt_new"] == unread


def test_a_colleague_cannot_mark_it_read_from_the_send_mode_keyboard_either(desk, tg, db, crm, held_by_olena):
    # Petro's last card was 8203; he opens 8201's card again (now Olena's) and uses the
    # reply keyboard's "read" button, which acts on the card's chat.
    card_of(desk, tg, PETRO, 8201)
    say(desk, tg, PETRO, READ)
    assert last_text(tg, PETRO) == "Цей чат закріплено за @olena."
    assert seen_calls(crm) == []


def test_a_colleague_cannot_toggle_anothers_task(desk, tg, db, crm, held_by_olena):
    answer = press(desk, tg, PETRO, held_by_olena[8202], TASK_STATUS)
    assert answer["text"] == ("Змінити статус задачі може лише той, за ким вона закріплена, "
                              "або адміністратор.")
    assert answer["show_alert"] is True
    assert chat_row(db, 8202)["status"] == "in_work"


def test_a_colleague_cannot_enter_writing_mode_for_anothers_chat(desk, tg, db, crm, held_by_olena):
    answer = press(desk, tg, PETRO, held_by_olena[8201], WRITE)
    assert answer["text"] == "Цей чат закріплено за @olena." and answer["show_alert"] is True
    assert not last_text(tg, PETRO).startswith("Ви відповідаєте на ордер #8201")
    state = send_mode_of(db, PETRO)
    assert state is None or state["mode"] != SEND_MODE
    say(desk, tg, PETRO, "Я відповім замість Олени")
    time.sleep(0.3)
    desk.idle()
    assert seller_texts(crm, 8201) == []
    assert last_text(tg, PETRO).startswith("Спершу оберіть чат")


def test_history_stays_readable_by_every_manager(desk, tg, db, crm, held_by_olena):
    before = len(bot_messages(tg, PETRO))
    answer = press(desk, tg, PETRO, held_by_olena[8201], HISTORY_CHAT)
    assert answer["text"] is None
    page = bot_messages(tg, PETRO)[before:]
    assert len(page) == 1
    assert page[0]["visible_text"].startswith("📁 Історія чата #8201")
    assert "Чи є чохол до нього?" in page[0]["visible_text"]


def test_an_admin_may_mark_anothers_chat_read_and_toggle_their_task(desk, tg, db, crm, held_by_olena):
    add_user(db, ADMIN_ID, "admin")
    read_card = card_of(desk, tg, ADMIN_ID, 8201)
    answer = press(desk, tg, ADMIN_ID, read_card, READ)
    assert answer["text"] == "✅ Статус «Прочитано» надіслано."
    assert [(c["params"]["id_i"], c["status"]) for c in seen_calls(crm)] == [("8201", 200)]
    assert chat_row(db, 8201)["cnt_new"] == 0

    task_card = card_of(desk, tg, ADMIN_ID, 8202)
    answer = press(desk, tg, ADMIN_ID, task_card, TASK_STATUS)
    assert answer["text"] == "Статус задачі #8202: виконана."
    assert chat_row(db, 8202)["status"] == "done"
    # The pins did not move: Olena still holds both.
    assert db.fetchall("SELECT conversation_id, manager_id FROM pins WHERE state = 'ACTIVE' ORDER BY conversation_id") == [
        {"conversation_id": 8201, "manager_id": OLENA}, {"conversation_id": 8202, "manager_id": OLENA}]


def test_a_free_chat_can_be_marked_read_by_any_manager(desk, tg, db, crm, held_by_olena):
    answer = press(desk, tg, PETRO, held_by_olena[8203], READ)
    assert answer["text"] == "✅ Статус «Прочитано» надіслано."
    assert [(c["params"]["id_i"], c["status"]) for c in seen_calls(crm)] == [("8203", 200)]
    assert chat_row(db, 8203)["cnt_new"] == 0


def test_the_holder_is_named_safely_whatever_their_name(desk, tg, db, crm):
    """A holder without a username whose name is HTML (issue 9: the refusal got no answer)."""
    db.execute("INSERT INTO users (tg_id, first_name, language, role) VALUES (%s, %s, 'uk', 'manager')",
               (OLENA, "<Оля & Co>"))
    add_user(db, PETRO)
    customer_chat(crm, 8204)
    sync(desk, crm, db, 8204)
    card = card_of(desk, tg, PETRO, 8204)
    pin(db, 8204, OLENA)
    answer = press(desk, tg, PETRO, card, READ)
    assert answer["text"] == "Цей чат закріплено за <Оля & Co>."


# --------------------------------------------------------------------------- 7. order

def test_a_persons_taps_and_messages_share_a_lane_and_other_chats_do_not():
    olena_private = {"update_id": 1, "message": {"message_id": 5, "chat": {"id": OLENA, "type": "private"},
                                                 "from": {"id": OLENA}}}
    tap_in_private = {"update_id": 2, "callback_query": {
        "id": "q1", "from": {"id": OLENA}, "message": {"chat": {"id": OLENA}}}}
    tap_under_shared_post = {"update_id": 3, "callback_query": {
        "id": "q2", "from": {"id": OLENA}, "message": {"chat": {"id": SHARED_CHAT}}}}
    tap_inline_message = {"update_id": 4, "callback_query": {"id": "q3", "from": {"id": OLENA},
                                                             "inline_message_id": "abc"}}
    edited = {"update_id": 5, "edited_message": {"chat": {"id": OLENA}, "from": {"id": OLENA}}}
    in_group = {"update_id": 6, "message": {"chat": {"id": SHARED_CHAT}, "from": {"id": OLENA}}}
    petro_tap = {"update_id": 7, "callback_query": {
        "id": "q4", "from": {"id": PETRO}, "message": {"chat": {"id": SHARED_CHAT}}}}
    mine = {lane_of(u) for u in (olena_private, tap_in_private, tap_under_shared_post,
                                 tap_inline_message, edited)}
    assert mine == {f"tg:{OLENA}"}
    assert lane_of(in_group) == f"tg:{SHARED_CHAT}"         # a group's messages: the group's order
    assert lane_of(petro_tap) == f"tg:{PETRO}"               # twenty tappers are twenty lanes
    assert lane_of({"update_id": 8, "callback_query": {"id": "q", "from": {"id": True}}}) is None
    assert lane_of({"update_id": 9, "callback_query": {"id": "q", "from": {"id": 2**70}}}) is None


def test_a_tap_on_write_then_text_at_once_sends_the_text_to_the_tapped_chat(desk, tg, db, crm, monkeypatch):
    add_user(db, OLENA)
    customer_chat(crm, 8301, "Питання про чат X")
    customer_chat(crm, 8302, "Питання про чат Y")
    sync(desk, crm, db, 8301, 8302)
    pin(db, 8301, OLENA)
    pin(db, 8302, OLENA)
    card_x, card_y = cards_of(desk, tg, OLENA, 8301, 8302)
    press(desk, tg, OLENA, card_y, WRITE)                    # she was writing to Y
    assert send_mode_of(db, OLENA) == {"conversation_id": 8302, "mode": SEND_MODE}

    # The tap takes a moment to handle (a slow database, a busy worker): the text typed
    # right after it must still wait for it, as it would in Telegram's own order.
    actions = desk.deps.actions
    original = actions.enter_writing

    def slow_enter_writing(user, id_i):
        time.sleep(0.6)
        return original(user, id_i)

    monkeypatch.setattr(actions, "enter_writing", slow_enter_writing)
    tg.user_presses_button(OLENA, card_x["chat_id"], card_x["message_id"], data_of(card_x, WRITE),
                           username="olena")
    tg.user_sends_text(OLENA, "Відправимо сьогодні ввечері", username="olena")
    wait_for(lambda: seller_texts(crm, 8301) or seller_texts(crm, 8302), timeout=15)
    desk.idle()
    assert seller_texts(crm, 8301) == ["Відправимо сьогодні ввечері"]
    assert seller_texts(crm, 8302) == []
    assert wait_for(lambda: last_text(tg, OLENA) == "✅ Надіслано клієнту (ордер #8301).")


# --------------------------------------------------------------------------- 8. unmapped replies

def test_a_reply_to_a_list_is_sent_to_nobody_even_in_writing_mode(desk, tg, db, crm):
    add_user(db, OLENA)
    customer_chat(crm, 8401)
    sync(desk, crm, db, 8401)
    pin(db, 8401, OLENA)
    say(desk, tg, OLENA, MY_CHATS)
    listing = bot_messages(tg, OLENA)[-1]
    press(desk, tg, OLENA, card_of(desk, tg, OLENA, 8401), WRITE)
    assert send_mode_of(db, OLENA) == {"conversation_id": 8401, "mode": SEND_MODE}

    say(desk, tg, OLENA, "А цей де?", reply_to=listing["message_id"])
    time.sleep(0.3)
    desk.idle()
    assert seller_texts(crm, 8401) == []
    told = bot_messages(tg, OLENA)[-1]
    assert told["visible_text"] == UNKNOWN_REPLY
    assert told["reply_to_message_id"] is not None          # quoting her message
    assert send_mode_of(db, OLENA)["mode"] == SEND_MODE      # still writing to 8401


def test_a_reply_to_the_errors_answer_is_sent_to_nobody(desk, tg, db, crm):
    add_user(db, ADMIN_ID, "admin")
    customer_chat(crm, 8402)
    sync(desk, crm, db, 8402)
    pin(db, 8402, ADMIN_ID)
    press(desk, tg, ADMIN_ID, card_of(desk, tg, ADMIN_ID, 8402), WRITE)
    say(desk, tg, ADMIN_ID, "/errors")
    errors_answer = bot_messages(tg, ADMIN_ID)[-1]
    assert errors_answer["visible_text"] == "✅ Помилок немає."
    say(desk, tg, ADMIN_ID, "Дякую", reply_to=errors_answer["message_id"])
    time.sleep(0.3)
    desk.idle()
    assert seller_texts(crm, 8402) == []
    assert last_text(tg, ADMIN_ID) == UNKNOWN_REPLY


def test_a_reply_to_the_confirmation_goes_to_its_chat_whatever_the_writing_mode(desk, tg, db, crm):
    add_user(db, OLENA)
    customer_chat(crm, 8403, "Питання A")
    customer_chat(crm, 8404, "Питання B")
    sync(desk, crm, db, 8403, 8404)
    pin(db, 8403, OLENA)
    pin(db, 8404, OLENA)
    card_a, card_b = cards_of(desk, tg, OLENA, 8403, 8404)
    press(desk, tg, OLENA, card_a, WRITE)
    say(desk, tg, OLENA, "Відповідь у чат A")
    confirmation = wait_for(lambda: [m for m in bot_messages(tg, OLENA)
                                     if m["visible_text"] == "✅ Надіслано клієнту (ордер #8403)."])[0]
    press(desk, tg, OLENA, card_b, WRITE)                    # now writing to B
    say(desk, tg, OLENA, "Ще одне для A", reply_to=confirmation["message_id"])
    wait_for(lambda: len(seller_texts(crm, 8403)) == 2)
    desk.idle()
    assert seller_texts(crm, 8403) == ["Відповідь у чат A", "Ще одне для A"]
    assert seller_texts(crm, 8404) == []
