"""The admin panel without a browser (issue 15): the reports' figures against a seeded
history with known answer times, the login throttle and session rotation, CSRF and
secrets through Flask's test client, and `make run`'s choice between the playground and
real Telegram — made without any network."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from models.conversations import ConversationRepository
from models.inbound import ConversationKey
from models.responses import EVERYONE, ResponseRepository
from services.panel import Reports
from services.panel_auth import LOGIN_LIMIT, LoginOutcome, PanelAuth
from utils.hours import WorkingHours

OLENA, TARAS = 2002, 2003


def seed_wait(db, number: str, channel: str, asked: datetime, answered: datetime | None,
              by: int | None, *, done_at: datetime | None = None) -> int:
    """One customer wait with a known answer time (and the chat marked done, if given)."""
    conversations = ConversationRepository(db)
    conversation_id = conversations.ensure(ConversationKey(channel, "", number))
    responses = ResponseRepository(db)
    with db.transaction() as cur:
        cur.execute("INSERT INTO messages (conversation_id, external_id, direction, text)"
                    " VALUES (%s, %s, 'client', 'question')", (conversation_id, f"m{number}"))
        message_id = cur.lastrowid
        responses.start(cur, conversation_id, channel, message_id, asked, None, None)
        if answered is not None:
            responses.answer(cur, conversation_id, by, answered)
        if done_at is not None:
            cur.execute("UPDATE conversations SET status = 'done', status_changed_at = %s"
                        " WHERE id = %s", (done_at, conversation_id))
    return conversation_id


def line(figures, manager, channel):
    found = [f for f in figures if f.manager_id == manager and f.channel == channel]
    assert len(found) == 1, (manager, channel, figures)
    return found[0]


# 2026-11-27 is a Friday.
FRIDAY = datetime(2026, 11, 27)


def test_report_figures_match_a_history_with_known_answer_times(db):
    # Working hours Mon-Fri 09-18 in UTC: a message left on Friday evening waits until Monday.
    hours = WorkingHours.parse("Mon-Fri 09-18", "UTC")
    at = FRIDAY.replace(hour=10)
    # Olena on KeepingCRM: 4, 6, 10 minutes; on WhatsApp: 30 minutes.
    for n, minutes in enumerate((4, 6, 10)):
        seed_wait(db, f"10{n}", "keepingcrm", at + timedelta(minutes=n * 40),
                  at + timedelta(minutes=n * 40 + minutes), OLENA)
    seed_wait(db, "200", "whatsapp", at, at + timedelta(minutes=30), OLENA,
              done_at=at + timedelta(minutes=90))
    # Taras: asked Friday 17:50, answered Monday 09:10 → 20 working minutes, not 63 hours.
    seed_wait(db, "300", "keepingcrm", FRIDAY.replace(hour=17, minute=50),
              FRIDAY.replace(hour=9, minute=10) + timedelta(days=3), TARAS,
              done_at=FRIDAY.replace(hour=9, minute=40) + timedelta(days=3))
    seed_wait(db, "400", "keepingcrm", at, None, None)      # still waiting: not in the figures

    report = Reports(db, hours, sla_minutes=15).build(FRIDAY, FRIDAY + timedelta(days=7))

    olena = line(report.first_response, OLENA, None)
    assert (olena.count, olena.median_minutes, olena.p90_minutes) == (4, 8.0, 30.0)
    assert olena.within_sla == pytest.approx(0.75)          # 4, 6, 10 within 15; 30 not
    crm = line(report.first_response, OLENA, "keepingcrm")
    assert (crm.count, crm.median_minutes, crm.p90_minutes, crm.within_sla) == (3, 6.0, 10.0, 1.0)
    taras = line(report.first_response, TARAS, None)
    assert (taras.count, taras.median_minutes, taras.within_sla) == (1, 20.0, 0.0)
    everyone = line(report.first_response, EVERYONE, None)
    assert (everyone.count, everyone.median_minutes) == (5, 10.0)
    # Resolution: WhatsApp 90 minutes (Olena), the Friday-evening chat 50 working minutes (Taras).
    assert line(report.resolution, OLENA, "whatsapp").median_minutes == 90.0
    assert line(report.resolution, TARAS, None).median_minutes == 50.0
    # Volume: six customer waits, by hour of day and by day.
    assert report.by_hour[10] == 4 and report.by_hour[11] == 1 and report.by_hour[17] == 1
    assert dict(report.by_day)["2026-11-27"] == 6 and len(report.by_day) == 7


def test_wrong_passwords_lock_one_login_from_one_address_for_every_worker(db):
    clock = [datetime(2026, 12, 1, 12, 0)]
    auth = PanelAuth(db, lambda: clock[0])
    auth.set_password("owner", "correct horse battery")
    for _ in range(LOGIN_LIMIT - 1):
        assert auth.login("owner", "wrong password!", "10.0.0.1").outcome is LoginOutcome.WRONG
    assert auth.login("owner", "wrong password!", "10.0.0.1").outcome is LoginOutcome.LOCKED
    # Another gunicorn worker (another PanelAuth) sees the lock; the right password waits too.
    other = PanelAuth(db, lambda: clock[0])
    locked = other.login("owner", "correct horse battery", "10.0.0.1")
    assert locked.outcome is LoginOutcome.LOCKED and locked.retry_minutes == 15
    # The owner from another address is not locked out by guesses from 10.0.0.1.
    assert other.login("owner", "correct horse battery", "10.0.0.3").outcome is LoginOutcome.OK
    # Each further lock of the same pair lasts twice as long.
    clock[0] += timedelta(minutes=16)
    for _ in range(LOGIN_LIMIT):
        outcome = other.login("owner", "wrong password!", "10.0.0.1")
    assert outcome.outcome is LoginOutcome.LOCKED and outcome.retry_minutes == 30
    clock[0] += timedelta(minutes=31)
    assert other.login("owner", "correct horse battery", "10.0.0.1").outcome is LoginOutcome.OK
    # An unknown name gets the very answer a wrong password gets.
    assert other.login("nobody", "whatever12345", "10.0.0.4").outcome is LoginOutcome.WRONG


def test_a_new_password_ends_every_older_session(db):
    auth = PanelAuth(db, datetime.utcnow)
    user, created = auth.set_password("owner", "first password 1")
    session = auth.open_session(user)
    assert created and auth.session_user(session) == user
    again, created = auth.set_password("owner", "second password 2")
    assert not created
    assert auth.session_user(session) is None
    assert auth.session_user(auth.open_session(again)) is not None
    with pytest.raises(ValueError):
        auth.set_password("owner", "short")
    assert "argon2id" in again.password_hash and "second" not in repr(again)
    assert session not in str(db.fetchall("SELECT * FROM panel_sessions"))


@pytest.fixture
def client(settings, db):
    from doors.panel import create_app
    app = create_app(settings.replace(web_secret_key="k" * 40, whatsapp_cloud_token="EAAG-secret-token-1", bot_language="en",
                                      trusted_proxies=("127.0.0.1",)), db)
    PanelAuth(db, datetime.utcnow).set_password("owner", "correct horse battery")
    return app.test_client()


def token_of(page: bytes) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()


def log_in(client) -> None:
    page = client.get("/login").data
    answer = client.post("/login", data={"csrf_token": token_of(page), "login": "owner",
                                         "password": "correct horse battery"})
    assert answer.status_code == 302


def test_no_page_without_a_session_and_no_form_without_its_token(client, db):
    assert client.get("/").status_code == 302 and "/login" in client.get("/").location
    assert client.get("/settings").status_code == 302
    refused = client.post("/login", data={"login": "owner", "password": "correct horse battery"})
    assert refused.status_code == 400 and b"Nothing was changed" in refused.data
    log_in(client)
    assert client.get("/").status_code == 200
    forged = client.post("/settings/tokens", data={"csrf_token": "forged", "name": "1c"})
    assert forged.status_code == 400
    assert db.scalar("SELECT COUNT(*) FROM api_tokens") == 0
    assert client.get("/no-such-page").status_code == 404


def test_settings_show_no_secret(client, settings):
    log_in(client)
    page = client.get("/settings").data.decode()
    for secret in (settings.bot_token, settings.keeping_api_key, settings.link_key,
                   settings.webhook_secret_token, "EAAG-secret-token-1", "k" * 40):
        assert secret not in page
    assert "BOT_TOKEN" in page and "•••••• (set)" in page
    answer = client.get("/settings")
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert "unsafe-inline" not in answer.headers["Content-Security-Policy"]


def test_run_without_bot_token_opens_the_playground_and_with_one_connects_telegram(tmp_path, monkeypatch):
    import cli
    import sandbox.playground
    import scripts.supervisor
    empty, with_token = tmp_path / "none.env", tmp_path / ".env"
    with_token.write_text("BOT_TOKEN=123456:real-token\n")
    assert cli.playground_wanted({}, empty) is True
    assert cli.playground_wanted({"BOT_TOKEN": "  "}, empty) is True
    assert cli.playground_wanted({}, with_token) is False
    assert cli.playground_wanted({"BOT_TOKEN": "123456:abc"}, empty) is False

    chosen = []
    monkeypatch.setattr(sandbox.playground, "main", lambda: chosen.append("playground") or 0)
    monkeypatch.setattr(scripts.supervisor, "run", lambda settings, **kw: chosen.append(("telegram", settings.bot_token)) or 0)
    monkeypatch.setattr(cli, "playground_wanted", lambda: True)
    assert cli.main(["run"]) == 0
    monkeypatch.setattr(cli, "playground_wanted", lambda: False)
    monkeypatch.setattr(cli, "configure_logging", lambda *a, **k: None)
    monkeypatch.setenv("BOT_TOKEN", "123456:real-token")
    assert cli.main(["run"]) == 0
    assert chosen == ["playground", ("telegram", "123456:real-token")]


def test_web_access_gives_a_telegram_admin_a_one_time_code_for_the_panel(desk, db, tg):
    from conftest import ADMIN_ID
    from doors.panel import create_app
    from sandbox.telegram import parse_html
    tg.user_sends_text(ADMIN_ID, "/start", username="shop_admin")
    tg.user_sends_text(ADMIN_ID, "/web_access", chat_id=SHARED, username="shop_admin")
    tg.user_sends_text(ADMIN_ID, "/web_access", username="shop_admin")
    said = lambda chat: [parse_html(m.get("text") or "")[0] for m in tg.messages(chat)]  # noqa: E731
    from harness import wait_for
    wait_for(lambda: any("One-time code" in t or "Одноразовий код" in t for t in said(ADMIN_ID)), timeout=20)
    wait_for(lambda: any("/web_access" in t for t in said(SHARED)), timeout=20)
    message = [t for t in said(ADMIN_ID) if "/setup" in t][-1]
    login = re.search(r"(?:Login|Логін): (\S+)", message).group(1)
    code = re.search(r"([A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4})", message).group(1)
    assert login == "shop_admin"

    client = create_app(desk.settings.replace(web_secret_key="w" * 40, bot_language="en"), db, deps=desk.deps).test_client()
    form = lambda page, **fields: dict(fields, csrf_token=token_of(client.get(page).data))  # noqa: E731
    wrong = client.post("/setup", data=form("/setup", login=login, code="AAAA-BBBB-CCCC",
                                            password="my new password", again="my new password"))
    assert wrong.status_code == 400 and b"Wrong login or code" in wrong.data
    done = client.post("/setup", data=form("/setup", login=login, code=code.lower(),
                                           password="my new password", again="my new password"))
    assert done.status_code == 302
    again = client.post("/setup", data=form("/setup", login=login, code=code,
                                            password="another password", again="another password"))
    assert again.status_code == 400                 # a code works once
    answer = client.post("/login", data=form("/login", login=login, password="my new password"))
    assert answer.status_code == 302 and client.get("/").status_code == 200
    assert code not in str(db.fetchall("SELECT * FROM panel_users"))


SHARED = -1001000000001


def test_create_admin_from_the_command_line(mariadb, db, monkeypatch, capsys):
    import io
    import cli
    from conftest import TEST_DB
    for name, value in mariadb.environment(TEST_DB).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(cli, "configure_logging", lambda *a, **k: None)
    monkeypatch.setattr("sys.stdin", io.StringIO("too short\n"))
    assert cli.main(["create-admin", "owner", "--password-stdin"]) == 2
    assert "at least 10 characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("a good long password\n"))
    assert cli.main(["create-admin", "owner", "--password-stdin"]) == 0
    assert "created" in capsys.readouterr().out
    result = PanelAuth(db, datetime.utcnow).login("owner", "a good long password", "127.0.0.1")
    assert result.outcome is LoginOutcome.OK


def test_canned_replies_added_edited_and_deleted_in_the_panel(client, db):
    log_in(client)
    form = lambda **fields: dict(fields, csrf_token=token_of(client.get("/settings").data))  # noqa: E731
    client.post("/settings/replies", data=form(title="Delivery", text="Order {order} ships today"))
    bad = client.post("/settings/replies", data=form(title="Oops", text="Hello {nme}"), follow_redirects=True)
    assert "unknown placeholder {nme}" in bad.data.decode()
    [reply] = db.fetchall("SELECT id, title, text FROM canned_replies WHERE deleted_at IS NULL")
    client.post(f"/settings/replies/{reply['id']}/edit", data=form(title="Delivery", text="Order {order}: Nova Poshta"))
    [edited] = db.fetchall("SELECT id, text FROM canned_replies WHERE deleted_at IS NULL")
    assert edited["text"] == "Order {order}: Nova Poshta"
    client.post(f"/settings/replies/{edited['id']}/delete", data=form())
    assert db.fetchall("SELECT id FROM canned_replies WHERE deleted_at IS NULL") == []


def test_behind_the_proxy_one_client_locked_out_does_not_lock_out_the_others(client):
    from services.panel_auth import IP_LIMIT
    page = client.get("/login").data
    for n in range(IP_LIMIT):
        answer = client.post("/login", headers={"X-Forwarded-For": "203.0.113.9"},
                             data={"csrf_token": token_of(page), "login": f"guess{n}", "password": "x" * 12})
    assert answer.status_code == 429 and b"Too many failed attempts" in answer.data
    refused = client.post("/login", headers={"X-Forwarded-For": "203.0.113.9"},
                          data={"csrf_token": token_of(page), "login": "owner",
                                "password": "correct horse battery"})
    assert refused.status_code == 429
    welcome = client.post("/login", headers={"X-Forwarded-For": "198.51.100.7"},
                          data={"csrf_token": token_of(page), "login": "owner",
                                "password": "correct horse battery"})
    assert welcome.status_code == 302


def test_forwarded_headers_from_a_peer_not_named_a_proxy_change_nothing(settings, db):
    from doors.panel import create_app
    from services.panel_auth import IP_LIMIT
    client = create_app(settings.replace(web_secret_key="k" * 40, bot_language="en"), db).test_client()
    PanelAuth(db, datetime.utcnow).set_password("owner", "correct horse battery")
    page = client.get("/login").data
    for n in range(IP_LIMIT):      # a guesser rotating made-up addresses is still one peer
        answer = client.post("/login", headers={"X-Forwarded-For": f"203.0.113.{n}"},
                             data={"csrf_token": token_of(page), "login": f"guess{n}", "password": "x" * 12})
    assert answer.status_code == 429
    fresh = create_app(settings.replace(web_secret_key="k" * 40, bot_language="en"), db).test_client()
    page = fresh.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in page.headers["Set-Cookie"] and "Strict-Transport-Security" not in page.headers


def test_a_session_ended_by_a_new_password_gets_a_clear_login_page(client, db):
    log_in(client)
    assert client.get("/team").status_code == 200
    PanelAuth(db, datetime.utcnow).set_password("owner", "a brand new password")
    stale = client.get("/team", follow_redirects=True)
    assert b"Log in" in stale.data and b"session that ended" in stale.data


def test_behind_an_https_proxy_the_session_cookie_is_secure(client):
    page = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in page.headers["Set-Cookie"] and "HttpOnly" in page.headers["Set-Cookie"]
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    plain = client.get("/login")
    assert "Strict-Transport-Security" not in plain.headers


def test_conversation_filters(client, db):
    at = datetime.utcnow() - timedelta(hours=1)
    seed_wait(db, "8800001", "keepingcrm", at, at + timedelta(minutes=3), OLENA)
    seed_wait(db, "8800002", "whatsapp", at, None, None)                         # unanswered
    seed_wait(db, "8800003", "keepingcrm", at, at + timedelta(minutes=5), OLENA, done_at=at)
    held = ConversationRepository(db).find(ConversationKey("keepingcrm", "", "8800001")).id
    db.execute("INSERT INTO users (tg_id, username, first_name, language, role)"
               " VALUES (%s, 'olena_sales', 'Olena', 'uk', 'manager')", (OLENA,))
    db.execute("INSERT INTO pins (conversation_id, manager_id, kind, state) VALUES (%s, %s, 'PIN', 'ACTIVE')",
               (held, OLENA))
    log_in(client)
    # CRM chats are labelled by their order number, WhatsApp ones by their id: the numbers
    # are far from any id this suite makes, so a search for one finds that chat alone.

    def refs(query: str) -> list[str]:
        page = client.get("/conversations" + query).data.decode()
        table = page[page.index('id="conversations"'):]
        return sorted(re.findall(r'/conversations/\d+">(\d+)</a>', table))

    whatsapp_id = ConversationRepository(db).find(ConversationKey("whatsapp", "", "8800002")).id
    assert refs("") == sorted(["8800001", "8800003", str(whatsapp_id)])
    assert refs("?channel=whatsapp") == [str(whatsapp_id)]
    assert refs("?unanswered=1") == [str(whatsapp_id)]
    assert refs("?status=done") == ["8800003"]
    assert refs(f"?holder={OLENA}") == ["8800001"]
    assert refs("?q=8800003") == ["8800003"]
    assert "at least 3 characters" in client.get("/conversations?q=ab").data.decode()


def test_without_web_secret_key_one_private_key_is_made_and_kept(tmp_path, settings):
    import os
    from doors.panel import secret_key
    local = settings.replace(var_dir=tmp_path, web_secret_key="")
    first, again = secret_key(local), secret_key(local)
    assert first == again and len(first) >= 32
    assert os.stat(tmp_path / "web_secret_key").st_mode & 0o077 == 0
    assert secret_key(local.replace(web_secret_key="x" * 40)) == "x" * 40


def test_changing_my_password_keeps_this_session_and_ends_the_others(client, settings, db):
    from doors.panel import create_app
    other = create_app(settings.replace(web_secret_key="k" * 40, bot_language="en"), db).test_client()
    log_in(client)
    log_in(other)
    form = lambda **fields: dict(fields, csrf_token=token_of(client.get("/account").data))  # noqa: E731
    wrong = client.post("/account", data=form(current="not it at all", password="the next password",
                                              again="the next password"))
    assert wrong.status_code == 400 and b"current password is wrong" in wrong.data
    done = client.post("/account", data=form(current="correct horse battery",
                                             password="the next password", again="the next password"))
    assert done.status_code == 302
    assert client.get("/team").status_code == 200          # this browser stays logged in
    assert other.get("/team").status_code == 302           # the other session has ended
    result = PanelAuth(db, datetime.utcnow).login("owner", "the next password", "127.0.0.1")
    assert result.outcome is LoginOutcome.OK
