"""The playground (WEB.md §2): `make run` with no BOT_TOKEN.

The real KeepDesk — both doors, the queue, workers, pyTelegramBotAPI, a real MariaDB —
runs against the local emulators of the outside world (Telegram, KeepingCRM, WhatsApp), and
one page on the panel's port shows both sides:

* left, customers: a marketplace buyer writes into the emulated CRM (which signals
  KeepDesk as the real one does), a WhatsApp customer writes through the emulated Cloud
  API (a signed webhook), and each sees the shop's answers;
* right, the team: a Telegram-like view of the emulated chats (the shared group, the log
  chat, each person's private chat) with the bot's inline buttons, text, photos and files.
  A tap or a message goes through the Telegram emulator's user side, which delivers a real
  update to KeepDesk's webhook door.

The admin panel is at /panel/ (a user `admin` whose password the terminal prints). Nothing
here is part of KeepDesk: it is the sandbox, layer 7.
"""
from __future__ import annotations

import logging
import secrets
import shutil
import signal
import tempfile
import threading
from itertools import count

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from markupsafe import Markup, escape

from config import ROOT, load_settings
from models.db import Database, migrate
from models.mariadb import LocalMariaDB
from sandbox._server import ServerThread
from sandbox.crm import CrmSandbox
from sandbox.demo import ADMIN, LINK_KEY, LOG_CHAT, SHARED_CHAT, TOKEN, environment_for
from sandbox.stack import LocalDesk, wait_for
from sandbox.planfix import PlanfixSandbox
from sandbox.telegram import HtmlParseError, TelegramSandbox, parse_html
from sandbox.tgaccounts import TgAccountsSandbox
from sandbox.whatsapp import WhatsAppSandbox

log = logging.getLogger(__name__)

TEAM = {ADMIN: ("shop_admin", "Admin"), 2002: ("olena_sales", "Olena"), 2003: ("taras_support", "Taras")}
MANAGERS = (2002, 2003)
FIRST_ORDER = 10001
MAX_UPLOAD = 5 * 1024 * 1024
SHOP_ACCOUNT = "380501112233"          # the shop's own Telegram account (CHANNELS.md §5)
PLANFIX_ADMIN_TOKEN = "playground-planfix-admin"
blueprint = Blueprint("playground", __name__, template_folder="templates",
                      static_folder="static", static_url_path="/playground-static")


class Playground:
    """The running emulators and desk, as the page sees them."""

    def __init__(self, tg: TelegramSandbox, crm: CrmSandbox, wa: WhatsAppSandbox, desk: LocalDesk,
                 panel_password: str, tga: TgAccountsSandbox | None = None) -> None:
        self.tg, self.crm, self.wa, self.desk, self.tga = tg, crm, wa, desk, tga
        self.account_online = threading.Event()
        self.tg_customers: dict[int, str] = {}   # the customer's Telegram id → name
        self.panel_password = panel_password
        self.orders = count(FIRST_ORDER)
        self.order_lock = threading.Lock()
        self.buyers: dict[int, str] = {}      # order number → e-mail
        self.wa_customers: dict[str, str] = {}  # phone → name

    # -- customers --------------------------------------------------------------------

    def buyer_writes(self, order: int | None, email: str, text: str, image: bytes | None,
                     filename: str | None) -> int:
        with self.order_lock:
            if order is None:
                order = next(self.orders)
                while self.crm.chat(order) is not None:
                    order = next(self.orders)
            self.buyers.setdefault(order, email)
        if self.crm.chat(order) is None:
            self.crm.add_chat(order, email=email, product="Ноутбук Lenovo IdeaPad 5")
        kind = {}
        if image is not None:
            is_image = (filename or "").lower().endswith((".jpg", ".jpeg", ".png", ".gif", ".webp"))
            kind = {"image": image} if is_image else {"file": image}
        self.crm.customer_writes(order, text, filename=filename, **kind)
        self.crm.signal(self.desk.listener_url, LINK_KEY, order)
        return order

    def whatsapp_writes(self, phone: str, name: str, text: str, data: bytes | None,
                        filename: str | None) -> None:
        self.wa_customers.setdefault(phone, name)
        if data is None:
            self.wa.customer_writes(phone, text, name=name)
        elif (filename or "").lower().endswith((".jpg", ".jpeg", ".png")):
            self.wa.customer_sends_image(phone, data, caption=text, name=name,
                                         mime="image/png" if filename.lower().endswith(".png") else "image/jpeg")
        else:
            self.wa.customer_sends_document(phone, data, filename or "file.pdf", caption=text, name=name)

    def telegram_customer_writes(self, name: str, text: str, data: bytes | None,
                                 filename: str | None) -> None:
        """A Telegram user writes to the shop's own account; KeepDesk relays it to the desk."""
        customer = next((i for i, n in self.tg_customers.items() if n == name), None)
        if customer is None:
            customer = self.tga.add_user(name)["id"]
            self.tg_customers[customer] = name
        file = None
        if data is not None:
            mime = "image/png" if (filename or "").lower().endswith(".png") else (
                "image/jpeg" if (filename or "").lower().endswith((".jpg", ".jpeg")) else "application/pdf")
            file = {"name": filename or "file", "mime": mime, "data": data}
        self.tga.customer_writes(SHOP_ACCOUNT, customer, text, file=file)

    def telegram_thread(self, customer: int) -> list[dict]:
        return [{"text": m.get("text") or "", "files": 1 if m.get("file") else 0}
                for m in self.tga.sent(SHOP_ACCOUNT, to=customer)]

    # -- the team's Telegram ----------------------------------------------------------

    def chats(self) -> list[tuple[int, str]]:
        chats = [(SHARED_CHAT, "Shared group"), (LOG_CHAT, "Log chat")]
        chats += [(tg_id, f"{first} (@{username})") for tg_id, (username, first) in TEAM.items()]
        return chats

    def view(self, chat_id: int) -> list[dict]:
        shown = []
        for message in self.tg.messages(chat_id, include_user=True):
            sender = message.get("from") or {}
            raw = message.get("text") or message.get("caption") or ""
            html = _as_html(raw) if not sender or sender.get("is_bot") else escape(raw)
            shown.append({"id": message["message_id"], "from_bot": not sender or sender.get("is_bot", False),
                          "sender": sender.get("first_name", "KeepDesk"), "html": html,
                          "photo": (message.get("photo") or [{}])[-1].get("file_id"),
                          "document": (message.get("document") or {}).get("file_name"),
                          "document_id": (message.get("document") or {}).get("file_id"),
                          "buttons": (message.get("reply_markup") or {}).get("inline_keyboard", []),
                          "edited": bool(message.get("edit_date"))})
        return shown


def _as_html(telegram_html: str) -> Markup:
    """The bot's Telegram HTML as the page shows it: the visible text (escaped), bold and
    links kept simple. Never the raw HTML: a customer's words are in there."""
    try:
        visible, entities = parse_html(telegram_html)
    except HtmlParseError:
        return escape(telegram_html)
    bold = [(e["offset"], e["length"]) for e in entities if e["type"] == "bold"]
    if not bold:
        return escape(visible)
    # offsets are UTF-16 units; map them on the encoded text
    units = visible.encode("utf-16-le")
    out, position = [], 0
    for offset, length in sorted(bold):
        if offset * 2 < position:
            continue
        out.append(escape(units[position:offset * 2].decode("utf-16-le", "replace")))
        out.append(Markup("<b>") + escape(units[offset * 2:(offset + length) * 2].decode("utf-16-le", "replace")) + Markup("</b>"))
        position = (offset + length) * 2
    out.append(escape(units[position:].decode("utf-16-le", "replace")))
    return Markup("").join(out)


def playground() -> Playground:
    return current_app.extensions["keepdesk.playground"]


def _chat_arg(name: str, default: int) -> int:
    raw = request.values.get(name, "")
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value in dict(playground().chats()) else default


def _upload() -> tuple[bytes | None, str | None]:
    file = request.files.get("file")
    if file is None or not file.filename:
        return None, None
    data = file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        abort(413, "The playground takes files up to 5 MB.")
    return data, file.filename[-100:]


@blueprint.get("/")
def page():
    p = playground()
    chat = _chat_arg("chat", SHARED_CHAT)
    acting = _chat_arg("as", MANAGERS[0])
    return render_template("playground.html", **_state(p, chat, acting))


@blueprint.get("/playground/fragment")
def fragment():
    p = playground()
    chat = _chat_arg("chat", SHARED_CHAT)
    acting = _chat_arg("as", MANAGERS[0])
    return render_template("playground_fragment.html", **_state(p, chat, acting))


def _state(p: Playground, chat: int, acting: int) -> dict:
    if chat in TEAM:
        acting = chat            # in a private chat you are its owner
    buyers = [(order, email, p.crm.messages(order)) for order, email in sorted(p.buyers.items())]
    wa = [(phone, name, _wa_thread(p, phone)) for phone, name in sorted(p.wa_customers.items())]
    tgc = [(i, name, p.telegram_thread(i)) for i, name in sorted(p.tg_customers.items())]
    return {"tg_customers": tgc, "account_online": p.account_online.is_set(),
            "tga": p.tga is not None,"chats": p.chats(), "chat": chat, "acting": acting, "team": TEAM,
            "messages": p.view(chat), "buyers": buyers, "wa": wa,
            "panel_password": p.panel_password, "shared": SHARED_CHAT}


def _wa_thread(p: Playground, phone: str) -> list[dict]:
    sent = p.wa.sent(phone)
    texts = p.wa.message_texts(phone)
    return [{"text": text, "status": message.get("status", "")} for text, message in zip(texts, sent)]


@blueprint.get("/playground/file/<file_id>")
def telegram_file(file_id: str):
    """A photo or file of the emulated Telegram chats, as a Telegram app would show it."""
    from flask import Response
    import requests
    stored = playground().tg.file(file_id[:64])
    if stored is None:
        abort(404, "No such file.")
    content = stored.get("content") or b""
    source = stored.get("source_url") or ""
    if not content and source.startswith("http://127.0.0.1:"):
        # Sent by URL: Telegram fetches it itself; here the URL is an emulator's, on loopback.
        answer = requests.get(source, timeout=5)
        content = answer.content if answer.ok else b""
    if not content:
        abort(404, "The file's content is not available.")
    mime = stored.get("mime_type") or "application/octet-stream"
    inline = mime in ("image/jpeg", "image/png", "image/gif", "image/webp")
    response = Response(content, mimetype=mime if inline else "application/octet-stream")
    name = (stored.get("file_name") or file_id).replace('"', "")
    response.headers["Content-Disposition"] = f'{"inline" if inline else "attachment"}; filename="{name}"'
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@blueprint.post("/playground/buyer")
def buyer():
    p = playground()
    text = (request.form.get("text") or "").strip()[:2000]
    data, name = _upload()
    if not text and data is None:
        return redirect(url_for("playground.page"))
    raw_order = request.form.get("order", "")
    order = int(raw_order) if raw_order.isdigit() and len(raw_order) < 9 else None
    email = (request.form.get("email") or "buyer@example.com").strip()[:100]
    p.buyer_writes(order, email, text or "📎", data, name)
    return redirect(url_for("playground.page", chat=request.form.get("chat", SHARED_CHAT)))


@blueprint.post("/playground/whatsapp")
def whatsapp():
    p = playground()
    text = (request.form.get("text") or "").strip()[:2000]
    data, name = _upload()
    digits = "".join(ch for ch in request.form.get("phone", "") if ch.isdigit())[:15]
    if (not text and data is None) or len(digits) < 9:
        return redirect(url_for("playground.page"))
    p.whatsapp_writes(digits, (request.form.get("name") or "Customer").strip()[:60], text, data, name)
    return redirect(url_for("playground.page", chat=request.form.get("chat", SHARED_CHAT)))


@blueprint.post("/playground/telegram")
def telegram_customer():
    p = playground()
    text = (request.form.get("text") or "").strip()[:2000]
    data, name = _upload()
    if p.tga is None or not p.account_online.is_set() or (not text and data is None):
        return redirect(url_for("playground.page"))
    p.telegram_customer_writes((request.form.get("name") or "Ivan").strip()[:60] or "Ivan", text, data, name)
    return redirect(url_for("playground.page", chat=request.form.get("chat", SHARED_CHAT)))


@blueprint.post("/playground/press")
def press():
    p = playground()
    chat = _chat_arg("chat", SHARED_CHAT)
    user = _chat_arg("as", MANAGERS[0])
    if user not in TEAM:
        abort(400, "Choose who presses the button.")
    message_id = request.form.get("message_id", "")
    data = request.form.get("data", "")[:64]
    if not message_id.isdigit():
        abort(400, "No such message.")
    username, first = TEAM[user]
    try:
        p.tg.user_presses_button(user, chat, int(message_id), data, username=username, first_name=first)
    except ValueError:
        abort(404, "That message is gone.")
    return redirect(url_for("playground.page", chat=chat, **{"as": user}))


@blueprint.post("/playground/send")
def send():
    p = playground()
    chat = _chat_arg("chat", SHARED_CHAT)
    user = _chat_arg("as", MANAGERS[0])
    if user not in TEAM:
        abort(400, "Choose who writes.")
    username, first = TEAM[user]
    text = (request.form.get("text") or "").strip()[:4096]
    data, name = _upload()
    target = None if chat == user else chat
    profile = dict(chat_id=target, username=username, first_name=first)
    if data is not None:
        if (name or "").lower().endswith((".jpg", ".jpeg", ".png")):
            p.tg.user_sends_photo(user, data, caption=text or None, **profile)
        else:
            p.tg.user_sends_document(user, data, name or "file.pdf", caption=text or None, **profile)
    elif text:
        p.tg.user_sends_text(user, text, **profile)
    return redirect(url_for("playground.page", chat=chat, **{"as": user}))


# -- starting it all ------------------------------------------------------------------------

def build(database_env: dict, web_port: int, *, host: str = "127.0.0.1",
          stoppers: list | None = None, telegram_accounts: bool = True,
          workdir: str | None = None) -> tuple[Playground, ServerThread]:
    """Start the emulators, KeepDesk and the page on a database (its MYSQL_* settings);
    what to stop is added to the front of `stoppers`, in the order to stop it.
    `telegram_accounts`: also the shop's own Telegram account (the accounts process, a
    process of its own as in production, with its session file under `workdir`)."""
    import os
    from doors.panel import create_app
    from services.panel_auth import PanelAuth

    stoppers = [] if stoppers is None else stoppers
    tg, crm, wa = TelegramSandbox(TOKEN).start(), CrmSandbox().start(), WhatsAppSandbox().start()
    stoppers[:0] = [tg.stop, crm.stop, wa.stop]
    wa.add_template("appointment", 3)
    environment = environment_for(tg, crm, database_env, wa)
    tga = None
    sessions = None
    if telegram_accounts:   # the accounts' sessions folder, private (TG_SESSIONS_DIR)
        sessions = os.path.join(workdir or tempfile.mkdtemp(prefix="keepdesk-pg-"), "sessions")
        os.makedirs(sessions, mode=0o700, exist_ok=True)
    if telegram_accounts:
        tga, planfix = TgAccountsSandbox().start(), PlanfixSandbox().start()
        stoppers[:0] = [tga.stop, planfix.stop]
        environment.update({
            "PLANFIX_ADMIN_TOKEN": PLANFIX_ADMIN_TOKEN, "PLANFIX_PROVIDER_ID": planfix.provider_id,
            "TG_ACCOUNTS_KEY": secrets.token_urlsafe(32), "PUBLIC_URL": "http://127.0.0.1:9",
            "TG_SESSIONS_DIR": sessions,
            "METRICS_TOKEN": secrets.token_urlsafe(24),
            "TG_ACCOUNTS_BACKEND": "sandbox", "TG_ACCOUNTS_SANDBOX_URL": tga.url,
            "TG_ACCOUNTS_ROUTING": "desk", "FETCH_TRUSTED_ORIGINS": planfix.url})
    settings = load_settings(environment, env_file=None)
    settings = settings.replace(web_port=web_port, web_bind=host, var_dir=ROOT / "var" / "playground",
                                web_secret_key=secrets.token_urlsafe(48))
    db = Database(settings)
    migrate(db)
    desk = LocalDesk(settings, db, tg, crm, wa=wa).start()
    stoppers.insert(0, desk.stop)
    _team_joins(desk, tg)
    password = secrets.token_urlsafe(12)
    PanelAuth(db, desk.deps.clock).set_password("admin", password, ADMIN)
    app = create_app(desk.settings, db, deps=desk.deps, prefix="/panel")
    game = Playground(tg, crm, wa, desk, password, tga)
    app.extensions["keepdesk.playground"] = game
    app.register_blueprint(blueprint)
    server = ServerThread(app, host=host, port=web_port).start()
    stoppers.insert(0, server.stop)
    if tga is not None:
        env = {**os.environ, **environment, "PUBLIC_URL": desk.settings.public_url,
               "PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING"}
        env.pop("BOT_TOKEN_FILE", None)
        threading.Thread(target=_connect_account, name="playground-account", daemon=True,
                         args=(game, desk, env, sessions, planfix)).start()
    return game, server


def _connect_account(game: Playground, desk: LocalDesk, env: dict, workdir: str, planfix) -> None:
    """The accounts process, and the shop's account registered through the management
    endpoint (as an admin would), in the background: the page works meanwhile."""
    import requests
    from pathlib import Path
    try:
        desk.start_accounts(env)
        Path(workdir, "shop.session").write_text(game.tga.add_account(SHOP_ACCOUNT))
        body = {"name": "shop", "number": "+" + SHOP_ACCOUNT, "url_planfix": planfix.url,
                "token_planfix": planfix.token, "name_session": "shop", "path_session": "."}
        answer = requests.post(f"{desk.listener_url}/planfix/clients", json=body, timeout=10,
                               headers={"Token": PLANFIX_ADMIN_TOKEN})
        token = answer.json()["token"]

        def online():
            state = requests.get(f"{desk.listener_url}/planfix/clients", timeout=5,
                                 json={"name": "shop", "number": SHOP_ACCOUNT},
                                 headers={"Token": token}).json()
            return state.get("status") == "online"
        wait_for(online, timeout=60, interval=0.3)
        game.account_online.set()
    except Exception:
        log.exception("the playground's Telegram account did not connect")


def _team_joins(desk: LocalDesk, tg: TelegramSandbox) -> None:
    """The admin and two managers start the bot; the admin approves them — through
    Telegram, as a real shop would."""
    for tg_id, (username, first) in TEAM.items():
        tg.user_sends_text(tg_id, "/start", username=username, first_name=first)
    for tg_id in MANAGERS:
        wait_for(lambda: any(f"/approve_{tg_id}" in (m.get("text") or "") for m in tg.messages(ADMIN)),
                 timeout=30)
        tg.user_sends_text(ADMIN, f"/approve_{tg_id}", username=TEAM[ADMIN][0], first_name=TEAM[ADMIN][1])
    desk.idle(timeout=30)


BANNER = """
──────────────────────────────────────────────────────────────────────────────
 KeepDesk PLAYGROUND — no BOT_TOKEN is set, so nothing talks to the real world.
 The real KeepDesk runs here against local emulators of Telegram, KeepingCRM,
 WhatsApp and a shop's own Telegram account. Open:

     {url}/

 write as a customer on the left, answer as a manager on the right.
 The admin panel: {url}/panel/   login: admin   password: {password}

 To connect real Telegram: put BOT_TOKEN=<token from @BotFather> (and the
 other settings of .env.example) in .env, then `make run` again.
 Ctrl-C stops everything.
──────────────────────────────────────────────────────────────────────────────
"""


def _port_free(host: str, port: int) -> bool:
    import socket
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def main() -> int:
    from utils.signals import StopSignal
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import os
    chosen = {k: os.environ[k] for k in ("WEB_PORT", "WEB_BIND") if os.environ.get(k)}
    web = load_settings({"BOT_TOKEN": TOKEN, **chosen}, env_file=None, database_only=True)
    if not _port_free(web.web_bind, web.web_port):
        print(f"KeepDesk playground: {web.web_bind}:{web.web_port} is taken (another `make run`?). "
              f"Stop it, or choose another port: WEB_PORT=8091 make run", flush=True)
        return 2
    workdir = tempfile.mkdtemp(prefix="keepdesk-playground-")
    stoppers: list = []
    stop = StopSignal()   # before anything starts: Ctrl-C then stops what did start
    try:
        print("KeepDesk playground: starting MariaDB, the emulators and KeepDesk…", flush=True)
        database = LocalMariaDB(workdir, durable=False, buffer_pool="64M")
        stoppers.append(database.stop)
        database.start()
        database.create_database("keepdesk_playground", drop=True)
        game, server = build(database.environment("keepdesk_playground"), web.web_port,
                             host=web.web_bind, stoppers=stoppers, workdir=workdir)
        print(BANNER.format(url=server.url, password=game.panel_password), flush=True)
        while not stop.sleep(0.5):
            pass
        return 0
    finally:
        for stopper in stoppers:
            try:
                stopper()
            except Exception:  # stop the rest whatever one of them did
                log.exception("while stopping the playground")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    raise SystemExit(main())
