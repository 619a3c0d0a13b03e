"""Admin commands and access control, end to end (SPEC §1, §4), in Ukrainian and English.

Every test speaks through Telegram updates that the sandbox delivers to the webhook; the
workers answer with the real pyTelegramBotAPI; the assertions are what a person would
notice in Telegram (texts, keyboards, edits) and what the database then holds.
"""
import re
from datetime import datetime, timedelta

from conftest import ADMIN_ID, LOG_CHAT, SHARED_CHAT
from harness import wait_for, crm_chat

LINK_KEY = "test-link-key"
HOUR = 3600

MAIN_MENU_UK = ["🔥 Мої переписки", "⚡ Закріплені чати", "📊 Статистика",
                "📁 Історія моїх переписок", "📁 Історія моїх закріплених чатів",
                "📁 Історія всіх чатів", "🔎 Пошук чату", "🕘 Моя зміна"]
ADMIN_COMMANDS = ["/approve_5", "/ban_5", "/all_users", "/clean", "/get_chat_1"]


# --------------------------------------------------------------------------- helpers

def add_user(db, tg_id, role, username=None, language="uk", first_name="User"):
    # REPLACE: the bootstrap admin (ADMIN_IDS) is already there when the desk starts.
    db.execute("REPLACE INTO users (tg_id, username, first_name, language, role)"
               " VALUES (%s, %s, %s, %s, %s)", (tg_id, username, first_name, language, role))
    return tg_id


def add_admin(db, language="uk"):
    return add_user(db, ADMIN_ID, "admin", "boss", language)


def add_chat(db, id_i, email="client@example.com", product="Product"):
    crm_chat(db, id_i, customer_email=email, title=product)


def add_pin(db, id_i, manager_id, state="ACTIVE", ended_hours_ago=None):
    ended = None if ended_hours_ago is None else f"NOW(6) - INTERVAL {ended_hours_ago} HOUR"
    db.execute("INSERT INTO pins (conversation_id, manager_id, kind, state, created_at, last_reply_at,"
               f" ended_at) VALUES (%s, %s, 'PIN', %s, NOW(6) - INTERVAL 2 HOUR, NOW(6),"
               f" {ended or 'NULL'})", (id_i, manager_id, state))


def says(tg, chat_id):
    """What a person sees from the bot in their chat: visible texts, oldest first."""
    return [m["visible_text"] for m in tg.messages(chat_id) if not m["deleted"]]


def sent_to(tg, chat_id):
    """Every sendMessage the bot tried towards chat_id (successful or not)."""
    return [c for c in tg.calls("sendMessage") if c["params"].get("chat_id") == chat_id]


def inline_buttons(message):
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def reply_keyboard(message):
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("keyboard", []) for b in row]


def admin_says(desk, tg, text, *, language="uk"):
    """The admin sends `text`; returns what the bot newly said to them once all work is done."""
    before = len(tg.messages(ADMIN_ID))
    tg.user_sends_text(ADMIN_ID, text, username="boss", language_code=language)
    desk.idle()
    return tg.messages(ADMIN_ID)[before:]


def roles(db):
    return {r["tg_id"]: r["role"] for r in db.fetchall("SELECT tg_id, role FROM users")}


def pins_of(db, id_i):
    return [(r["manager_id"], r["state"]) for r in
            db.fetchall("SELECT manager_id, state FROM pins WHERE conversation_id = %s ORDER BY id", (id_i,))]


def synced_chat(desk, crm, tg, id_i, text, email="buyer@example.com", product="Ноутбук Lenovo"):
    """A customer writes in the CRM, the CRM signals, the post lands in the shared chat."""
    crm.customer_writes(id_i, text, email=email, product=product)
    assert crm.signal(desk.listener_url, LINK_KEY, id_i) == [200]
    wait_for(lambda: any(f"Рахунок: {id_i} " in t for t in says(tg, SHARED_CHAT)))
    desk.idle()
    return next(m for m in tg.messages(SHARED_CHAT) if f"Рахунок: {id_i} " in m["visible_text"])


def log_lines(tg):
    return says(tg, LOG_CHAT)


# --------------------------------------------------------------------------- 1. /start

def test_the_bootstrap_admin_gets_the_main_menu(desk, tg, db):
    tg.user_sends_text(ADMIN_ID, "/start", username="boss")
    desk.idle()
    [welcome] = tg.messages(ADMIN_ID)
    assert welcome["visible_text"] == "Вітаємо, @boss! Ви підключені до KeepDesk."
    assert reply_keyboard(welcome) == MAIN_MENU_UK
    assert roles(db) == {ADMIN_ID: "admin"}


def test_a_strangers_start_waits_for_approval_and_admins_are_told_once(desk, tg, db):
    tg.user_sends_text(ADMIN_ID, "/start", username="boss")
    desk.idle()
    tg.user_sends_text(601, "/start", username="ivan")
    tg.user_sends_text(602, "/start", username="john", language_code="en")
    tg.user_sends_text(609, "/start", first_name="Ann <&> Co")   # no username, a hostile name
    desk.idle()
    assert says(tg, 601) == ["Дякуємо! Ваш запит на доступ надіслано адміністраторам. "
                             "Очікуйте підтвердження."]
    assert says(tg, 602) == ["Thank you! Your access request was sent to the admins. "
                             "Please wait for approval."]
    notices = says(tg, ADMIN_ID)[1:]
    assert len(notices) == 3
    for tg_id, name in ((601, "@ivan"), (602, "@john"), (609, "Ann <&> Co")):
        [notice] = [n for n in notices if f"(id {tg_id})" in n]
        assert notice.startswith(f"🆕 Новий користувач {name} (id {tg_id}) просить доступ.")
        for command in (f"/approve_{tg_id}", f"/ban_{tg_id}", f"/admin_{tg_id}"):
            assert command in notice.split()
    assert roles(db) == {ADMIN_ID: "admin", 601: "pending", 602: "pending", 609: "pending"}

    # The same pending person presses /start again: told to wait again, admins not bothered.
    tg.user_sends_text(601, "/start", username="ivan")
    desk.idle()
    assert len(says(tg, 601)) == 2 and says(tg, 601)[1] == says(tg, 601)[0]
    assert len(says(tg, ADMIN_ID)) == 4


def test_an_admin_who_blocked_the_bot_does_not_keep_the_others_from_hearing(desk, tg, db):
    add_user(db, ADMIN_ID, "admin", "boss")      # blocked the bot; the desk does not know yet
    add_user(db, ADMIN_ID + 1, "admin", "deputy")
    tg.block_user(ADMIN_ID)
    tg.user_sends_text(607, "/start", first_name="Ann <&> Co")
    desk.idle(timeout=20)
    waiting = says(tg, 607)
    notices = says(tg, ADMIN_ID + 1)
    assert (len(waiting), len(notices)) == (1, 1), (waiting, notices)  # each told once
    assert notices[0].startswith("🆕 Новий користувач Ann <&> Co (id 607) просить доступ.")


# --------------------------------------------------------------------------- 2. roles

def test_approve_makes_a_manager_who_then_gets_the_menu(desk, tg, db):
    add_admin(db)
    tg.user_sends_text(603, "/start", username="newbie")
    desk.idle()
    [confirmation] = admin_says(desk, tg, "/approve_603")
    assert confirmation["visible_text"] == "✅ @newbie тепер менеджер."
    assert roles(db)[603] == "manager"
    _, approved = tg.messages(603)
    assert approved["visible_text"] == "✅ Доступ підтверджено. Ласкаво просимо до KeepDesk!"
    assert reply_keyboard(approved) == MAIN_MENU_UK

    tg.user_sends_text(603, "/start", username="newbie")
    desk.idle()
    welcome = tg.messages(603)[-1]
    assert welcome["visible_text"] == "Вітаємо, @newbie! Ви підключені до KeepDesk."
    assert reply_keyboard(welcome) == MAIN_MENU_UK


def test_admin_command_makes_an_admin_who_can_use_admin_commands_at_once(desk, tg, db):
    add_admin(db)
    add_user(db, 604, "manager", "olena")
    [confirmation] = admin_says(desk, tg, "/admin_604")
    assert confirmation["visible_text"] == "⭐ @olena тепер адміністратор."
    assert roles(db)[604] == "admin"
    [note] = tg.messages(604)
    assert note["visible_text"] == "⭐ Вам надано права адміністратора."
    assert reply_keyboard(note) == MAIN_MENU_UK
    tg.user_sends_text(604, "/all_users", username="olena")
    desk.idle()
    assert says(tg, 604)[-1].startswith("👥 Користувачі (сторінка 1 з 1)")


def test_ban_silences_the_person_and_ends_their_pins(desk, tg, db):
    add_admin(db)
    add_user(db, 605, "manager", "olena")
    for id_i in (7201, 7202):
        add_chat(db, id_i)
        add_pin(db, id_i, 605)
    [confirmation] = admin_says(desk, tg, "/ban_605")
    assert confirmation["visible_text"] == "⛔ @olena заблоковано."
    assert roles(db)[605] == "banned"
    assert pins_of(db, 7201) == [(605, "DELETE_PIN")] and pins_of(db, 7202) == [(605, "DELETE_PIN")]
    assert db.scalar("SELECT COUNT(*) FROM pins WHERE ended_at IS NULL") == 0
    assert sorted(log_lines(tg)) == [
        f"#CHANGE_PIN @olena: закріп знято: менеджера заблоковано (чат #{id_i})"
        for id_i in (7201, 7202)]

    # From now on the bot does not answer them at all, and does not even note a new name.
    tg.user_sends_text(605, "привіт", username="olena_new")
    tg.user_sends_text(605, "/start", username="olena_new")
    tg.user_sends_text(605, "🔥 Мої переписки", username="olena_new")
    desk.idle()
    assert sent_to(tg, 605) == []
    row = db.fetchone("SELECT username, role FROM users WHERE tg_id = 605")
    assert (row["username"], row["role"]) == ("olena", "banned")


def test_a_banned_stranger_who_never_started_stays_silent_too(desk, tg, db):
    add_admin(db)
    admin_says(desk, tg, "/ban_606")
    assert roles(db)[606] == "banned"
    tg.user_sends_text(606, "/start", username="spammer")
    desk.idle()
    assert sent_to(tg, 606) == []


def test_approving_someone_who_blocked_the_bot_does_not_message_them(desk, tg, db):
    add_admin(db)
    add_user(db, 608, "pending", "gone")
    db.execute("UPDATE users SET reachable = 0 WHERE tg_id = 608")  # Telegram said 403 before
    tg.block_user(608)
    [confirmation] = admin_says(desk, tg, "/approve_608")
    assert confirmation["visible_text"] == "✅ @gone тепер менеджер."
    assert roles(db)[608] == "manager"
    # SPEC §6: no more messages to a user who blocked the bot, until they /start again.
    assert sent_to(tg, 608) == []
    assert not [line for line in log_lines(tg) if line.startswith("#ERROR")]


def test_the_admin_cannot_ban_themselves(desk, tg, db):
    add_admin(db)
    [answer] = admin_says(desk, tg, f"/ban_{ADMIN_ID}")
    assert answer["visible_text"] == "Свою власну роль змінити не можна."
    assert roles(db) == {ADMIN_ID: "admin"}
    [menu_again] = admin_says(desk, tg, "/start")
    assert reply_keyboard(menu_again) == MAIN_MENU_UK


# --------------------------------------------------------------------------- 3. non-admins

def _state_of_everything(db):
    return (roles(db),
            db.fetchall("SELECT id, manager_id, state FROM pins ORDER BY id"),
            db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'clean'"),
            db.fetchall("SELECT tg_id, conversation_id, mode FROM manager_state ORDER BY tg_id"))


def test_a_manager_gets_silence_for_admin_commands_even_in_send_mode(desk, tg, db, crm):
    add_admin(db)
    add_user(db, 5, "pending", "target")
    manager = add_user(db, 610, "manager", "olena")
    add_chat(db, 7300)
    crm.add_chat(7300)
    add_pin(db, 7300, manager)
    db.execute("INSERT INTO manager_state (tg_id, conversation_id, mode) VALUES (%s, 7300, 'send')",
               (manager,))
    before = _state_of_everything(db)
    for command in ADMIN_COMMANDS:
        tg.user_sends_text(manager, command, username="olena")
    desk.idle()
    assert sent_to(tg, manager) == []
    assert sent_to(tg, 5) == [] and sent_to(tg, ADMIN_ID) == []
    assert _state_of_everything(db) == before
    assert [c for c in crm.calls("/debates/v2") if c["method"] == "POST"] == []  # nothing to the client


def test_a_pending_person_gets_only_waiting_for_approval_for_admin_commands(desk, tg, db):
    add_admin(db)
    add_user(db, 5, "pending", "target")
    pending = add_user(db, 611, "pending", "ivan")
    before = _state_of_everything(db)
    for command in ADMIN_COMMANDS:
        tg.user_sends_text(pending, command, username="ivan")
    desk.idle()
    # SPEC §1: a pending person "sees 'waiting for approval', nothing else".
    waiting = "Дякуємо! Ваш запит на доступ надіслано адміністраторам. Очікуйте підтвердження."
    assert says(tg, pending) == [waiting] * len(ADMIN_COMMANDS)
    assert sent_to(tg, 5) == [] and sent_to(tg, ADMIN_ID) == []
    assert _state_of_everything(db) == before


def test_a_stranger_is_only_asked_to_press_start(desk, tg, db):
    add_admin(db)
    add_user(db, 5, "pending", "target")
    before = _state_of_everything(db)
    for command in ADMIN_COMMANDS:
        tg.user_sends_text(612, command, username="nobody")
    desk.idle()
    assert says(tg, 612) == ["Натисніть /start, щоб попросити доступ."] * len(ADMIN_COMMANDS)
    assert sent_to(tg, 5) == [] and sent_to(tg, ADMIN_ID) == []
    assert _state_of_everything(db) == before  # the stranger was not even registered


# --------------------------------------------------------------------------- 4. bad arguments

def test_bad_arguments_get_a_wrong_command_answer_with_an_example(desk, tg, db):
    add_admin(db)
    cases = {"/approve_abc": "/approve_12345", "/approve_": "/approve_12345",
             "/approve": "/approve_12345", "/ban_-5": "/ban_12345",
             "/get_chat_12x": "/get_chat_12345", "/admin_0": "/admin_12345",
             "/approve_99999999999999999999999": "/approve_12345",
             "/connect_to_chat_1.5": "/connect_to_chat_12345",
             "/get_connected_users_": "/get_connected_users_12345"}
    for command, example in cases.items():
        [answer] = admin_says(desk, tg, command)
        assert answer["visible_text"] == f"Невірна команда. Приклад: {example}", command
    assert roles(db) == {ADMIN_ID: "admin"}
    assert db.scalar("SELECT COUNT(*) FROM pins") == 0
    assert db.scalar("SELECT COUNT(*) FROM conversations") == 0


# --------------------------------------------------------------------------- 5. /all_users

def test_all_users_pages_through_25_people_in_the_same_message(desk, tg, db):
    add_admin(db)
    cycle = ["manager", "pending", "banned", "admin"]
    for n in range(1, 24):
        add_user(db, 10000 + n, cycle[n % 4], f"user{n:02d}")
    add_user(db, 10024, "pending", None, first_name="<b>Bob</b> & Co")
    [first] = admin_says(desk, tg, "/all_users")
    lines = first["visible_text"].split("\n")
    assert lines[0] == "👥 Користувачі (сторінка 1 з 2)"
    assert len(lines) == 21
    role_names = {"менеджер", "очікує", "заблокований", "адмін"}
    for line in lines[1:]:
        assert re.fullmatch(r".+ · \d+ · (\S+)", line).group(1) in role_names, line
    assert f"@boss · {ADMIN_ID} · адмін" in lines
    assert "@user01 · 10001 · очікує" in lines and "@user04 · 10004 · менеджер" in lines
    [forward] = inline_buttons(first)
    assert forward["text"] == "▶"

    tg.user_presses_button(ADMIN_ID, ADMIN_ID, first["message_id"], forward["callback_data"])
    desk.idle()
    assert len(tg.messages(ADMIN_ID)) == 1  # no new message: the same one was edited
    second = tg.message(ADMIN_ID, first["message_id"])
    page2 = second["visible_text"].split("\n")
    assert page2[0] == "👥 Користувачі (сторінка 2 з 2)"
    assert len(page2) == 6
    assert "<b>Bob</b> & Co · 10024 · очікує" in page2   # shown as written, not as markup
    everyone = {line.split(" · ")[1] for line in lines[1:] + page2[1:]}
    assert everyone == {str(ADMIN_ID)} | {str(10000 + n) for n in range(1, 25)}
    [back] = inline_buttons(second)
    assert back["text"] == "◀"
    assert desk.deps.codec.decode(back["callback_data"]).args == (0,)
    [answer] = tg.callback_answers()
    assert answer["text"] is None  # just the spinner stopped


# --------------------------------------------------------------------------- 6. /get_chat

def test_get_chat_shows_the_card_of_a_synced_chat(desk, tg, db, crm):
    add_admin(db)
    synced_chat(desk, crm, tg, 8001, "Ціна < 100 & є в наявності?", email="buyer@example.com",
                product="Ноутбук Lenovo")
    [card] = admin_says(desk, tg, "/get_chat_8001")
    text = card["visible_text"]
    assert text.startswith("💬 Чат #8001\nКлієнт: buyer@example.com\nТовар: Ноутбук Lenovo\n"
                           "Ні за ким не закріплено")
    assert "👤 Клієнт" in text and text.endswith("Ціна < 100 & є в наявності?")
    labels = [b["text"] for b in inline_buttons(card)]
    assert labels[:3] == ["📁 Історія чата", "📩 Написати повідомлення",
                          "✅ Надіслати статус \"Прочитано\""]
    # A Telegram reply to the card reaches this chat.
    assert db.scalar("SELECT conversation_id FROM tg_message_map WHERE tg_chat_id = %s AND tg_message_id = %s",
                     (ADMIN_ID, card["message_id"])) == 8001


def test_get_chat_of_an_unknown_chat_says_not_found(desk, tg, db):
    add_admin(db)
    [answer] = admin_says(desk, tg, "/get_chat_424242")
    assert answer["visible_text"] == "Чат 424242 не знайдено."


# --------------------------------------------------------------------------- 7. pins of a chat

def test_get_connected_users_lists_managers_and_pin_states(desk, tg, db):
    add_admin(db)
    add_user(db, 701, "manager", "olena")
    add_user(db, 702, "manager", "petro")
    add_chat(db, 7100)
    add_pin(db, 7100, 701, state="UN_PIN", ended_hours_ago=1)
    add_pin(db, 7100, 702)
    [answer] = admin_says(desk, tg, "/get_connected_users_7100")
    lines = answer["visible_text"].split("\n")
    assert lines[0] == "Закріпи чату #7100:"
    stamp = r"\d\d\.\d\d \d\d:\d\d"
    assert re.fullmatch(rf"@olena · PIN · UN_PIN · {stamp}–{stamp}", lines[1]), lines[1]
    assert re.fullmatch(rf"@petro · PIN · ACTIVE · {stamp}", lines[2]), lines[2]
    assert len(lines) == 3

    [none] = admin_says(desk, tg, "/get_connected_users_7199")
    assert none["visible_text"] == "Закріпи чату #7199:\nЗакріпів не було."


# --------------------------------------------------------------------------- 8. /connect_to_chat

def test_connect_to_chat_takes_it_over_from_the_manager_who_held_it(desk, tg, db, crm):
    add_admin(db)
    add_user(db, 701, "manager", "olena")
    synced_chat(desk, crm, tg, 8002, "Коли буде відправка?")
    add_pin(db, 8002, 701)
    said = [m["visible_text"] for m in admin_says(desk, tg, "/connect_to_chat_8002")]
    assert pins_of(db, 8002) == [(701, "DELETE_PIN"), (ADMIN_ID, "ACTIVE")]
    assert db.scalar("SELECT ended_at FROM pins WHERE manager_id = 701") is not None
    assert log_lines(tg)[-1] == "#CHANGE_PIN @boss: забрав чат у @olena (чат #8002)"
    assert said[0] == "✅ Чат 8002 закріплено за вами."
    history = next(s for s in said if s.startswith("📁 Історія чата #8002"))
    assert "Коли буде відправка?" in history
    assert said[-1].startswith("Ви відповідаєте на ордер #8002 (buyer@example.com)")
    state = db.fetchone("SELECT conversation_id, mode FROM manager_state WHERE tg_id = %s", (ADMIN_ID,))
    assert (state["conversation_id"], state["mode"]) == (8002, "send")


def test_connect_to_a_free_chat_pins_it_and_logs_it(desk, tg, db, crm):
    add_admin(db)
    synced_chat(desk, crm, tg, 8003, "Добрий день")
    said = [m["visible_text"] for m in admin_says(desk, tg, "/connect_to_chat_8003")]
    assert pins_of(db, 8003) == [(ADMIN_ID, "ACTIVE")]
    assert said[0] == "✅ Чат 8003 закріплено за вами."
    assert said[-1].startswith("Ви відповідаєте на ордер #8003 (buyer@example.com)")
    assert log_lines(tg) == ["#CHANGE_PIN @boss: закріпив чат (чат #8003)"]


def test_connect_to_a_task_chat_takes_it_as_a_task(desk, tg, db, crm):
    add_admin(db)
    synced_chat(desk, crm, tg, 8004, "Де мій ключ?", product="Ключ активації Windows 11")
    assert db.scalar("SELECT kind FROM conversations WHERE id = 8004") == "task"
    admin_says(desk, tg, "/connect_to_chat_8004")
    # SPEC §2: a task chat is held with an ACTIVATE_KEY pin and is then "in work", like
    # one taken with the 🔑 button; an ordinary PIN would let the admin unpin a task and
    # leave the task "new" in the 📊 view.
    pin = db.fetchone("SELECT kind, state FROM pins WHERE conversation_id = 8004")
    assert (pin["kind"], pin["state"]) == ("ACTIVATE_KEY", "ACTIVE")
    assert db.scalar("SELECT status FROM conversations WHERE id = 8004") == "in_work"


def test_connect_to_a_chat_the_crm_does_not_know_says_not_found(desk, tg, db, crm):
    add_admin(db)
    said = [m["visible_text"] for m in admin_says(desk, tg, "/connect_to_chat_424243")]
    assert said == ["Чат 424243 не знайдено."]
    assert db.scalar("SELECT COUNT(*) FROM pins") == 0
    assert db.scalar("SELECT COUNT(*) FROM conversations") == 0


# --------------------------------------------------------------------------- 9. /clean

def test_clean_deletes_old_shared_posts_where_telegram_allows_and_purges_old_history(desk, tg, db, crm):
    add_admin(db)
    # Three posts in the shared chat, written 49 h, 25 h and moments ago (Telegram's clock
    # and the post records agree). CLEAN_AFTER_HOURS is 24; Telegram deletes up to 48 h.
    too_old = synced_chat(desk, crm, tg, 8101, "позавчора")
    tg.advance_clock(24 * HOUR)
    old = synced_chat(desk, crm, tg, 8102, "вчора")
    tg.advance_clock(25 * HOUR)
    fresh = synced_chat(desk, crm, tg, 8103, "сьогодні")
    for post, hours in ((too_old, 49), (old, 25)):
        db.execute("UPDATE tg_message_map SET created_at = NOW(6) - INTERVAL %s HOUR"
                   " WHERE tg_chat_id = %s AND tg_message_id = %s",
                   (hours, SHARED_CHAT, post["message_id"]))
    # Stored history: one message past RETENTION_DAYS (180), one within it; an ancient post record.
    add_chat(db, 8200)
    db.execute("INSERT INTO messages (id, conversation_id, external_id, direction, text,"
               " date_written) VALUES"
               " (990001, 8200, '990001', 'client', 'ancient', NOW() - INTERVAL 200 DAY),"
               " (990002, 8200, '990002', 'client', 'recent', NOW() - INTERVAL 10 DAY)")
    db.execute("INSERT INTO tg_message_map (tg_chat_id, tg_message_id, conversation_id, created_at)"
               " VALUES (%s, 99999, 8200, NOW(6) - INTERVAL 200 DAY)", (ADMIN_ID,))

    said = admin_says(desk, tg, "/clean")
    assert said[0]["visible_text"] == "🧹 Очищення запущено у фоні; звіт надійде сюди."
    [report] = said[1:]
    assert report["visible_text"].startswith(
        "🧹 Очищення завершено: видалено постів у спільному чаті — 1 (не вдалося — 0); "
        "видалено збережених повідомлень — 1, записів про пости — 1,")

    assert tg.message(SHARED_CHAT, old["message_id"])["deleted"] is True
    assert tg.message(SHARED_CHAT, fresh["message_id"])["deleted"] is False
    assert tg.message(SHARED_CHAT, too_old["message_id"])["deleted"] is False
    assert [c["params"]["message_id"] for c in tg.calls("deleteMessage")] == [old["message_id"]]
    kept_posts = {r["tg_message_id"] for r in db.fetchall(
        "SELECT tg_message_id FROM tg_message_map WHERE tg_chat_id = %s", (SHARED_CHAT,))}
    assert kept_posts == {too_old["message_id"], fresh["message_id"]}
    assert {r["id"] for r in db.fetchall("SELECT id FROM messages WHERE conversation_id = 8200")} == {990002}
    assert db.scalar("SELECT COUNT(*) FROM messages WHERE conversation_id IN (8101, 8102, 8103)") == 3


def test_a_message_purged_by_clean_is_not_announced_again_by_a_later_sync(desk, tg, db, crm):
    add_admin(db)
    long_ago = datetime.now() - timedelta(days=200)
    crm.customer_writes(8300, "давнє питання", at=long_ago)
    crm.signal(desk.listener_url, LINK_KEY, 8300)
    wait_for(lambda: any("давнє питання" in t for t in says(tg, SHARED_CHAT)))
    desk.idle()
    # That was 200 days ago: the post's record and its finished send job are as old.
    db.execute("UPDATE tg_message_map SET created_at = NOW(6) - INTERVAL 200 DAY")
    db.execute("UPDATE jobs SET updated_at = NOW(6) - INTERVAL 200 DAY WHERE status = 'done'")
    admin_says(desk, tg, "/clean")
    assert "видалено збережених повідомлень — 1," in says(tg, ADMIN_ID)[-1]
    posts_before = len(says(tg, SHARED_CHAT))

    crm.customer_writes(8300, "нове питання")
    crm.signal(desk.listener_url, LINK_KEY, 8300)
    wait_for(lambda: any("нове питання" in t for t in says(tg, SHARED_CHAT)))
    desk.idle()
    new_posts = says(tg, SHARED_CHAT)[posts_before:]
    # The customer's 200-day-old question was announced once already; after its purge it
    # must not come back as news.
    assert [p.rsplit("Повідомлення: ", 1)[1] for p in new_posts] == ["нове питання"]


# --------------------------------------------------------------------------- 10. English

def test_an_english_admin_gets_english(desk, tg, db):
    tg.user_sends_text(ADMIN_ID, "/start", username="boss", language_code="en")
    desk.idle()
    assert says(tg, ADMIN_ID) == ["Welcome, @boss! You are connected to KeepDesk."]
    tg.user_sends_text(620, "/start", username="ann", language_code="uk")
    desk.idle()
    assert says(tg, ADMIN_ID)[-1].startswith("🆕 New user @ann (id 620) asks for access.")
    [confirmation] = admin_says(desk, tg, "/approve_620", language="en")
    assert confirmation["visible_text"] == "✅ @ann is a manager now."
    # The approved person reads in their own language.
    assert says(tg, 620)[-1] == "✅ Доступ підтверджено. Ласкаво просимо до KeepDesk!"
    [users] = admin_says(desk, tg, "/all_users", language="en")
    assert users["visible_text"].split("\n") == ["👥 Users (page 1 of 1)",
                                                 f"@boss · {ADMIN_ID} · admin",
                                                 "@ann · 620 · manager"]
    [wrong] = admin_says(desk, tg, "/ban_x", language="en")
    assert wrong["visible_text"] == "Wrong command. Example: /ban_12345"
    [clean] = admin_says(desk, tg, "/clean", language="en")[:1]
    assert clean["visible_text"] == "🧹 Cleaning runs in the background; the report will come here."
    assert says(tg, ADMIN_ID)[-1].startswith("🧹 Cleaning done: shared chat posts deleted — 0")


# --------------------------------------------------------------------------- 11. forged taps

def test_a_pending_persons_users_page_tap_changes_nothing(desk, tg, db):
    add_admin(db)
    add_user(db, 10001, "manager", "someone")
    tg.user_sends_text(630, "/start", username="sneaky")
    desk.idle()
    [waiting] = tg.messages(630)
    before = _state_of_everything(db)
    valid = desk.deps.codec.encode("users", 1)
    forged = "users:1~AAAAAAAA"
    for data in (valid, forged):
        tg.user_presses_button(630, 630, waiting["message_id"], data, username="sneaky")
    desk.idle()
    answers = tg.callback_answers()
    assert [a["text"] for a in answers] == ["Немає доступу.", "Немає доступу."]
    assert tg.message(630, waiting["message_id"]) == waiting  # not edited
    assert tg.messages(630) == [waiting]                       # nothing new either
    assert tg.calls("editMessageText") == []
    assert _state_of_everything(db) == before


def test_a_managers_tap_on_an_admin_button_is_refused(desk, tg, db):
    add_admin(db)
    manager = add_user(db, 631, "manager", "olena")
    tg.user_sends_text(manager, "/start", username="olena")
    desk.idle()
    [menu] = tg.messages(manager)
    tg.user_presses_button(manager, manager, menu["message_id"],
                           desk.deps.codec.encode("users", 0), username="olena")
    desk.idle()
    [answer] = tg.callback_answers()
    assert answer["text"]  # some explanation, not the silent success of a page turn
    assert tg.calls("editMessageText") == [] and len(tg.messages(manager)) == 1
