"""A customer is never left wondering, end to end: the answer outside working hours on
WhatsApp, over the WhatsApp and Telegram sandboxes, the workers and a real MariaDB, with
time moved by the desk's clock (never by sleeping)."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from conftest import SHARED_CHAT
from harness import Desk, wait_for
from sandbox.telegram import parse_html
from utils.clock import MovableClock
from utils.hours import WorkingHours, opens_at

PHONE = "380671234567"
OLENA = 701
# Friday 5 December 2025, 22:00 in Kyiv (UTC+2): the shop ("Mon-Fri 09-18") is closed.
FRIDAY_22 = datetime(2025, 12, 5, 20, 0)
MONDAY_0905 = datetime(2025, 12, 8, 7, 5)
CLOSED_UK = "Дякуємо за повідомлення! Зараз ми не працюємо. Ми відповімо у понеділок після 09:00."
CLOSED_EN = "Thank you for your message! We are closed now. We will answer on Monday after 09:00."


@pytest.fixture
def clock():
    return MovableClock(FRIDAY_22)


@pytest.fixture
def shop(wa_settings, db, tg, crm, wa, clock):
    """A desk with one WhatsApp number, open Mon-Fri 09-18 in Kyiv, its clock in the test's hand."""
    settings = wa_settings.replace(working_hours="Mon-Fri 09-18", tz="Europe/Kyiv")
    running = Desk(settings, db, tg, crm, wa=wa).start(workers=False)
    running.deps.clock = clock          # before any job runs: every job sees the test's time
    running.start_workers()
    yield running
    running.stop()


def visible(message) -> str:
    return parse_html(message.get("text") or message.get("caption") or "")[0]


def manager(db, tg_id=OLENA, language="uk"):
    db.execute("INSERT INTO users (tg_id, username, first_name, language, role)"
               " VALUES (%s, 'olena', 'Olena', %s, 'manager')", (tg_id, language))
    return tg_id


def shared_posts(tg, needle):
    return [m for m in tg.messages(SHARED_CHAT) if needle in visible(m)]


def take(shop, tg, user_id, post):
    [button] = [b for row in post["reply_markup"]["inline_keyboard"] for b in row]
    update = tg.user_presses_button(user_id, SHARED_CHAT, post["message_id"], button["callback_data"],
                                    username="olena")
    query = update["callback_query"]["id"]
    answer = wait_for(lambda: [a for a in tg.callback_answers() if a["callback_query_id"] == query])[0]
    shop.idle()
    return answer


def test_a_customer_writing_at_night_is_told_once_when_the_shop_opens_and_the_morning_goes_on(
        shop, wa, tg, db, clock):
    olena = manager(db)
    wa.customer_writes(PHONE, "Добрий вечір! Є розмір M?", name="Оксана")
    wait_for(lambda: shared_posts(tg, "Є розмір M?"))
    wait_for(lambda: wa.message_texts(PHONE) == [CLOSED_UK])

    clock.advance(minutes=40)                           # 22:40: the same closed period
    wa.customer_writes(PHONE, "Алло? Ви тут?", name="Оксана")
    wait_for(lambda: shared_posts(tg, "Ви тут?"))
    shop.idle()
    assert wa.message_texts(PHONE) == [CLOSED_UK]       # told once

    clock.set(MONDAY_0905)                              # the next working morning
    post = shared_posts(tg, "Ви тут?")[-1]
    assert take(shop, tg, olena, post)["text"].startswith("✅")
    history = [visible(m) for m in tg.messages(olena) if "Історія чата" in visible(m)]
    assert history and "🏪 Магазин · 🤖 автоматично" in history[-1] and CLOSED_UK in history[-1]
    tg.user_sends_text(olena, "Так, є, відправимо сьогодні", username="olena")
    wait_for(lambda: wa.message_texts(PHONE) == [CLOSED_UK, "Так, є, відправимо сьогодні"])
    shop.idle()
    # The customer's wait was ended by the manager's answer, not by the automatic one.
    waits = db.fetchall("SELECT answered_by, answered_at FROM responses ORDER BY id")
    assert [w["answered_by"] for w in waits] == [olena]
    assert waits[0]["answered_at"] == MONDAY_0905


def test_a_customer_writing_in_english_is_answered_in_english(shop, wa, tg, db):
    wa.customer_writes(PHONE, "Hello, do you ship to Poland?", name="Anna")
    wait_for(lambda: shared_posts(tg, "ship to Poland"))
    wait_for(lambda: wa.message_texts(PHONE) == [CLOSED_EN])


def test_inside_working_hours_nobody_is_answered_automatically(shop, wa, tg, db, clock):
    clock.set(MONDAY_0905)
    wa.customer_writes(PHONE, "Добрий ранок, є розмір M?", name="Оксана")
    wait_for(lambda: shared_posts(tg, "Добрий ранок"))
    shop.idle()
    assert wa.message_texts(PHONE) == []


def test_the_automatic_answer_is_decided_once_however_many_times_it_is_asked(shop, wa, tg, db, clock):
    wa.customer_writes(PHONE, "Добрий вечір!", name="Оксана")
    wait_for(lambda: wa.message_texts(PHONE) == [CLOSED_UK])
    deps = shop.deps
    conversation_id = db.scalar("SELECT id FROM conversations WHERE channel = 'whatsapp'")
    conversation = deps.ingest.conversations.get(conversation_id)
    announced = deps.ingest.messages.page(conversation_id, 0, 10)
    for _ in range(2):   # a second worker deciding the same period finds the row
        with db.transaction() as cur:
            assert deps.ingest.after_hours.after_store(cur, conversation, announced, clock()) is None
    assert db.scalar("SELECT COUNT(*) FROM outbound WHERE conversation_id = %s",
                     (conversation_id,)) == 1


def test_the_shop_opens_after_its_holidays():
    hours = WorkingHours.parse("Mon-Fri 09-18", "Europe/Kyiv")
    assert opens_at(hours, FRIDAY_22) == datetime(2025, 12, 8, 7, 0)          # Monday 09:00
    assert opens_at(hours, FRIDAY_22, frozenset({date(2025, 12, 8)})) == datetime(2025, 12, 9, 7, 0)
    assert opens_at(hours, MONDAY_0905) is None
    assert opens_at(hours, MONDAY_0905, frozenset({date(2025, 12, 8)})) == datetime(2025, 12, 9, 7, 0)


@pytest.fixture
def office(sandbox_settings, db, tg, crm, clock):
    """A desk with the CRM, open Mon-Fri 09-18 in Kyiv, its clock in the test's hand."""
    settings = sandbox_settings.replace(working_hours="Mon-Fri 09-18", tz="Europe/Kyiv",
                                        tg_limit_private_per_s=100.0)
    running = Desk(settings, db, tg, crm).start(workers=False)
    running.deps.clock = clock
    running.start_workers()
    yield running
    running.stop()


def test_a_crm_customer_writing_at_night_hears_it_through_the_crm_and_still_waits_for_a_manager(
        office, crm, tg, db, clock):
    olena = manager(db)
    crm.customer_writes(9301, "Де моє замовлення?", email="client9301@example.com")
    assert crm.signal(office.listener_url, "test-link-key", 9301) == [200]
    wait_for(lambda: shared_posts(tg, "Де моє замовлення?"))
    wait_for(lambda: [m["message"] for m in crm.messages(9301) if m["seller"]] == [CLOSED_UK])
    office.idle()
    # The CRM's copy of the reply came back with its sync: it is automatic, the wait goes on.
    assert db.scalar("SELECT COUNT(*) FROM messages WHERE conversation_id = 9301"
                     " AND direction = 'shop'") == 1
    assert db.scalar("SELECT COUNT(*) FROM responses WHERE conversation_id = 9301"
                     " AND answered_at IS NULL") == 1
    crm.customer_writes(9301, "Алло?", email="client9301@example.com")
    assert crm.signal(office.listener_url, "test-link-key", 9301) == [200]
    wait_for(lambda: shared_posts(tg, "Алло?"))
    office.idle()
    assert [m["message"] for m in crm.messages(9301) if m["seller"]] == [CLOSED_UK]
    clock.set(MONDAY_0905)
    assert take(office, tg, olena, shared_posts(tg, "Алло?")[-1])["text"].startswith("✅")
    history = [visible(m) for m in tg.messages(olena) if "Історія чата" in visible(m)]
    assert history and "🏪 Магазин · 🤖 автоматично" in history[-1]


# -- auto-assignment -------------------------------------------------------------------------

PETRO, IVAN, MARTA = 702, 703, 704


def press(shop, tg, user_id, message, label):
    [data] = [b["callback_data"] for row in message["reply_markup"]["inline_keyboard"]
              for b in row if b["text"] == label]
    update = tg.user_presses_button(user_id, message["chat_id"], message["message_id"], data)
    query = update["callback_query"]["id"]
    answer = wait_for(lambda: [a for a in tg.callback_answers() if a["callback_query_id"] == query])[0]
    shop.idle()
    return answer


def team(db):
    for tg_id, name in ((OLENA, "olena"), (PETRO, "petro"), (IVAN, "ivan"), (MARTA, "marta")):
        db.execute("INSERT INTO users (tg_id, username, first_name, language, role)"
                   " VALUES (%s, %s, %s, 'uk', 'manager')", (tg_id, name, name.title()))
    db.execute("INSERT INTO desk_shifts (tg_id, on_shift, changed_at) VALUES (%s, 0, NOW())", (MARTA,))


def switch_on(shop, tg):
    from conftest import ADMIN_ID
    tg.user_sends_text(ADMIN_ID, "/auto_assign whatsapp on", username="boss")
    shop.idle()
    return wait_for(lambda: [visible(m) for m in tg.messages(ADMIN_ID) if "Автопризначення" in visible(m)])[-1]


def open_chats(db):
    return {r["manager_id"]: r["n"] for r in db.fetchall(
        "SELECT manager_id, COUNT(*) AS n FROM pins WHERE state = 'ACTIVE' GROUP BY manager_id")}


def test_new_chats_are_spread_over_the_managers_on_shift_and_never_to_one_off_shift(shop, wa, tg, db, clock):
    clock.set(MONDAY_0905)
    team(db)
    assert "whatsapp: увімкнено" in switch_on(shop, tg)
    for n in range(12):   # all at once: the workers decide them side by side
        wa.customer_writes(f"3806700000{n:02d}", f"Питання номер {n}", name=f"Клієнт {n}")
    wait_for(lambda: len(shared_posts(tg, "Питання номер")) == 12, timeout=30)
    shop.idle()
    assert open_chats(db) == {OLENA: 4, PETRO: 4, IVAN: 4}
    # The shared chat saw every chat, saying who got it; each manager was told.
    posts = shared_posts(tg, "Питання номер")
    assert len(posts) == 12
    named = [line for p in posts for line in visible(p).splitlines() if "Закріплений менеджер" in line]
    assert sorted(named) == sorted([f"Закріплений менеджер: @{n}" for n in ("olena", "petro", "ivan")] * 4)
    assert not any(p.get("reply_markup") for p in posts)   # nothing left to take
    for manager_id in (OLENA, PETRO, IVAN):
        told = [m for m in tg.messages(manager_id) if "Вам призначено новий чат" in visible(m)]
        assert len(told) == 4
    assert not [m for m in tg.messages(MARTA) if "Вам призначено" in visible(m)]


def test_a_manager_passes_an_assigned_chat_on_and_the_last_one_gives_it_back_to_the_shared_chat(
        shop, wa, tg, db, clock):
    clock.set(MONDAY_0905)
    team(db)
    switch_on(shop, tg)
    wa.customer_writes(PHONE, "Є розмір M?", name="Оксана")
    wait_for(lambda: shared_posts(tg, "Є розмір M?"))
    shop.idle()
    assert open_chats(db) == {OLENA: 1}
    passed = []
    for holder in (OLENA, PETRO, IVAN):
        told = wait_for(lambda: [m for m in tg.messages(holder) if "Вам призначено новий чат" in visible(m)])
        answer = press(shop, tg, holder, told[-1], "🔁 Передати")
        passed.append(answer["text"])
        assert holder not in open_chats(db)
    assert passed[0].startswith("🔁 Чат") and "@petro" in passed[0]
    assert "@ivan" in passed[1]
    assert passed[2].startswith("🔁 Чат") and "спільний чат" in passed[2]
    assert open_chats(db) == {}
    back = shared_posts(tg, "Повернуто у спільний чат")
    assert back and "@ivan передав(ла) чат" in visible(back[-1])
    labels = [b["text"] for row in back[-1]["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["✍ Відповісти"]


def test_auto_assignment_is_off_by_default(shop, wa, tg, db, clock):
    clock.set(MONDAY_0905)
    team(db)
    wa.customer_writes(PHONE, "Є розмір M?", name="Оксана")
    wait_for(lambda: shared_posts(tg, "Є розмір M?"))
    shop.idle()
    assert open_chats(db) == {}


# -- a score after the answer ---------------------------------------------------------------

def answer_and_mark_done(shop, wa, tg, db, phone, question, reply):
    wa.customer_writes(phone, question, name="Клієнт")
    post = wait_for(lambda: shared_posts(tg, question))[-1]
    assert take(shop, tg, OLENA, post)["text"].startswith("✅")
    tg.user_sends_text(OLENA, reply, username="olena")
    wait_for(lambda: reply in wa.message_texts(phone))
    shop.idle()
    conversation_id = db.scalar("SELECT id FROM conversations WHERE external_id = %s", (phone,))
    tg.user_sends_text(OLENA, f"/open_chat_{conversation_id}", username="olena")
    shop.idle()
    card = wait_for(lambda: [m for m in tg.messages(OLENA)
                             if visible(m).startswith(f"💬 Чат #{conversation_id}")])[-1]
    return conversation_id, press(shop, tg, OLENA, card, "🏁 Розмову завершено")


def test_a_score_after_the_answer_reaches_the_manager_the_desk_and_the_reports(
        shop, wa, tg, db, clock, settings):
    from utils.clock import utc_now
    from services.scores import REQUEST_TEXTS
    clock.set(utc_now())                # the reports page counts the last days of real time
    manager(db)
    asks = lambda phone: [t for t in wa.message_texts(phone) if t == REQUEST_TEXTS["uk"]]  # noqa: E731
    first, done = answer_and_mark_done(shop, wa, tg, db, PHONE, "Де моє замовлення?", "Вже в дорозі")
    assert done["text"].startswith(f"🏁 Чат #{first} завершено. Клієнта попросили оцінити")
    wait_for(lambda: asks(PHONE))
    wa.customer_writes(PHONE, "2 довго чекала", name="Клієнт")
    told = wait_for(lambda: [visible(m) for m in tg.messages(OLENA) if "⭐ Оцінка клієнта" in visible(m)])
    assert told == [f"⭐ Оцінка клієнта за чат #{first}: 2/5\n💬 довго чекала"]
    low = wait_for(lambda: shared_posts(tg, "⚠️ Низька оцінка"))
    assert visible(low[0]).startswith(f"⚠️ Низька оцінка: 2/5 за чат #{first}")
    assert [b["text"] for row in low[0]["reply_markup"]["inline_keyboard"] for b in row] == ["✍ Відповісти"]
    shop.idle()
    assert len(shared_posts(tg, "довго чекала")) == 1      # the score is no new customer message
    history = deps_history(shop, db, first)
    assert "2 довго чекала" in history and "Оцініть, будь ласка" in history

    # Done again the same day: not asked twice.
    _, again = answer_and_mark_done(shop, wa, tg, db, PHONE, "А ще питання", "Відповідаю")
    assert again["text"] == f"🏁 Чат #{first} завершено."
    shop.idle()
    assert len(asks(PHONE)) == 1

    for phone, score in (("380671110004", "4"), ("380671110005", "5 дякую!")):
        answer_and_mark_done(shop, wa, tg, db, phone, f"Питання від {phone}", "Відповідь")
        wait_for(lambda: asks(phone))
        wa.customer_writes(phone, score, name="Клієнт")
        wait_for(lambda: db.scalar("SELECT COUNT(*) FROM scores WHERE conversation_id ="
                                   " (SELECT id FROM conversations WHERE external_id = %s)", (phone,)) == 1)
    assert len(shared_posts(tg, "⚠️ Низька оцінка")) == 1

    from doors.panel import create_app
    from services.panel_auth import PanelAuth
    import re
    app = create_app(shop.settings.replace(web_secret_key="k" * 40), db)
    PanelAuth(db, utc_now).set_password("owner", "correct horse battery")
    client = app.test_client()
    login = client.get("/login").data
    token = re.search(rb'name="csrf_token" value="([^"]+)"', login).group(1).decode()
    assert client.post("/login", data={"csrf_token": token, "login": "owner",
                                       "password": "correct horse battery"}).status_code == 302
    page = client.get("/reports").data.decode()
    table = page[page.index('<table id="scores">'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r'<tr class="(total)?" data-manager="([^"]*)" data-channel="([^"]*)">.*?'
                      r'<td class="count">(\d+)</td><td class="median">([^<]*)</td><td class="low">(\d+)</td>',
                      table)
    whatsapp_everyone = [r for r in rows if r[2] == "whatsapp"][-1]
    assert whatsapp_everyone[3:] == ("3", "4", "1")
    assert [r for r in rows if r[2] == "all"][-1][3:] == ("3", "4", "1")


def deps_history(shop, db, conversation_id):
    return "\n".join(m.text for m in shop.deps.ingest.messages.page(conversation_id, 0, 50))


# -- one customer across channels -----------------------------------------------------------

def card_of(shop, tg, user_id, conversation_id):
    tg.user_sends_text(user_id, f"/open_chat_{conversation_id}", username="olena")
    shop.idle()
    return wait_for(lambda: [m for m in tg.messages(user_id)
                             if visible(m).startswith(f"💬 Чат #{conversation_id}")])[-1]


def labels_of(message):
    return [b["text"] for row in message["reply_markup"]["inline_keyboard"] for b in row]


def test_the_same_customer_on_whatsapp_and_a_telegram_account_is_shown_on_both_cards(shop, wa, tg, db):
    olena = manager(db)
    wa.customer_writes(PHONE, "Є розмір M?", name="Оксана")
    wait_for(lambda: shared_posts(tg, "Є розмір M?"))
    shop.idle()
    whatsapp = db.scalar("SELECT id FROM conversations WHERE channel = 'whatsapp'")
    # The same person on one of the shop's Telegram accounts, her phone written nationally.
    db.execute("INSERT INTO conversations (id, channel, account, external_id, customer_name,"
               " customer_phone, last_date) VALUES (777001, 'tgaccount', 'shop', '5550001', 'Оксана',"
               " '067 123 45 67', NOW())")
    db.execute("INSERT INTO conversations (id, channel, account, external_id, customer_phone,"
               " last_date) VALUES (777002, 'tgaccount', 'shop', '5550002', '+48 512 345 678', NOW())")
    card = card_of(shop, tg, olena, whatsapp)
    assert "🔗 Цей клієнт також: Telegram #777001" in visible(card)   # not the Polish number
    also = [label for label in labels_of(card) if label.startswith("🔗")]
    assert len(also) == 1 and also[0].endswith("#777001")
    press(shop, tg, olena, card, also[0])             # the button opens the other conversation
    other = card_of(shop, tg, olena, 777001)
    assert f"WhatsApp #{whatsapp}" in visible(other)
    assert [label for label in labels_of(other) if label.startswith("🔗")] == [f"🔗 WhatsApp #{whatsapp}"]


def test_two_crm_orders_of_one_email_are_one_customer(office, crm, tg, db):
    olena = manager(db)
    for id_i in (9401, 9402):
        crm.customer_writes(id_i, f"Питання {id_i}", email="Same.Buyer@example.com" if id_i == 9401
                            else "same.buyer@example.com")
        assert crm.signal(office.listener_url, "test-link-key", id_i) == [200]
        wait_for(lambda: shared_posts(tg, f"Питання {id_i}"))
    crm.customer_writes(9403, "Інший клієнт", email="other@example.com")
    assert crm.signal(office.listener_url, "test-link-key", 9403) == [200]
    wait_for(lambda: shared_posts(tg, "Інший клієнт"))
    office.idle()
    assert "🔗 Цей клієнт також: KeepingCRM #9402" in visible(card_of(office, tg, olena, 9401))
    assert "🔗 Цей клієнт також: KeepingCRM #9401" in visible(card_of(office, tg, olena, 9402))
    assert "Цей клієнт також" not in visible(card_of(office, tg, olena, 9403))


# -- the answer outside working hours on a Telegram account -----------------------------------

TG_NUMBER = "380501112233"


@pytest.fixture
def account_desk(planfix_settings, db, tg, crm, tga, planfix, accounts_env, clock, tmp_path):
    """A desk whose Telegram account's customers come to the desk, its clock in the test's hand."""
    import requests
    from conftest import PLANFIX_ADMIN_TOKEN
    settings = planfix_settings.replace(tg_accounts_routing="desk", working_hours="Mon-Fri 09-18",
                                        tz="Europe/Kyiv")
    running = Desk(settings, db, tg, crm).start(workers=False)
    running.deps.clock = clock
    running.start_workers()
    running.accounts = running.start_accounts(dict(accounts_env, TG_ACCOUNTS_ROUTING="desk"))
    (tmp_path / "main.session").write_text(tga.add_account(TG_NUMBER))
    body = {"name": "shop", "number": "+" + TG_NUMBER, "url_planfix": planfix.url,
            "token_planfix": planfix.token, "name_session": "main", "path_session": "."}
    answer = requests.post(f"{running.listener_url}/planfix/clients", json=body,
                           headers={"Token": PLANFIX_ADMIN_TOKEN}, timeout=10)
    assert answer.status_code == 200, answer.text
    token = answer.json()["token"]
    wait_for(lambda: requests.get(f"{running.listener_url}/planfix/clients",
                                  json={"name": "shop", "number": TG_NUMBER},
                                  headers={"Token": token}, timeout=10).json().get("status") == "online",
             timeout=20)
    yield running
    running.stop()


def test_a_telegram_account_customer_writing_at_night_is_told_once_through_the_account(
        account_desk, tga, tg, db):
    customer = tga.add_user("Ivan", username="ivan_p")
    tga.customer_writes(TG_NUMBER, customer["id"], "Коли доставка?")
    wait_for(lambda: shared_posts(tg, "Коли доставка?"), timeout=20)
    wait_for(lambda: [m["text"] for m in tga.sent(TG_NUMBER, to=customer["id"])] == [CLOSED_UK], timeout=20)
    tga.customer_writes(TG_NUMBER, customer["id"], "Алло?")
    wait_for(lambda: shared_posts(tg, "Алло?"), timeout=20)
    account_desk.idle(timeout=20)
    assert [m["text"] for m in tga.sent(TG_NUMBER, to=customer["id"])] == [CLOSED_UK]


def test_outside_the_whatsapp_window_only_the_configured_template_goes(wa_settings, db, tg, crm, wa):
    """A message that reaches the desk more than a day after it was written (a gateway
    that was away): the free text may not go; AFTER_HOURS_TEMPLATE does."""
    from datetime import timedelta
    from utils.clock import utc_now
    later = utc_now() + timedelta(days=2)
    local_day = (later + timedelta(hours=2)).date()      # Kyiv in December: UTC+2
    wa.add_template("closed_notice", 0)
    settings = wa_settings.replace(working_hours="Mon-Fri 09-18", tz="Europe/Kyiv",
                                   holidays=(local_day, local_day + timedelta(days=1)),
                                   after_hours_template="closed_notice")
    running = Desk(settings, db, tg, crm, wa=wa).start(workers=False)
    running.deps.clock = MovableClock(later)
    running.start_workers()
    try:
        wa.customer_writes(PHONE, "Добрий вечір!", name="Оксана")
        wait_for(lambda: shared_posts(tg, "Добрий вечір!"))
        wait_for(lambda: wa.message_texts(PHONE) == ["[closed_notice] "])   # never the free text
    finally:
        running.stop()


def test_the_settings_of_the_answer_outside_working_hours_are_checked_and_named():
    from config import SettingsError, load_settings
    from test_config import VALID
    s = load_settings(dict(VALID, HOLIDAYS="2026-01-07, 2026-01-01", AFTER_HOURS_CHANNELS="whatsapp",
                           AFTER_HOURS_TEXT_WHATSAPP_EN="Closed till {when}"), env_file=None)
    assert s.holidays == (date(2026, 1, 1), date(2026, 1, 7))
    assert s.after_hours_channels == ("whatsapp",)
    assert s.after_hours_text("whatsapp", "en") == "Closed till {when}"
    assert s.after_hours_text("keepingcrm", "en") == ""       # the built-in words
    assert load_settings(dict(VALID, AFTER_HOURS_CHANNELS="off"), env_file=None).after_hours_channels == ()
    for name, value in (("HOLIDAYS", "7 January"), ("AFTER_HOURS_CHANNELS", "viber"),
                        ("AFTER_HOURS_TEXT_UK", "Ми відповімо {коли}")):
        with pytest.raises(SettingsError, match=name):
            load_settings(dict(VALID, **{name: value}), env_file=None)


def test_the_opening_is_named_in_the_customers_words():
    from services.after_hours import when_words
    hours = WorkingHours.parse("Mon-Fri 09-18, Sat 10-14", "Europe/Kyiv")
    thursday_22 = datetime(2025, 12, 4, 20, 0)
    assert when_words(opens_at(hours, thursday_22), thursday_22, hours, "uk") == "завтра після 09:00"
    assert when_words(opens_at(hours, FRIDAY_22), FRIDAY_22, hours, "uk") == "завтра після 10:00"
    early = datetime(2025, 12, 5, 5, 0)                                  # Friday 07:00
    assert when_words(opens_at(hours, early), early, hours, "en") == "today after 09:00"
    holidays = frozenset({date(2025, 12, 6), date(2025, 12, 8), date(2025, 12, 9)})
    assert when_words(opens_at(hours, FRIDAY_22, holidays), FRIDAY_22, hours, "uk") == "у середу після 09:00"
    assert when_words(opens_at(hours, FRIDAY_22, holidays), FRIDAY_22, hours, "en") == "on Wednesday after 09:00"


def test_a_manager_links_two_chats_by_hand_and_keeps_two_apart(office, crm, tg, db):
    olena = manager(db)
    for id_i, email in ((9501, "a@example.com"), (9502, "b@example.com"), (9503, "a@example.com")):
        crm.customer_writes(id_i, f"Питання {id_i}", email=email)
        assert crm.signal(office.listener_url, "test-link-key", id_i) == [200]
        wait_for(lambda: shared_posts(tg, f"Питання {id_i}"))
    office.idle()

    def said(text):
        tg.user_sends_text(olena, text, username="olena")
        office.idle()
        return visible(tg.messages(olena)[-1])

    assert said("/link_9501_9502").startswith("🔗 Чати #9501 і #9502 — один клієнт")
    assert said("/unlink_9503_9501").startswith("✂️ Чати #9503 і #9501 — різні клієнти")
    assert said("/link_9501_9501").startswith("Це той самий чат")
    assert "🔗 Цей клієнт також: KeepingCRM #9502" in visible(card_of(office, tg, olena, 9501))
    assert "KeepingCRM #9503" not in visible(card_of(office, tg, olena, 9501))   # apart, same e-mail
    assert "🔗 Цей клієнт також: KeepingCRM #9501" in visible(card_of(office, tg, olena, 9502))
    assert "Цей клієнт також" not in visible(card_of(office, tg, olena, 9503))
