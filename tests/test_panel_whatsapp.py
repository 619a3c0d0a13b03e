"""Settings → WhatsApp through the panel's real HTTP door (a threaded werkzeug server, the
running desk, the Green-API sandbox over loopback, MariaDB): who may add an account and
see it, the token never given back, and a gateway address typed in the form fetched only
through the guarded fetcher — a loopback or private apiUrl is refused unless the operator
trusts exactly that origin (as the tests trust the sandbox's)."""
from __future__ import annotations

import re

import pytest
import requests

from conftest import ADMIN_ID
from harness import wait_for
from models.users import MANAGER
from sandbox._server import ServerThread
from services.panel_auth import PanelAuth

PASSWORD = "a long panel password"


def start_panel(desk, db, **changes):
    from doors.panel import create_app
    settings = desk.settings.replace(web_secret_key="w" * 48, bot_language="en", **changes)
    return ServerThread(create_app(settings, db, deps=desk.deps)).start()


@pytest.fixture
def trusting_desk(sandbox_settings, db, tg, crm, ga):
    """A desk without WhatsApp in its settings that trusts the gateway sandbox's origin
    (the way the tests allow an emulator on loopback: FETCH_TRUSTED_ORIGINS)."""
    from harness import Desk
    running = Desk(sandbox_settings.replace(fetch_trusted_origins=(ga.url,)), db, tg, crm).start()
    yield running
    running.stop()


def csrf(browser: requests.Session, url: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', browser.get(url).text).group(1)


def logged_in(url: str, db, desk) -> requests.Session:
    PanelAuth(db, desk.deps.clock).set_password("owner", PASSWORD, ADMIN_ID)
    browser = requests.Session()
    answer = browser.post(f"{url}/login", allow_redirects=False, data={
        "csrf_token": csrf(browser, f"{url}/login"), "login": "owner", "password": PASSWORD})
    assert answer.status_code == 302
    return browser


def add(browser, url: str, ga, api_url: str | None = None, **fields):
    return browser.post(f"{url}/settings/whatsapp", data={
        "csrf_token": csrf(browser, f"{url}/settings/whatsapp"), "api_url": api_url or ga.url,
        "instance": ga.instance, "token": ga.token, "style": "path", **fields})


def stored(db) -> int:
    return db.scalar("SELECT COUNT(*) FROM wa_panel_accounts")


def test_only_a_logged_in_admin_with_the_forms_token_adds_an_account(trusting_desk, db, ga):
    panel = start_panel(trusting_desk, db, public_url="https://desk.example.com")
    try:
        # No session: the pages and the form send to the login page; nothing is stored.
        stranger = requests.Session()
        for path in ("/settings/whatsapp", f"/settings/whatsapp/{ga.instance}",
                     f"/settings/whatsapp/{ga.instance}/link"):
            answer = stranger.get(f"{panel.url}{path}", allow_redirects=False)
            assert answer.status_code == 302 and "/login" in answer.headers["Location"]
        token = csrf(stranger, f"{panel.url}/login")
        refused = stranger.post(f"{panel.url}/settings/whatsapp", allow_redirects=False, data={
            "csrf_token": token, "api_url": ga.url, "instance": ga.instance, "token": ga.token})
        assert refused.status_code == 302 and "/login" in refused.headers["Location"]

        # The owner's session but a forged form token: refused, nothing stored.
        owner = logged_in(panel.url, db, trusting_desk)
        forged = owner.post(f"{panel.url}/settings/whatsapp", data={
            "csrf_token": "forged", "api_url": ga.url, "instance": ga.instance, "token": ga.token})
        assert forged.status_code == 400 and "The form was refused" in forged.text
        assert stored(db) == 0 and ga.settings is None

        # Demoted in Telegram (no longer an admin): the open session opens nothing any more.
        form = csrf(owner, f"{panel.url}/settings/whatsapp")
        trusting_desk.deps.users.register(ADMIN_ID, "owner_tg", "Owner", "uk")
        trusting_desk.deps.users.set_role(ADMIN_ID, MANAGER)
        demoted = owner.post(f"{panel.url}/settings/whatsapp", allow_redirects=False, data={
            "csrf_token": form, "api_url": ga.url, "instance": ga.instance, "token": ga.token})
        assert demoted.status_code == 302 and "/login" in demoted.headers["Location"]
        assert owner.get(f"{panel.url}/settings/whatsapp", allow_redirects=False).status_code == 302
        assert stored(db) == 0 and ga.settings is None
    finally:
        panel.stop()


def test_the_token_is_kept_sealed_and_never_given_back(trusting_desk, db, ga):
    panel = start_panel(trusting_desk, db, public_url="https://desk.example.com")
    try:
        owner = logged_in(panel.url, db, trusting_desk)
        answer = add(owner, panel.url, ga, label="Київ")
        assert answer.status_code == 200 and f"Instance {ga.instance} added and set up (webhook)" in answer.text
        row = db.fetchone("SELECT * FROM wa_panel_accounts")
        assert ga.token not in str(row) and row["token_sealed"].startswith("v2:")
        # KeepDesk chose the webhook's token and gave it to the gateway, not to a page.
        hook = ga.settings["webhookUrlToken"]
        assert ga.settings["webhookUrl"] == "https://desk.example.com/whatsapp/greenapi" and len(hook) >= 32
        for path in ("/settings/whatsapp", f"/settings/whatsapp/{ga.instance}",
                     f"/settings/whatsapp/{ga.instance}/link", "/settings"):
            page = owner.get(f"{panel.url}{path}").text
            assert ga.token not in page and hook not in page, path
        assert "Київ" in owner.get(f"{panel.url}/settings/whatsapp").text
        # The same instance twice: refused, the first one kept as it was.
        again = add(owner, panel.url, ga, label="again")
        assert "already one of the shop" in again.text and stored(db) == 1
    finally:
        panel.stop()


def test_a_wrong_token_stores_nothing(trusting_desk, db, ga):
    panel = start_panel(trusting_desk, db)
    try:
        owner = logged_in(panel.url, db, trusting_desk)
        answer = add(owner, panel.url, ga, token="not-the-instance-token")
        assert "the gateway refused the instance or its token (HTTP 401)" in answer.text
        assert stored(db) == 0 and ga.settings is None
    finally:
        panel.stop()


def test_a_loopback_or_private_gateway_address_is_refused_unless_trusted(sandbox_settings, db, tg, crm, ga):
    from harness import Desk
    desk = Desk(sandbox_settings, db, tg, crm).start()      # production-like: trusts no sandbox
    panel = start_panel(desk, db)
    try:
        owner = logged_in(panel.url, db, desk)
        for address in (ga.url, "http://localhost:9", "http://10.1.2.3:8080", "http://[::1]:9",
                        "http://169.254.169.254"):
            answer = add(owner, panel.url, ga, api_url=address)
            assert "the gateway&#39;s address is refused" in answer.text, address
            assert "not a public address" in answer.text, address
        assert stored(db) == 0 and ga.settings is None
        assert "apiUrl is the gateway" in add(owner, panel.url, ga, api_url="ftp://gateway.example").text
    finally:
        panel.stop()
        desk.stop()


def test_a_panel_accounts_calls_go_through_the_guarded_fetcher(settings, ga):
    """Even once stored, an account typed in the panel is called only through the guarded
    connections: with its origin no longer trusted, nothing reaches the gateway."""
    from channels.whatsapp.accounts import Account
    from channels.whatsapp.errors import ShopMustAct
    from channels.whatsapp.providers.greenapi import GreenApi
    from utils.fetch import Fetcher
    account = Account(ga.instance, ga.token, provider="greenapi", url=ga.url, media_url=ga.url,
                      receive="poll", source="panel")
    with pytest.raises(ShopMustAct, match="not a public address"):
        GreenApi(guarded=Fetcher()).state(account)
    assert GreenApi(guarded=Fetcher([ga.url])).state(account) == "authorized"
    # One of the settings (the operator's own) keeps its plain session.
    configured = Account(ga.instance, ga.token, provider="greenapi", url=ga.url, media_url=ga.url)
    assert GreenApi(guarded=Fetcher()).state(configured) == "authorized"


def test_without_a_public_url_the_instance_is_left_to_be_polled_and_messages_arrive(
        trusting_desk, db, tg, ga):
    from conftest import SHARED_CHAT
    from sandbox.telegram import parse_html
    panel = start_panel(trusting_desk, db)
    try:
        owner = logged_in(panel.url, db, trusting_desk)
        answer = add(owner, panel.url, ga)
        assert "polled: no PUBLIC_URL" in answer.text
        assert ga.settings["webhookUrl"] == "" and ga.settings["incomingWebhook"] == "yes"
        # The desk's channel started without WhatsApp: the first account needs a restart.
        assert "restart the workers" in answer.text
    finally:
        panel.stop()
    trusting_desk.stop()
    from harness import Desk
    desk = Desk(trusting_desk.settings, db, tg, trusting_desk.crm).start()
    try:
        ga.customer_writes("380671234567", "Через чергу сповіщень")
        wait_for(lambda: [m for m in tg.messages(SHARED_CHAT)
                          if "Через чергу сповіщень" in parse_html(m.get("text") or "")[0]], timeout=30)
        wait_for(lambda: ga.queue_size() == 0, timeout=20)
    finally:
        desk.stop()


def test_an_account_added_while_whatsapp_runs_is_polled_without_a_restart(
        sandbox_settings, db, tg, crm, wa, ga):
    from conftest import SHARED_CHAT, whatsapp_settings
    from harness import Desk
    from sandbox.telegram import parse_html
    settings = whatsapp_settings(sandbox_settings, wa, fetch_trusted_origins=(ga.url,))
    desk = Desk(settings, db, tg, crm, wa=wa).start()
    panel = start_panel(desk, db)
    try:
        owner = logged_in(panel.url, db, desk)
        answer = add(owner, panel.url, ga)
        assert "polled: no PUBLIC_URL" in answer.text and "restart" not in answer.text
        ga.customer_writes("380671234567", "Без перезапуску")
        wait_for(lambda: [m for m in tg.messages(SHARED_CHAT)
                          if "Без перезапуску" in parse_html(m.get("text") or "")[0]], timeout=30)
        wait_for(lambda: ga.queue_size() == 0, timeout=20)
        # Removed from KeepDesk in the panel: gone from the list, the gateway keeps the instance.
        removed = owner.post(f"{panel.url}/settings/whatsapp/{ga.instance}/remove",
                             data={"csrf_token": csrf(owner, f"{panel.url}/settings/whatsapp/{ga.instance}")})
        assert f"Instance {ga.instance} removed" in removed.text and f'id="wa-{ga.instance}"' not in removed.text
        assert stored(db) == 0 and ga.state == "authorized"
    finally:
        panel.stop()
        desk.stop()


def test_the_gateway_sandbox_links_and_sets_up_an_instance_as_documented(ga):
    import base64
    base = f"{ga.url}/waInstance{ga.instance}"

    def call(method: str, body: dict | None = None):
        answer = (requests.post if body is not None else requests.get)(
            f"{base}/{method}/{ga.token}", json=body, timeout=5)
        return answer.status_code, answer.json()

    assert call("qr")[1]["type"] == "alreadyLogged"
    assert call("getAuthorizationCode", {"phoneNumber": 380501112233})[1]["status"] is False
    assert call("logout") == (200, {"isLogout": True}) and ga.state == "notAuthorized"
    shown = base64.b64decode(call("qr")[1]["message"])
    assert shown.startswith(b"\x89PNG") and not ga.scan(b"not the code shown") and ga.scan(shown)
    assert ga.state == "authorized"
    # setSettings: at least one known field; getSettings answers what was set.
    assert call("setSettings", {})[0] == 400 and call("setSettings", {"incomingWebhook": "maybe"})[0] == 400
    assert call("getSettings")[1]["incomingWebhook"] == "no"          # a new instance: all off
    hook = ga.url + "/_sandbox/nowhere"
    assert call("setSettings", {"webhookUrl": "", "stateWebhook": "yes"}) == (200, {"saveSettings": True})
    got = call("getSettings")[1]
    assert got["stateWebhook"] == "yes" and got["incomingWebhook"] == "no" and got["webhookUrl"] == ""
    # Notifications now follow the settings: incoming messages are off, state changes on.
    waiting = ga.queue_size()        # the state changes of the logout and the scan
    ga.customer_writes("380671234567", "не дійде")
    assert ga.queue_size() == waiting
    ga.set_state("notAuthorized")
    assert ga.queue_size() == waiting + 1
    call("setSettings", {"webhookUrl": hook, "webhookUrlToken": "t0ken-of-the-shop"})
    assert call("getSettings")[1]["webhookUrlToken"] == "t0ken-of-the-shop"
    assert ga.webhook_url == hook and ga.webhook_token == "t0ken-of-the-shop"
    # The code got for a phone links it; a second use of the same code does not.
    code = call("getAuthorizationCode", {"phoneNumber": 380501112233})[1]["code"]
    assert ga.enter_code(code) and ga.state == "authorized" and ga.own_phone == "380501112233"
    call("logout")
    assert not ga.enter_code(code)
    assert call("reboot") == (200, {"isReboot": True})


def test_set_up_again_follows_a_public_url_set_since_and_messages_come_by_webhook(
        sandbox_settings, db, tg, crm, wa, ga):
    from conftest import SHARED_CHAT, whatsapp_settings
    from harness import Desk
    from sandbox.telegram import parse_html
    desk = Desk(whatsapp_settings(sandbox_settings, wa, fetch_trusted_origins=(ga.url,)), db, tg, crm, wa=wa).start()
    try:
        polled = start_panel(desk, db)
        try:
            owner = logged_in(polled.url, db, desk)
            assert "polled: no PUBLIC_URL" in add(owner, polled.url, ga).text
        finally:
            polled.stop()
        assert db.scalar("SELECT receive FROM wa_panel_accounts") == "poll" and ga.webhook_url is None
        # The shop now has a public address (here the integrations door itself).
        public = start_panel(desk, db, public_url=desk.listener_url)
        try:
            owner = logged_in(public.url, db, desk)
            page = f"{public.url}/settings/whatsapp/{ga.instance}"
            done = owner.post(f"{page}/setup", data={"csrf_token": csrf(owner, page)})
            assert "The gateway is set up for KeepDesk" in done.text and "receives by webhook" in done.text
        finally:
            public.stop()
        assert ga.webhook_url == f"{desk.listener_url}/whatsapp/greenapi"
        assert ga.webhook_token == desk.deps.channels["whatsapp"].accounts[ga.instance].webhook_token
        ga.customer_writes("380671234567", "Тепер через вебхук")
        wait_for(lambda: [m for m in tg.messages(SHARED_CHAT)
                          if "Тепер через вебхук" in parse_html(m.get("text") or "")[0]], timeout=30)
        assert ga.webhook_log and all(entry["status"] == 200 for entry in ga.webhook_log)
    finally:
        desk.stop()
