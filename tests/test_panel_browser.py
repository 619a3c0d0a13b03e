"""The admin panel in a real Chromium (Debian's, headless, through Selenium) against a
running KeepDesk (doors, workers, the Telegram and CRM emulators, MariaDB): log in (a
wrong password throttled, a forged form refused), the home figures move when a customer
writes, a dead letter retried (and a second Retry changes nothing), a report read against
a seeded history, a team action. Screenshots go to var/artifacts/."""
from __future__ import annotations

from datetime import timedelta

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from conftest import SHARED_CHAT
from harness import wait_for
from models.jobs import SEND
from models.users import PENDING
from sandbox._server import ServerThread
from services.panel_auth import LOGIN_LIMIT, PanelAuth
from test_panel import OLENA, TARAS, seed_wait

# One Chromium per test session: every browser test runs in the same xdist worker.
pytestmark = pytest.mark.xdist_group("browser")

LINK_KEY = "test-link-key"
PASSWORD = "a long panel password"


@pytest.fixture
def panel(desk, db):
    from doors.panel import create_app
    app = create_app(desk.settings.replace(web_secret_key="s" * 48, bot_language="en"), db, deps=desk.deps)
    PanelAuth(db, desk.deps.clock).set_password("owner", PASSWORD, 9001)
    server = ServerThread(app).start()
    yield server.url
    server.stop()


def open_page(browser, url: str) -> None:
    browser.get(url)


def text(browser, css: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, css).text


def submit(browser, element_id: str) -> None:
    """Click a form's button and wait for the answer page to replace this one."""
    page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.ID, element_id).click()

    def replaced(_) -> bool:
        # Chromium sometimes answers for a node of the page just left with "Node with given
        # id does not belong to the document" instead of a stale-element error: gone too.
        try:
            return staleness_of(page)(browser)
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
    WebDriverWait(browser, 15).until(replaced)


def log_in(browser, url: str, login: str = "owner", password: str = PASSWORD) -> None:
    browser.delete_all_cookies()
    browser.get(f"{url}/login")
    browser.find_element(By.ID, "login").send_keys(login)
    browser.find_element(By.ID, "password").send_keys(password)
    submit(browser, "login-submit")


def received_today(browser, channel: str) -> int:
    rows = browser.find_elements(By.CSS_SELECTOR, f'tr[data-channel="{channel}"] .received-today')
    return int(rows[0].text) if rows else 0


def test_login_throttle_csrf_home_retry_team(browser, panel, desk, db, tg, crm, artifacts):
    # A wrong password: told so; five in a row lock the account, even for the right one.
    PanelAuth(db, desk.deps.clock).set_password("clerk", PASSWORD)
    for _ in range(LOGIN_LIMIT - 1):
        log_in(browser, panel, "clerk", "not the password")
        assert text(browser, "#login-error") == "Wrong login or password."
    log_in(browser, panel, "clerk", "not the password")
    assert "Too many failed attempts" in text(browser, "#login-error")
    log_in(browser, panel, "clerk", PASSWORD)
    assert "Too many failed attempts" in text(browser, "#login-error")
    assert browser.find_elements(By.ID, "nav-home") == []

    # The owner logs in; a page without a session sends to the login form.
    log_in(browser, panel)
    assert text(browser, "h1") == "Home"
    before = received_today(browser, "keepingcrm")

    # A customer writes in the CRM: the home figures move.
    crm.add_chat(7001, email="buyer@example.com", product="Laptop")
    crm.customer_writes(7001, "Is it in stock?")
    crm.signal(desk.listener_url, LINK_KEY, 7001)
    wait_for(lambda: tg.messages(SHARED_CHAT), timeout=20)
    desk.idle(timeout=20)
    browser.refresh()
    assert received_today(browser, "keepingcrm") == before + 1
    browser.save_screenshot(str(artifacts / "panel-home.png"))

    # A dead letter: Retry runs it again (the message reaches Telegram) ...
    job_id = desk.deps.jobs.enqueue_id(SEND, "tg_send", {
        "chat_id": SHARED_CHAT, "method": "sendMessage", "purpose": "log",
        "text": "Sent again from the panel"}, lane=f"send:{SHARED_CHAT}", delay=3600)
    db.execute("UPDATE jobs SET status = 'failed', attempts = 5, last_error = %s WHERE id = %s",
               ("Bad Request: chat not found", job_id))
    browser.get(f"{panel}/errors")
    assert "chat not found" in text(browser, f"#letter-{job_id} .cause")
    browser.save_screenshot(str(artifacts / "panel-errors.png"))
    submit(browser, f"retry-{job_id}")
    assert f"Job #{job_id} will run again" in text(browser, ".flash")
    wait_for(lambda: desk.deps.jobs.status_of(job_id) == "done", timeout=20)
    assert any(m.get("text") == "Sent again from the panel" for m in tg.messages(SHARED_CHAT))
    # ... and a Retry of the same job from a stale tab says it is done and changes nothing.
    sent = len(tg.messages(SHARED_CHAT))
    browser.execute_script(
        "var f = document.createElement('form'); f.method = 'post';"
        "f.action = arguments[0]; var t = document.createElement('input'); t.type = 'hidden';"
        "t.name = 'csrf_token'; t.value = document.querySelector('input[name=csrf_token]').value;"
        "f.appendChild(t); document.body.appendChild(f); f.submit();",
        f"{panel}/errors/{job_id}/retry")
    WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".flash.warning"))
    assert "already done" in text(browser, ".flash.warning")
    desk.idle(timeout=10)
    assert len(tg.messages(SHARED_CHAT)) == sent and desk.deps.jobs.status_of(job_id) == "done"

    # A forged form (its CSRF token changed) is refused with a clear page; nothing changes.
    desk.deps.users.register(5005, "new_manager", "Nina", "uk")
    browser.get(f"{panel}/team")
    browser.execute_script("document.querySelectorAll('input[name=csrf_token]')"
                           ".forEach(function (i) { i.value = 'forged'; });")
    submit(browser, "approve-5005")
    assert text(browser, "h1") == "The form was refused"
    assert desk.deps.users.get(5005).role == PENDING

    # The team page: approving makes a manager, who is told in Telegram.
    browser.get(f"{panel}/team")
    submit(browser, "approve-5005")
    assert "is now manager" in text(browser, ".flash")
    assert text(browser, "#person-5005 .role") == "manager"
    desk.deps.users.forget(5005)
    assert desk.deps.users.get(5005).role == "manager"
    browser.save_screenshot(str(artifacts / "panel-team.png"))


def png(width: int = 4, height: int = 3) -> bytes:
    """A small real PNG (a browser must be able to draw it)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_conversations_search_and_a_history_with_an_image(browser, panel, desk, db, tg, crm, artifacts):
    crm.add_chat(7301, email="photo.buyer@example.com", product="Camera")
    crm.customer_writes(7301, "Here is the damaged box", image=png(), filename="box.png")
    crm.customer_writes(7302, "Another order entirely", email="other@example.com")
    for order in (7301, 7302):
        crm.signal(desk.listener_url, LINK_KEY, order)
    wait_for(lambda: len(tg.messages(SHARED_CHAT)) >= 2, timeout=20)
    desk.idle(timeout=20)
    log_in(browser, panel)
    browser.get(f"{panel}/conversations")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#conversations tbody tr")) == 2, browser.page_source
    browser.find_element(By.ID, "search").send_keys("photo.buyer@example.com")
    submit(browser, "filter-submit")
    rows = browser.find_elements(By.CSS_SELECTOR, "#conversations tbody tr")
    assert len(rows) == 1 and "7301" in rows[0].text
    rows[0].find_element(By.TAG_NAME, "a").click()
    assert "Here is the damaged box" in text(browser, "#history")
    image = browser.find_element(By.CSS_SELECTOR, "#history img.photo")
    assert "/files/" in image.get_attribute("src") and crm.url not in browser.page_source
    WebDriverWait(browser, 10).until(lambda b: b.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth", image) == 4)
    browser.save_screenshot(str(artifacts / "panel-conversation.png"))


def test_a_report_read_in_the_browser_matches_the_seeded_history(browser, panel, desk, db, artifacts):
    desk.deps.users.register(OLENA, "olena_sales", "Olena", "uk")
    desk.deps.users.register(TARAS, "taras_support", "Taras", "uk")
    now = desk.deps.clock().replace(microsecond=0)
    start = now - timedelta(days=2)
    # Olena: 3, 5, 12 minutes on KeepingCRM; Taras: 40 minutes on WhatsApp (always working).
    for n, minutes in enumerate((3, 5, 12)):
        asked = start + timedelta(hours=n)
        seed_wait(db, f"81{n}", "keepingcrm", asked, asked + timedelta(minutes=minutes), OLENA)
    seed_wait(db, "820", "whatsapp", start, start + timedelta(minutes=40), TARAS,
              done_at=start + timedelta(minutes=70))
    log_in(browser, panel)
    browser.get(f"{panel}/reports?days=7")

    def cells(table: str, manager: str, channel: str = "all") -> tuple[str, ...]:
        row = f'#{table} tr[data-manager="{manager}"][data-channel="{channel}"]'
        return tuple(text(browser, f"{row} .{c}") for c in ("count", "median", "p90", "sla"))

    assert cells("first-response", "@olena_sales") == ("3", "5", "12", "100%")
    assert cells("first-response", "@taras_support", "whatsapp") == ("1", "40", "40", "0%")
    assert cells("first-response", "Everyone") == ("4", "8.5", "40", "75%")
    assert cells("resolution", "@taras_support") == ("1", "70", "70", "0%")
    chart = browser.find_element(By.CSS_SELECTOR, "#by-hour svg")
    assert chart.is_displayed()
    browser.set_window_size(1400, 1700)
    browser.save_screenshot(str(artifacts / "panel-reports.png"))
    browser.set_window_size(1400, 1000)


def test_settings_issue_and_revoke_a_1c_token_with_secrets_masked(browser, panel, desk, db, artifacts):
    from services.api_tokens import ApiTokens
    log_in(browser, panel)
    browser.get(f"{panel}/settings")
    page = browser.page_source
    for secret in (desk.settings.bot_token, desk.settings.keeping_api_key, desk.settings.link_key):
        assert secret not in page
    browser.find_element(By.CSS_SELECTOR, "input[name=name]").send_keys("1c-main")
    submit(browser, "issue-token")
    token = text(browser, "#new-token code")
    assert ApiTokens(db).valid(token)
    browser.save_screenshot(str(artifacts / "panel-settings.png"))
    browser.get(f"{panel}/settings")
    assert token not in browser.page_source            # shown once
    page_button = browser.find_element(By.CSS_SELECTOR, "#tokens button")
    page = browser.find_element(By.TAG_NAME, "html")
    page_button.click()
    WebDriverWait(browser, 15).until(staleness_of(page))
    assert "Token revoked." in text(browser, ".flash") and not ApiTokens(db).valid(token)
