"""WhatsApp customers in the desk, end to end (issue 11; CHANNELS.md §1, §3).

Real parts: the WhatsApp Cloud API sandbox calling the integrations door's signed webhook
over loopback, the Telegram sandbox, workers with the real pyTelegramBotAPI, MariaDB.
"""
import hashlib
import hmac
import json
import time

import requests

from conftest import SHARED_CHAT
from harness import wait_for
from sandbox.telegram import parse_html

PHONE = "380671234567"


def visible(message) -> str:
    return parse_html(message.get("text") or message.get("caption") or "")[0]


def buttons(message):
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def add_manager(db, tg_id=701, username="olena", language="uk"):
    db.execute("INSERT INTO users (tg_id, username, first_name, language, role)"
               " VALUES (%s, %s, %s, %s, 'manager')", (tg_id, username, username.title(), language))
    return tg_id


def shared_post(tg, needle):
    return wait_for(lambda: [m for m in tg.messages(SHARED_CHAT) if needle in visible(m)])[-1]


def take(tg, manager, post):
    [button] = buttons(post)
    update = tg.user_presses_button(manager, SHARED_CHAT, post["message_id"], button["callback_data"],
                                    username="olena")
    query = update["callback_query"]["id"]
    return wait_for(lambda: [a for a in tg.callback_answers() if a["callback_query_id"] == query])[0]


def test_a_customer_is_answered_from_telegram_with_text_photo_and_file_once_each(wa_desk, wa, tg, db):
    olena = add_manager(db)
    wa.customer_writes(PHONE, "Добрий день! Є розмір M?", name="Оксана")
    post = shared_post(tg, "Є розмір M?")
    assert visible(post).startswith("🟢 WhatsApp · Повідомлення від клієнта +380671234567\nОксана")
    assert take(tg, olena, post)["text"].startswith("✅ Чат")
    wa_desk.idle()
    tg.user_sends_text(olena, "Так, є & <завтра> відправимо")
    tg.user_sends_photo(olena, b"\x89PNG size chart", caption="Таблиця розмірів")
    tg.user_sends_document(olena, b"%PDF invoice", file_name="rahunok.pdf")
    wait_for(lambda: len(wa.sent(PHONE)) == 3, timeout=20)
    wa_desk.idle()
    sent = wa.sent(PHONE)
    assert [m["type"] for m in sent] == ["text", "image", "document"]
    assert sent[0]["content"]["body"] == "Так, є & <завтра> відправимо"
    assert sent[1]["content"]["caption"] == "Таблиця розмірів"
    assert wa.media_bytes(sent[1]["content"]["id"]) == b"\x89PNG size chart"
    assert sent[2]["content"]["filename"] == "rahunok.pdf"
    assert wa.media_bytes(sent[2]["content"]["id"]) == b"%PDF invoice"
    confirmations = [m for m in tg.messages(olena) if visible(m).startswith("✅ Надіслано клієнту")]
    assert len(confirmations) == 3
    # Statuses: delivered (✓✓) for each, then the customer reads them.
    wait_for(lambda: db.scalar("SELECT COUNT(*) FROM delivery_statuses WHERE status = 'delivered'") == 3)
    wa.customer_reads(PHONE)
    wait_for(lambda: db.scalar("SELECT COUNT(*) FROM delivery_statuses WHERE status = 'read'") == 3)
    tg.user_sends_text(olena, "📁 Історія чата")
    history = wait_for(lambda: [m for m in tg.messages(olena) if visible(m).startswith("📁 Історія чата")
                                and "прочитано" in visible(m)])[-1]
    text = visible(history)
    assert "Є розмір M?" in text and "Так, є & <завтра> відправимо" in text
    assert "📎 rahunok.pdf" in text
    assert text.count("✓✓ прочитано") == 3


def test_a_customer_photo_and_file_are_fetched_from_whatsapp_and_shown_in_telegram(wa_desk, wa, tg):
    wa.customer_sends_image(PHONE, b"\xff\xd8 a broken zipper", caption="Ось дефект")
    wa.customer_sends_document(PHONE, b"%PDF receipt", "chek.pdf")
    photo = wait_for(lambda: [m for m in tg.messages(SHARED_CHAT) if m.get("photo")])[0]
    assert "Ось дефект" in visible(photo)
    assert tg.file(photo["photo"][-1]["file_id"])["content"] == b"\xff\xd8 a broken zipper"
    document = wait_for(lambda: [m for m in tg.messages(SHARED_CHAT) if m.get("document")])[0]
    assert document["document"]["file_name"] == "chek.pdf"
    assert tg.file(document["document"]["file_id"])["content"] == b"%PDF receipt"


def test_a_redelivered_webhook_gives_one_post(wa_desk, wa, tg, db):
    wa.customer_writes(PHONE, "Перше повідомлення")
    shared_post(tg, "Перше повідомлення")
    wa_desk.idle()
    body = {"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": wa.phone_number_id},
        "contacts": [{"profile": {"name": "Іра"}, "wa_id": PHONE}],
        "messages": [{"from": PHONE, "id": "wamid.SAME", "timestamp": str(int(time.time())),
                      "type": "text", "text": {"body": "Двічі надіслане"}}]}}]}]}
    assert [wa.post_webhook(body) for _ in range(3)] == [200, 200, 200]
    shared_post(tg, "Двічі надіслане")
    wa_desk.idle()
    assert len([m for m in tg.messages(SHARED_CHAT) if "Двічі надіслане" in visible(m)]) == 1
    assert db.scalar("SELECT COUNT(*) FROM messages WHERE external_id = 'wamid.SAME'") == 1


def test_the_webhook_refuses_a_forged_signature_and_a_wrong_verify_token(wa_desk, wa, tg, db):
    url = f"{wa_desk.listener_url}/whatsapp/cloud"
    body = json.dumps({"object": "whatsapp_business_account", "entry": []}).encode()
    forged = "sha256=" + hmac.new(b"not-the-app-secret", body, hashlib.sha256).hexdigest()
    for signature in (forged, "", "sha256=zz", "md5=abc"):
        assert wa.post_webhook(body, signature=signature) == 401
    assert requests.get(url, params={"hub.mode": "subscribe", "hub.verify_token": "wrong",
                                     "hub.challenge": "123"}, timeout=5).status_code == 403
    answer = requests.get(url, params={"hub.mode": "subscribe", "hub.verify_token": wa.verify_token,
                                       "hub.challenge": "4242"}, timeout=5)
    assert (answer.status_code, answer.text) == (200, "4242")
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'wa_webhook'") == 0


def test_outside_the_24_hour_window_the_desk_offers_templates_before_the_manager_types(wa_desk, wa, tg, db):
    olena = add_manager(db)
    wa.add_template("order_ready", 1)
    wa.customer_writes(PHONE, "Коли буде замовлення?", at=time.time() - 25 * 3600)
    post = shared_post(tg, "Коли буде замовлення?")
    take(tg, olena, post)
    offer = wait_for(lambda: [m for m in tg.messages(olena) if visible(m).startswith("⏰")])[-1]
    assert [b["text"] for b in buttons(offer)] == ["📋 order_ready (1)", "📋 hello"]
    # A free-form text now is refused before it reaches WhatsApp, and the offer comes again.
    tg.user_sends_text(olena, "Завтра")
    wait_for(lambda: len([m for m in tg.messages(olena) if visible(m).startswith("⏰")]) == 2)
    order_ready = buttons(offer)[0]
    tg.user_presses_button(olena, olena, offer["message_id"], order_ready["callback_data"])
    wait_for(lambda: visible(tg.messages(olena)[-1]).startswith("📋 Шаблон «order_ready»: надішліть 1"))
    tg.user_sends_text(olena, "№ 5521")
    wait_for(lambda: wa.sent(PHONE), timeout=20)
    wa_desk.idle()
    [template] = wa.sent(PHONE)
    assert template["type"] == "template" and template["content"]["name"] == "order_ready"
    assert template["content"]["components"][0]["parameters"] == [{"type": "text", "text": "№ 5521"}]
    assert not [m for m in wa.sent(PHONE) if m["type"] == "text"]


def test_read_marks_the_customers_newest_message_read_on_whatsapp(wa_desk, wa, tg, db):
    olena = add_manager(db)
    wamid = wa.customer_writes(PHONE, "Прочитайте мене")
    take(tg, olena, shared_post(tg, "Прочитайте мене"))
    wa_desk.idle()
    tg.user_sends_text(olena, "✅ Надіслати статус \"Прочитано\"")
    wait_for(lambda: wa.read_marks() == [wamid])


def test_an_undeliverable_answer_tells_the_manager_why(wa_desk, wa, tg, db):
    olena = add_manager(db)
    wa.not_on_whatsapp(PHONE)
    take(tg, olena, (wa.customer_writes(PHONE, "Я тут"), shared_post(tg, "Я тут"))[1])
    wa_desk.idle()
    tg.user_sends_text(olena, "Вітаю!")
    notice = wait_for(lambda: [m for m in tg.messages(olena)
                               if visible(m).startswith("❌ WhatsApp не доставив")], timeout=20)[0]
    assert "немає WhatsApp" in visible(notice)


def test_a_managers_album_reaches_a_whatsapp_customer_as_one_message_per_file(wa_desk, wa, tg, db):
    """WhatsApp has no albums: every photo arrives, in order, none twice, the caption kept."""
    olena = add_manager(db)
    wa.customer_writes(PHONE, "Покажіть товар з усіх боків", name="Оксана")
    assert take(tg, olena, shared_post(tg, "з усіх боків"))["text"].startswith("✅ Чат")
    wa_desk.idle()
    tg.user_sends_album(olena, [("photo", b"\x89PNG front", "a.jpg"), ("photo", b"\x89PNG side", "b.jpg"),
                                ("photo", b"\x89PNG back", "c.jpg")], caption="Ось з усіх боків",
                        username="olena")
    wait_for(lambda: len(wa.sent(PHONE)) == 3, timeout=20)
    wa_desk.idle()
    sent = wa.sent(PHONE)
    assert [wa.media_bytes(m["content"]["id"]) for m in sent] == [b"\x89PNG front", b"\x89PNG side",
                                                                  b"\x89PNG back"]
    assert [m["content"].get("caption") or "" for m in sent] == ["Ось з усіх боків", "", ""]
    confirmations = [m for m in tg.messages(olena) if visible(m).startswith("✅ Надіслано клієнту")]
    assert len(confirmations) == 3
