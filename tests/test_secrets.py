"""Secrets (SPEC §6, §7; issue 6): no secret in any log line or printed URL, secret
comparisons in constant time, and the listener's optional address allow-list.

The full-run test starts `python -m bot run` with distinctive secrets — its own Telegram
and CRM sandboxes (so the bot token and the CRM key are ours) and a MariaDB user with a
password on the session's server — at LOG_LEVEL=DEBUG, drives a customer message, a
/start and a reply through it, and reads every line the process group wrote.
"""
from __future__ import annotations

import ast
import hmac
import inspect
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

import crm_listener
import doors.web
import utils.http
import webhook_server
from bot.callbacks import CallbackCodec
from conftest import ROOT, free_port, process_group_alive
from harness import wait_for
from sandbox._server import ServerThread
from utils.http import same_secret

BOT_TOKEN = "7345612987:KDsecretBotTokenZq8xW3-qJ"
API_KEY = "kd-secret-crm-api-key-Vq93LmXa"
DB_PASSWORD = "kd-Secret-DB-pass-7Hx2Qe"
LINK_KEY = "kd-secret-link-key-Rt5Yw"
WEBHOOK_PATH = "kd-secret-webhook-path-Lp0"
MASTER_SECRET = "kd-Secret-master-key-Hq4Zn8Wc2Rt6Yv0Bx"
METRICS_TOKEN = "kd-secret-metrics-token-Gf7"
WEBHOOK_TOKEN = "kd-secret-header-token-Mn4"
DB_NAME, DB_USER = "keepdesk_secrets", "kd_secrets"
ADMIN, SHARED, LOG_CHAT, STRANGER = 9101, -1009100000001, -1009100000002, 9102


# --------------------------------------------------------------------------- the full run

@pytest.fixture
def password_db(mariadb):
    """A database on the session's server, reachable only as a user with a password."""
    def admin(*statements):
        conn = mariadb.connect()
        try:
            with conn.cursor() as cur:
                for statement, *args in statements:
                    cur.execute(statement, *args)
        finally:
            conn.close()

    admin((f"DROP DATABASE IF EXISTS {DB_NAME}",),
          (f"CREATE DATABASE {DB_NAME} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",),
          (f"DROP USER IF EXISTS '{DB_USER}'@'localhost'",),
          (f"CREATE USER '{DB_USER}'@'localhost' IDENTIFIED BY %s", (DB_PASSWORD,)),
          (f"GRANT ALL PRIVILEGES ON {DB_NAME}.* TO '{DB_USER}'@'localhost'",))
    yield {"MYSQL_SOCKET": mariadb.socket, "MYSQL_HOST": "", "MYSQL_USER": DB_USER,
           "MYSQL_PASSWORD": DB_PASSWORD, "MYSQL_DB": DB_NAME}
    admin((f"DROP USER IF EXISTS '{DB_USER}'@'localhost'",), (f"DROP DATABASE IF EXISTS {DB_NAME}",))


@pytest.fixture
def own_sandboxes():
    from sandbox.crm import CrmSandbox
    from sandbox.telegram import TelegramSandbox
    tg = TelegramSandbox(BOT_TOKEN).start()
    crm = CrmSandbox(api_key=API_KEY, seller_id=7).start()
    yield tg, crm
    tg.stop()
    crm.stop()


def _environment(tmp_path: Path, tg, crm, database: dict[str, str], **extra: str) -> dict[str, str]:
    keepdesk = ("BOT_", "TELEGRAM_", "WEBHOOK_", "CHAT_", "CHANNEL_", "ADMIN_", "KEEPING_",
                "LINK_", "CRM_", "MYSQL_", "LOG_", "KEEPDESK_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(keepdesk)}
    env.update({
        "BOT_TOKEN": BOT_TOKEN, "TELEGRAM_API_URL": tg.url,
        "CHAT_NEW_MESSAGE": str(SHARED), "CHANNEL_LOG": str(LOG_CHAT), "ADMIN_IDS": str(ADMIN),
        "KEEPING_API_URL": crm.api_url, "KEEPING_SELLER_ID": "7", "KEEPING_API_KEY": API_KEY,
        "KEEPING_WEB_URL": crm.web_url, "LINK_KEY": LINK_KEY,
        "WEBHOOK_SECRET_PATH": WEBHOOK_PATH, "WEBHOOK_SECRET_TOKEN": WEBHOOK_TOKEN,
        "KEEPDESK_VAR_DIR": str(tmp_path / "var"), "LOG_LEVEL": "DEBUG", "PYTHONUNBUFFERED": "1",
        **database, **extra,
    })
    return env


def _leaks(output: str, secrets: dict[str, str]) -> list[str]:
    """Which secrets show in `output`, as they are or as they would be in a URL."""
    found = []
    for name, value in secrets.items():
        forms = {value, quote(value, safe=""), quote(value)}
        if name == "BOT_TOKEN":
            forms.add(value.split(":", 1)[1])  # the secret half; the bot id is public
        found += [f"{name} as {form!r}" for form in forms if form in output]
    return found


@pytest.mark.slow
def test_a_full_run_at_debug_level_logs_no_secret(tmp_path, own_sandboxes, password_db, mariadb):
    tg, crm = own_sandboxes
    webhook_port, listener_port = free_port(), free_port()
    env = _environment(tmp_path, tg, crm, password_db, WEBHOOK_PORT=str(webhook_port),
                       LISTENER_PORT=str(listener_port), BIND_HOST="127.0.0.1", HTTP_WORKERS="1",
                       WORKERS="1", WORKER_THREADS="2", RECONCILE_EVERY="2")
    out_path, err_path = tmp_path / "run.out", tmp_path / "run.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        run = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env,
                               stdout=out, stderr=err, start_new_session=True)
    listener = f"http://127.0.0.1:{listener_port}"
    try:
        def healthy(port):
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_for(lambda: healthy(webhook_port) and healthy(listener_port), timeout=60, interval=0.2)
        wait_for(lambda: tg.calls("deleteWebhook"), timeout=30)  # long polling begins next

        # A /start from the admin and one from a stranger (the admins are told).
        tg.user_sends_text(ADMIN, "/start", username="boss")
        tg.user_sends_text(STRANGER, "/start", username="stranger")
        wait_for(lambda: any("/approve_" in (m.get("text") or "") for m in tg.messages(ADMIN)),
                 timeout=30)

        # A customer message and its signal: the post lands in the shared chat.
        crm.customer_writes(4401, "Чи є в наявності?", email="buyer@example.com", product="Ноутбук")
        assert crm.signal(listener, LINK_KEY, 4401) == [200]
        post = wait_for(lambda: [m for m in tg.messages(SHARED) if m.get("reply_markup")], timeout=30)[-1]

        # The admin takes it and answers the customer; the CRM gets the answer.
        [button] = [b for row in post["reply_markup"]["inline_keyboard"] for b in row]
        tg.user_presses_button(ADMIN, SHARED, post["message_id"], button["callback_data"], username="boss")
        wait_for(lambda: any("#4401" in (m.get("text") or "") for m in tg.messages(ADMIN)), timeout=30)
        tg.user_sends_text(ADMIN, "Так, є. Відправимо сьогодні.", username="boss")
        wait_for(lambda: [m for m in crm.messages(4401) if m["seller"]], timeout=30)

        # The CRM forgets its tokens: the client logs in again (and says so in the log).
        crm.expire_tokens()
        crm.customer_writes(4401, "Дякую!")
        assert crm.signal(listener, LINK_KEY, 4401) == [200]
        wait_for(lambda: len([m for m in tg.messages(ADMIN) if "Дякую!" in (m.get("text") or "")]) == 1,
                 timeout=30)
        time.sleep(2.5)  # one reconciliation round (RECONCILE_EVERY=2) with its CRM calls

        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(timeout=60) == 0
        wait_for(lambda: not process_group_alive(run.pid), timeout=20)
    finally:
        if process_group_alive(run.pid):
            os.killpg(run.pid, signal.SIGKILL)

    output = out_path.read_text(errors="replace") + err_path.read_text(errors="replace")
    crm_tokens = {c["params"]["token"] for c in crm.calls() if c["params"].get("token")}
    assert len(crm_tokens) >= 2, "the CRM should have issued a token, then another after expiry"
    secrets = {"BOT_TOKEN": BOT_TOKEN, "KEEPING_API_KEY": API_KEY, "MYSQL_PASSWORD": DB_PASSWORD,
               "LINK_KEY": LINK_KEY, "WEBHOOK_SECRET_PATH": WEBHOOK_PATH,
               "WEBHOOK_SECRET_TOKEN": WEBHOOK_TOKEN,
               **{f"CRM session token {n}": token for n, token in enumerate(sorted(crm_tokens))}}
    assert _leaks(output, secrets) == [], output[-3000:]
    assert not re.findall(r"token=(?!\*\*\*)[^&\s\"']+", output), \
        re.findall(r".*token=(?!\*\*\*).*", output)[:5]
    # The capture saw what it had to see: DEBUG request lines, with the secrets masked.
    lines = output.splitlines()
    print(f"\nfull run: {len(lines)} log lines captured, {len(crm_tokens)} CRM tokens, no secret in any")
    assert len(lines) > 30 and " DEBUG " in output
    assert "/bot***/getUpdates" in output or "/bot***/getupdates" in output.lower()
    assert "token=***" in output
    # ... and the database was reached as the user with the password.
    with mariadb.connect(DB_NAME) as conn, conn.cursor() as cur:
        cur.execute("SELECT role FROM users WHERE tg_id = %s", (ADMIN,))
        assert cur.fetchone() == ("admin",)


def test_printed_webhook_urls_hide_the_secret_path(tmp_path, own_sandboxes, password_db):
    tg, crm = own_sandboxes
    env = _environment(tmp_path, tg, crm, password_db, WEBHOOK_URL="https://desk.example.com",
                       SECRET_KEY=MASTER_SECRET, METRICS_TOKEN=METRICS_TOKEN)
    for command in ("set-webhook", "delete-webhook"):
        done = subprocess.run([sys.executable, "-m", "bot", command], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        output = done.stdout + done.stderr
        assert _leaks(output, {"BOT_TOKEN": BOT_TOKEN, "WEBHOOK_SECRET_PATH": WEBHOOK_PATH,
                               "WEBHOOK_SECRET_TOKEN": WEBHOOK_TOKEN, "KEEPING_API_KEY": API_KEY,
                               "MYSQL_PASSWORD": DB_PASSWORD, "SECRET_KEY": MASTER_SECRET,
                               "METRICS_TOKEN": METRICS_TOKEN}) == []
        if command == "set-webhook":
            assert "webhook set to https://desk.example.com/telegram/***" in output
            # Telegram itself does get the real URL and header secret.
            [call] = tg.calls("setWebhook")
            assert call["params"]["url"] == f"https://desk.example.com/telegram/{WEBHOOK_PATH}"
            assert call["params"]["secret_token"] == WEBHOOK_TOKEN


@pytest.mark.parametrize("module", ["webhook_server", "crm_listener"])
def test_the_doors_under_gunicorn_log_through_the_redacting_handler(tmp_path, own_sandboxes,
                                                                    password_db, module):
    """What gunicorn does to find the app: import the module, read `app`."""
    tg, crm = own_sandboxes
    env = _environment(tmp_path, tg, crm, password_db)
    probe = (f"import logging, {module}\n{module}.app\n"
             "from utils.logs import RedactSecrets\n"
             "print(any(isinstance(f, RedactSecrets) for h in logging.getLogger().handlers"
             " for f in h.filters))\n"
             f"logging.getLogger('{module}').warning('probe with %s', {BOT_TOKEN!r})\n")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    assert BOT_TOKEN not in done.stderr and "probe with ***" in done.stderr


# --------------------------------------------------------------------------- constant time

def test_same_secret_compares_whole_values():
    assert same_secret("s3cret-value", "s3cret-value") is True
    for given in ("s3cret-valu", "s3cret-value ", "S3cret-value", "", "x" * 10_000, "s3cret-value\x00"):
        assert same_secret(given, "s3cret-value") is False
    assert same_secret(None, "s3cret-value") is False
    # An unset secret matches nothing, not even an empty or absent one.
    for expected in (None, ""):
        for given in (None, "", "anything"):
            assert same_secret(given, expected) is False
    # Unicode, as a percent-decoded path can carry it: compared as UTF-8, never raising.
    assert same_secret("ключ-секрет", "ключ-секрет") is True
    for given in ("ключ", "😀", "\ufffd\ufffd", "\udcff", "s3cret-valuе", "s3cret-value\u200b"):
        assert same_secret(given, "s3cret-value") is False


def test_same_secret_never_raises():
    assert same_secret("\ud800", "s3cret-value") is False


class CompareSpy:
    def __init__(self, monkeypatch):
        self.calls: list[tuple[bytes, bytes, bool]] = []
        real = hmac.compare_digest

        def spy(a, b):
            result = real(a, b)
            self.calls.append((a, b, result))
            return result

        # The doors reach it as utils.http.hmac.compare_digest (the hmac module's own name).
        monkeypatch.setattr(utils.http.hmac, "compare_digest", spy)

    def compared_with(self, secret: str) -> list[tuple[bytes, bool]]:
        return [(a, result) for a, b, result in self.calls if b == secret.encode()]

    def reset(self):
        self.calls.clear()


def test_the_doors_compare_every_secret_with_compare_digest(settings, db, monkeypatch):
    spy = CompareSpy(monkeypatch)
    tg = webhook_server.create_app(settings, db=db).test_client()
    crm = crm_listener.create_app(settings, db=db).test_client()
    header = "X-Telegram-Bot-Api-Secret-Token"
    update = {"update_id": 4501}

    answer = tg.post("/telegram/guess-path", json=update, headers={header: "test-secret-token"})
    assert answer.status_code == 404
    assert spy.compared_with("test-webhook-path") == [(b"guess-path", False)]
    spy.reset()
    assert tg.post("/telegram/test-webhook-path", json=update, headers={header: "guess"}).status_code == 403
    assert spy.compared_with("test-webhook-path") == [(b"test-webhook-path", True)]
    assert spy.compared_with("test-secret-token") == [(b"guess", False)]
    spy.reset()
    assert tg.post("/telegram/test-webhook-path", json=update,
                   headers={header: "test-secret-token"}).status_code == 200
    assert spy.compared_with("test-secret-token") == [(b"test-secret-token", True)]
    spy.reset()
    assert crm.post("/messages/guess-key-1", json={"InvoiceId": 4502}).status_code == 404
    assert spy.compared_with("test-link-key") == [(b"guess-key-1", False)]
    spy.reset()
    assert crm.post("/messages/test-link-key", json={"InvoiceId": 4502}).status_code == 200
    assert spy.compared_with("test-link-key") == [(b"test-link-key", True)]


def test_no_door_compares_a_secret_with_an_ordinary_operator():
    """`==`, `!=`, `in` or startswith on a secret would return early at the first
    difference; the doors must leave every secret comparison to same_secret."""
    secret_names = {"webhook_secret_path", "webhook_secret_token", "link_key", "bot_token"}
    for module in (webhook_server, crm_listener, doors.web):
        tree = ast.parse(inspect.getsource(module))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                names = {n.attr for o in operands for n in ast.walk(o) if isinstance(n, ast.Attribute)}
                assert not names & secret_names, f"{module.__name__}:{node.lineno} compares a secret"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("startswith", "endswith", "find", "index"):
                names = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
                assert not names & secret_names, f"{module.__name__}:{node.lineno} compares a secret"


def test_button_data_macs_are_compared_with_compare_digest(monkeypatch):
    spy = CompareSpy(monkeypatch)
    codec = CallbackCodec("123456:sandbox-token")
    data = codec.encode("open", 4503)
    assert codec.decode(data) is not None
    assert codec.decode(data[:-1] + ("A" if data[-1] != "A" else "B")) is None
    assert [result for _, _, result in spy.calls] == [True, False]


# --------------------------------------------------------------------------- CRM_ALLOWED_IPS

ALLOWED = ("10.1.0.0/16", "192.168.7.7", "2001:db8::/32")


def test_crm_allowed_ips_admit_listed_networks_and_refuse_the_rest(settings, db):
    client = crm_listener.create_app(settings.replace(crm_allowed_ips=ALLOWED), db=db).test_client()
    admitted = ["10.1.0.1", "10.1.255.254", "192.168.7.7", "2001:db8::1", "2001:db8:ffff::5"]
    refused = ["10.2.0.1", "10.0.255.255", "192.168.7.8", "192.168.7.6", "127.0.0.1", "::1",
               "2001:db9::1", "0.0.0.0", "255.255.255.255", "", "unknown", "10.1.2.3, 1.2.3.4",
               "10.1.2.3 ", "010.001.002.003", "fe80::1%eth0"]
    for n, address in enumerate(admitted):
        answer = client.post("/messages/test-link-key", json={"InvoiceId": 4600 + n},
                             environ_base={"REMOTE_ADDR": address})
        assert answer.status_code == 200, address
    before = db.scalar("SELECT COUNT(*) FROM jobs")
    for n, address in enumerate(refused):
        answer = client.post("/messages/test-link-key", json={"InvoiceId": 4700 + n},
                             environ_base={"REMOTE_ADDR": address})
        assert answer.status_code == 403 and answer.json == {"ok": False, "error": "forbidden"}, address
    assert db.scalar("SELECT COUNT(*) FROM jobs") == before == len(admitted)


def test_crm_allowed_ips_over_real_http_and_not_fooled_by_forwarded_headers(settings, db):
    refusing = ServerThread(crm_listener.create_app(settings.replace(crm_allowed_ips=("10.0.0.0/8",)),
                                                    db=db)).start()
    admitting = ServerThread(crm_listener.create_app(settings.replace(crm_allowed_ips=("127.0.0.0/8",)),
                                                     db=db)).start()
    try:
        spoofed = {"X-Forwarded-For": "10.1.2.3", "X-Real-IP": "10.1.2.3", "Forwarded": "for=10.1.2.3"}
        for headers in ({}, spoofed):
            answer = requests.post(f"{refusing.url}/messages/test-link-key", json={"InvoiceId": 4801},
                                   headers=headers, timeout=10)
            assert answer.status_code == 403 and answer.json()["ok"] is False
        assert db.scalar("SELECT COUNT(*) FROM jobs") == 0
        # The key is still needed from an admitted address.
        assert requests.post(f"{admitting.url}/messages/guess-key-12", json={"InvoiceId": 4802},
                             timeout=10).status_code == 404
        assert requests.post(f"{admitting.url}/messages/test-link-key", json={"InvoiceId": 4803},
                             timeout=10).status_code == 200
        assert db.scalar("SELECT dedupe_key FROM jobs") == "sync:4803"
    finally:
        refusing.stop()
        admitting.stop()


def test_crm_allowed_ips_setting_is_parsed_and_checked(mariadb):
    from config import SettingsError, load_settings
    from conftest import base_environment
    listed = " 10.1.0.0/16, 192.168.7.7 ,2001:db8::/32"
    settings = load_settings(base_environment(mariadb, CRM_ALLOWED_IPS=listed), env_file=None)
    assert settings.crm_allowed_ips == ALLOWED
    assert load_settings(base_environment(mariadb), env_file=None).crm_allowed_ips == ()
    for bad in ("10.0.0.0/33", "10.0.0.1/8/8", "not-an-ip", "10.0.0.0/8;rm -rf"):
        with pytest.raises(SettingsError, match="CRM_ALLOWED_IPS"):
            load_settings(base_environment(mariadb, CRM_ALLOWED_IPS=bad), env_file=None)


def test_an_ipv4_mapped_address_counts_as_its_ipv4_address(settings, db):
    client = crm_listener.create_app(settings.replace(crm_allowed_ips=ALLOWED), db=db).test_client()
    answer = client.post("/messages/test-link-key", json={"InvoiceId": 4901},
                         environ_base={"REMOTE_ADDR": "::ffff:10.1.2.3"})
    assert answer.status_code == 200
