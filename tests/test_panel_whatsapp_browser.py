"""Settings → WhatsApp in a real Chromium against a running KeepDesk (doors, workers, the
Telegram, Cloud API and Green-API sandboxes over loopback, MariaDB): the owner adds a
gateway account, the page shows the QR code the gateway serves (following it as it
rotates), the gateway's phone scans it — or types the code got for a phone number — and
the page says `authorized`; the gateway now carries KeepDesk's webhook URL and token, and
a customer's message reaches the desk's shared chat. No restart: the desk already ran
with a Cloud API number, listed beside it with its health. Screenshots go to var/artifacts/."""
from __future__ import annotations

import base64

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import SHARED_CHAT, whatsapp_settings
from harness import Desk, wait_for
from sandbox.telegram import parse_html
from services.panel_auth import PanelAuth
from test_panel_browser import PASSWORD, log_in, submit, text

pytestmark = pytest.mark.xdist_group("browser")

CUSTOMER = "380671234567"


@pytest.fixture
def running(sandbox_settings, db, tg, crm, wa, ga):
    """The desk with one Cloud API number; the gateway sandbox is a fresh, unlinked instance
    whose origin the desk trusts (FETCH_TRUSTED_ORIGINS, as for any emulator on loopback)."""
    from doors.panel import create_app
    from sandbox._server import ServerThread
    settings = whatsapp_settings(sandbox_settings.replace(tg_limit_private_per_s=50.0), wa,
                                 fetch_trusted_origins=(ga.url,))
    desk = Desk(settings, db, tg, crm, wa=wa).start()
    ga.set_state("notAuthorized")
    # The panel knows KeepDesk's public address: here the integrations door itself.
    app = create_app(desk.settings.replace(web_secret_key="b" * 48, public_url=desk.listener_url, bot_language="en"),
                     db, deps=desk.deps)
    PanelAuth(db, desk.deps.clock).set_password("owner", PASSWORD, 9001)
    server = ServerThread(app).start()
    yield desk, server.url
    server.stop()
    desk.stop()


def add_gateway(browser, url: str, ga) -> None:
    browser.get(f"{url}/settings/whatsapp")
    browser.find_element(By.ID, "api_url").send_keys(ga.url)
    browser.find_element(By.ID, "instance").send_keys(ga.instance)
    browser.find_element(By.ID, "token").send_keys(ga.token)
    browser.find_element(By.ID, "label").send_keys("Магазин на Подолі")
    submit(browser, "add-submit")
    assert f"Instance {ga.instance} added and set up (webhook)" in text(browser, ".flash")


def state(browser) -> str:
    return text(browser, "#state")


def shown_qr(browser) -> bytes | None:
    src = browser.find_element(By.ID, "qr").get_attribute("src") or ""
    prefix = "data:image/png;base64,"
    return base64.b64decode(src[len(prefix):]) if src.startswith(prefix) else None


def gateway_settings(ga) -> dict:
    """What the gateway's own getSettings answers."""
    import requests
    return requests.get(f"{ga.url}/waInstance{ga.instance}/getSettings/{ga.token}", timeout=5).json()


def kept_webhook_token(desk, instance: str) -> str:
    return desk.deps.channels["whatsapp"].accounts[instance].webhook_token


def a_customer_reaches_the_desk(desk, tg, ga, words: str) -> None:
    ga.customer_writes(CUSTOMER, words, name="Оксана")
    post = wait_for(lambda: [m for m in tg.messages(SHARED_CHAT)
                             if words in parse_html(m.get("text") or "")[0]], timeout=30)[-1]
    assert "Оксана" in parse_html(post["text"])[0]
    # On the gateway's account (another test's Cloud customer with the same phone may exist).
    assert ga.instance in {r["account"] for r in desk.db.fetchall(
        "SELECT account FROM conversations WHERE external_id = %s", (CUSTOMER,))}


def test_an_owner_links_a_gateway_by_its_qr_code_and_customers_reach_the_desk(
        browser, running, tg, wa, ga, artifacts):
    desk, url = running
    ga.qr_seconds = 2.0            # the gateway rotates its code quickly here
    log_in(browser, url)
    browser.find_element(By.ID, "nav-whatsapp").click()
    cloud = browser.find_element(By.ID, f"wa-{wa.phone_number_id}")
    assert cloud.get_attribute("data-provider") == "cloud" and "ok" in cloud.find_element(By.CSS_SELECTOR, ".health").text
    add_gateway(browser, url, ga)

    # The page shows the gateway's QR code and follows it as the gateway changes it.
    first = WebDriverWait(browser, 15).until(lambda b: shown_qr(b))
    assert state(browser) == "notAuthorized"
    WebDriverWait(browser, 15).until(lambda b: shown_qr(b) not in (None, first))
    browser.save_screenshot(str(artifacts / "panel-whatsapp-qr.png"))
    assert ga.token not in browser.page_source

    # The shop's phone scans what the page shows: the page says authorized.
    WebDriverWait(browser, 15).until(lambda b: ga.scan(shown_qr(b) or b""))
    WebDriverWait(browser, 15).until(lambda b: state(b) == "authorized")
    assert not browser.find_element(By.ID, "qr-box").is_displayed()
    browser.save_screenshot(str(artifacts / "panel-whatsapp-authorized.png"))

    # KeepDesk set the instance up itself: its webhook, its token, the notifications it reads.
    kept = gateway_settings(ga)
    assert kept["webhookUrl"] == f"{desk.listener_url}/whatsapp/greenapi"
    assert kept["webhookUrlToken"] == kept_webhook_token(desk, ga.instance)
    assert all(kept[k] == "yes" for k in ("incomingWebhook", "outgoingWebhook", "stateWebhook"))
    a_customer_reaches_the_desk(desk, tg, ga, "Чи є розмір 42?")
    # Every notification was taken at the first try (none refused while the door caught up).
    assert ga.webhook_log and all(entry["status"] == 200 for entry in ga.webhook_log)

    # Listed beside the Cloud API number, with its state.
    browser.get(f"{url}/settings/whatsapp")
    row = browser.find_element(By.ID, f"wa-{ga.instance}")
    assert "authorized" in row.find_element(By.CSS_SELECTOR, ".health").text
    assert "Магазин на Подолі" in row.text and ga.token not in browser.page_source
    browser.save_screenshot(str(artifacts / "panel-whatsapp.png"))

    # Log out: the instance is notAuthorized and the page offers a new code to scan.
    browser.find_element(By.ID, f"open-{ga.instance}").click()
    submit(browser, "logout")
    assert "Logged out" in text(browser, ".flash")
    WebDriverWait(browser, 15).until(lambda b: state(b) == "notAuthorized" and shown_qr(b))
    assert ga.state == "notAuthorized"


def test_an_owner_links_a_gateway_by_a_code_typed_on_the_phone(browser, running, tg, ga, artifacts):
    desk, url = running
    log_in(browser, url)
    add_gateway(browser, url, ga)
    WebDriverWait(browser, 15).until(lambda b: state(b) == "notAuthorized")
    browser.find_element(By.ID, "phone").send_keys("+380 50 111 2233")
    submit(browser, "get-code")
    code = text(browser, "#phone-code code")
    assert len(code) == 8
    browser.save_screenshot(str(artifacts / "panel-whatsapp-code.png"))
    # The owner types it on the phone: the instance is linked, and the page follows.
    assert ga.enter_code(code)
    WebDriverWait(browser, 15).until(lambda b: state(b) == "authorized")
    assert ga.own_phone == "380501112233"
    assert gateway_settings(ga)["webhookUrlToken"] == kept_webhook_token(desk, ga.instance)
    a_customer_reaches_the_desk(desk, tg, ga, "Доставка сьогодні буде?")
    # Reboot: answered, and the instance comes back authorized.
    submit(browser, "reboot")
    assert "Rebooting" in text(browser, ".flash") and ga.reboots == 1
    WebDriverWait(browser, 15).until(lambda b: state(b) == "authorized")
