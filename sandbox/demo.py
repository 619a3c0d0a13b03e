"""`make demo` / `python -m bot demo`: the whole flow on this machine, no credentials.

Starts a throwaway MariaDB, the Telegram, CRM and WhatsApp sandboxes and a complete
KeepDesk (both doors on real ports, workers, the real pyTelegramBotAPI), lets a customer
write, and prints what each party saw: the CRM, the listener door, the shared chat. Then
a WhatsApp customer is answered from Telegram, and 1C sends an appointment notice that
the customer confirms with its button.
"""
from __future__ import annotations

import logging
import secrets
import time
from collections import Counter
import shutil
import tempfile
import textwrap

from config import load_settings
from models.db import Database, migrate
from sandbox.crm import CrmSandbox
from sandbox.stack import LocalDesk, wait_for
from sandbox.telegram import TelegramSandbox, parse_html
from sandbox.whatsapp import WhatsAppSandbox
from models.mariadb import LocalMariaDB

TOKEN = "123456:sandbox-token"
SHARED_CHAT = -1001000000001
LOG_CHAT = -1001000000002
ADMIN = 1001
LINK_KEY = "demo-link-key"
SECRET_KEY = secrets.token_urlsafe(32)     # this run's master secret (utils/keys.py)


class Transcript:
    def __init__(self) -> None:
        self.step = 0

    def say(self, party: str, text: str) -> None:
        self.step += 1
        body = textwrap.indent(text.rstrip(), "    ")
        print(f"[{self.step:02d}] {party}\n{body}", flush=True)


def telegram_view(message: dict) -> str:
    """A Telegram message as the person reading it sees it: text and buttons."""
    visible, _ = parse_html(message.get("text") or message.get("caption") or "")
    lines = []
    if message.get("photo"):
        lines.append("[photo]")
    lines.append(visible)
    markup = message.get("reply_markup") or {}
    for row in markup.get("inline_keyboard", []):
        lines.append("  ".join(f"[ {button['text']} ]" for button in row))
    if message.get("disable_notification"):
        lines.append("(sent silently)")
    return "\n".join(lines)


def environment_for(tg: TelegramSandbox, crm: CrmSandbox, database_env: dict,
                    wa: WhatsAppSandbox | None = None) -> dict[str, str]:
    """The settings (as environment variables) of a KeepDesk wired to the sandboxes."""
    whatsapp = {} if wa is None else {
        "WHATSAPP_CLOUD_GRAPH_URL": wa.url, "WHATSAPP_CLOUD_TOKEN": wa.token,
        "WHATSAPP_CLOUD_PHONE_NUMBER_ID": wa.phone_number_id,
        "WHATSAPP_CLOUD_APP_SECRET": wa.app_secret, "WHATSAPP_CLOUD_VERIFY_TOKEN": wa.verify_token,
        "WHATSAPP_TEMPLATE_APPOINTMENT": "appointment", "WHATSAPP_TEMPLATES": "appointment:3,hello:0"}
    return {**whatsapp,
        "BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": tg.url,
        "CHAT_NEW_MESSAGE": str(SHARED_CHAT), "CHANNEL_LOG": str(LOG_CHAT), "ADMIN_IDS": str(ADMIN),
        "WEBHOOK_SECRET_PATH": "demo-webhook-path", "WEBHOOK_SECRET_TOKEN": "demo-secret",
        "KEEPING_API_URL": crm.api_url, "KEEPING_SELLER_ID": str(crm.seller_id),
        "KEEPING_API_KEY": crm.api_key, "KEEPING_WEB_URL": crm.web_url, "LINK_KEY": LINK_KEY,
        "SECRET_KEY": SECRET_KEY, "RECONCILE_EVERY": "3600", **database_env,
    }


def settings_for(tg: TelegramSandbox, crm: CrmSandbox, database_env: dict,
                 wa: WhatsAppSandbox | None = None):
    return load_settings(environment_for(tg, crm, database_env, wa), env_file=None)


WA_CUSTOMER = "380671234567"


def whatsapp_story(desk: LocalDesk, tg: TelegramSandbox, wa: WhatsAppSandbox, say: Transcript) -> None:
    """A WhatsApp customer answered from Telegram; a 1C appointment confirmed by its button."""
    import requests
    from services.api_tokens import ApiTokens
    manager = 2002
    wa.customer_writes(WA_CUSTOMER, "Вітаю! Можна записатися на завтра?", name="Оксана")
    say.say("WhatsApp (customer +380671234567, “Оксана”)", "Вітаю! Можна записатися на завтра?")
    post = wait_for(lambda: [m for m in tg.messages(SHARED_CHAT) if "WhatsApp" in (m.get("text") or "")],
                    timeout=30)[-1]
    desk.idle(timeout=30)
    say.say(f"Telegram shared chat {SHARED_CHAT}", telegram_view(post))
    button = post["reply_markup"]["inline_keyboard"][0][0]
    tg.user_presses_button(manager, SHARED_CHAT, post["message_id"], button["callback_data"],
                           username="olena_sales")
    wait_for(lambda: "Ви відповідаєте" in (tg.messages(manager)[-1].get("text") or ""), timeout=30)
    reply = "Так, завтра о 10:30 є вільний час. Надішлю підтвердження."
    tg.user_sends_text(manager, reply, username="olena_sales")
    wait_for(lambda: wa.sent(WA_CUSTOMER), timeout=30)
    wait_for(lambda: wa.sent(WA_CUSTOMER)[-1]["status"] == "delivered", timeout=30)
    desk.idle(timeout=30)
    say.say("Telegram, @olena_sales types", reply)
    say.say("WhatsApp, what the customer received",
            "\n".join(f"{text}   [{m['status']}]" for text, m in zip(wa.message_texts(WA_CUSTOMER),
                                                                     wa.sent(WA_CUSTOMER))))

    token = ApiTokens(desk.db).create("1c-demo")
    answer = requests.post(f"{desk.listener_url}/appointment", timeout=10, data={
        "token": token, "phone": "0671234567", "doctor": "Др. Коваль", "date": "03.12", "time": "10:30"})
    say.say("1C → KeepDesk", f"POST /appointment phone=0671234567 doctor=Др. Коваль date=03.12 "
                             f"time=10:30 → {answer.text}")
    notice = wait_for(lambda: [m for m in wa.sent(WA_CUSTOMER) if m["type"] == "template"], timeout=30)[-1]
    say.say("WhatsApp, the customer receives the template", wa.message_texts(WA_CUSTOMER)[-1]
            + "\n[ Підтвердити ]  [ Відписатися ]")
    wa.customer_presses_button(WA_CUSTOMER, "Підтвердити", "confirm", context_id=notice["id"])
    deadline = time.monotonic() + 30
    while True:
        state = requests.get(f"{desk.listener_url}/get_data", timeout=10,
                             params={"token": token, "phone": "0671234567"}).json()
        if state["appointment"] is True or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    say.say("WhatsApp, the customer taps “Підтвердити”; 1C asks GET /get_data", str(state))
    wait_for(lambda: len([m for m in wa.sent(WA_CUSTOMER) if m["type"] == "text"]) == 2, timeout=30)
    say.say("WhatsApp, KeepDesk answers the customer", wa.message_texts(WA_CUSTOMER)[-1])


def run_story(desk: LocalDesk, tg: TelegramSandbox, crm: CrmSandbox, say: Transcript) -> None:
    id_i = 10001
    crm.add_chat(id_i, email="olha.buyer@example.com", product="Ноутбук Lenovo IdeaPad 5")
    message = crm.customer_writes(id_i, "Добрий день! Чи є в наявності <b>16 GB</b> версія? "
                                        "Доставка у Львів & оплата при отриманні? 🙂")
    say.say("CRM (customer on the marketplace)",
            f"olha.buyer@example.com wrote in order {id_i}:\n{message['message']}")
    statuses = crm.signal(desk.listener_url, LINK_KEY, id_i, times=3)
    say.say("CRM → KeepDesk listener",
            f"POST /messages/<LINK_KEY> {{\"InvoiceId\": {id_i}}} sent 3 times (CRMs repeat "
            f"signals): answered {statuses}")
    wait_for(lambda: tg.messages(SHARED_CHAT), timeout=30)
    desk.idle(timeout=30)
    for post in tg.messages(SHARED_CHAT):
        say.say(f"Telegram shared chat {SHARED_CHAT}", telegram_view(post))
    calls = Counter(call["path"] for call in crm.calls())
    say.say("Delivery", f"{len(tg.messages(SHARED_CHAT))} post for 3 signals. CRM calls: "
                        + ", ".join(f"{path} ×{n}" for path, n in sorted(calls.items()))
                        + "\n(the chats list: the new chat's metadata, and the reconciliation"
                          " that runs once at start)")
    take_and_answer(desk, tg, crm, say, id_i)


def take_and_answer(desk: LocalDesk, tg: TelegramSandbox, crm: CrmSandbox, say: Transcript,
                    id_i: int) -> None:
    manager = 2002
    tg.user_sends_text(ADMIN, "/start", username="shop_admin")
    tg.user_sends_text(manager, "/start", username="olena_sales", first_name="Olena")
    wait_for(lambda: [m for m in tg.messages(ADMIN) if "/approve_2002" in (m.get("text") or "")],
             timeout=30)
    say.say("Telegram, manager @olena_sales", "/start → " + telegram_view(tg.messages(manager)[-1]))
    tg.user_sends_text(ADMIN, "/approve_2002")
    wait_for(lambda: len(tg.messages(manager)) >= 2, timeout=30)
    desk.idle(timeout=30)
    say.say("Telegram, admin → /approve_2002", telegram_view(tg.messages(ADMIN)[-1]))

    post = tg.messages(SHARED_CHAT)[0]
    button = post["reply_markup"]["inline_keyboard"][0][0]
    tap = tg.user_presses_button(manager, SHARED_CHAT, post["message_id"], button["callback_data"],
                                 username="olena_sales")
    query_id = tap["callback_query"]["id"]
    answer = wait_for(lambda: [a for a in tg.callback_answers() if a["callback_query_id"] == query_id],
                      timeout=30)[0]
    desk.idle(timeout=30)
    say.say("Telegram, @olena_sales taps “✍ Відповісти”", f"the bot answers the tap: {answer['text']}")
    say.say(f"Telegram shared chat {SHARED_CHAT} (the post, edited)",
            telegram_view(tg.message(SHARED_CHAT, post["message_id"])))
    for message in tg.messages(manager)[-2:]:
        say.say("Telegram, private chat of @olena_sales", telegram_view(message))

    reply = "Добрий день! Так, 16 GB є. Відправимо сьогодні Новою поштою, оплата при отриманні."
    tg.user_sends_text(manager, reply, username="olena_sales")
    wait_for(lambda: [m for m in crm.messages(id_i) if m["seller"]], timeout=30)
    desk.idle(timeout=30)
    say.say("Telegram, @olena_sales types", reply)
    say.say("Telegram, private chat of @olena_sales", telegram_view(tg.messages(manager)[-1]))
    shop = [m for m in crm.messages(id_i) if m["seller"]][-1]
    say.say(f"CRM, order {id_i} (what the customer now sees)",
            f"shop answered at {shop['date_written']}:\n{shop['message']}")


def main() -> int:
    logging.getLogger().setLevel(logging.WARNING)
    workdir = tempfile.mkdtemp(prefix="keepdesk-demo-")
    say = Transcript()
    database = LocalMariaDB(workdir, durable=False, buffer_pool="64M")
    tg = crm = desk = wa = None
    try:
        print("Starting MariaDB, the Telegram and CRM sandboxes and KeepDesk…", flush=True)
        database.start()
        database.create_database("keepdesk_demo", drop=True)
        tg, crm = TelegramSandbox(TOKEN).start(), CrmSandbox().start()
        wa = WhatsAppSandbox().start()
        wa.add_template("appointment", 3)
        settings = settings_for(tg, crm, database.environment("keepdesk_demo"), wa)
        db = Database(settings)
        migrate(db)
        desk = LocalDesk(settings, db, tg, crm, wa=wa).start()
        run_story(desk, tg, crm, say)
        whatsapp_story(desk, tg, wa, say)
        print("Demo finished.", flush=True)
        return 0
    finally:
        if desk is not None:
            desk.stop()
        for server in (tg, crm, wa):
            if server is not None:
                server.stop()
        database.stop()
        shutil.rmtree(workdir, ignore_errors=True)
