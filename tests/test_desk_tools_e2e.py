"""A desk that never strands a customer (SPEC §8), end to end: as managers and
admins use it in Telegram, against the sandboxes and a real MariaDB, with time moved by
the desk's clock (never by sleeping)."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from conftest import ADMIN_ID, LOG_CHAT, SHARED_CHAT
from harness import Desk, wait_for
from utils.clock import MovableClock

LINK_KEY = "test-link-key"
OLENA, PETRO, IVAN = 701, 702, 703
NAMES = {OLENA: "olena", PETRO: "petro", IVAN: "ivan", ADMIN_ID: "boss"}
# Monday 1 December 2025, 10:00 in Kyiv (UTC+2): inside "Mon-Fri 09-18".
MONDAY_10 = datetime(2025, 12, 1, 8, 0)
PERIODIC = ", ".join(f"'periodic:{kind}'" for kind in ("sla_sweep", "daily_clean", "pin_notices",
                                                        "command_menus"))


@pytest.fixture
def clock():
    return MovableClock(MONDAY_10)


@pytest.fixture
def office(sandbox_settings, db, tg, crm, clock):
    """The desk with SLA_REMIND_MINUTES=15, SLA_TAKEBACK_MINUTES=60, Mon-Fri 09-18 in Kyiv,
    its clock in the test's hand. Telegram's per-chat limits are raised (they are tested
    elsewhere): a conversation of many steps with one manager need not wait a second a step."""
    settings = sandbox_settings.replace(sla_remind_minutes=15, sla_takeback_minutes=60,
                                        working_hours="Mon-Fri 09-18", tz="Europe/Kyiv",
                                        tg_limit_private_per_s=100.0, tg_limit_group_per_min=6000.0)
    running = Desk(settings, db, tg, crm).start(workers=False)
    running.deps.clock = clock          # before any job runs: every job sees the test's time
    running.start_workers()
    # The desk's periodic jobs run once at start; then the test runs them itself, at the
    # moments it chooses (a background run must not race the test's own).
    wait_for(lambda: db.scalar(f"SELECT COUNT(*) FROM jobs WHERE dedupe_key IN ({PERIODIC})"
                               " AND status = 'pending' AND run_after > NOW(6)") == 4)
    db.execute(f"UPDATE jobs SET run_after = NOW(6) + INTERVAL 1 HOUR WHERE dedupe_key IN ({PERIODIC})")
    running.idle()
    yield running
    running.stop()


# -- helpers -------------------------------------------------------------------------------

def person(db, tg_id, role="manager", language="uk"):
    db.execute("INSERT INTO users (tg_id, username, first_name, language, role) VALUES"
               " (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE role = VALUES(role),"
               " username = VALUES(username), first_name = VALUES(first_name)",
               (tg_id, NAMES[tg_id], NAMES[tg_id].title(), language, role))
    return tg_id


def texts(tg, chat_id):
    return [m["visible_text"] for m in tg.messages(chat_id) if not m.get("deleted")]


def last(tg, chat_id):
    return [m for m in tg.messages(chat_id) if not m.get("deleted")][-1]


def labels(message):
    markup = message.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]


def say(desk, tg, user_id, text, **kwargs):
    tg.user_sends_text(user_id, text, username=NAMES.get(user_id), **kwargs)
    desk.idle()


def press(desk, tg, user_id, message, label=None, *, data=None):
    if data is None:
        found = [b["callback_data"] for row in message["reply_markup"]["inline_keyboard"]
                 for b in row if b["text"] == label]
        assert found, f"no button {label!r} in {labels(message)}"
        data = found[0]
    update = tg.user_presses_button(user_id, message["chat_id"], message["message_id"], data,
                                    username=NAMES.get(user_id))
    desk.idle()
    query = update["callback_query"]["id"]
    return wait_for(lambda: [a for a in tg.callback_answers() if a["callback_query_id"] == query])[0]


def customer_writes(desk, crm, tg, id_i, text="Де моя посилка?", **kwargs):
    """A customer writes; the desk syncs it; the newest shared-chat post about it."""
    crm.customer_writes(id_i, text, email=kwargs.pop("email", f"client{id_i}@example.com"), **kwargs)
    assert crm.signal(desk.listener_url, LINK_KEY, id_i) == [200]
    desk.idle()
    posts = [m for m in tg.messages(SHARED_CHAT) if f"{id_i}" in m["visible_text"]]
    return posts[-1] if posts else None


def take(desk, tg, crm, manager, id_i, text="Де моя посилка?"):
    post = customer_writes(desk, crm, tg, id_i, text)
    assert press(desk, tg, manager, post, "✍ Відповісти")["text"].startswith("✅")
    return post


def holders(db, id_i):
    return [r["manager_id"] for r in db.fetchall(
        "SELECT manager_id FROM pins WHERE conversation_id = %s AND state = 'ACTIVE'", (id_i,))]


def sweep(desk):
    done = desk.deps.tools.sweep.run()
    desk.idle()
    return done


def card(desk, tg, user_id, id_i):
    say(desk, tg, user_id, f"/open_chat_{id_i}")
    return [m for m in tg.messages(user_id) if m["visible_text"].startswith(f"💬 Чат #{id_i}")][-1]


def shop_messages(crm, id_i):
    return [m for m in crm.messages(id_i) if m["seller"]]


# -- SLA -----------------------------------------------------------------------------------

def test_the_holder_is_reminded_once_then_the_chat_goes_back_to_the_shared_chat(office, tg, crm, db, clock):
    person(db, OLENA)
    take(office, tg, crm, OLENA, 9101)
    clock.advance(minutes=10)
    assert sweep(office) == {"reminded": 0, "taken_back": 0}      # not yet
    clock.advance(minutes=6)
    sweep(office)
    sweep(office)                                                  # once per message
    reminders = [t for t in texts(tg, OLENA) if t.startswith("⏰")]
    assert reminders == ["⏰ Клієнт у чаті #9101 чекає на відповідь уже 16 хв."]
    assert labels(last(tg, OLENA)) == ["⚡ Відкрити чат"]

    clock.advance(minutes=45)                                      # 61 min: taken back
    sweep(office)
    assert holders(db, 9101) == []
    back = last(tg, SHARED_CHAT)
    assert back["visible_text"].startswith(
        "⏰ Повернуто у спільний чат: @olena не відповів(ла) клієнту за 61 хв.\n📧 Повідомлення від клієнта")
    assert "Де моя посилка?" in back["visible_text"] and labels(back) == ["✍ Відповісти"]
    assert not back.get("disable_notification")
    assert texts(tg, OLENA)[-1] == "⏰ Чат #9101 повернуто у спільний чат: клієнт чекав відповіді 61 хв."
    assert texts(tg, LOG_CHAT)[-1] == ("#CHANGE_PIN @olena: чат повернуто у спільний чат — клієнт"
                                       " чекав 61 хв (чат #9101)")
    # Anyone takes it from the post that came back.
    person(db, PETRO)
    assert press(office, tg, PETRO, back, "✍ Відповісти")["text"] == "✅ Чат 9101 закріплено за вами."
    assert holders(db, 9101) == [PETRO]
    clock.advance(minutes=16)                                      # the customer still waits
    assert sweep(office)["reminded"] == 1
    assert [t for t in texts(tg, PETRO) if t.startswith("⏰")] == [
        "⏰ Клієнт у чаті #9101 чекає на відповідь уже 77 хв."]


def test_time_outside_working_hours_does_not_count(office, tg, crm, db, clock):
    person(db, OLENA)
    clock.set(datetime(2025, 12, 5, 15, 55))                     # Friday 17:55 in Kyiv
    take(office, tg, crm, OLENA, 9102)
    clock.set(datetime(2025, 12, 6, 12, 0))                      # Saturday noon
    assert sweep(office)["reminded"] == 0
    clock.set(datetime(2025, 12, 8, 7, 9))                       # Monday 09:09: 14 working min
    assert sweep(office)["reminded"] == 0
    clock.set(datetime(2025, 12, 8, 7, 11))                      # Monday 09:11
    assert sweep(office)["reminded"] == 1
    assert "чекає на відповідь уже 16 хв" in texts(tg, OLENA)[-1]


def test_an_answer_ends_the_wait_and_first_response_times_are_reported(office, tg, crm, db, clock):
    person(db, OLENA)
    take(office, tg, crm, OLENA, 9103)
    clock.advance(minutes=4)
    say(office, tg, OLENA, "Вже в дорозі!")
    wait_for(lambda: shop_messages(crm, 9103))
    office.idle()
    clock.advance(minutes=70)
    assert sweep(office) == {"reminded": 0, "taken_back": 0}     # answered: nobody is chased
    assert holders(db, 9103) == [OLENA]
    # A customer answered from the CRM's own page counts as answered too (by nobody here).
    customer_writes(office, crm, tg, 9104)
    crm.shop_writes(9104, "Відповіли з CRM")
    crm.signal(office.listener_url, LINK_KEY, 9104)
    office.idle()
    from models.responses import EVERYONE, ResponseRepository
    report = ResponseRepository(db).report(MONDAY_10 - timedelta(hours=1), MONDAY_10 + timedelta(days=1),
                                           office.settings.hours, 15)
    by_manager = {(r.manager_id, r.channel): r for r in report}
    olena = by_manager[(OLENA, "keepingcrm")]
    assert (olena.answered, olena.median_minutes, olena.within_sla) == (1, 4.0, 1.0)
    assert by_manager[(None, "keepingcrm")].answered == 1            # answered in the CRM's page
    assert by_manager[(EVERYONE, None)].answered == 2


def test_an_off_shift_holder_is_not_reminded_the_chat_goes_back_at_once(office, tg, crm, db, clock):
    person(db, OLENA)
    take(office, tg, crm, OLENA, 9105)
    office.deps.tools.shifts.shifts.set(OLENA, False, clock())
    clock.advance(minutes=16)
    assert sweep(office) == {"reminded": 0, "taken_back": 1}
    assert holders(db, 9105) == []
    assert last(tg, SHARED_CHAT)["visible_text"].startswith("⏰ Повернуто у спільний чат: @olena не на зміні")


def test_an_unheld_customer_waiting_is_reminded_in_the_shared_chat(office, tg, crm, db, clock):
    customer_writes(office, crm, tg, 9106)
    clock.advance(minutes=20)
    sweep(office)
    reminder = last(tg, SHARED_CHAT)
    assert reminder["visible_text"] == "⏰ Клієнт чекає на відповідь уже 20 хв: чат #9106 (client9106@example.com)."
    person(db, PETRO)
    assert press(office, tg, PETRO, reminder, "✍ Відповісти")["text"] == "✅ Чат 9106 закріплено за вами."


# -- shifts and hand-over -----------------------------------------------------------------

def test_going_off_shift_offers_the_chats_and_a_colleague_takes_one(office, tg, crm, db):
    person(db, OLENA), person(db, PETRO)
    take(office, tg, crm, OLENA, 9201)
    say(office, tg, OLENA, "🕘 Моя зміна")
    panel = last(tg, OLENA)
    assert panel["visible_text"] == "☀️ Ви на зміні." and labels(panel) == ["🌙 Завершити зміну"]
    answer = press(office, tg, OLENA, panel, "🌙 Завершити зміну")
    assert answer["text"] == "🌙 Зміну завершено. Ваші чати запропоновано колегам: 1."
    offer = last(tg, SHARED_CHAT)
    assert offer["visible_text"].startswith("🌙 @olena не на зміні. Чат #9201")
    assert press(office, tg, PETRO, offer, "🙋 Взяти чат")["text"] == "✅ Чат 9201 закріплено за вами."
    assert holders(db, 9201) == [PETRO]
    assert texts(tg, SHARED_CHAT)[-1] == "🙋 Чат #9201 взяв(ла) @petro."
    assert texts(tg, OLENA)[-1] == "🙋 @petro взяв(ла) ваш чат #9201, поки ви не на зміні."
    assert texts(tg, LOG_CHAT)[-1] == "#CHANGE_PIN @petro: взяв(ла) чат @olena, що не на зміні (чат #9201)"
    say(office, tg, OLENA, "/on_shift")
    assert texts(tg, OLENA)[-1] == "☀️ Зміну розпочато: нові чати знову можуть передавати вам."


def test_hand_over_to_a_colleague_with_their_load_and_the_refusals(office, tg, crm, db, clock):
    person(db, OLENA), person(db, PETRO), person(db, IVAN), person(db, ADMIN_ID, "admin")
    take(office, tg, crm, OLENA, 9202)
    take(office, tg, crm, IVAN, 9203)
    chat_card = card(office, tg, OLENA, 9202)
    press(office, tg, OLENA, chat_card, "🔁 Передати")
    choice = last(tg, OLENA)
    assert choice["visible_text"] == "🔁 Кому передати чат #9202? (у дужках — відкриті чати)"
    assert labels(choice)[:3] == ["@petro (0)", "@boss (0)", "@ivan (1)"]  # fewest open chats first
    # Ivan goes off shift after the list was drawn: his button is stale.
    office.deps.tools.shifts.shifts.set(IVAN, False, clock())
    refused = press(office, tg, OLENA, choice, "@ivan (1)")
    assert refused["text"] == "@ivan зараз не на зміні — оберіть іншого колегу." and refused["show_alert"]
    db.execute("UPDATE users SET role = 'banned' WHERE tg_id = %s", (IVAN,))
    office.deps.users.forget(IVAN)
    banned = press(office, tg, OLENA, choice, data=office.deps.codec.encode("handto", 9202, IVAN))
    assert banned["text"].endswith("не може брати чати (заблокований або не підтверджений).")
    assert holders(db, 9202) == [OLENA]
    # Petro, then: both are told, the log chat hears of it.
    assert press(office, tg, OLENA, choice, "@petro (0)")["text"] == "🔁 Чат #9202 передано @petro."
    assert holders(db, 9202) == [PETRO]
    told = last(tg, PETRO)
    assert told["visible_text"] == "🔁 @olena передав(ла) вам чат #9202 (client9202@example.com)."
    assert labels(told) == ["⚡ Відкрити чат"]
    assert texts(tg, LOG_CHAT)[-1] == "#CHANGE_PIN @olena: передав(ла) чат від @olena до @petro (чат #9202)"
    # Petro opens it from the notice straight into writing mode, and answers.
    press(office, tg, PETRO, told, "⚡ Відкрити чат")
    assert texts(tg, PETRO)[-1].startswith("Ви відповідаєте на ордер #9202")
    say(office, tg, PETRO, "Добрий день, це Петро")
    wait_for(lambda: shop_messages(crm, 9202))


def test_an_admin_joins_beside_the_holder_watches_and_answers(office, tg, crm, db):
    person(db, OLENA), person(db, ADMIN_ID, "admin")
    take(office, tg, crm, OLENA, 9203)
    admin_card = card(office, tg, ADMIN_ID, 9203)
    assert {"👀 Приєднатися", "⚡ Забрати собі"} <= set(labels(admin_card))
    answer = press(office, tg, ADMIN_ID, admin_card, "👀 Приєднатися")
    assert answer["text"].startswith("👀 Ви поруч з @olena у чаті #9203")
    assert texts(tg, OLENA)[-1] == "👀 Адміністратор @boss приєднався до чату #9203 і може відповідати поруч з вами."
    assert texts(tg, LOG_CHAT)[-1] == "#CHANGE_PIN @boss: приєднався(лася) до чату поруч з @olena (чат #9203)"
    # The customer writes: the holder and the admin both hear it.
    customer_writes(office, crm, tg, 9203, "А можна швидше?")
    assert any("А можна швидше?" in t for t in texts(tg, OLENA))
    assert any("А можна швидше?" in t for t in texts(tg, ADMIN_ID))
    say(office, tg, ADMIN_ID, "Відправимо сьогодні, адміністратор")
    wait_for(lambda: shop_messages(crm, 9203))
    assert holders(db, 9203) == [OLENA]                             # joining is not taking
    assert "👀 Поруч: @boss" in card(office, tg, OLENA, 9203)["visible_text"]
    # Leaving ends it: writing is refused again.
    press(office, tg, ADMIN_ID, card(office, tg, ADMIN_ID, 9203), "🚪 Вийти з чату")
    refused = press(office, tg, ADMIN_ID, card(office, tg, ADMIN_ID, 9203), "📩 Написати повідомлення")
    assert refused["text"] == "Цей чат закріплено за @olena."


# -- finding --------------------------------------------------------------------------------

def test_finding_a_chat_by_number_email_phone_and_words(office, tg, crm, db):
    person(db, OLENA)
    customer_writes(office, crm, tg, 9301, "Коли буде доставка замовлення?", email="maria@shop.ua")
    customer_writes(office, crm, tg, 9302, "Хочу повернути товар", email="taras@shop.ua")
    db.execute("UPDATE conversations SET customer_phone = '+380671234567' WHERE id = 9302")
    say(office, tg, OLENA, "/find ab")
    assert texts(tg, OLENA)[-1] == "🔎 Запит закороткий: потрібно щонайменше 3 символи."
    say(office, tg, OLENA, "/open_chat_9301")
    assert texts(tg, OLENA)[-1].startswith("💬 Чат #9301\nКлієнт: maria@shop.ua")
    for query, found in (("maria@shop", 9301), ("067 123 45 67", 9302), ("доставк", 9301),
                         ("ПОВЕРНУТИ товар", 9302), ("9302", 9302)):
        say(office, tg, OLENA, f"/find {query}")
        assert texts(tg, OLENA)[-1].startswith(f"💬 Чат #{found}\n"), query
    say(office, tg, OLENA, "/find shop.ua")                          # both: a list of chats
    results = last(tg, OLENA)
    assert results["visible_text"] == "🔎 «shop.ua»: знайдено чатів — 2"
    assert sorted(re.search(r"#(\d+)", b).group(1) for b in labels(results)) == ["9301", "9302"]
    # The "🔎 Пошук чату" button: the next message is the query.
    say(office, tg, OLENA, "🔎 Пошук чату")
    say(office, tg, OLENA, "повернути")
    assert texts(tg, OLENA)[-1].startswith("💬 Чат #9302\n")
    say(office, tg, OLENA, "/open_chat_424242")
    assert texts(tg, OLENA)[-1] == "Чат 424242 не знайдено."


# -- canned replies -----------------------------------------------------------------------

def test_admin_keeps_canned_replies_and_a_manager_sends_one_after_seeing_it(office, tg, crm, db):
    person(db, OLENA), person(db, ADMIN_ID, "admin")
    say(office, tg, ADMIN_ID, "/replies")
    manage = last(tg, ADMIN_ID)
    press(office, tg, ADMIN_ID, manage, "➕ Додати шаблон")
    say(office, tg, ADMIN_ID, "Трекінг\nДобрий день! Замовлення {order} ({product}) вже {status}.")
    assert texts(tg, ADMIN_ID)[-1].startswith("❌ Невідома підстановка {status}. Можна: {order}, {name}")
    say(office, tg, ADMIN_ID, "Трекінг\nДобрий день, {email}! Замовлення {order} вже в дорозі.")
    assert texts(tg, ADMIN_ID)[-1] == "✅ Шаблон «Трекінг» збережено."
    assert db.scalar("SELECT COUNT(*) FROM canned_replies") == 1

    take(office, tg, crm, OLENA, 9401)
    press(office, tg, OLENA, card(office, tg, OLENA, 9401), "💬 Шаблони")
    press(office, tg, OLENA, last(tg, OLENA), "Трекінг")
    draft = last(tg, OLENA)
    assert draft["visible_text"].startswith("📝 Чернетка для чату #9401:\n"
                                            "Добрий день, client9401@example.com! Замовлення 9401 вже в дорозі.")
    assert labels(draft) == ["✅ Надіслати", "📋 Копіювати"]
    assert shop_messages(crm, 9401) == []                           # a draft is not sent
    press(office, tg, OLENA, draft, "✅ Надіслати")
    press(office, tg, OLENA, draft, "✅ Надіслати")                  # twice: sent once
    wait_for(lambda: shop_messages(crm, 9401))
    office.idle()
    assert [m["message"] for m in shop_messages(crm, 9401)] == [
        "Добрий день, client9401@example.com! Замовлення 9401 вже в дорозі."]


def test_inline_mode_offers_the_replies_and_a_chosen_one_is_a_draft(office, tg, crm, db):
    person(db, OLENA)
    office.deps.tools.replies.add(office.deps.users.get(OLENA) or _admin(office, db),
                                  "Подяка\nДякуємо за замовлення {order}!")
    tg.set_inline_mode(True)
    take(office, tg, crm, OLENA, 9402)
    update = tg.user_sends_inline_query(OLENA, "дяку", username="olena")
    office.idle()
    answer = wait_for(lambda: tg.inline_answer(update["inline_query"]["id"]))
    [result] = answer["results"]
    assert result["title"] == "Подяка" and answer["is_personal"]
    assert result["input_message_content"]["message_text"] == "Дякуємо за замовлення 9402!"
    tg.user_chooses_inline_result(OLENA, update["inline_query"]["id"], result["id"])
    office.idle()
    hint = last(tg, OLENA)
    assert hint["visible_text"].startswith("📝 Це чернетка для чату #9402, клієнту її не надіслано.")
    assert shop_messages(crm, 9402) == []
    press(office, tg, OLENA, hint, "✅ Надіслати")
    wait_for(lambda: shop_messages(crm, 9402))
    assert [m["message"] for m in shop_messages(crm, 9402)] == ["Дякуємо за замовлення 9402!"]


def _draft_of_a_canned_reply(office, tg, crm, db, manager, id_i, body):
    person(db, ADMIN_ID, "admin")
    office.deps.tools.replies.add(office.deps.users.get(ADMIN_ID), f"Відповідь\n{body}")
    take(office, tg, crm, manager, id_i)
    press(office, tg, manager, card(office, tg, manager, id_i), "💬 Шаблони")
    press(office, tg, manager, last(tg, manager), "Відповідь")
    return last(tg, manager)


def test_a_canned_reply_longer_than_the_crm_takes_is_refused_to_the_manager_and_not_sent(
        office, tg, crm, db):
    import dataclasses
    person(db, OLENA)
    channel = office.deps.channels["keepingcrm"]
    channel.capabilities = dataclasses.replace(channel.capabilities, max_text=20)
    draft = _draft_of_a_canned_reply(office, tg, crm, db, OLENA, 9403, "Добрий день! Замовлення вже в дорозі.")
    answer = press(office, tg, OLENA, draft, "✅ Надіслати")
    assert answer["show_alert"] is True
    assert answer["text"].startswith("❌ Повідомлення задовге: 37 символів, CRM приймає не більше 20.")
    assert "Надсилаю" not in answer["text"]
    office.idle()
    assert shop_messages(crm, 9403) == []


def test_an_inline_draft_too_long_for_the_crm_is_refused_to_the_manager_never_said_to_be_sending(
        office, tg, crm, db):
    import dataclasses
    person(db, OLENA)
    office.deps.tools.replies.add(_admin(office, db), "Подяка\nДякуємо за замовлення {order}, гарного дня!")
    channel = office.deps.channels["keepingcrm"]
    channel.capabilities = dataclasses.replace(channel.capabilities, max_text=20)
    tg.set_inline_mode(True)
    take(office, tg, crm, OLENA, 9406)
    update = tg.user_sends_inline_query(OLENA, "дяку", username="olena")
    office.idle()
    [result] = wait_for(lambda: tg.inline_answer(update["inline_query"]["id"]))["results"]
    tg.user_chooses_inline_result(OLENA, update["inline_query"]["id"], result["id"])
    office.idle()
    answer = press(office, tg, OLENA, last(tg, OLENA), "✅ Надіслати")
    assert answer["show_alert"] is True
    assert answer["text"].startswith("❌ Повідомлення задовге: 40 символів, CRM приймає не більше 20.")
    office.idle()
    assert shop_messages(crm, 9406) == []


def test_a_canned_reply_to_a_chat_handed_to_a_colleague_meanwhile_says_who_has_it(office, tg, crm, db, clock):
    person(db, OLENA), person(db, PETRO)
    draft = _draft_of_a_canned_reply(office, tg, crm, db, OLENA, 9404, "Дякуємо!")
    users = office.deps.users
    office.deps.claims.transfer(9404, users.get(OLENA), users.get(PETRO), now=clock())
    answer = press(office, tg, OLENA, draft, "✅ Надіслати")
    assert answer["show_alert"] is True
    assert answer["text"] == "Цей чат закріплено за @petro."
    office.idle()
    assert shop_messages(crm, 9404) == []


def test_a_canned_reply_that_takes_a_free_chat_is_written_to_the_log_chat(office, tg, crm, db, clock):
    person(db, OLENA)
    draft = _draft_of_a_canned_reply(office, tg, crm, db, OLENA, 9405, "Дякуємо!")
    office.deps.claims.end_all_of(OLENA, clock())           # the pin ran out meanwhile
    before = [t for t in texts(tg, LOG_CHAT) if "#CHANGE_PIN" in t]
    answer = press(office, tg, OLENA, draft, "✅ Надіслати")
    assert answer["text"] == "✅ Надсилаю клієнту…"
    wait_for(lambda: shop_messages(crm, 9405))
    office.idle()
    taken = [t for t in texts(tg, LOG_CHAT) if "#CHANGE_PIN" in t][len(before):]
    assert len(taken) == 1 and "9405" in taken[0] and "olena" in taken[0].lower()


def _admin(office, db):
    person(db, ADMIN_ID, "admin")
    return office.deps.users.get(ADMIN_ID)


# -- notes ----------------------------------------------------------------------------------

def test_an_internal_note_is_on_the_card_and_in_the_history_and_never_sent(office, tg, crm, db):
    person(db, OLENA), person(db, PETRO)
    take(office, tg, crm, OLENA, 9501)
    press(office, tg, OLENA, card(office, tg, OLENA, 9501), "📝 Нотатка")
    assert texts(tg, OLENA)[-1].startswith("📝 Напишіть нотатку до чату #9501.")
    say(office, tg, OLENA, "Клієнт <VIP> & просив дзвонити після 18:00")
    assert texts(tg, OLENA)[-1] == "📝 Нотатку до чату #9501 збережено (клієнт її не бачить)."
    petro_card = card(office, tg, PETRO, 9501)["visible_text"]
    assert "📝 Нотатки:\n• @olena (" in petro_card
    assert "Клієнт <VIP> & просив дзвонити після 18:00" in petro_card
    press(office, tg, PETRO, card(office, tg, PETRO, 9501), "📁 Історія чата")
    assert "📝 Нотатки колег:\n• @olena" in texts(tg, PETRO)[-1]
    office.idle()
    assert shop_messages(crm, 9501) == []
    assert db.scalar("SELECT COUNT(*) FROM outbound") == 0
    # A note on a chat that does not exist: a clear answer, nothing stored.
    press(office, tg, PETRO, last(tg, PETRO), data=office.deps.codec.encode("note", 987654))
    assert tg.callback_answers()[-1]["text"] == "Чат 987654 не знайдено."
    person(db, IVAN)
    say(office, tg, IVAN, "/note без чату")                          # no chat open: refused
    assert texts(tg, IVAN)[-1].startswith("❌ Спершу відкрийте чат")
    assert db.scalar("SELECT COUNT(*) FROM chat_notes") == 1


# -- task chats -----------------------------------------------------------------------------

def test_tasks_show_holder_and_age_done_ones_stay_a_day_and_reopening_gives_back(office, tg, crm, db, clock):
    person(db, OLENA), person(db, PETRO), person(db, ADMIN_ID, "admin")
    post = customer_writes(office, crm, tg, 9601, "Ключ не активується", product="Ключ активації Windows")
    press(office, tg, OLENA, post, "🔑 Підключитися")
    clock.advance(hours=3)
    say(office, tg, PETRO, "📊 Статистика")
    [task] = [b for b in labels(last(tg, PETRO)) if "#9601" in b]
    assert task.startswith("□ @olena 3 год #9601")
    refused = press(office, tg, PETRO, card(office, tg, PETRO, 9601), "✅ Змінити статус діалогу")
    assert refused["text"].startswith("Змінити статус задачі може лише той")
    press(office, tg, OLENA, card(office, tg, OLENA, 9601), "✅ Змінити статус діалогу")
    clock.advance(hours=23)
    say(office, tg, PETRO, "📊 Статистика")
    assert any(b.startswith("✅") and "#9601" in b for b in labels(last(tg, PETRO)))
    clock.advance(hours=2)                                           # a day after it was done
    office.runtime.handlers["expire_pins"].run()
    say(office, tg, PETRO, "📊 Статистика")
    assert not any("#9601" in b for b in labels(last(tg, PETRO)))
    # The admin reopens it: it goes back to Olena, who is told.
    answer = press(office, tg, ADMIN_ID, card(office, tg, ADMIN_ID, 9601), "✅ Змінити статус діалогу")
    assert answer["text"] == "Статус задачі #9601: в роботі."
    assert holders(db, 9601) == [OLENA]
    assert texts(tg, OLENA)[-1] == "🔁 Задачу #9601 знову відкрито (@boss) — вона знову ваша."


# -- order context, albums, long texts --------------------------------------------------------

def test_the_card_shows_the_order_from_the_crm(office, tg, crm, db):
    person(db, OLENA)
    crm.set_order(9701, product="Ноутбук <Lenovo> & сумка", qty=2, total="25 999,50", status_name="Оплачено",
                  delivery={"service": "Нова пошта", "city": "Київ", "branch": "Відділення 5",
                            "ttn": "20450000123456", "status": "В дорозі"})
    take(office, tg, crm, OLENA, 9701)
    office.idle()
    shown = card(office, tg, OLENA, 9701)["visible_text"]
    assert "🧾 Замовлення: Ноутбук <Lenovo> & сумка ×2 · 25999.50 UAH · Оплачено" in shown
    assert "🚚 Доставка: Нова пошта · Київ, Відділення 5 · ТТН 20450000123456 · В дорозі" in shown
    # A chat without an order in the CRM shows none, and nothing breaks.
    take(office, tg, crm, OLENA, 9702)
    office.idle()
    assert "🧾" not in card(office, tg, OLENA, 9702)["visible_text"]


def test_a_managers_album_reaches_the_customer_as_one_message_with_all_files(office, tg, crm, db):
    person(db, OLENA)
    take(office, tg, crm, OLENA, 9801)
    tg.user_sends_album(OLENA, [("photo", b"\x89PNG one", "a.jpg"), ("photo", b"\x89PNG two", "b.jpg"),
                                ("photo", b"\x89PNG three", "c.jpg")], caption="Ось фото з усіх боків",
                        username="olena")
    wait_for(lambda: len(shop_messages(crm, 9801)) == 4, timeout=15)
    office.idle()
    sends = [c for c in crm.calls("/debates/v2/") if c["method"] == "POST" and c["path"].endswith("/debates/v2/")]
    assert len(sends) == 1                                            # one message
    assert [u["data"] for u in crm.uploads()] == [b"\x89PNG one", b"\x89PNG two", b"\x89PNG three"]
    assert shop_messages(crm, 9801)[0]["message"] == "Ось фото з усіх боків"
    assert texts(tg, OLENA)[-1] == "✅ Надіслано клієнту (ордер #9801)."


def test_a_customers_long_text_with_a_file_is_shown_whole(office, tg, crm, db):
    long_text = "Початок. " + "Дуже довгий опис проблеми з товаром. " * 200 + "Кінець."
    crm.customer_writes(9802, long_text, file=b"%PDF", filename="akt.pdf")
    crm.signal(office.listener_url, LINK_KEY, 9802)
    office.idle()
    posts = [m for m in tg.messages(SHARED_CHAT)]
    assert len(posts) >= 2                                           # split across posts
    shown = "".join(p["visible_text"] for p in posts)
    assert "Початок." in shown and "Кінець." in shown and shown.count("Дуже довгий опис") == 200
    links = [e for p in posts for e in p.get("entities") or [] if e["type"] == "text_link"]
    assert any(e["url"].endswith("/akt.pdf") for e in links)


# -- per-role command menus, daily cleaning, pin-expiry notices -------------------------------

def test_each_role_gets_its_command_menu(office, tg, crm, db):
    person(db, OLENA), person(db, ADMIN_ID, "admin"), person(db, IVAN, "banned")
    office.runtime.handlers["command_menus"].run()
    office.idle()
    names = lambda menu: [c["command"] for c in menu]  # noqa: E731
    assert names(tg.commands_for(999)) == ["start"]                          # anyone
    assert names(tg.commands_for(OLENA)) == ["start", "find", "shift", "note", "open_chat"]
    assert names(tg.commands_for(ADMIN_ID))[-6:] == ["replies", "all_users", "errors", "clean", "web_access",
                                                     "auto_assign"]
    assert names(tg.commands_for(OLENA, SHARED_CHAT)) == ["find"]            # chat_member scope
    assert names(tg.commands_for(IVAN)) == ["start"]
    # Olena becomes an admin: her menu follows.
    db.execute("UPDATE users SET role = 'admin' WHERE tg_id = %s", (OLENA,))
    office.runtime.handlers["command_menus"].run()
    office.idle()
    assert "replies" in names(tg.commands_for(OLENA))


def test_cleaning_runs_daily_and_a_manager_is_told_their_pin_expired(office, tg, crm, db, clock):
    person(db, OLENA)
    daily = office.runtime.handlers["daily_clean"]
    assert daily.run_if_due() is None                                # first sight: from now on
    clock.set(datetime(2025, 12, 2, 2, 1))                           # Tuesday 04:01 in Kyiv
    assert daily.run_if_due() is not None
    assert daily.run_if_due() is None                                # once a day
    office.idle()
    assert [t for t in texts(tg, LOG_CHAT) if t.startswith("🧹 Щоденне очищення")] != []

    take(office, tg, crm, OLENA, 9901)
    clock.advance(hours=25)
    office.runtime.handlers["expire_pins"].run()
    notices = office.runtime.handlers["pin_notices"]
    notices.run()
    notices.run()
    office.idle()
    told = [t for t in texts(tg, OLENA) if t.startswith("⌛")]
    assert told == ["⌛ Закріп чату #9901 знято: 24 год без вашої відповіді. Нові повідомлення клієнта "
                    "підуть у спільний чат."]


def test_a_canned_reply_with_a_photo_sends_the_photo_with_its_text(office, tg, crm, db):
    person(db, OLENA), person(db, ADMIN_ID, "admin")
    say(office, tg, ADMIN_ID, "/replies")
    press(office, tg, ADMIN_ID, last(tg, ADMIN_ID), "➕ Додати шаблон")
    tg.user_sends_photo(ADMIN_ID, b"\x89PNG the catalogue", caption="Каталог\nКаталог до замовлення {order}",
                        username="boss")
    office.idle()
    assert texts(tg, ADMIN_ID)[-1] == "✅ Шаблон «Каталог» збережено."
    take(office, tg, crm, OLENA, 9403)
    press(office, tg, OLENA, card(office, tg, OLENA, 9403), "💬 Шаблони")
    press(office, tg, OLENA, last(tg, OLENA), "Каталог")
    draft = last(tg, OLENA)
    assert "Каталог до замовлення 9403\n📎 + photo.jpg" in draft["visible_text"]
    press(office, tg, OLENA, draft, "✅ Надіслати")
    wait_for(lambda: len(shop_messages(crm, 9403)) == 2)
    assert [u["data"] for u in crm.uploads()] == [b"\x89PNG the catalogue"]
    assert shop_messages(crm, 9403)[0]["message"] == "Каталог до замовлення 9403"


def test_command_menus_follow_only_changes_and_a_later_ban_removes_a_menu(office, tg, crm, db):
    """The keeper walks only the people changed since its last run: a shop's many banned
    people cost nothing; a manager banned later loses the menu they had."""
    person(db, OLENA)
    db.execute("INSERT INTO users (tg_id, role) SELECT 30000000 + seq, 'banned' FROM seq_1_to_500")
    keeper = office.runtime.handlers["command_menus"]
    keeper.run()
    office.idle()
    calls = lambda: [c for c in tg.calls() if c["method"] in ("setMyCommands", "deleteMyCommands")]  # noqa: E731
    first = len(calls())
    assert first < 10                                  # the defaults and Olena's two scopes
    assert keeper.run() == 0                           # nothing changed: nothing stored
    db.execute("UPDATE users SET role = 'banned' WHERE tg_id = %s", (OLENA,))
    keeper.run()
    office.idle()
    assert [c["method"] for c in calls()[first:]] == ["deleteMyCommands"]
    assert [c["command"] for c in tg.commands_for(OLENA)] == ["start"]
