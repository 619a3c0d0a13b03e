"""Telegram accounts added from the panel, in a real Chromium against a running KeepDesk:
the accounts process (`python -m bot accounts`) holding the login, the account emulator
playing Telegram's side (QR login, login code, cloud password verified by SRP), the
Planfix emulator, the doors and workers, MariaDB. Once logged in, a customer's message to
the account reaches Planfix and the desk, and Planfix answers with the token the panel
showed. Beside it, over the panel's real HTTP door: only a logged-in admin may start a
login (CSRF checked), the session is never in a file nor in a page, an expired login is
refused."""
from __future__ import annotations

import re

import pytest
import requests
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import SHARED_CHAT
from harness import Desk, wait_for
from doors.panel.tgaccounts import qr_image
from sandbox._server import ServerThread
from services.panel_auth import PanelAuth
from test_panel_browser import PASSWORD, log_in, submit, text

pytestmark = pytest.mark.xdist_group("browser")

QR_NUMBER = "380501110001"
CODE_NUMBER = "380501110002"
OLENA = 7001


@pytest.fixture
def relay(planfix_settings, db, tg, crm, tga, planfix, accounts_env):
    running = Desk(planfix_settings.replace(tg_accounts_routing="both"), db, tg, crm).start()
    running.accounts = running.start_accounts(dict(accounts_env, TG_ACCOUNTS_ROUTING="both"))
    yield running
    running.stop()


@pytest.fixture
def panel(relay, db):
    from doors.panel import create_app
    app = create_app(relay.settings.replace(web_secret_key="t" * 48, bot_language="en"), db, deps=relay.deps)
    PanelAuth(db, relay.deps.clock).set_password("owner", PASSWORD, 9001)
    server = ServerThread(app).start()
    yield server.url
    server.stop()


def says(browser, css: str) -> str:
    """The text of `css` now ("" if absent, or the page reloading under it: it follows the
    login by itself)."""
    try:
        found = browser.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else ""
    except (StaleElementReferenceException, WebDriverException):
        return ""


def wait_css(browser, css: str, timeout: float = 30):
    return WebDriverWait(browser, timeout).until(lambda b: b.find_elements(By.CSS_SELECTOR, css))[0]


def start_login(browser, panel, planfix, *, method: str, number: str = "") -> None:
    browser.get(f"{panel}/settings/telegram")
    browser.find_element(By.ID, "client_name").send_keys("shop")
    browser.find_element(By.ID, "url_planfix").send_keys(planfix.url)
    browser.find_element(By.ID, "token_planfix").send_keys(planfix.token)
    browser.find_element(By.ID, f"method-{method}").click()
    if number:
        browser.find_element(By.ID, "number").send_keys(number)
    submit(browser, "start-login")


def answer(browser, value: str) -> None:
    """Type into the step's field and send it (again if the page reloaded meanwhile)."""
    def typed(_) -> bool:
        try:
            field = browser.find_element(By.ID, "answer")
            field.clear()
            field.send_keys(value)
            return field.get_attribute("value") == value
        except (StaleElementReferenceException, WebDriverException):
            return False
    WebDriverWait(browser, 30).until(typed)
    submit(browser, "send-answer")


def qr_src(browser) -> str:
    try:
        found = browser.find_elements(By.CSS_SELECTOR, "img#qr")
        return found[0].get_attribute("src") if found else ""
    except (StaleElementReferenceException, WebDriverException):
        return ""


def shown_qr_url(browser, tga) -> str:
    """The tg://login URL whose QR code the page shows now: the live token Telegram issued
    whose image is the one in the page."""
    src = WebDriverWait(browser, 30).until(qr_src)
    matches = [url for url in tga.login_tokens() if qr_image(url) == src]
    assert len(matches) == 1, "the page's QR code is none of the tokens Telegram gave"
    return matches[0]


def account_state(browser, panel, number: str) -> str:
    browser.get(f"{panel}/settings/telegram")
    return says(browser, f"#account-{number} .state")


def reaches_planfix_and_the_desk(relay, tga, planfix, tg, number: str, words: str, client_token: str) -> None:
    customer = tga.add_user("Ivan", username=f"ivan_{number[-4:]}")
    tga.customer_writes(number, customer["id"], words)
    wait_for(lambda: [r for r in planfix.received("newMessage") if r.get("message") == words], timeout=30)
    wait_for(lambda: [m for m in tg.messages(SHARED_CHAT) if words in (m.get("text") or "")], timeout=30)
    # Planfix answers with the client token the panel showed: the customer receives it.
    reply = planfix.send(relay.listener_url, token=client_token, message="Так, є в наявності",
                         chat_id=str(customer["id"]), channel=number, message_id=f"pf-{number}")
    assert reply.status_code == 200, reply.text
    wait_for(lambda: [m["text"] for m in tga.sent(number, to=customer["id"])] == ["Так, є в наявності"],
             timeout=30)


def no_session_in_clear(db, tga, number: str, sessions_dir, *pages: str) -> None:
    [session] = tga.login_sessions(number)
    assert list(sessions_dir.iterdir()) == []                 # no session file was written
    row = db.fetchone("SELECT * FROM tg_accounts WHERE number = %s", (number,))
    assert row["session_enc"] and session not in str(row)
    assert all(session not in str(r) for r in db.fetchall("SELECT * FROM tg_logins"))
    assert all(session not in page for page in pages)


def test_an_account_added_by_qr_code_relays_to_planfix_and_the_desk(browser, panel, relay, tga, planfix, tg,
                                                                      db, sessions_dir, artifacts):
    tga.add_account(QR_NUMBER, first_name="Oksana")
    tga.qr_ttl = 3                     # the first code expires soon: the page shows the next one
    log_in(browser, panel)
    start_login(browser, panel, planfix, method="qr")
    first = shown_qr_url(browser, tga)
    tga.qr_ttl = 120
    browser.save_screenshot(str(artifacts / "panel-telegram-qr.png"))
    WebDriverWait(browser, 30).until(lambda b: qr_src(b) not in ("", qr_image(first)))
    second = shown_qr_url(browser, tga)
    assert second != first
    with pytest.raises(Exception, match="AUTH_TOKEN_(EXPIRED|INVALID)"):
        tga.scan(QR_NUMBER, first)     # the expired code logs nobody in
    # The employee scans the code in Telegram → Settings → Devices.
    tga.scan(QR_NUMBER, second)
    wait_for(lambda: "is logged in" in says(browser, "#login-step"), timeout=30)
    client_token = text(browser, "#client-token code")
    done_page = browser.page_source
    browser.refresh()
    assert client_token not in browser.page_source            # shown once
    wait_for(lambda: account_state(browser, panel, QR_NUMBER) == "online", timeout=30)
    assert planfix.url in text(browser, f"#account-{QR_NUMBER} .planfix")
    browser.save_screenshot(str(artifacts / "panel-telegram-accounts.png"))
    no_session_in_clear(db, tga, QR_NUMBER, sessions_dir, done_page, browser.page_source)
    reaches_planfix_and_the_desk(relay, tga, planfix, tg, QR_NUMBER, "Є ця модель у синьому?", client_token)

    # Stop, start, restart from the panel.
    submit(browser, f"stop-{QR_NUMBER}")
    assert text(browser, f"#account-{QR_NUMBER} .state") == "stopped"
    submit(browser, f"start-{QR_NUMBER}")
    wait_for(lambda: account_state(browser, panel, QR_NUMBER) == "online", timeout=30)
    connects = len(tga.calls("connect"))
    submit(browser, f"restart-{QR_NUMBER}")
    wait_for(lambda: len(tga.calls("connect")) > connects and account_state(browser, panel, QR_NUMBER) == "online",
             timeout=30)
    # Logged out on the phone: the panel says revoked.
    tga.revoke(QR_NUMBER)
    wait_for(lambda: account_state(browser, panel, QR_NUMBER) == "revoked", timeout=30)
    tga.new_session(QR_NUMBER)         # the account itself is fine again; only that session is gone

    # Logged in again by QR: the same account online again, its client token unchanged.
    start_login(browser, panel, planfix, method="qr")
    tga.scan(QR_NUMBER, shown_qr_url(browser, tga))
    wait_for(lambda: "is logged in" in says(browser, "#login-step"), timeout=30)
    assert browser.find_elements(By.ID, "client-token") == []
    wait_for(lambda: account_state(browser, panel, QR_NUMBER) == "online", timeout=30)
    assert db.scalar("SELECT COUNT(*) FROM tg_accounts") == 1
    customer = tga.add_user("Maria")
    tga.customer_writes(QR_NUMBER, customer["id"], "Я знову тут")
    wait_for(lambda: [r for r in planfix.received("newMessage") if r.get("message") == "Я знову тут"], timeout=30)


def test_an_account_added_by_login_code_and_cloud_password(browser, panel, relay, tga, planfix, tg, db,
                                                           sessions_dir, artifacts):
    tga.add_account(CODE_NUMBER, first_name="Petro")
    tga.set_password(CODE_NUMBER, "correct horse battery", hint="horse")
    log_in(browser, panel)
    start_login(browser, panel, planfix, method="code", number="+38 050 111 00 02")
    wait_css(browser, "#answer")
    assert "+380501110002" in text(browser, "#login-step")
    answer(browser, "00000")                                     # a wrong code: told so, asked again
    wait_for(lambda: "code is wrong" in says(browser, "#login-message"), timeout=30)
    answer(browser, tga.login_code(CODE_NUMBER))
    wait_for(lambda: says(browser, "#hint") == "horse", timeout=30)
    answer(browser, "wrong horse")                               # SRP proves it wrong
    wait_for(lambda: "password is wrong" in says(browser, "#login-message"), timeout=30)
    assert tga.login_sessions(CODE_NUMBER) == []
    browser.save_screenshot(str(artifacts / "panel-telegram-password.png"))
    answer(browser, "correct horse battery")
    wait_for(lambda: "is logged in" in says(browser, "#login-step"), timeout=30)
    client_token = text(browser, "#client-token code")
    done_page = browser.page_source
    assert "correct horse battery" not in done_page
    wait_for(lambda: account_state(browser, panel, CODE_NUMBER) == "online", timeout=30)
    no_session_in_clear(db, tga, CODE_NUMBER, sessions_dir, done_page, browser.page_source)
    assert all("correct horse" not in str(r) for r in db.fetchall("SELECT * FROM tg_logins"))
    reaches_planfix_and_the_desk(relay, tga, planfix, tg, CODE_NUMBER, "Коли відправка?", client_token)


# -- over the panel's HTTP door -------------------------------------------------------------------

def csrf(session: requests.Session, url: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', session.get(url).text).group(1)


def http_login(panel: str, login: str) -> requests.Session:
    session = requests.Session()
    answer = session.post(f"{panel}/login", allow_redirects=False,
                          data={"csrf_token": csrf(session, f"{panel}/login"), "login": login,
                                "password": PASSWORD})
    assert answer.status_code == 302
    return session


def login_form(planfix, token: str, **extra) -> dict:
    return dict({"csrf_token": token, "client_name": "shop", "url_planfix": planfix.url,
                 "token_planfix": planfix.token, "method": "code", "number": "+" + CODE_NUMBER}, **extra)


def test_only_a_logged_in_admin_starts_a_login_with_the_form_s_own_token(panel, relay, tga, planfix, tg, db):
    def logins() -> int:
        return db.scalar("SELECT COUNT(*) FROM tg_logins")

    # Nobody logged in: sent to the login page, for the page and the form alike.
    anonymous = requests.Session()
    for method, path in (("GET", "/settings/telegram"), ("POST", "/settings/telegram/logins"),
                         ("POST", f"/settings/telegram/{CODE_NUMBER}/stop")):
        answer = anonymous.request(method, f"{panel}{path}", allow_redirects=False,
                                   data=login_form(planfix, csrf(anonymous, f"{panel}/login")))
        assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    # The owner, without the form's token (or a forged one): refused, nothing started.
    owner = http_login(panel, "owner")
    for token in ("", "forged"):
        answer = owner.post(f"{panel}/settings/telegram/logins", data=login_form(planfix, token),
                            allow_redirects=False)
        assert answer.status_code == 400 and "The form was refused" in answer.text
    assert logins() == 0

    # An admin demoted in Telegram: her open form starts nothing.
    tg.user_sends_text(OLENA, "/start", username="olena_admin")
    wait_for(lambda: relay.deps.users.get(OLENA) is not None, timeout=20)
    relay.deps.users.set_role(OLENA, "admin")
    PanelAuth(db, relay.deps.clock).set_password("olena", PASSWORD, OLENA)
    olena = http_login(panel, "olena")
    token = csrf(olena, f"{panel}/settings/telegram")
    relay.deps.users.set_role(OLENA, "manager")
    answer = olena.post(f"{panel}/settings/telegram/logins", data=login_form(planfix, token),
                        allow_redirects=False)
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]
    assert logins() == 0

    # The owner with the form's token: the login starts.
    answer = owner.post(f"{panel}/settings/telegram/logins", data=login_form(planfix, csrf(owner, f"{panel}/settings/telegram")),
                        allow_redirects=False)
    assert answer.status_code == 302 and "/settings/telegram/logins/" in answer.headers["Location"]
    assert logins() == 1


def test_an_expired_login_is_refused_and_logs_nobody_in(panel, relay, tga, planfix, db):
    tga.add_account(CODE_NUMBER)
    owner = http_login(panel, "owner")
    started = owner.post(f"{panel}/settings/telegram/logins",
                         data=login_form(planfix, csrf(owner, f"{panel}/settings/telegram")), allow_redirects=False)
    page = started.headers["Location"]
    ref = page.rsplit("/", 1)[1]
    wait_for(lambda: owner.get(f"{panel}/settings/telegram/logins/{ref}/state").json()["state"] == "code",
             timeout=30)
    code = tga.login_code(CODE_NUMBER)
    db.execute("UPDATE tg_logins SET expires_at = NOW(6) - INTERVAL 1 SECOND WHERE ref = %s", (ref,))
    answer = owner.post(f"{panel}/settings/telegram/logins/{ref}/answer",
                        data={"csrf_token": csrf(owner, f"{panel}/settings/telegram/logins/{ref}"), "answer": code})
    assert answer.status_code == 200 and "has expired" in answer.text and "expired before it was finished" in answer.text
    assert owner.get(f"{panel}/settings/telegram/logins/{ref}/state").json()["state"] == "expired"
    wait_for(lambda: db.scalar("SELECT state FROM tg_logins WHERE ref = %s", (ref,)) == "expired", timeout=30)
    relay.idle(timeout=10)
    assert tga.login_sessions(CODE_NUMBER) == [] and tga.calls("login") == []
    assert db.scalar("SELECT COUNT(*) FROM tg_accounts") == 0
