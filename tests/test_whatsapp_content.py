"""Every customer message a WhatsApp provider hands over is accounted for, end to end:
what a provider documents reaches the manager's post whole (Devino's locations and
contacts, the Cloud API's orders, number changes, the product asked about and the ad the
customer came from), and whatever cannot be placed — a body no parser reads, a message to
an address that is none of ours — is a dead letter with `#ERROR`, listed by /errors and
the panel, never a log line alone.

Real parts: the providers' sandboxes over loopback, the integrations door, workers, the
Telegram sandbox, MariaDB, the panel's app.
"""
import json
import re
from datetime import datetime

import requests

from conftest import LOG_CHAT, SHARED_CHAT
from harness import Desk, wait_for
from sandbox.telegram import parse_html
from wa_providers import DEVINO_SECRET, GREENAPI_WEBHOOK_TOKEN, gateway_settings

PHONE = "380671234567"
ADMIN_ID = 900


def visible(message) -> str:
    return parse_html(message.get("text") or message.get("caption") or "")[0]


def shared_post(tg, needle):
    return wait_for(lambda: [m for m in tg.messages(SHARED_CHAT) if needle in visible(m)], timeout=20)[-1]


def errors_about(tg, words):
    return [visible(m) for m in tg.messages(LOG_CHAT) if "#ERROR" in visible(m) and words in visible(m)]


def start(settings, db, tg, crm, server):
    return Desk(settings.replace(tg_limit_private_per_s=50.0), db, tg, crm, wa=server).start()


def dead_letter(db):
    return wait_for(lambda: db.scalar("SELECT id FROM jobs WHERE status = 'failed' AND kind = 'wa_webhook'"),
                    timeout=20)


def errors_command(desk, tg, db):
    """What an admin reads after typing /errors."""
    db.execute("INSERT INTO users (tg_id, username, first_name, language, role)"
               " VALUES (%s, 'admin', 'Admin', 'uk', 'admin') ON DUPLICATE KEY UPDATE role = 'admin'",
               (ADMIN_ID,))
    tg.user_sends_text(ADMIN_ID, "/errors", username="admin")
    return wait_for(lambda: [visible(m) for m in tg.messages(ADMIN_ID) if "Помилки" in visible(m)])[-1]


def panel_errors_page(settings, db) -> str:
    from doors.panel import create_app
    from services.panel_auth import PanelAuth
    app = create_app(settings.replace(web_secret_key="k" * 40), db)
    PanelAuth(db, datetime.utcnow).set_password("owner", "correct horse battery")
    client = app.test_client()
    token = re.search(rb'name="csrf_token" value="([^"]+)"', client.get("/login").data).group(1).decode()
    assert client.post("/login", data={"csrf_token": token, "login": "owner",
                                       "password": "correct horse battery"}).status_code == 302
    return client.get("/errors").get_data(as_text=True)


# -- Devino: an address that is not exactly our sender ------------------------------------------

def test_with_one_devino_account_a_message_to_its_number_rather_than_its_name_reaches_the_desk(
        sandbox_settings, db, tg, crm, dv):
    number, dv.sender = dv.sender, "KeepShop"    # the shop sends from its name …
    dv.number = number                           # … and Devino's incoming `to` is its number
    try:
        desk = start(gateway_settings(sandbox_settings, "devino", dv), db, tg, crm, dv)
        try:
            dv.customer_writes(PHONE, "Чи є розмір 42?", name="Ірина")
            post = shared_post(tg, "Чи є розмір 42?")
            assert "Ірина" in visible(post)
            assert db.scalar("SELECT account FROM conversations WHERE channel = 'whatsapp'") == "KeepShop"
            desk.idle()
            assert db.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed'") == 0
        finally:
            desk.stop()
    finally:
        dv.sender = number


def test_with_two_devino_accounts_a_message_to_neither_is_a_dead_letter_naming_the_address(
        sandbox_settings, db, tg, crm, dv, tmp_path):
    numbers = tmp_path / "numbers.json"
    numbers.write_text(json.dumps([{"provider": "devino", "from": "380449990000", "key": "second-devino-key-0123",
                                    "callback_secret": DEVINO_SECRET, "url": dv.url}]))
    settings = gateway_settings(sandbox_settings, "devino", dv, whatsapp_numbers_file=numbers)
    dv.number = "380440000000"            # none of the two senders
    desk = start(settings, db, tg, crm, dv)
    try:
        dv.customer_writes(PHONE, "Добрий день, де моє замовлення?")
        job_id = dead_letter(db)
        [report] = wait_for(lambda: errors_about(tg, "380440000000"), timeout=20)
        assert f"/retry_{job_id}" in report and "none of our Devino senders" in report
        assert not [m for m in tg.messages(SHARED_CHAT) if "де моє замовлення" in visible(m)]
        listing = errors_command(desk, tg, db)
        assert f"/retry_{job_id} · wa_webhook ·" in listing and "380440000000" in listing
        assert "380440000000" in panel_errors_page(settings, db)
    finally:
        desk.stop()


# -- a body no parser understands ------------------------------------------------------------------

def test_a_gateway_body_no_parser_understands_is_listed_in_errors_and_the_panel(sandbox_settings, db, tg, crm, ga):
    settings = gateway_settings(sandbox_settings, "greenapi", ga)
    desk = start(settings, db, tg, crm, ga)
    try:
        body = {"typeWebhook": "somethingNewFromTheGateway", "instanceData": {"idInstance": int(ga.instance)},
                "timestamp": 1765000000}
        answer = requests.post(f"{desk.listener_url}/whatsapp/greenapi", json=body, timeout=5,
                               headers={"Authorization": f"Bearer {GREENAPI_WEBHOOK_TOKEN}"})
        assert answer.status_code == 200                     # taken: the gateway must not resend it
        job_id = dead_letter(db)
        [report] = wait_for(lambda: errors_about(tg, "somethingNewFromTheGateway"), timeout=20)
        assert f"/retry_{job_id}" in report
        assert "somethingNewFromTheGateway" in errors_command(desk, tg, db)
        assert "somethingNewFromTheGateway" in panel_errors_page(settings, db)
    finally:
        desk.stop()


def test_a_cloud_body_with_a_message_without_a_sender_is_a_dead_letter_and_the_rest_is_taken_in(
        wa_settings, db, tg, crm, wa):
    desk = start(wa_settings, db, tg, crm, wa)
    try:
        body = {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages",
                "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": wa.phone_number_id},
                          "messages": [{"id": "wamid.good", "from": PHONE, "timestamp": "1765000000",
                                        "type": "text", "text": {"body": "Перше, зрозуміле"}},
                                       {"id": "wamid.bad", "timestamp": "1765000000", "type": "text",
                                        "text": {"body": "без відправника"}}]}}]}]}
        assert wa.post_webhook(body) == 200
        shared_post(tg, "Перше, зрозуміле")
        dead_letter(db)
        assert wait_for(lambda: errors_about(tg, "without a sender"), timeout=20)
    finally:
        desk.stop()


# -- every provider's content in the post ----------------------------------------------------------

def test_a_devino_location_and_contacts_show_their_content_in_the_post(sandbox_settings, db, tg, crm, dv):
    desk = start(gateway_settings(sandbox_settings, "devino", dv), db, tg, crm, dv)
    try:
        dv.customer_sends_location(PHONE, 50.4501, 30.5234, address="вул. Хрещатик, 22", address_name="ЦУМ")
        post = visible(shared_post(tg, "Хрещатик"))
        assert "📍 50.4501, 30.5234" in post and "ЦУМ" in post
        dv.customer_sends_contacts(PHONE, [{"names": {"formattedName": "Олег Петренко"},
                                            "phones": ["+380501112233"], "emails": ["oleg@example.com"],
                                            "company": "Петренко і син"}])
        card = visible(shared_post(tg, "Олег Петренко"))
        assert "+380501112233" in card and "oleg@example.com" in card and "Петренко і син" in card
    finally:
        desk.stop()


def test_a_cloud_order_shows_its_items_and_total_and_a_number_change_is_said_and_followed(
        wa_settings, db, tg, crm, wa):
    desk = start(wa_settings, db, tg, crm, wa)
    try:
        wa.customer_orders(PHONE, [{"product_retailer_id": "SKU-RED-42", "quantity": 2, "item_price": 1250,
                                    "currency": "UAH"},
                                   {"product_retailer_id": "SKU-SOCKS", "quantity": "1", "item_price": "99.5",
                                    "currency": "UAH"}], text="Доставка в Київ")
        order = visible(shared_post(tg, "SKU-RED-42"))
        assert "SKU-RED-42 × 2 · 1250.00 UAH" in order and "SKU-SOCKS × 1 · 99.50 UAH" in order
        assert "Σ 2599.50 UAH" in order and "Доставка в Київ" in order

        new_phone = "380679998877"
        wa.customer_changes_number(PHONE, new_phone)
        assert "клієнт змінив номер на +380679998877" in visible(shared_post(tg, "змінив номер"))
        wa.customer_writes(new_phone, "Пишу з нового номера")
        shared_post(tg, "Пишу з нового номера")
        # one conversation, now under the new number
        assert db.fetchall("SELECT external_id FROM conversations WHERE channel = 'whatsapp'") == [
            {"external_id": new_phone}]
    finally:
        desk.stop()


def test_the_product_asked_about_and_the_ad_the_customer_came_from_are_on_the_post(wa_settings, db, tg, crm, wa):
    desk = start(wa_settings, db, tg, crm, wa)
    try:
        wa.customer_asks_about_product(PHONE, "Є в наявності?", "SKU-BOOT-39")
        asked = visible(shared_post(tg, "Є в наявності?"))
        assert "🛍 SKU-BOOT-39" in asked
        wa.customer_comes_from_ad("380501234567", "Хочу знижку", "Зимові чоботи -30%",
                                  "https://fb.me/ad/120200000000")
        came = visible(shared_post(tg, "Хочу знижку"))
        assert "📣 ad: Зимові чоботи -30%" in came and "https://fb.me/ad/120200000000" in came
    finally:
        desk.stop()


def test_a_gateways_contact_cards_and_poll_show_their_content(sandbox_settings, db, tg, crm, ga):
    desk = start(gateway_settings(sandbox_settings, "greenapi", ga), db, tg, crm, ga)

    def notify(message_data: dict, message_id: str) -> None:
        body = {"typeWebhook": "incomingMessageReceived", "timestamp": 1765000000, "idMessage": message_id,
                "instanceData": {"idInstance": int(ga.instance), "wid": "380440000000@c.us",
                                 "typeInstance": "whatsapp"},
                "senderData": {"chatId": f"{PHONE}@c.us", "sender": f"{PHONE}@c.us", "senderName": "Ірина"},
                "messageData": message_data}
        assert requests.post(f"{desk.listener_url}/whatsapp/greenapi", json=body, timeout=5,
                             headers={"Authorization": f"Bearer {GREENAPI_WEBHOOK_TOKEN}"}).status_code == 200
    try:
        notify({"typeMessage": "contactsArrayMessage", "contacts": [
            {"displayName": "Victor", "vcard": "BEGIN:VCARD\nFN:Victor\nitem1.TEL;waid=79001234569:+7 900 123-45-69"
                                               "\nEMAIL;type=INTERNET:victor@example.com\nEND:VCARD"},
            {"displayName": "Anna", "vcard": "BEGIN:VCARD\nFN:Anna\nTEL;type=CELL:+380501112233\nEND:VCARD"}]},
            "GA-CARDS")
        cards = visible(shared_post(tg, "Victor"))
        assert "+7 900 123-45-69" in cards and "victor@example.com" in cards and "+380501112233" in cards
        notify({"typeMessage": "pollMessage", "pollMessageData": {
            "name": "Який колір?", "options": [{"optionName": "Червоний"}, {"optionName": "Синій"}]}}, "GA-POLL")
        poll = visible(shared_post(tg, "Який колір?"))
        assert "• Червоний" in poll and "• Синій" in poll
        desk.idle()
        assert db.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed'") == 0
    finally:
        desk.stop()
