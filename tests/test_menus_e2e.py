"""What a manager sees and does in the bot (SPEC §2, §3 flows 4–8), end to end.

Real parts: the Telegram and CRM sandboxes over loopback, the webhook and listener doors on
real ports, workers running the real pyTelegramBotAPI, the session's MariaDB. Chats come
from customers writing in the CRM sandbox and a signal to the listener; managers are rows
in `users`; pins are rows in `pins` or come from the claim buttons of shared posts.
Everything is asserted as the manager would notice it: texts, buttons, edits in place,
answers to taps, posts in the shared and log chats (plus the DB state the brief names).
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta


from bot.texts import TEXTS
from conftest import LOG_CHAT, SHARED_CHAT
from harness import wait_for
from utils.clock import utc_now

LINK_KEY = "test-link-key"
OLENA, PETRO, JOHN = 700, 701, 702
FAR_FUTURE = datetime(2100, 1, 1, 12, 0, 0)  # naive UTC, like KeepDesk's clock
BASE_TIME = datetime(2024, 5, 17, 10, 0, 0)

# SPEC §3, written out here (not taken from bot.texts) so the test checks the spec.
UK_MAIN_MENU = [["🔥 Мої переписки", "⚡ Закріплені чати"],
                ["📊 Статистика"],
                ["📁 Історія моїх переписок"],
                ["📁 Історія моїх закріплених чатів"],
                ["📁 Історія всіх чатів"],
                ["🔎 Пошук чату", "🕘 Моя зміна"]]      # SPEC §8: finding a chat, shifts
HISTORY_CHAT = "📁 Історія чата"
WRITE = "📩 Написати повідомлення"
READ = '✅ Надіслати статус "Прочитано"'
TASK_STATUS = "✅ Змінити статус діалогу"
UNPIN = "👤 Зняти з мене закріп"
DONE = "🏁 Розмову завершено"
BACK = "◀ Назад"
# The desk's tools on every card (SPEC §8): canned replies, a note; hand-over for the holder.
TOOLS = ["💬 Шаблони", "📝 Нотатка"]
HANDOVER = "🔁 Передати"
BACK_TO_CHAT = "◀ Повернутися до чату"
TASK_PRODUCT = "Ключ активації Windows 11"


# --------------------------------------------------------------------------- helpers

def add_manager(db, tg_id=OLENA, username="olena", language="uk", role="manager"):
    first_name = (username or "user").title()
    db.execute("INSERT INTO users (tg_id, username, first_name, language, role)"
               " VALUES (%s, %s, %s, %s, %s)", (tg_id, username, first_name, language, role))
    return tg_id


def customer_chat(crm, id_i, *, product="Ноутбук Lenovo", email=None, at=None,
                  text="Добрий день! Є в наявності?", answered=True):
    """A CRM chat with one customer message. `answered`: the shop already replied in the
    CRM web page, so syncing it posts nothing (lists and cards need chats, not posts)."""
    at = at or BASE_TIME
    crm.customer_writes(id_i, text, email=email or f"c{id_i}@example.com", product=product, at=at)
    if answered:
        crm.shop_writes(id_i, "Так, є. Відповіли з CRM.", at=at + timedelta(seconds=30))


def sync(desk, crm, db, *ids):
    """Signal the listener for each chat and wait until the desk has stored them."""
    for id_i in ids:
        assert crm.signal(desk.listener_url, LINK_KEY, id_i) == [200]
    desk.idle()
    placeholders = ", ".join(["%s"] * len(ids))
    assert db.scalar(f"SELECT COUNT(*) FROM conversations WHERE id IN ({placeholders})", ids) == len(ids)


def pin(db, id_i, manager_id, kind="PIN", state="ACTIVE"):
    ended = None if state == "ACTIVE" else utc_now()
    db.execute("INSERT INTO pins (conversation_id, manager_id, kind, state, ended_at) VALUES (%s, %s, %s, %s, %s)",
               (id_i, manager_id, kind, state, ended))


def pin_states(db, id_i):
    return [(r["manager_id"], r["kind"], r["state"]) for r in
            db.fetchall("SELECT manager_id, kind, state FROM pins WHERE conversation_id = %s ORDER BY id", (id_i,))]


def chat_row(db, id_i):
    return db.fetchone("SELECT * FROM conversations WHERE id = %s", (id_i,))


def bot_messages(tg, chat_id):
    return [m for m in tg.messages(chat_id) if not m.get("deleted")]


def last(tg, chat_id):
    return bot_messages(tg, chat_id)[-1]


def visible(message) -> str:
    return message.get("visible_text") or ""


def buttons(message):
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def labels(message):
    return [b["text"] for b in buttons(message)]


def rows(message):
    markup = message.get("reply_markup") or {}
    return [[b["text"] for b in row] for row in markup.get("inline_keyboard", [])]


def keyboard(message):
    """The reply keyboard (the one under the text field) sent with a message."""
    markup = message.get("reply_markup") or {}
    return [[b["text"] for b in row] for row in markup.get("keyboard", [])]


def listed_ids(message):
    """Chat numbers on the buttons of a list, top to bottom."""
    return [int(re.search(r"#(\d+)", label).group(1)) for label in labels(message)
            if re.search(r"#(\d+)", label)]


def links(message):
    return {e["url"] for e in message.get("entities") or [] if e["type"] == "text_link"}


USERNAMES = {OLENA: "olena", PETRO: "petro", JOHN: "john"}


def say(desk, tg, user_id, text, language_code="uk"):
    username = USERNAMES.get(user_id)
    tg.user_sends_text(user_id, text, language_code=language_code, username=username,
                       first_name=(username or "User").title())
    desk.idle()


def open_menu(desk, tg, user_id, label):
    """Tap a main-menu button; the list the bot answers with."""
    before = len(bot_messages(tg, user_id))
    say(desk, tg, user_id, label)
    messages = bot_messages(tg, user_id)
    assert len(messages) == before + 1, [visible(m) for m in messages[before:]]
    return messages[-1]


def press(desk, tg, user_id, message, label=None, *, data=None):
    """Tap an inline button (by its label, or with hand-made data); the tap's answer."""
    if data is None:
        matching = [b["callback_data"] for b in buttons(message) if b["text"] == label]
        assert matching, f"no button {label!r} in {labels(message)}"
        data = matching[0]
    update = tg.user_presses_button(user_id, message["chat_id"], message["message_id"], data)
    desk.idle()
    query_id = update["callback_query"]["id"]
    answers = [a for a in tg.callback_answers() if a["callback_query_id"] == query_id]
    assert len(answers) == 1, "every tap is answered exactly once"
    return answers[0]


def button_for(message, id_i):
    return next(b["text"] for b in buttons(message) if f"#{id_i} " in b["text"] + " ")


def open_chat(desk, tg, user_id, list_message, id_i):
    """Tap a chat in a list; the card the bot sends."""
    before = len(bot_messages(tg, user_id))
    answer = press(desk, tg, user_id, list_message, button_for(list_message, id_i))
    assert answer["text"] is None  # opening is quiet: the card is the answer
    messages = bot_messages(tg, user_id)
    assert len(messages) == before + 1
    return messages[-1]


def card_of(desk, tg, user_id, id_i):
    """The chat's card, reached as a manager would: all chats → the chat."""
    return open_chat(desk, tg, user_id, open_menu(desk, tg, user_id, "📁 Історія всіх чатів"), id_i)


def shared_posts(tg):
    return bot_messages(tg, SHARED_CHAT)


def take_from_shared_post(desk, tg, user_id, post, label="✍ Відповісти"):
    """A manager taps the claim button under a shared-chat post; the tap's answer."""
    return press(desk, tg, user_id, post, label)


# --------------------------------------------------------------------------- 1. main menu

def test_start_gives_an_approved_manager_the_main_menu_of_the_spec(desk, tg, db):
    add_manager(db)
    say(desk, tg, OLENA, "/start")
    [welcome] = bot_messages(tg, OLENA)
    assert "Вітаємо" in visible(welcome) and "@olena" in visible(welcome)
    assert keyboard(welcome) == UK_MAIN_MENU


def test_an_english_speaking_manager_gets_english_menus_lists_and_cards(desk, tg, db, crm):
    add_manager(db, JOHN, "john", language=None)
    customer_chat(crm, 7001, product="Laptop", email="buyer@example.com")
    sync(desk, crm, db, 7001)
    pin(db, 7001, JOHN)
    say(desk, tg, JOHN, "/start", language_code="en")
    [welcome] = bot_messages(tg, JOHN)
    en = TEXTS["en"]
    assert keyboard(welcome) == [[en["messages"], en["pin_chats"]], [en["stats_pin_chats"]],
                                 [en["history_messages"]], [en["history_pin_chats"]], [en["history"]],
                                 [en["find_chat"], en["shift_menu"]]]
    assert keyboard(welcome)[0] == ["🔥 My conversations", "⚡ Pinned chats"]
    english = {label for row in keyboard(welcome) for label in row}
    assert not english & {label for row in UK_MAIN_MENU for label in row}
    assert visible(welcome).startswith("Welcome, @john!")

    empty = open_menu(desk, tg, JOHN, "⚡ Pinned chats")
    assert visible(empty) == "⚡ Pinned chats (page 1 of 1)\n\nNothing here yet."
    assert labels(empty) == ["◀ Back"]

    mine = open_menu(desk, tg, JOHN, "🔥 My conversations")
    assert visible(mine) == "🔥 My conversations (page 1 of 1)"
    assert labels(mine) == ["#7001 buyer@example.com Laptop", "◀ Back"]
    card = open_chat(desk, tg, JOHN, mine, 7001)
    assert visible(card).startswith(
        "💬 Chat #7001\nClient: buyer@example.com\nProduct: Laptop\nPinned to: @john")
    assert "👤 Client" in visible(card) and "🏪 Shop" in visible(card)
    assert labels(card) == ["📁 Chat history", "📩 Write a message", '✅ Send "Read" status',
                            "👤 Unpin me", "🏁 Conversation done", "💬 Canned replies", "📝 Note", "🔁 Hand over", "◀ Back"]


# --------------------------------------------------------------------------- 2. lists

def test_my_conversations_pages_ten_at_a_time_and_turns_pages_in_place(desk, tg, db, crm):
    add_manager(db)
    add_manager(db, PETRO, "petro")
    ids = list(range(7101, 7113))
    for id_i in ids + [7113, 7114]:
        customer_chat(crm, id_i, product=TASK_PRODUCT if id_i == 7114 else "Ноутбук Lenovo")
    sync(desk, crm, db, *ids, 7113, 7114)
    for id_i in ids:                      # pinned one after another: 7112 is the newest
        pin(db, id_i, OLENA)
    pin(db, 7113, PETRO)                  # someone else's
    pin(db, 7114, OLENA, "ACTIVATE_KEY")  # a task: listed under ⚡, not here
    assert shared_posts(tg) == []

    page = open_menu(desk, tg, OLENA, "🔥 Мої переписки")
    assert visible(page) == "🔥 Мої переписки (сторінка 1 з 2)"
    assert listed_ids(page) == list(range(7112, 7102, -1))
    assert rows(page)[-2:] == [["▶"], [BACK]]
    assert button_for(page, 7112) == "#7112 c7112@example.com Ноутбук Lenovo"
    messages_before = len(bot_messages(tg, OLENA))
    sends_before = len(tg.calls("sendMessage"))

    answer = press(desk, tg, OLENA, page, "▶")
    turned = tg.message(OLENA, page["message_id"])
    assert turned["edited"] and answer["text"] is None
    assert visible(turned) == "🔥 Мої переписки (сторінка 2 з 2)"
    assert listed_ids(turned) == [7102, 7101]
    assert rows(turned)[-2:] == [["◀"], [BACK]]
    assert len(bot_messages(tg, OLENA)) == messages_before  # the same message, edited
    assert len(tg.calls("sendMessage")) == sends_before

    press(desk, tg, OLENA, turned, "◀")
    back = tg.message(OLENA, page["message_id"])
    assert visible(back) == "🔥 Мої переписки (сторінка 1 з 2)"
    assert listed_ids(back) == list(range(7112, 7102, -1))
    assert len(bot_messages(tg, OLENA)) == messages_before


def test_an_empty_list_says_so(desk, tg, db, crm):
    add_manager(db)
    add_manager(db, PETRO, "petro")
    customer_chat(crm, 7120)
    sync(desk, crm, db, 7120)
    pin(db, 7120, OLENA)  # somebody else's pin is not Petro's conversation
    page = open_menu(desk, tg, PETRO, "🔥 Мої переписки")
    assert visible(page) == "🔥 Мої переписки (сторінка 1 з 1)\n\nТут поки порожньо."
    assert rows(page) == [[BACK]]


def test_pinned_chats_and_the_histories_list_what_they_promise(desk, tg, db, crm):
    add_manager(db)
    add_manager(db, PETRO, "petro")
    # Last message times, shuffled against the numbers: "all chats" must sort by time.
    minutes = {7201: 5, 7202: 1, 7203: 7, 7204: 3, 7205: 2, 7206: 6, 7207: 4}
    for id_i, minute in minutes.items():
        product = TASK_PRODUCT if id_i in (7204, 7205) else "Телефон"
        customer_chat(crm, id_i, product=product, at=BASE_TIME + timedelta(minutes=minute))
    sync(desk, crm, db, *minutes)
    pin(db, 7201, OLENA)                                   # active, ordinary
    pin(db, 7202, OLENA, state="UN_PIN")                   # expired
    pin(db, 7203, OLENA, state="DELETE_PIN")               # removed by Olena
    pin(db, 7204, OLENA, "ACTIVATE_KEY")                   # active task
    pin(db, 7205, OLENA, "ACTIVATE_KEY", "UN_ACTIVATE_KEY")  # expired task
    pin(db, 7206, PETRO, state="UN_PIN")                   # Petro's history, not Olena's

    assert listed_ids(open_menu(desk, tg, OLENA, "🔥 Мої переписки")) == [7201]
    pinned = open_menu(desk, tg, OLENA, "⚡ Закріплені чати")
    assert visible(pinned) == "⚡ Закріплені чати (сторінка 1 з 1)"
    assert listed_ids(pinned) == [7204]
    history = open_menu(desk, tg, OLENA, "📁 Історія моїх переписок")
    assert visible(history) == "📁 Історія моїх переписок (сторінка 1 з 1)"
    assert listed_ids(history) == [7203, 7202]
    tasks = open_menu(desk, tg, OLENA, "📁 Історія моїх закріплених чатів")
    assert visible(tasks) == "📁 Історія моїх закріплених чатів (сторінка 1 з 1)"
    assert listed_ids(tasks) == [7205]
    everything = open_menu(desk, tg, OLENA, "📁 Історія всіх чатів")
    assert visible(everything) == "📁 Історія всіх чатів (сторінка 1 з 1)"
    assert listed_ids(everything) == [7203, 7206, 7201, 7207, 7204, 7205, 7202]
    assert listed_ids(open_menu(desk, tg, PETRO, "📁 Історія моїх переписок")) == [7206]


def test_back_under_a_list_returns_to_the_main_menu(desk, tg, db):
    add_manager(db)
    page = open_menu(desk, tg, OLENA, "📁 Історія всіх чатів")
    press(desk, tg, OLENA, page, BACK)
    menu = last(tg, OLENA)
    assert visible(menu) == "Головне меню." and keyboard(menu) == UK_MAIN_MENU


# --------------------------------------------------------------------------- 3. chat card

def test_the_chat_card_shows_the_chat_its_holder_the_last_messages_and_the_right_buttons(desk, tg, db, crm):
    add_manager(db)
    add_manager(db, PETRO, "petro")
    for n in range(1, 8):  # seven messages; the card shows the last five
        at = BASE_TIME + timedelta(minutes=n)
        if n % 2:
            crm.customer_writes(7301, f"питання {n}", email="buyer@example.com",
                                product="Ноутбук Lenovo", at=at)
        else:
            crm.shop_writes(7301, f"відповідь {n}", at=at)
    customer_chat(crm, 7302, product="Телефон")
    customer_chat(crm, 7303, product=TASK_PRODUCT)
    customer_chat(crm, 7304, product="Навушники")
    sync(desk, crm, db, 7301, 7302, 7303, 7304)
    pin(db, 7301, OLENA)
    pin(db, 7302, PETRO)
    pin(db, 7303, OLENA, "ACTIVATE_KEY")

    mine = card_of(desk, tg, OLENA, 7301)
    text = visible(mine)
    assert text.startswith("💬 Чат #7301\nКлієнт: buyer@example.com\nТовар: Ноутбук Lenovo\n"
                           "Закріплено за: @olena")
    shown = re.findall(r"(?:питання|відповідь) (\d)", text)
    assert shown == ["3", "4", "5", "6", "7"]  # the last five, oldest first
    assert "👤 Клієнт 17.05 10:07\nпитання 7" in text
    assert "🏪 Магазин 17.05 10:06\nвідповідь 6" in text
    assert labels(mine) == [HISTORY_CHAT, WRITE, READ, UNPIN, DONE, *TOOLS, HANDOVER, BACK]

    someone_elses = card_of(desk, tg, OLENA, 7302)
    assert "Закріплено за: @petro" in visible(someone_elses)
    assert labels(someone_elses) == [HISTORY_CHAT, WRITE, READ, *TOOLS, BACK]

    task = card_of(desk, tg, OLENA, 7303)
    assert "Закріплено за: @olena" in visible(task) and "Статус задачі: нова" in visible(task)
    assert labels(task) == [HISTORY_CHAT, WRITE, READ, TASK_STATUS, *TOOLS, HANDOVER,
                            BACK]  # a task pin: no unpin

    free = card_of(desk, tg, OLENA, 7304)
    assert "Ні за ким не закріплено" in visible(free)
    assert labels(free) == [HISTORY_CHAT, WRITE, READ, *TOOLS, BACK]


def test_the_open_chat_button_of_a_notification_shows_the_card(desk, tg, db, crm):
    add_manager(db)
    customer_chat(crm, 7310, product="Телефон")
    sync(desk, crm, db, 7310)
    pin(db, 7310, OLENA)
    crm.customer_writes(7310, "Коли відправка?")
    sync(desk, crm, db, 7310)
    [notification] = bot_messages(tg, OLENA)
    press(desk, tg, OLENA, notification, "⚡ Відкрити чат")
    # The card, and writing mode at once (SPEC §8: one tap, not two).
    *_, card, prompt = bot_messages(tg, OLENA)
    assert visible(prompt).startswith("Ви відповідаєте на ордер #7310")
    assert visible(card).startswith("💬 Чат #7310")
    assert "Коли відправка?" in visible(card)
    assert UNPIN in labels(card)


def test_hostile_customer_text_cannot_break_the_chat_card(desk, tg, db, crm):
    """Five long messages full of characters that HTML must escape."""
    add_manager(db)
    for n in range(5):
        crm.customer_writes(7320, "<&>" * 130 + f" #{n}", product="Телефон",
                            at=BASE_TIME + timedelta(minutes=n))
    crm.shop_writes(7320, "ok", at=BASE_TIME + timedelta(minutes=9))
    sync(desk, crm, db, 7320)
    page = open_menu(desk, tg, OLENA, "📁 Історія всіх чатів")
    tg.user_presses_button(OLENA, OLENA, page["message_id"], page["reply_markup"]
                           ["inline_keyboard"][0][0]["callback_data"])
    wait_for(lambda: db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'tg_update'"
                               " AND status IN ('done', 'failed')") == 2, timeout=15)
    cards = [m for m in bot_messages(tg, OLENA) if visible(m).startswith("💬 Чат #7320")]
    assert cards, "the card never reached the manager"
    assert "<&><&>" in visible(cards[0])


# --------------------------------------------------------------------------- 4. history

def history_numbers(message):
    return [int(n) for n in re.findall(r"(?:питання|відповідь) (\d+)", visible(message))]


def test_chat_history_pages_go_back_and_forth_in_the_same_message(desk, tg, db, crm):
    add_manager(db)
    for n in range(1, 21):
        at = BASE_TIME + timedelta(minutes=n)
        if n == 15:
            crm.customer_writes(7401, "<b>не жирний</b> & Co", email="buyer@example.com",
                                product="Ноутбук", at=at)
        elif n == 17:
            image = crm.customer_writes(7401, "фото товару", image=b"\x89PNG fake",
                                        filename="item.png", at=at)
        elif n == 19:
            document = crm.customer_writes(7401, "", file=b"%PDF fake", filename="invoice.pdf", at=at)
        elif n % 2:
            crm.customer_writes(7401, f"питання {n}", at=at)
        else:
            crm.shop_writes(7401, f"відповідь {n}", at=at)
    sync(desk, crm, db, 7401)
    assert shared_posts(tg) == []  # the shop answered everything already

    card = card_of(desk, tg, OLENA, 7401)
    count = len(bot_messages(tg, OLENA))
    press(desk, tg, OLENA, card, HISTORY_CHAT)
    history = last(tg, OLENA)
    assert len(bot_messages(tg, OLENA)) == count + 1  # the history is a new message
    text = visible(history)
    assert text.startswith("📁 Історія чата #7401 (сторінка 1)")
    assert history_numbers(history) == [13, 14, 16, 18, 20]
    assert "👤 Клієнт 17.05 10:13\nпитання 13" in text
    assert "🏪 Магазин 17.05 10:20\nвідповідь 20" in text
    assert "👤 Клієнт 17.05 10:15\n<b>не жирний</b> & Co" in text  # literally, not bold
    assert "&lt;b&gt;не жирний&lt;/b&gt; &amp; Co" in history["text"]
    assert "фото товару\n🖼 зображення item.png" in text
    assert "📎 файл invoice.pdf" in text
    assert {image["url"], document["url"]} <= links(history)
    assert text.index("питання 13") < text.index("не жирний") < text.index("відповідь 20")
    assert rows(history) == [["◀"], [BACK_TO_CHAT]]
    count = len(bot_messages(tg, OLENA))

    press(desk, tg, OLENA, history, "◀")
    older = tg.message(OLENA, history["message_id"])
    assert older["edited"]
    assert visible(older).startswith("📁 Історія чата #7401 (сторінка 2)")
    assert history_numbers(older) == list(range(5, 13))
    assert rows(older) == [["◀", "▶"], [BACK_TO_CHAT]]

    press(desk, tg, OLENA, older, "◀")
    oldest = tg.message(OLENA, history["message_id"])
    assert history_numbers(oldest) == [1, 2, 3, 4]
    assert rows(oldest) == [["▶"], [BACK_TO_CHAT]]

    press(desk, tg, OLENA, oldest, "▶")
    press(desk, tg, OLENA, tg.message(OLENA, history["message_id"]), "▶")
    newest = tg.message(OLENA, history["message_id"])
    assert history_numbers(newest) == [13, 14, 16, 18, 20]
    assert len(bot_messages(tg, OLENA)) == count  # every page turn edited in place

    press(desk, tg, OLENA, newest, BACK_TO_CHAT)
    assert visible(last(tg, OLENA)).startswith("💬 Чат #7401")


# --------------------------------------------------------------------------- 5. read status

def test_read_status_marks_the_chat_seen_in_the_crm_and_resets_the_counter(desk, tg, db, crm):
    add_manager(db)
    crm.customer_writes(7501, "Є в наявності?", product="Телефон", at=BASE_TIME)
    crm.customer_writes(7501, "Алло?", at=BASE_TIME + timedelta(minutes=1))
    crm.shop_writes(7501, "Так", at=BASE_TIME + timedelta(minutes=2))
    customer_chat(crm, 7502)
    sync(desk, crm, db, 7501, 7502)
    assert chat_row(db, 7501)["cnt_new"] == 2
    card = card_of(desk, tg, OLENA, 7501)
    crm.reset_calls()

    answer = press(desk, tg, OLENA, card, READ)
    assert answer["text"] == "✅ Статус «Прочитано» надіслано."
    seen = crm.calls("/seen")
    assert [(c["method"], c["params"].get("id_i"), c["status"]) for c in seen] == [("POST", "7501", 200)]
    assert chat_row(db, 7501)["cnt_new"] == 0
    assert crm.chat(7501)["cnt_new"] == 0
    assert chat_row(db, 7502)["cnt_new"] == 1  # only that chat


def test_read_status_when_the_crm_is_down_says_so_and_is_sent_once_it_is_back(desk, tg, db, crm):
    add_manager(db)
    customer_chat(crm, 7503)
    sync(desk, crm, db, 7503)
    card = card_of(desk, tg, OLENA, 7503)
    crm.set_down(503)
    data = next(b["callback_data"] for b in buttons(card) if b["text"] == READ)
    update = tg.user_presses_button(OLENA, card["chat_id"], card["message_id"], data)
    query_id = update["callback_query"]["id"]
    answer = wait_for(lambda: [a for a in tg.callback_answers() if a["callback_query_id"] == query_id])[0]
    assert answer["text"].startswith("❌ CRM зараз недоступна")
    assert "буде надіслано автоматично" in answer["text"]
    assert chat_row(db, 7503)["cnt_new"] == 1
    crm.set_up()  # the durable step finishes the job, once
    wait_for(lambda: chat_row(db, 7503)["cnt_new"] == 0, timeout=20)
    assert [c["status"] for c in crm.calls("/seen")][-1] == 200
    assert crm.chat(7503)["cnt_new"] == 0


def test_the_unread_counter_counts_again_after_the_read_status(desk, tg, db, crm):
    add_manager(db)
    customer_chat(crm, 7504)
    sync(desk, crm, db, 7504)
    press(desk, tg, OLENA, card_of(desk, tg, OLENA, 7504), READ)
    assert chat_row(db, 7504)["cnt_new"] == 0
    crm.customer_writes(7504, "А ще питання")
    sync(desk, crm, db, 7504)
    assert crm.chat(7504)["cnt_new"] == 1
    assert chat_row(db, 7504)["cnt_new"] == 1


# --------------------------------------------------------------------------- 6. unpin

def test_a_manager_removes_their_own_pin_and_the_log_chat_hears_of_it(desk, tg, db, crm):
    add_manager(db)
    customer_chat(crm, 7601)
    sync(desk, crm, db, 7601)
    pin(db, 7601, OLENA)
    card = card_of(desk, tg, OLENA, 7601)

    answer = press(desk, tg, OLENA, card, UNPIN)
    assert answer["text"] == "👤 Закріп з чату #7601 знято."
    assert pin_states(db, 7601) == [(OLENA, "PIN", "DELETE_PIN")]
    assert db.scalar("SELECT ended_at IS NOT NULL FROM pins WHERE conversation_id = 7601") == 1
    told = last(tg, OLENA)
    assert visible(told) == "👤 Закріп з чату #7601 знято."
    assert keyboard(told) == UK_MAIN_MENU
    [log] = bot_messages(tg, LOG_CHAT)
    assert visible(log) == "#CHANGE_PIN @olena: зняв закріп (чат #7601)"

    assert listed_ids(open_menu(desk, tg, OLENA, "🔥 Мої переписки")) == []
    assert listed_ids(open_menu(desk, tg, OLENA, "📁 Історія моїх переписок")) == [7601]
    again = press(desk, tg, OLENA, card, UNPIN)  # the old card's button is stale now
    assert again["text"] == "Цей чат не закріплено за вами."
    assert len(bot_messages(tg, LOG_CHAT)) == 1


def test_a_task_pin_and_someone_elses_pin_cannot_be_removed(desk, tg, db, crm):
    add_manager(db)
    add_manager(db, PETRO, "petro")
    customer_chat(crm, 7602, product=TASK_PRODUCT)
    customer_chat(crm, 7603)
    sync(desk, crm, db, 7602, 7603)
    pin(db, 7602, OLENA, "ACTIVATE_KEY")
    pin(db, 7603, PETRO)
    codec = desk.deps.codec

    task_card = card_of(desk, tg, OLENA, 7602)
    assert UNPIN not in labels(task_card)
    refused = press(desk, tg, OLENA, task_card, data=codec.encode("unpin", 7602))
    assert refused["text"] == "Закріп задачі знімається автоматично; змініть статус задачі."
    assert refused["show_alert"] is True
    assert pin_states(db, 7602) == [(OLENA, "ACTIVATE_KEY", "ACTIVE")]

    other_card = card_of(desk, tg, OLENA, 7603)
    assert UNPIN not in labels(other_card)
    refused = press(desk, tg, OLENA, other_card, data=codec.encode("unpin", 7603))
    assert refused["text"] == "Цей чат не закріплено за вами."
    assert pin_states(db, 7603) == [(PETRO, "PIN", "ACTIVE")]
    desk.idle()
    assert bot_messages(tg, LOG_CHAT) == []


# --------------------------------------------------------------------------- 7. task chats

def test_a_task_is_taken_with_connect_and_its_status_toggles_between_in_work_and_done(desk, tg, db, crm):
    add_manager(db)
    crm.customer_writes(7701, "Ключ не активується", email="key@example.com", product=TASK_PRODUCT)
    sync(desk, crm, db, 7701)
    [post] = shared_posts(tg)
    assert labels(post) == ["🔑 Підключитися"]
    assert chat_row(db, 7701)["kind"] == "task" and chat_row(db, 7701)["status"] == "new"

    answer = take_from_shared_post(desk, tg, OLENA, post, "🔑 Підключитися")
    assert answer["text"] == "✅ Чат 7701 закріплено за вами."
    assert pin_states(db, 7701) == [(OLENA, "ACTIVATE_KEY", "ACTIVE")]
    assert chat_row(db, 7701)["status"] == "in_work"
    assert "Менеджер: @olena" in visible(tg.message(SHARED_CHAT, post["message_id"]))

    pinned = open_menu(desk, tg, OLENA, "⚡ Закріплені чати")
    assert listed_ids(pinned) == [7701]
    card = open_chat(desk, tg, OLENA, pinned, 7701)
    assert "Статус задачі: в роботі" in visible(card)
    assert labels(card) == [HISTORY_CHAT, WRITE, READ, TASK_STATUS, *TOOLS, HANDOVER, BACK]

    done = press(desk, tg, OLENA, card, TASK_STATUS)
    assert done["text"] == "Статус задачі #7701: виконана."
    assert chat_row(db, 7701)["status"] == "done"
    again = press(desk, tg, OLENA, card, TASK_STATUS)
    assert again["text"] == "Статус задачі #7701: в роботі."
    assert chat_row(db, 7701)["status"] == "in_work"
    assert "Статус задачі: в роботі" in visible(card_of(desk, tg, OLENA, 7701))


def test_the_status_button_of_an_ordinary_chat_changes_nothing(desk, tg, db, crm):
    add_manager(db)
    customer_chat(crm, 7702)
    sync(desk, crm, db, 7702)
    card = card_of(desk, tg, OLENA, 7702)
    answer = press(desk, tg, OLENA, card, data=desk.deps.codec.encode("status", 7702))
    assert answer["text"] == "Це не задача."
    assert chat_row(db, 7702)["status"] == "new"


def test_statistics_list_open_tasks_with_their_markers(desk, tg, db, crm):
    add_manager(db)
    add_manager(db, PETRO, "petro")
    tasks = {7711: 7, 7712: 6, 7713: 5, 7714: 4, 7715: 3, 7717: 2}
    for id_i, minute in tasks.items():
        customer_chat(crm, id_i, product=TASK_PRODUCT, at=BASE_TIME + timedelta(minutes=minute))
    customer_chat(crm, 7716, product="Ноутбук")  # an ordinary chat is no task
    sync(desk, crm, db, *tasks, 7716)
    # 7711 nobody took it
    pin(db, 7712, PETRO, "ACTIVATE_KEY")                      # □ in work
    pin(db, 7713, OLENA, "ACTIVATE_KEY", "UN_ACTIVATE_KEY")   # ● expired, not done
    db.execute("UPDATE conversations SET status = 'in_work' WHERE id IN (7712, 7713)")
    db.execute("UPDATE conversations SET status = 'done' WHERE id IN (7714, 7717)")
    db.execute("UPDATE conversations SET status = 'archive' WHERE id = 7715")
    pin(db, 7717, OLENA, "ACTIVATE_KEY")                      # done, still pinned: not open

    stats = open_menu(desk, tg, OLENA, "📊 Статистика")
    assert visible(stats) == ("📊 Відкриті задачі (сторінка 1 з 1)\n"
                              "★ ніхто не взяв  □ в роботі  ● потрібна перевірка  ✅ виконана (видно добу)")
    chat_buttons = [label for label in labels(stats) if "#" in label]
    # SPEC §8: who holds each task and since when; done ones stay a day.
    assert [(label.split(" ")[0], re.search(r"#(\d+)", label).group(1)) for label in chat_buttons] == [
        ("★", "7711"), ("□", "7712"), ("●", "7713"), ("✅", "7714"), ("✅", "7717")]
    assert "@petro" in chat_buttons[1]
    assert labels(stats)[-1] == BACK
    card = open_chat(desk, tg, OLENA, stats, 7713)
    assert "Ні за ким не закріплено" in visible(card) and "Статус задачі: в роботі" in visible(card)


def test_a_task_taken_through_the_shared_post_shows_as_in_work_then_as_needing_a_check(desk, tg, db, crm):
    add_manager(db)
    crm.customer_writes(7720, "Потрібен ключ", product=TASK_PRODUCT)
    sync(desk, crm, db, 7720)
    stats = open_menu(desk, tg, OLENA, "📊 Статистика")
    assert [label.split(" ")[0] for label in labels(stats) if "#7720" in label] == ["★"]

    take_from_shared_post(desk, tg, OLENA, shared_posts(tg)[0], "🔑 Підключитися")
    press(desk, tg, OLENA, stats, BACK)
    stats = open_menu(desk, tg, OLENA, "📊 Статистика")
    assert [label.split(" ")[0] for label in labels(stats) if "#7720" in label] == ["□"]

    desk.deps.clock = lambda: FAR_FUTURE  # the pin's window passes, the task is not done
    crm.customer_writes(7720, "Ви тут?")
    sync(desk, crm, db, 7720)
    assert pin_states(db, 7720) == [(OLENA, "ACTIVATE_KEY", "UN_ACTIVATE_KEY")]
    stats = open_menu(desk, tg, OLENA, "📊 Статистика")
    assert [label.split(" ")[0] for label in labels(stats) if "#7720" in label] == ["●"]
    assert listed_ids(open_menu(desk, tg, OLENA, "📁 Історія моїх закріплених чатів")) == [7720]


def test_answering_a_task_chat_by_a_reply_takes_it_as_a_task(desk, tg, db, crm):
    add_manager(db)
    crm.customer_writes(7740, "Потрібен ключ", product=TASK_PRODUCT)
    sync(desk, crm, db, 7740)
    [post] = shared_posts(tg)
    tg.user_sends_text(OLENA, "Надсилаю ключ", chat_id=SHARED_CHAT, username="olena",
                       reply_to_message_id=post["message_id"])
    desk.idle()
    assert crm.messages(7740)[-1]["message"] == "Надсилаю ключ"
    assert listed_ids(open_menu(desk, tg, OLENA, "⚡ Закріплені чати")) == [7740]
    assert pin_states(db, 7740) == [(OLENA, "ACTIVATE_KEY", "ACTIVE")]
    assert chat_row(db, 7740)["status"] == "in_work"
    assert UNPIN not in labels(card_of(desk, tg, OLENA, 7740))


def test_a_done_task_whose_pin_expires_goes_to_the_archive_whoever_notices_the_expiry(desk, tg, db, crm):
    add_manager(db)
    crm.customer_writes(7730, "Потрібен ключ", product=TASK_PRODUCT)
    sync(desk, crm, db, 7730)
    take_from_shared_post(desk, tg, OLENA, shared_posts(tg)[0], "🔑 Підключитися")
    card = card_of(desk, tg, OLENA, 7730)
    press(desk, tg, OLENA, card, TASK_STATUS)
    assert chat_row(db, 7730)["status"] == "done"

    desk.deps.clock = lambda: FAR_FUTURE
    crm.customer_writes(7730, "Дякую, все працює")  # the sync notices the expiry first
    sync(desk, crm, db, 7730)
    assert pin_states(db, 7730) == [(OLENA, "ACTIVATE_KEY", "UN_ACTIVATE_KEY")]
    assert "Статус задачі: в архіві" in visible(card_of(desk, tg, OLENA, 7730))


# --------------------------------------------------------------------------- 8. pin expiry

def test_an_expired_pin_sends_the_next_client_message_to_the_shared_chat_again(desk, tg, db, crm):
    add_manager(db)
    add_manager(db, PETRO, "petro")
    crm.customer_writes(7801, "Добрий день", email="c@example.com", product="Телефон")
    sync(desk, crm, db, 7801)
    [first] = shared_posts(tg)
    take_from_shared_post(desk, tg, OLENA, first)
    assert pin_states(db, 7801) == [(OLENA, "PIN", "ACTIVE")]

    crm.customer_writes(7801, "Коли відправка?")  # within the window: to Olena, quietly shared
    sync(desk, crm, db, 7801)
    assert any(visible(m).endswith("Коли відправка?") for m in bot_messages(tg, OLENA))
    quiet = shared_posts(tg)[-1]
    assert quiet["disable_notification"] and labels(quiet) == []
    olena_before = len(bot_messages(tg, OLENA))

    desk.deps.clock = lambda: FAR_FUTURE  # a day and more since Olena's last reply
    crm.customer_writes(7801, "Ви тут?")
    sync(desk, crm, db, 7801)
    post = shared_posts(tg)[-1]
    assert visible(post).endswith("Ви тут?")
    assert labels(post) == ["✍ Відповісти"] and not post["disable_notification"]
    assert "Закріплений менеджер" not in visible(post)
    assert len(bot_messages(tg, OLENA)) == olena_before  # nothing went to Olena
    assert pin_states(db, 7801) == [(OLENA, "PIN", "UN_PIN")]
    assert db.fetchone("SELECT ended_at FROM pins WHERE conversation_id = 7801")["ended_at"] == FAR_FUTURE

    assert listed_ids(open_menu(desk, tg, OLENA, "🔥 Мої переписки")) == []
    assert listed_ids(open_menu(desk, tg, OLENA, "📁 Історія моїх переписок")) == [7801]
    answer = take_from_shared_post(desk, tg, PETRO, post)  # anyone may take it now
    assert answer["text"] == "✅ Чат 7801 закріплено за вами."
    assert pin_states(db, 7801)[-1] == (PETRO, "PIN", "ACTIVE")


# --------------------------------------------------------------------------- 9. send mode

def test_send_mode_keyboard_and_going_back_to_the_chat_ends_send_mode(desk, tg, db, crm):
    add_manager(db)
    crm.customer_writes(7901, "Є в наявності?", email="buyer@example.com", product="Телефон")
    sync(desk, crm, db, 7901)
    answer = take_from_shared_post(desk, tg, OLENA, shared_posts(tg)[0])
    assert answer["text"] == "✅ Чат 7901 закріплено за вами."
    history, prompt = bot_messages(tg, OLENA)
    assert visible(history).startswith("📁 Історія чата #7901 (сторінка 1)")
    assert visible(prompt).startswith("Ви відповідаєте на ордер #7901 (buyer@example.com)")
    assert keyboard(prompt) == [[HISTORY_CHAT, READ], [BACK_TO_CHAT]]

    say(desk, tg, OLENA, HISTORY_CHAT)
    assert visible(last(tg, OLENA)).startswith("📁 Історія чата #7901 (сторінка 1)")
    assert "Є в наявності?" in visible(last(tg, OLENA))

    say(desk, tg, OLENA, READ)
    assert visible(last(tg, OLENA)) == "✅ Статус «Прочитано» надіслано."
    assert [c["params"]["id_i"] for c in crm.calls("/seen")] == ["7901"]

    say(desk, tg, OLENA, "Так, є. Відправимо сьогодні.")  # send mode: this goes to the client
    assert crm.messages(7901)[-1]["message"] == "Так, є. Відправимо сьогодні."
    assert crm.messages(7901)[-1]["seller"] == 1
    assert visible(last(tg, OLENA)) == "✅ Надіслано клієнту (ордер #7901)."

    count = len(bot_messages(tg, OLENA))
    say(desk, tg, OLENA, BACK_TO_CHAT)
    menu, card = bot_messages(tg, OLENA)[count:]
    assert visible(menu) == "Головне меню." and keyboard(menu) == UK_MAIN_MENU
    assert visible(card).startswith("💬 Чат #7901\nКлієнт: buyer@example.com\nТовар: Телефон\n"
                                    "Закріплено за: @olena")
    assert labels(card) == [HISTORY_CHAT, WRITE, READ, UNPIN, DONE, *TOOLS, HANDOVER, BACK]

    crm_messages = len(crm.messages(7901))
    sends = len([c for c in crm.calls("/debates/v2") if c["method"] == "POST"
                 and not c["path"].endswith(("seen", "upload-preview"))])
    say(desk, tg, OLENA, "це нотатка для себе, не для клієнта")
    assert len(crm.messages(7901)) == crm_messages  # send mode is over
    assert len([c for c in crm.calls("/debates/v2") if c["method"] == "POST"
                and not c["path"].endswith(("seen", "upload-preview"))]) == sends
    assert visible(last(tg, OLENA)).startswith("Спершу оберіть чат")

    press(desk, tg, OLENA, card, WRITE)  # 📩 on the card starts send mode again
    assert visible(last(tg, OLENA)).startswith("Ви відповідаєте на ордер #7901")
    say(desk, tg, OLENA, "Трекінг надішлемо ввечері.")
    assert crm.messages(7901)[-1]["message"] == "Трекінг надішлемо ввечері."


# --------------------------------------------------------------------------- 10. stale data

def test_stale_or_forged_buttons_are_answered_and_change_nothing(desk, tg, db, crm):
    add_manager(db)
    customer_chat(crm, 7950)
    sync(desk, crm, db, 7950)
    pin(db, 7950, OLENA)
    page = open_menu(desk, tg, OLENA, "🔥 Мої переписки")
    codec = desk.deps.codec
    messages = len(bot_messages(tg, OLENA))
    edits = len(tg.calls("editMessageText"))
    pins = pin_states(db, 7950)

    cases = [
        (codec.encode("list", 99, 0), "Ця кнопка застаріла."),       # no such list
        (codec.encode("list", 1, -1), "Ця кнопка застаріла."),       # no such page
        (codec.encode("hist", 999999, 0), "Ця кнопка застаріла."),   # no such chat
        (codec.encode("open", 999999), "Чат 999999 не знайдено."),
        (codec.encode("read", 999999), "Чат 999999 не знайдено."),
        (codec.encode("unpin", 999999), "Чат 999999 не знайдено."),
        ("list:1:1~AAAAAAAA", "Ця кнопка застаріла."),               # forged MAC
        ("unpin:7950", "Ця кнопка застаріла."),                      # no MAC at all
        ("x" * 80, "Ця кнопка застаріла."),                          # garbage
    ]
    for data, expected in cases:
        answer = press(desk, tg, OLENA, page, data=data)
        assert answer["text"] == expected, data
    assert len(bot_messages(tg, OLENA)) == messages
    assert len(tg.calls("editMessageText")) == edits
    assert tg.message(OLENA, page["message_id"])["edited"] is False
    assert crm.calls("/seen") == []
    assert pin_states(db, 7950) == pins


def test_a_stranger_cannot_use_a_managers_buttons(desk, tg, db, crm):
    add_manager(db)
    db.execute("INSERT INTO users (tg_id, role) VALUES (777, 'pending')")
    customer_chat(crm, 7960)
    sync(desk, crm, db, 7960)
    pin(db, 7960, OLENA)
    card = card_of(desk, tg, OLENA, 7960)
    unpin_data = next(b["callback_data"] for b in buttons(card) if b["text"] == UNPIN)
    update = tg.user_presses_button(777, OLENA, card["message_id"], unpin_data)
    desk.idle()
    [answer] = [a for a in tg.callback_answers()
                if a["callback_query_id"] == update["callback_query"]["id"]]
    assert answer["text"] == "Немає доступу."
    assert pin_states(db, 7960) == [(OLENA, "PIN", "ACTIVE")]
    say(desk, tg, 777, "🔥 Мої переписки")
    assert "Очікуйте підтвердження" in visible(last(tg, 777))


def test_a_stale_next_page_after_the_list_shrank_shows_the_last_page(desk, tg, db, crm):
    add_manager(db)
    ids = list(range(7970, 7982))
    for id_i in ids:
        customer_chat(crm, id_i)
    sync(desk, crm, db, *ids)
    for id_i in ids:
        pin(db, id_i, OLENA)
    page = open_menu(desk, tg, OLENA, "🔥 Мої переписки")
    db.execute("UPDATE pins SET state = 'UN_PIN' WHERE conversation_id >= 7975")  # seven pins expire
    press(desk, tg, OLENA, page, "▶")
    shown = tg.message(OLENA, page["message_id"])
    assert visible(shown) == "🔥 Мої переписки (сторінка 1 з 1)"
    assert listed_ids(shown) == [7974, 7973, 7972, 7971, 7970]
