"""The figures by e-mail, read back from a real local SMTP server (aiosmtpd) that speaks
STARTTLS with a self-signed certificate made here and wants a login: the figures of a
seeded history with known answer times in both parts, once per period with two worker
processes, "Send now" in the panel, an SMTP outage waited out, a 5xx refusal a dead letter
with #ERROR, and a send cut off after its data never sent twice by itself."""
from __future__ import annotations

import datetime as dt
import email
import ipaddress
import re
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from config import SettingsError, load_settings
from conftest import LOG_CHAT, ROOT, base_environment, free_port
from harness import wait_for
from models.jobs import SYNC, JobQueue
from scripts.worker import Executor
from services.digest import DIGEST_SEND, Digests, due_period
from test_panel import FRIDAY, OLENA, TARAS, log_in, seed_wait, token_of
from utils.clock import MovableClock

LOGIN = "digest@shop.example"
PASSWORD = "smtp-pass-Kx93-long"
OWNER = "owner@shop.example"


# -- a real SMTP server -----------------------------------------------------------------------

def self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class MailServer:
    """aiosmtpd on 127.0.0.1: STARTTLS required, AUTH LOGIN/PLAIN with one account."""

    def __init__(self, cert: Path, key: Path, port: int, *, implicit_tls: bool = False) -> None:
        import ssl
        self.implicit_tls = implicit_tls
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(str(cert), str(key))
        self.port = port
        self.received: list[tuple[str, list[str], bytes]] = []
        self.refuse: str | None = None
        self.hold = threading.Event()      # set: keep the client waiting for the answer to DATA
        self.controller: Controller | None = None

    async def handle_DATA(self, server, session, envelope):
        import asyncio
        if self.refuse:
            return self.refuse
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        while self.hold.is_set():
            await asyncio.sleep(0.05)
        return "250 2.0.0 Ok: queued"

    @staticmethod
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == LOGIN.encode()
              and auth_data.password == PASSWORD.encode())
        return AuthResult(success=ok, handled=False)

    def start(self) -> "MailServer":
        # (over implicit TLS aiosmtpd cannot tell the session is encrypted: AUTH is allowed)
        tls = ({"ssl_context": self.context, "auth_require_tls": False} if self.implicit_tls
               else {"tls_context": self.context, "require_starttls": True})
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, auth_required=True,
                                     authenticator=self.authenticate, **tls)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(raw, policy=policy.default) for _, _, raw in self.received]


@pytest.fixture
def certificate(tmp_path):
    return self_signed(tmp_path)


@pytest.fixture
def smtp(certificate):
    server = MailServer(*certificate, free_port()).start()
    yield server
    server.stop()


def digest_environment(port: int, ca: Path, **more: str) -> dict[str, str]:
    return {"DIGEST_PERIOD": "weekly", "DIGEST_HOUR": "10", "DIGEST_RECIPIENTS": f"{OWNER}, boss@shop.example",
            "DIGEST_FROM": "keepdesk@shop.example", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port),
            "SMTP_SECURITY": "starttls", "SMTP_LOGIN": LOGIN, "SMTP_PASSWORD": PASSWORD,
            "SMTP_CA_FILE": str(ca), "TZ": "UTC", **more}


def digest_settings(settings, port: int, ca: Path, **changes):
    values = dict(digest_period="weekly", digest_hour=10, digest_recipients=(OWNER, "boss@shop.example"),
                  digest_from="keepdesk@shop.example", smtp_host="127.0.0.1", smtp_port=port,
                  smtp_security="starttls", smtp_login=LOGIN, smtp_password=PASSWORD,
                  smtp_ca_file=ca, tz="UTC")
    values.update(changes)
    return settings.replace(**values)


def run_digest_jobs(db, digests: Digests) -> list[str]:
    """Run the stored digest sends here, under the failure policy, as a worker would."""
    jobs = JobQueue(db)
    executor = Executor(jobs, {DIGEST_SEND: digests.send})
    outcomes = []
    for job in jobs.claim([SYNC], "test:digest", limit=10):
        outcomes.append(executor.execute(job))
    return outcomes


def parts(message) -> tuple[str, str, dict[str, bytes]]:
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    images = {part["Content-ID"].strip("<>"): part.get_content() for part in message.walk()
              if part.get_content_type() == "image/png"}
    return text, html, images


def row_of(html: str, table: str, manager: str, channel: str) -> dict[str, str]:
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    match = re.search(rf'<tr data-manager="{re.escape(manager)}" data-channel="{channel}">(.*?)</tr>', body)
    assert match, (manager, channel, body)
    return dict(re.findall(r'<td class="(\w+)">([^<]*)</td>', match.group(1)))


def seed_week(db) -> None:
    """test_panel's history: Olena 4, 6, 10 minutes on KeepingCRM and 30 on WhatsApp (that
    chat done after 90), Taras asked Friday 17:50 and answered Monday 09:10 (20 working
    minutes), one still waiting. Managers named so the digest can say who."""
    for tg_id, name in ((OLENA, "olena"), (TARAS, "taras")):
        db.execute("INSERT INTO users (tg_id, username, first_name, role) VALUES (%s, %s, %s, 'manager')",
                   (tg_id, name, name.title()))
    at = FRIDAY.replace(hour=10)
    for n, minutes in enumerate((4, 6, 10)):
        seed_wait(db, f"10{n}", "keepingcrm", at + timedelta(minutes=n * 40),
                  at + timedelta(minutes=n * 40 + minutes), OLENA)
    seed_wait(db, "200", "whatsapp", at, at + timedelta(minutes=30), OLENA,
              done_at=at + timedelta(minutes=90))
    seed_wait(db, "300", "keepingcrm", FRIDAY.replace(hour=17, minute=50),
              FRIDAY.replace(hour=9, minute=10) + timedelta(days=3), TARAS,
              done_at=FRIDAY.replace(hour=9, minute=40) + timedelta(days=3))
    seed_wait(db, "400", "keepingcrm", at, None, None)


# -- the figures --------------------------------------------------------------------------------

def seed_notices_and_a_dead_letter(db) -> None:
    """Friday: two 1C notices sent by WhatsApp and one failed, one sent by SMS; one answer a dead letter.
    (And one notice and one dead letter the week after, which the week's digest leaves out.)"""
    for status, at in (("sent", FRIDAY.replace(hour=11)), ("sent", FRIDAY.replace(hour=12)),
                       ("failed", FRIDAY.replace(hour=13)), ("sent", FRIDAY + timedelta(days=4))):
        db.execute("INSERT INTO wa_outbox (account, phone, purpose, kind, body, status, created_at, sent_at,"
                   " attempted_at) VALUES ('main', '+380501234567', 'appointment', 'text', '{}', %s, %s, %s, %s)",
                   (status, at, at if status == "sent" else None, at))
    # One more that WhatsApp could not deliver went by SMS instead.
    at = FRIDAY.replace(hour=14)
    db.execute("INSERT INTO wa_outbox (account, channel, phone, purpose, kind, body, status, created_at, sent_at,"
               " attempted_at) VALUES ('main', 'sms', '+380501234568', 'appointment', 'text', '{}', 'sent',"
               " %s, %s, %s)", (at, at, at))
    for at in (FRIDAY.replace(hour=15), FRIDAY + timedelta(days=4)):
        db.execute("INSERT INTO jobs (queue, kind, payload, status, created_at, updated_at)"
                   " VALUES ('send', 'deliver', '{}', 'failed', %s, %s)", (at, at))


def test_the_weekly_digest_carries_the_weeks_figures_in_both_parts_with_its_charts(db, settings, smtp, certificate):
    seed_week(db)
    db.execute("UPDATE messages SET created_at = %s", (FRIDAY.replace(hour=10),))  # received on Friday
    seed_notices_and_a_dead_letter(db)
    settings = digest_settings(settings, smtp.port, certificate[0], working_hours="Mon-Fri 09-18",
                               sla_remind_minutes=15)
    # Monday 2026-11-30: the week of 23-29 November is due at 10:00 UTC, not before.
    assert due_period(datetime(2026, 11, 30, 9, 59), settings)[0].key == "weekly:2026-W47"
    assert due_period(datetime(2026, 11, 30, 10, 0), settings)[0].key == "weekly:2026-W48"
    clock = MovableClock(datetime(2026, 11, 30, 10, 0))
    digests = Digests(settings, db, JobQueue(db), clock)
    digests.schedule()
    other_process = Digests(settings, db, JobQueue(db), clock)   # another worker looks too
    other_process.schedule()
    digests.schedule()
    assert run_digest_jobs(db, digests) == ["done"]

    [(sender, rcpts, _)] = smtp.received
    assert sender == "keepdesk@shop.example" and rcpts == [OWNER, "boss@shop.example"]
    [message] = smtp.messages()
    assert message["Subject"] == "KeepDesk: the figures of the week 2026-11-23 – 2026-11-29"
    text, html, images = parts(message)
    # First response, per manager and channel (Taras's Friday-evening wait: 20 working minutes).
    assert row_of(html, "first-response", "@olena", "all") == {
        "count": "4", "median": "8", "p90": "30", "sla": "75%"}
    assert row_of(html, "first-response", "@olena", "keepingcrm") == {
        "count": "3", "median": "6", "p90": "10", "sla": "100%"}
    assert row_of(html, "first-response", "@taras", "all") == {
        "count": "1", "median": "20", "p90": "20", "sla": "0%"}
    assert row_of(html, "first-response", "Everyone", "all")["median"] == "10"
    # Resolution: Olena's WhatsApp chat done after 90 minutes (Taras's was done the next week).
    assert row_of(html, "resolution", "@olena", "whatsapp")["median"] == "90"
    assert 'id="volume">6<' in html
    assert "@olena · all channels: 4 · median 8 min · p90 30 min · within SLA 75%" in text
    assert "@olena · keepingcrm: 3 · median 6 min · p90 10 min · within SLA 100%" in text
    assert "@taras · all channels: 1 · median 20 min · p90 20 min · within SLA 0%" in text
    assert "@olena · whatsapp: 1 · median 90 min" in text
    assert "Customer messages: 6" in text and "2026-11-27 6" in text
    assert "10h 4, 11h 1, 17h 1" in text
    assert "ERRORS (dead letters): 1" in text and "  deliver: 1" in text
    assert 'id="dead-letters">1<' in html and "deliver: 1" in html
    assert "  keepingcrm: 5 · 0 · 0 · 0" in text and "  whatsapp: 1 · 0 · 2 · 1" in text
    assert "  sms: 0 · 0 · 1 · 0" in text                      # the notice that went by SMS
    assert re.search(r'<tr data-channel="whatsapp"><td>whatsapp</td><td>1</td><td>0</td><td>2</td><td>1</td></tr>', html)
    # The charts travel inside the message, each image referenced by the HTML.
    assert len(images) == 3
    for cid, data in images.items():
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and f'src="cid:{cid}"' in html
    assert "1 — @olena (median 8, p90 30 min); 2 — @taras (median 20, p90 20 min)" in html
    # Once for the period: later looks, here and elsewhere, send nothing more.
    clock.set(datetime(2026, 12, 2, 10, 0))
    other_process.schedule()
    assert run_digest_jobs(db, digests) == [] and len(smtp.received) == 1
    assert db.scalar("SELECT COUNT(*) FROM digests WHERE status = 'sent'") == 1


def test_two_worker_processes_send_the_daily_digest_once(db, settings, smtp, certificate, subprocess_env, tg):
    yesterday = datetime.utcnow().replace(hour=10, minute=0, second=0, microsecond=0) - timedelta(days=1)
    db.execute("INSERT INTO users (tg_id, username, first_name, role) VALUES (%s, 'olena', 'Olena', 'manager')",
               (OLENA,))
    for n, minutes in enumerate((3, 7, 20)):
        seed_wait(db, f"50{n}", "keepingcrm", yesterday + timedelta(minutes=n * 60),
                  yesterday + timedelta(minutes=n * 60 + minutes), OLENA)
    env = dict(subprocess_env, TELEGRAM_API_URL=tg.url, WORKER_THREADS="2",
               **digest_environment(smtp.port, certificate[0], DIGEST_PERIOD="daily", DIGEST_HOUR="0"))
    workers = [subprocess.Popen([sys.executable, "-m", "bot", "worker"], cwd=ROOT, env=env)
               for _ in range(2)]
    try:
        wait_for(lambda: smtp.received, timeout=60)
        wait_for(lambda: db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'digest_send' AND status = 'done'"),
                 timeout=30)
        # Both processes keep looking (the schedule job is theirs in turn); so does a third here.
        loader = load_settings(env, env_file=None)
        lookers = [threading.Thread(target=Digests(loader, db, JobQueue(db), datetime.utcnow).schedule)
                   for _ in range(4)]
        for t in lookers:
            t.start()
        for t in lookers:
            t.join()
        wait_for(lambda: db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'digest_schedule'"
                                   " AND status = 'pending' AND attempts = 0"), timeout=30)
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            process.wait(timeout=20)
    assert len(smtp.received) == 1
    assert db.scalar("SELECT COUNT(*) FROM digests") == 1
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'digest_send'") == 1
    [message] = smtp.messages()
    day = yesterday.date().isoformat()
    assert message["Subject"] == f"KeepDesk: the figures of {day}"
    text, html, _ = parts(message)
    assert row_of(html, "first-response", "@olena", "keepingcrm") == {
        "count": "3", "median": "7", "p90": "20", "sla": "67%"}
    assert "@olena · keepingcrm: 3 · median 7 min · p90 20 min · within SLA 67%" in text


# -- the panel --------------------------------------------------------------------------------

def test_send_now_in_the_panel_sends_one_digest(settings, db, smtp, certificate):
    from doors.panel import create_app
    from services.panel_auth import PanelAuth
    app = create_app(digest_settings(settings, smtp.port, certificate[0], web_secret_key="k" * 40, bot_language="en",
                                     trusted_proxies=("127.0.0.1",)), db)
    PanelAuth(db, datetime.utcnow).set_password("owner", "correct horse battery")
    client = app.test_client()
    login_page = client.get("/login").data
    # No session: refused, even with a valid form token.
    assert client.post("/reports/digest", data={"csrf_token": token_of(login_page)}).status_code in (302, 401)
    assert db.scalar("SELECT COUNT(*) FROM digests") == 0
    log_in(client)
    page = client.get("/reports").data.decode()
    assert "DIGEST_RECIPIENTS" in page and f"{OWNER}, boss@shop.example" in page
    assert "127.0.0.1:%d (STARTTLS)" % smtp.port in page and LOGIN in page
    assert PASSWORD not in page and "•••••• (set)" in page
    assert client.post("/reports/digest").status_code == 400            # no CSRF token: refused
    assert db.scalar("SELECT COUNT(*) FROM digests") == 0
    answer = client.post("/reports/digest", data={"csrf_token": token_of(page.encode())})
    assert answer.status_code == 302
    assert "on its way" in client.get("/reports").data.decode()
    digests = Digests(digest_settings(settings, smtp.port, certificate[0]), db, JobQueue(db), datetime.utcnow)
    assert run_digest_jobs(db, digests) == ["done"]
    assert len(smtp.received) == 1
    [message] = smtp.messages()
    assert message["Subject"].startswith("KeepDesk: the figures of ")
    assert 'data-status="sent"' in client.get("/reports").data.decode()


# -- failures ---------------------------------------------------------------------------------

@pytest.fixture
def running_desk(sandbox_settings, db, tg, crm):
    from harness import Desk
    started = []

    def start(settings):
        started.append(Desk(settings, db, tg, crm).start())
        return started[-1]
    yield start
    for desk in started:
        desk.stop()


def test_an_smtp_outage_is_waited_out_and_the_digest_then_sent_once(sandbox_settings, running_desk, db, certificate):
    port = free_port()   # nothing listens there yet
    desk = running_desk(digest_settings(sandbox_settings, port, certificate[0], digest_period=""))
    assert desk.deps.digests.send_now("owner")
    wait_for(lambda: db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'digest_send' AND status = 'pending'"
                               " AND last_error LIKE '%cannot reach the mail server%'"), timeout=30)
    assert db.scalar("SELECT status FROM digests") == "queued"
    server = MailServer(*certificate, port).start()
    try:
        wait_for(lambda: server.received, timeout=60)
        wait_for(lambda: db.scalar("SELECT status FROM digests") == "sent", timeout=30)
    finally:
        server.stop()
    assert len(server.received) == 1
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'digest_send' AND status = 'failed'") == 0


def test_a_permanent_refusal_is_a_dead_letter_with_error(sandbox_settings, running_desk, db, smtp, certificate, tg):
    smtp.refuse = "554 5.7.1 Message rejected as spam"
    desk = running_desk(digest_settings(sandbox_settings, smtp.port, certificate[0], digest_period=""))
    assert desk.deps.digests.send_now("owner")
    wait_for(lambda: db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'digest_send' AND status = 'failed'"),
             timeout=30)
    report = wait_for(lambda: [m for m in tg.messages(LOG_CHAT) if "#ERROR" in (m.get("text") or "")
                               and "refused the digest" in (m.get("text") or "")], timeout=30)[0]["text"]
    assert "554" in report
    assert db.scalar("SELECT status FROM digests") == "failed" and smtp.received == []
    assert db.scalar("SELECT attempts FROM jobs WHERE kind = 'digest_send'") == 1


def test_a_send_cut_off_after_its_data_is_not_sent_again_by_itself(db, settings, smtp, certificate):
    settings = digest_settings(settings, smtp.port, certificate[0])
    digests = Digests(settings, db, JobQueue(db), datetime.utcnow)
    assert digests.send_now("owner")
    # A worker died after committing "sending" and before the server's answer was recorded.
    db.execute("UPDATE digests SET status = 'sending'")
    assert run_digest_jobs(db, digests) == ["dead"]
    assert smtp.received == []
    assert db.scalar("SELECT status FROM digests") == "unknown"
    error = db.scalar("SELECT last_error FROM jobs WHERE kind = 'digest_send'")
    assert "may or may not have been delivered" in error
    # An admin's Retry of that dead letter sends it (the same Message-ID).
    from services.dead_letters import DeadLetters
    job_id = db.scalar("SELECT id FROM jobs WHERE kind = 'digest_send'")
    DeadLetters(JobQueue(db)).retry(job_id, by="owner")
    assert run_digest_jobs(db, digests) == ["done"]
    [message] = smtp.messages()
    assert message["Message-ID"] == db.scalar("SELECT message_id FROM digests")


def test_smtps_sends_over_implicit_tls_and_an_untrusted_certificate_is_refused(db, settings, certificate, tmp_path):
    server = MailServer(*certificate, free_port(), implicit_tls=True).start()
    try:
        smtps = digest_settings(settings, server.port, certificate[0], smtp_security="smtps")
        digests = Digests(smtps, db, JobQueue(db), datetime.utcnow)
        assert digests.send_now("owner")
        assert run_digest_jobs(db, digests) == ["done"] and len(server.received) == 1
        # Another certificate than the one trusted: nothing is sent, a dead letter says why.
        db.execute("DELETE FROM digests")
        db.execute("DELETE FROM jobs")
        (tmp_path / "other").mkdir()
        other_ca, _ = self_signed(tmp_path / "other")
        untrusting = Digests(smtps.replace(smtp_ca_file=other_ca), db, JobQueue(db), datetime.utcnow)
        assert untrusting.send_now("owner")
        assert run_digest_jobs(db, untrusting) == ["dead"] and len(server.received) == 1
        assert "not trusted" in db.scalar("SELECT last_error FROM jobs WHERE kind = 'digest_send'")
    finally:
        server.stop()


def test_a_worker_killed_while_the_server_answers_its_data_leaves_one_message_and_an_error(
        db, settings, smtp, certificate, subprocess_env, tg):
    import os
    import signal
    env = dict(subprocess_env, TELEGRAM_API_URL=tg.url, WORKER_THREADS="2",
               **digest_environment(smtp.port, certificate[0], DIGEST_PERIOD=""))
    digests = Digests(digest_settings(settings, smtp.port, certificate[0]), db, JobQueue(db), datetime.utcnow)
    smtp.hold.set()     # the server has the message; its 250 is slow to come
    assert digests.send_now("owner")
    first = subprocess.Popen([sys.executable, "-m", "bot", "worker"], cwd=ROOT, env=env, start_new_session=True)
    second = None
    try:
        wait_for(lambda: smtp.received, timeout=60)
        assert db.scalar("SELECT status FROM digests") == "sending"
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=20)
        smtp.hold.clear()
        second = subprocess.Popen([sys.executable, "-m", "bot", "worker"], cwd=ROOT, env=env)
        # The job's lease runs out; the second worker takes it up, finds the send cut off and
        # does not send again: a dead letter with #ERROR.
        wait_for(lambda: db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'digest_send' AND status = 'failed'"),
                 timeout=60)
        report = wait_for(lambda: [m for m in tg.messages(LOG_CHAT) if "#ERROR" in (m.get("text") or "")
                                   and "may or may not" in (m.get("text") or "")], timeout=30)[0]["text"]
        assert "Send now" in report
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
    assert db.scalar("SELECT status FROM digests") == "unknown"
    assert len(smtp.received) == 1


# -- settings ---------------------------------------------------------------------------------

def test_the_digest_without_a_strong_smtp_password_stops_start_up_naming_it(mariadb, tmp_path):
    env = base_environment(mariadb, **digest_environment(587, tmp_path / "ca.pem"))
    env.pop("SMTP_PASSWORD")
    with pytest.raises(SettingsError, match="SMTP_PASSWORD is required when DIGEST_PERIOD is set"):
        load_settings(env, env_file=None)
    with pytest.raises(SettingsError, match="SMTP_PASSWORD is weak"):
        load_settings(dict(env, SMTP_PASSWORD="password"), env_file=None)
    loaded = load_settings(dict(env, SMTP_PASSWORD=PASSWORD), env_file=None)
    assert PASSWORD not in repr(loaded) and PASSWORD in loaded.secrets
    # Off, nothing is asked for.
    off = {k: v for k, v in env.items() if not k.startswith(("DIGEST_", "SMTP_"))}
    assert not load_settings(off, env_file=None).digest_on


@pytest.mark.xdist_group("browser")
def test_send_now_clicked_in_the_browser_reaches_the_mail_server_once(browser, sandbox_settings, running_desk,
                                                                      db, smtp, certificate):
    from selenium.webdriver.common.by import By
    from doors.panel import create_app
    from sandbox._server import ServerThread
    from services.panel_auth import PanelAuth
    from test_panel_browser import log_in as browser_log_in, submit
    desk = running_desk(digest_settings(sandbox_settings, smtp.port, certificate[0], digest_period=""))
    app = create_app(desk.settings.replace(web_secret_key="s" * 48, bot_language="en"), db, deps=desk.deps)
    PanelAuth(db, desk.deps.clock).set_password("owner", "a long panel password", 9001)
    server = ServerThread(app).start()
    try:
        browser_log_in(browser, server.url, password="a long panel password")
        browser.get(f"{server.url}/reports")
        settings_shown = browser.find_element(By.ID, "digest-settings").text
        assert f"{OWNER}, boss@shop.example" in settings_shown and PASSWORD not in settings_shown
        submit(browser, "send-digest")
        assert "on its way" in browser.find_element(By.TAG_NAME, "body").text
        wait_for(lambda: smtp.received, timeout=30)
        wait_for(lambda: db.scalar("SELECT status FROM digests") == "sent", timeout=30)
        browser.get(f"{server.url}/reports")
        [row] = browser.find_elements(By.CSS_SELECTOR, "#digests tr[data-status]")
        assert row.get_attribute("data-status") == "sent" and "owner" in row.text
    finally:
        server.stop()
    assert len(smtp.received) == 1
