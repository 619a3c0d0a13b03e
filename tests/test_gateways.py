"""What only the WhatsApp gateways do (issue 12; CHANNELS.md §4), end to end: a
Green-API-compatible gateway polled with no public URL, messages typed on the shop's phone,
an instance logged out and back; Devino's batches of many notices with mixed answers,
and a batch whose answer is lost or does not match.

Real parts: the gateways' sandboxes over loopback, the integrations door, workers,
the Telegram sandbox, MariaDB.
"""
import requests

from conftest import LOG_CHAT, SHARED_CHAT
from harness import Desk, wait_for
from sandbox.telegram import parse_html
from wa_providers import GREENAPI_WEBHOOK_TOKEN, gateway_settings

PHONE = "380671234567"


def visible(message) -> str:
    return parse_html(message.get("text") or message.get("caption") or "")[0]


def add_manager(db, tg_id=701, username="olena"):
    db.execute("INSERT INTO users (tg_id, username, first_name, language, role)"
               " VALUES (%s, %s, %s, 'uk', 'manager')", (tg_id, username, username.title()))
    return tg_id


def take(tg, manager, post):
    [button] = [b for row in post["reply_markup"]["inline_keyboard"] for b in row]
    tg.user_presses_button(manager, SHARED_CHAT, post["message_id"], button["callback_data"], username="olena")


def shared_post(tg, needle):
    return wait_for(lambda: [m for m in tg.messages(SHARED_CHAT) if needle in visible(m)])[-1]


def errors_about(tg, words):
    return [m for m in tg.messages(LOG_CHAT) if "#ERROR" in visible(m) and words in visible(m)]


def start(settings, db, tg, crm, server, threads=2):
    return Desk(settings.replace(tg_limit_private_per_s=50.0), db, tg, crm, wa=server, threads=threads).start()


# -- Green-API-compatible gateways ---------------------------------------------------------------

def test_with_no_public_url_the_desk_polls_the_gateway_and_deletes_only_what_it_stored(
        sandbox_settings, db, tg, crm, ga):
    settings = gateway_settings(sandbox_settings, "greenapi", ga, whatsapp_greenapi_receive="poll",
                                whatsapp_greenapi_webhook_token=None)
    desk = start(settings, db, tg, crm, ga, threads=3)
    try:
        ga.customer_writes(PHONE, "Пишу без вебхука", name="Оксана")
        ga.customer_writes("380509998877", "І я теж")
        assert "Оксана" in visible(shared_post(tg, "Пишу без вебхука"))
        shared_post(tg, "І я теж")
        wait_for(lambda: ga.queue_size() == 0)
        assert len(ga.deleted) == 2
        # Nothing reached the door's webhook: it all came by the queue, stored once.
        assert not ga.webhook_log
        assert db.scalar("SELECT COUNT(*) FROM messages WHERE text IN ('Пишу без вебхука', 'І я теж')") == 2
    finally:
        desk.stop()


def test_a_notification_that_could_not_be_stored_stays_in_the_gateways_queue(settings, db, ga):
    from channels.whatsapp import WhatsApp
    from channels.whatsapp.gateways import PollNotifications
    ga.use_queue()
    channel = WhatsApp(gateway_settings(settings, "greenapi", ga, whatsapp_greenapi_receive="poll"), db)

    class BrokenIntake:
        def request(self, *args, **kwargs):
            raise ConnectionError("the database went away")

    ga.customer_writes(PHONE, "Не загубіться")
    try:
        PollNotifications(channel, BrokenIntake())(None)
    except ConnectionError:
        pass
    assert ga.queue_size() == 1 and ga.deleted == []


def test_a_message_typed_on_the_shops_phone_is_in_the_history_and_answers_the_customer(
        sandbox_settings, db, tg, crm, ga):
    desk = start(gateway_settings(sandbox_settings, "greenapi", ga), db, tg, crm, ga)
    try:
        olena = add_manager(db)
        ga.customer_writes(PHONE, "Коли доставка?")
        take(tg, olena, shared_post(tg, "Коли доставка?"))
        desk.idle()
        assert db.scalar("SELECT COUNT(*) FROM responses WHERE answered_at IS NULL") == 1
        ga.shop_types(PHONE, "Завтра до обіду, набрала з телефону магазину")
        wait_for(lambda: db.scalar("SELECT COUNT(*) FROM messages WHERE direction = 'shop'") == 1)
        desk.idle()
        # It counts as the answer: the customer no longer waits.
        assert db.scalar("SELECT COUNT(*) FROM responses WHERE answered_at IS NULL") == 0
        tg.user_sends_text(olena, "📁 Історія чата")
        history = wait_for(lambda: [m for m in tg.messages(olena) if visible(m).startswith("📁 Історія чата")
                                    and "Завтра до обіду" in visible(m)])[-1]
        assert "Коли доставка?" in visible(history)
        assert "Завтра до обіду, набрала з телефону магазину" in visible(history)
        # It was not sent again by KeepDesk.
        assert ga.sent(PHONE) == []
    finally:
        desk.stop()


def test_an_instance_logged_out_holds_answers_reports_once_and_sends_them_when_back(
        sandbox_settings, db, tg, crm, ga):
    desk = start(gateway_settings(sandbox_settings, "greenapi", ga), db, tg, crm, ga)
    try:
        olena = add_manager(db)
        ga.customer_writes(PHONE, "Ви тут?")
        take(tg, olena, shared_post(tg, "Ви тут?"))
        desk.idle()
        ga.set_state("notAuthorized")
        wait_for(lambda: db.scalar("SELECT state FROM wa_instances") == "notAuthorized")
        tg.user_sends_text(olena, "Так, відповідаю")
        tg.user_sends_text(olena, "І ще одне")
        wait_for(lambda: len(errors_about(tg, "notAuthorized")) == 1, timeout=15)
        health = requests.get(f"{desk.listener_url}/healthz", timeout=5).json()
        assert "notAuthorized" in str(health)
        assert ga.sent(PHONE) == []
        ga.set_state("authorized")
        wait_for(lambda: len(ga.sent(PHONE)) == 2, timeout=20)
        desk.idle()
        assert [m["content"]["message"] for m in ga.sent(PHONE)] == ["Так, відповідаю", "І ще одне"]
        assert len(errors_about(tg, "notAuthorized")) == 1
        assert not [m for m in tg.messages(olena) if visible(m).startswith("❌")]
    finally:
        desk.stop()


def test_the_gateways_429_makes_a_burst_wait_and_nothing_is_lost(sandbox_settings, db, tg, crm, ga):
    from services.notifications import Notifications
    from models.jobs import JobQueue
    desk = start(gateway_settings(sandbox_settings, "greenapi", ga), db, tg, crm, ga)
    try:
        ga.limits["send"] = 5          # the gateway is stricter than its documentation
        notices = Notifications(desk.settings, db, JobQueue(db), ga.instance, ring=desk.bell.ring)
        phones = [f"38067{n:07d}" for n in range(15)]
        for phone in phones:
            notices.message(phone, "text", {"text": f"Знижка для {phone}"})
        wait_for(lambda: len(ga.sent()) == 15, timeout=30)
        desk.idle()
        assert ga.throttled["send"] > 0
        assert sorted(m["to"] for m in ga.sent()) == phones
        assert db.scalar("SELECT COUNT(*) FROM wa_outbox WHERE status = 'sent'") == 15
    finally:
        desk.stop()


# -- Devino ------------------------------------------------------------------------------------

def test_devino_sends_200_notices_in_a_few_batches_each_result_in_its_place(sandbox_settings, db, tg, crm, dv):
    from services.notifications import Notifications
    from models.jobs import JobQueue
    settings = gateway_settings(sandbox_settings, "devino", dv, whatsapp_template_appointment="appointment")
    desk = Desk(settings, db, tg, crm, wa=dv, threads=2).start(workers=False)
    try:
        dv.add_template("appointment", 3)
        phones = [f"38050{n:07d}" for n in range(200)]
        invalid = set(phones[5::20])           # 10 numbers Devino calls invalid
        forbidden = {phones[7], phones[77]}     # 2 the shop's account may not write to
        for phone in invalid:
            dv.reject(phone, "invalid")
        for phone in forbidden:
            dv.reject(phone, "forbidden")
        notices = Notifications(desk.settings, db, JobQueue(db), dv.sender)
        for n, phone in enumerate(phones):
            notices.appointment(phone, "Д-р Іваненко", "12.03", f"{9 + n % 8}:00")
        desk.start_workers()                   # a day's appointments wait: then the workers run
        wait_for(lambda: db.scalar("SELECT COUNT(*) FROM wa_outbox WHERE status = 'queued'") == 0, timeout=60)
        desk.idle(timeout=30)
        ok = [p for p in phones if p not in invalid | forbidden]
        assert sum(dv.calls) == 200 and len(dv.calls) <= 6          # batched, each message once
        assert sorted(m["to"] for m in dv.sent()) == sorted(ok)
        rows = {r["phone"]: r for r in db.fetchall("SELECT phone, status, external_id, error FROM wa_outbox")}
        assert {p for p, r in rows.items() if r["status"] == "sent"} == set(ok)
        sent_ids = {m["to"]: m["id"] for m in dv.sent()}
        assert all(rows[p]["external_id"] == sent_ids[p] for p in ok)
        assert all(rows[p]["status"] == "failed" and "invalid" in rows[p]["error"] for p in invalid)
        assert all(rows[p]["status"] == "failed" and "forbidden" in rows[p]["error"] for p in forbidden)
        wait_for(lambda: errors_about(tg, "Devino"), timeout=15)
        # Devino's DELIVERED callbacks reach the delivery marks, by message id.
        wait_for(lambda: db.scalar("SELECT COUNT(*) FROM delivery_statuses WHERE status = 'delivered'")
                 == len(ok), timeout=30)
    finally:
        desk.stop()


def test_devino_notices_arriving_together_while_the_workers_run_share_a_few_calls(sandbox_settings, db, tg, crm, dv):
    """The workers are already running when 1C's burst arrives: each notice waits a bounded
    moment for the others, so 30 go in a call or two, not one call per worker's turn."""
    from services.notifications import Notifications
    from models.jobs import JobQueue
    settings = gateway_settings(sandbox_settings, "devino", dv, whatsapp_template_appointment="appointment")
    assert settings.whatsapp_devino_collect_seconds == 0.5          # the default
    desk = Desk(settings, db, tg, crm, wa=dv, threads=3).start()
    try:
        dv.add_template("appointment", 3)
        notices = Notifications(desk.settings, db, JobQueue(db), dv.sender, ring=desk.bell.ring)
        phones = [f"38063{n:07d}" for n in range(30)]
        for phone in phones:
            notices.appointment(phone, "Д-р Іваненко", "12.03", "9:00")
        wait_for(lambda: db.scalar("SELECT COUNT(*) FROM wa_outbox WHERE status = 'sent'") == 30, timeout=30)
        assert sorted(m["to"] for m in dv.sent()) == phones                 # each once
        assert sum(dv.calls) == 30 and len(dv.calls) <= 3, dv.calls
    finally:
        desk.stop()


def test_a_devino_batch_whose_answer_does_not_match_is_reported_and_confirmed_by_callbacks(
        sandbox_settings, db, tg, crm, dv):
    from services.notifications import Notifications
    from models.jobs import JobQueue
    settings = gateway_settings(sandbox_settings, "devino", dv)
    desk = Desk(settings, db, tg, crm, wa=dv, threads=2).start(workers=False)
    try:
        phones = [f"38063{n:07d}" for n in range(5)]
        notices = Notifications(desk.settings, db, JobQueue(db), dv.sender)
        for phone in phones:
            notices.message(phone, "text", {"text": "Ваше замовлення готове"})
        dv.short_answer_next()
        desk.start_workers()
        wait_for(lambda: errors_about(tg, "does not match"), timeout=15)
        # Nothing was marked sent from the broken answer; the status callbacks, which name
        # each message, settle them: sent once, none sent again.
        wait_for(lambda: db.scalar("SELECT COUNT(*) FROM wa_outbox WHERE status = 'sent'") == 5, timeout=15)
        desk.idle()
        assert sum(dv.calls) == 5
        assert sorted(m["to"] for m in dv.sent()) == phones
    finally:
        desk.stop()


# -- the 1C gateway part of /api/v1/, whatever the provider --------------------------------------

def v1(desk, token, method, path, **kwargs):
    return requests.request(method, f"{desk.listener_url}/api/v1{path}", timeout=10,
                            headers={"Authorization": f"Bearer {token}"}, **kwargs)


def test_1c_sends_files_locations_and_contacts_checks_numbers_and_reads_history_through_a_gateway(
        sandbox_settings, db, tg, crm, ga):
    from services.api_tokens import ApiTokens
    desk = start(gateway_settings(sandbox_settings, "greenapi", ga, onec_api_enabled=True), db, tg, crm, ga)
    try:
        token = ApiTokens(db).create("1c")
        ga.not_on_whatsapp("380509990000")
        assert v1(desk, token, "GET", "/phones/0509990000").json()["whatsapp"] is False
        assert v1(desk, token, "GET", "/phones/0671234567").json()["whatsapp"] is True
        upload = v1(desk, token, "POST", "/messages/file", data={"phone": "0671234567", "caption": "Рахунок"},
                    files={"file": ("rahunok.pdf", b"%PDF 1C invoice", "application/pdf")})
        assert upload.status_code == 202, upload.text
        place = v1(desk, token, "POST", "/messages", json={"phone": "0671234567", "type": "location",
                                                           "latitude": 50.45, "longitude": 30.52, "name": "Магазин"})
        card = v1(desk, token, "POST", "/messages", json={"phone": "0671234567", "type": "contact", "contact": {
            "phone": "0441234567", "first_name": "Олена", "company": "Магазин"}})
        assert (place.status_code, card.status_code) == (202, 202)
        wait_for(lambda: len(ga.sent(PHONE)) == 3, timeout=20)
        kinds = {m["type"]: m["content"] for m in ga.sent(PHONE)}
        assert ga.media_bytes(kinds["file"]["file"]) == b"%PDF 1C invoice"
        assert kinds["file"]["fileName"] == "rahunok.pdf" and kinds["file"]["caption"] == "Рахунок"
        assert kinds["location"]["nameLocation"] == "Магазин" and kinds["location"]["latitude"] == 50.45
        assert kinds["contact"]["contact"]["phoneContact"] == 380441234567
        message = v1(desk, token, "GET", f"/messages/{upload.json()['id']}").json()
        assert message["status"] == "sent"
        ga.shop_types(PHONE, "Набрано на телефоні")
        history = v1(desk, token, "GET", "/phones/0671234567/messages", params={"source": "provider"}).json()
        assert "Набрано на телефоні" in [m["text"] for m in history["messages"] if m["from"] == "shop"]
        contacts = v1(desk, token, "GET", "/contacts").json()["contacts"]
        assert PHONE in [c["phone"] for c in contacts]
    finally:
        desk.stop()


def test_1c_is_told_clearly_what_devino_cannot_do(sandbox_settings, db, tg, crm, dv):
    from services.api_tokens import ApiTokens
    desk = start(gateway_settings(sandbox_settings, "devino", dv, onec_api_enabled=True), db, tg, crm, dv)
    try:
        token = ApiTokens(db).create("1c")
        place = v1(desk, token, "POST", "/messages", json={"phone": "0671234567", "type": "location",
                                                           "latitude": 50.45, "longitude": 30.52})
        assert place.status_code == 422 and "not supported by the devino provider" in place.json()["error"]
        history = v1(desk, token, "GET", "/phones/0671234567/messages", params={"source": "provider"})
        assert history.status_code == 422
        assert v1(desk, token, "GET", "/contacts").status_code == 422
        assert v1(desk, token, "GET", "/phones/0671234567").json()["whatsapp"] is None
        assert db.scalar("SELECT COUNT(*) FROM wa_outbox") == 0
    finally:
        desk.stop()


# -- several accounts at once, each with its provider ------------------------------------------

def test_three_accounts_of_three_providers_each_answer_on_the_account_the_customer_wrote_to(
        sandbox_settings, db, tg, crm, wa, ga, dv, tmp_path):
    import json
    from conftest import whatsapp_settings
    from wa_providers import DEVINO_SECRET
    numbers = tmp_path / "numbers.json"
    numbers.write_text(json.dumps([
        {"provider": "greenapi", "id": ga.instance, "token": ga.token, "url": ga.url, "label": "Київ",
         "webhook_token": GREENAPI_WEBHOOK_TOKEN},
        {"provider": "devino", "from": dv.sender, "key": dv.key, "url": dv.url, "callback_secret": DEVINO_SECRET,
         "label": "Львів"}]), encoding="utf-8")
    settings = whatsapp_settings(sandbox_settings, wa, whatsapp_numbers_file=numbers)
    desk = start(settings, db, tg, crm, wa)
    try:
        ga.use_webhook(f"{desk.listener_url}/whatsapp/greenapi", GREENAPI_WEBHOOK_TOKEN)
        dv.use_incoming(f"{desk.listener_url}/whatsapp/devino/{DEVINO_SECRET}/incoming")
        olena = add_manager(db)
        # One customer writes to all three of the shop's numbers: three conversations.
        wa.customer_writes(PHONE, "Пишу в Meta")
        ga.customer_writes(PHONE, "Пишу в Green")
        dv.customer_writes(PHONE, "Пишу в Devino")
        for text in ("Пишу в Meta", "Пишу в Green", "Пишу в Devino"):
            take(tg, olena, shared_post(tg, text))
            desk.idle()
            tg.user_sends_text(olena, f"Відповідь на «{text}»")
            desk.idle()
        wait_for(lambda: wa.sent(PHONE) and ga.sent(PHONE) and dv.sent(PHONE), timeout=20)
        assert [m["content"]["body"] for m in wa.sent(PHONE)] == ["Відповідь на «Пишу в Meta»"]
        assert [m["content"]["message"] for m in ga.sent(PHONE)] == ["Відповідь на «Пишу в Green»"]
        assert [m["content"]["text"] for m in dv.sent(PHONE)] == ["Відповідь на «Пишу в Devino»"]
        accounts = {r["account"] for r in db.fetchall("SELECT account FROM conversations WHERE channel = 'whatsapp'")}
        assert accounts == {wa.phone_number_id, ga.instance, dv.sender}
    finally:
        desk.stop()


# -- bad input at the border ------------------------------------------------------------------------

def test_gateway_bodies_not_understood_are_named_and_groups_and_calls_are_skipped():
    import json
    from datetime import datetime
    from channels.whatsapp.providers.devino import Devino
    from channels.whatsapp.providers.greenapi import GreenApi
    now = datetime(2026, 12, 1, 12, 0)
    green = GreenApi()
    garbage = [b"not json", b"[]", json.dumps({"typeWebhook": "somethingNew", "instanceData": {"idInstance": 1}}),
               json.dumps({"typeWebhook": "incomingMessageReceived", "instanceData": {"idInstance": 1},
                           "idMessage": "X" * 500, "senderData": {"chatId": "380671234567@c.us"}}),
               json.dumps({"typeWebhook": "outgoingMessageStatus", "instanceData": {"idInstance": 1},
                           "idMessage": "S1", "chatId": "380671234567@c.us", "status": "exploded"})]
    for raw in garbage:
        event = green.parse(raw if isinstance(raw, bytes) else raw.encode(), now)
        assert not event.messages and not event.statuses and event.not_understood, raw
    not_the_desks = [json.dumps({"typeWebhook": "incomingCall", "instanceData": {"idInstance": 1}}),
                     json.dumps({"typeWebhook": "incomingMessageReceived", "instanceData": {"idInstance": 1},
                                 "idMessage": "G1", "senderData": {"chatId": "12036302@g.us"},
                                 "messageData": {"typeMessage": "textMessage"}})]
    for raw in not_the_desks:
        event = green.parse(raw.encode(), now)
        assert not event.messages and not event.not_understood and event.skipped, raw
    devino = Devino("https://keepdesk.example")
    for raw, route in ((b'[{"messageId": "1", "status": "DELIVERED", "options": "other|380671234567|o1"}]', "status"),
                       (b'[{"messageId": "1", "status": "WHATEVER"}]', "status"), (b"\xff\xfe", "incoming"),
                       (b'{"incomingMessageId": "1", "to": "380441234567"}', "incoming")):
        event = devino.parse(raw, now, {"route": route, "accounts": ["380441234567"]})
        assert not event.messages and not event.statuses and event.not_understood, raw
    # A `to` that is none of our senders: with one account the message is its (noted), with
    # two nobody can tell whose it is.
    stranger = b'{"incomingMessageId": "1", "from": "380671234567", "to": "ShopName", "text": "?"}'
    one = devino.parse(stranger, now, {"route": "incoming", "accounts": ["380441234567"]})
    assert [m.account for m in one.messages] == ["380441234567"] and one.notes and not one.not_understood
    two = devino.parse(stranger, now, {"route": "incoming", "accounts": ["380441234567", "380441234568"]})
    assert not two.messages and "ShopName" in two.not_understood[0]


def test_a_gateway_checks_a_new_phone_before_its_first_message_and_sends_nothing_to_one_without_whatsapp(
        sandbox_settings, db, tg, crm, ga):
    from services.notifications import Notifications
    from models.jobs import JobQueue
    desk = start(gateway_settings(sandbox_settings, "greenapi", ga), db, tg, crm, ga)
    try:
        ga.not_on_whatsapp("380509990000")
        notices = Notifications(desk.settings, db, JobQueue(db), ga.instance, ring=desk.bell.ring)
        notices.message("380509990000", "text", {"text": "Ваше замовлення готове"})
        notices.message("380671112233", "text", {"text": "Ваше замовлення готове"})
        wait_for(lambda: db.scalar("SELECT COUNT(*) FROM wa_outbox WHERE status = 'queued'") == 0, timeout=15)
        rows = {r["phone"]: r for r in db.fetchall("SELECT phone, status, error FROM wa_outbox")}
        assert rows["380509990000"]["status"] == "failed" and "no WhatsApp" in rows["380509990000"]["error"]
        assert rows["380671112233"]["status"] == "sent"
        assert [m["to"] for m in ga.sent()] == ["380671112233"]
    finally:
        desk.stop()


def test_a_devino_batch_lost_on_the_way_is_sent_once_more_after_its_callbacks_never_come(
        sandbox_settings, db, tg, crm, dv):
    from services.notifications import Notifications
    from models.jobs import JobQueue
    settings = gateway_settings(sandbox_settings, "devino", dv, whatsapp_devino_confirm_seconds=1.0,
                                whatsapp_gateway_timeout_seconds=2.0)
    desk = Desk(settings, db, tg, crm, wa=dv, threads=2).start(workers=False)
    try:
        phones = [f"38066{n:07d}" for n in range(4)]
        notices = Notifications(desk.settings, db, JobQueue(db), dv.sender)
        for phone in phones:
            notices.message(phone, "text", {"text": "Нагадування"})
        dv.drop_next_request(0.2)
        desk.start_workers()
        # The answer is lost: nothing is marked sent, nothing resent at once …
        wait_for(lambda: db.scalar("SELECT COUNT(*) FROM wa_outbox WHERE status = 'unknown'") >= 1, timeout=15)
        # … no callback names them within WHATSAPP_DEVINO_CONFIRM_SECONDS: sent once more, once.
        wait_for(lambda: db.scalar("SELECT COUNT(*) FROM wa_outbox WHERE status = 'sent'") == 4, timeout=30)
        desk.idle()
        assert sorted(m["to"] for m in dv.sent()) == phones
        assert db.scalar("SELECT SUM(resends) FROM wa_outbox") >= 1
    finally:
        desk.stop()


# -- choosing a provider by settings --------------------------------------------------------------

def test_the_provider_is_the_one_whose_settings_are_set_and_must_be_named_when_several_are(tmp_path):
    import json
    import pytest
    from channels.whatsapp.accounts import AccountsError, load_accounts
    from config import SettingsError as ConfigError, load_settings
    base = {"BOT_TOKEN": "1:x", "DB_NAME": "k", "DB_USER": "k"}
    green = {"WHATSAPP_GREENAPI_URL": "https://api.example", "WHATSAPP_GREENAPI_ID": "1101000001",
             "WHATSAPP_GREENAPI_TOKEN": "t0ken", "WHATSAPP_GREENAPI_WEBHOOK_TOKEN": "webhook-t0ken"}
    devino = {"WHATSAPP_DEVINO_KEY": "a2V5", "WHATSAPP_DEVINO_FROM": "380441234567",
              "WHATSAPP_DEVINO_CALLBACK_SECRET": "secret-path-1", "PUBLIC_URL": "https://desk.example",
              "SECRET_KEY": "a-strong-master-secret-0123456789ABCDEF", "METRICS_TOKEN": "metrics-t0ken"}
    settings = load_settings({**base, **green}, env_file=None)
    assert [a.provider for a in load_accounts(settings).values()] == ["greenapi"]
    assert load_accounts(load_settings({**base, **devino}, env_file=None))["380441234567"].provider == "devino"
    with pytest.raises(ConfigError, match="WHATSAPP_PROVIDER is required"):
        load_settings({**base, **green, **devino}, env_file=None)
    chosen = load_settings({**base, **green, **devino, "WHATSAPP_PROVIDER": "devino"}, env_file=None)
    assert [a.provider for a in load_accounts(chosen).values()] == ["devino"]
    with pytest.raises(ConfigError, match="WHATSAPP_DEVINO_CALLBACK_SECRET"):
        load_settings({**base, **{k: v for k, v in devino.items() if k != "WHATSAPP_DEVINO_CALLBACK_SECRET"}},
                      env_file=None)
    numbers = tmp_path / "numbers.json"
    numbers.write_text(json.dumps([{"provider": "greenapi", "id": "1101000002", "url": "https://a.example"}]))
    with pytest.raises(AccountsError, match="has no token"):
        load_accounts(settings.replace(whatsapp_numbers_file=numbers))
    numbers.write_text(json.dumps([{"provider": "viber", "id": "1"}]))
    with pytest.raises(AccountsError, match="provider is one of"):
        load_accounts(settings.replace(whatsapp_numbers_file=numbers))


def _gateway_json():
    from hypothesis import strategies as st
    leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                       st.text(max_size=40), st.sampled_from(["380671234567@c.us", "1@g.us", "incomingMessageReceived",
                                                              "outgoingMessageStatus", "textMessage", "imageMessage",
                                                              "DELIVERED", "380441234567|380671234567|o1"]))
    keys = st.sampled_from(["typeWebhook", "instanceData", "idInstance", "idMessage", "senderData", "chatId",
                            "messageData", "typeMessage", "textMessageData", "textMessage", "fileMessageData",
                            "downloadUrl", "status", "timestamp", "messageId", "options", "from", "to", "ts",
                            "incomingMessageId", "text", "contentUrl", "errorCode"])
    return st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(keys, inner, max_size=6)), max_leaves=30)


def test_any_gateway_body_parses_into_bounded_values_or_nothing():
    import json
    from datetime import datetime
    from hypothesis import given, settings as hsettings
    from channels.whatsapp.providers.devino import Devino
    from channels.whatsapp.providers.greenapi import GreenApi
    now = datetime(2026, 12, 1, 12, 0)

    @hsettings(max_examples=300, deadline=None)
    @given(_gateway_json())
    def check(body):
        raw = json.dumps(body).encode()
        for event in (GreenApi().parse(raw, now),
                      Devino(None).parse(raw, now, {"route": "status", "accounts": ["380441234567"]}),
                      Devino(None).parse(raw, now, {"route": "incoming", "accounts": ["380441234567"]})):
            for received in event.messages:
                assert received.phone.isdigit() and 0 < len(received.message.external_id) <= 128
                assert len(received.message.text or "") <= 20000
            for received in event.statuses:
                assert received.status.status in ("sent", "delivered", "read", "failed")
    check()


def test_a_notice_held_back_by_the_phone_check_is_sent_without_asking_the_chat_history(
        sandbox_settings, db, tg, crm, ga):
    """A send throttled before it left (checkWhatsapp answered 429) left nothing unsure:
    its retry sends at once rather than asking getChatHistory, which the gateway allows once
    a second, so a burst of new phones is not held up behind the history."""
    from services.api_tokens import ApiTokens
    ga.limits["check"] = 1
    desk = start(gateway_settings(sandbox_settings, "greenapi", ga, onec_api_enabled=True), db, tg, crm, ga)
    try:
        token = ApiTokens(db).create("1c")
        phones = [f"06712300{n:02d}" for n in range(6)]
        for phone in phones:
            assert v1(desk, token, "POST", "/messages", json={"phone": phone, "text": "Ваше замовлення готове"}
                      ).status_code == 202
        # the gateway answers before the worker records the send: wait for both
        wait_for(lambda: len({m["to"] for m in ga.sent()}) == len(phones)
                 and db.scalar("SELECT COUNT(*) FROM wa_outbox WHERE status = 'sent'") == len(phones),
                 timeout=60)
        assert ga.throttled["check"] > 0                  # the burst did meet the check's limit
        assert ga.throttled["history"] == 0 and len(ga.sent()) == len(phones)
    finally:
        desk.stop()
