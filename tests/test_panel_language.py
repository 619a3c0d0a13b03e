"""The panel in the shop's language: Ukrainian unless the shop's BOT_LANGUAGE says English,
each panel user's own choice on the account page (kept on their panel user, applied at once
on every page), a switch on the login page before login (a cookie), and catalogues that
name every key the panel uses in both languages. One test walks it in a real Chromium."""
from __future__ import annotations

import re
import string
from datetime import datetime
from pathlib import Path

import pytest

from doors.panel import texts
from services.panel_auth import PanelAuth
from test_panel import token_of

ROOT = Path(__file__).resolve().parent.parent
PANEL = ROOT / "doors" / "panel"
PASSWORD = "correct horse battery"

# Every page a logged-in user reaches from the navigation, and one word each language
# shows there (its heading).
PAGES = {
    "/": ("Головна", "Home"),
    "/errors": ("Помилки", "Errors"),
    "/conversations": ("Переписки", "Conversations"),
    "/team": ("Команда", "Team"),
    "/reports": ("Звіти", "Reports"),
    "/settings": ("Налаштування", "Settings"),
    "/settings/whatsapp": ("Акаунти WhatsApp", "WhatsApp accounts"),
    "/settings/telegram": ("Акаунти Telegram", "Telegram accounts"),
    "/account": ("Мова панелі", "The panel"),
}


def make_client(settings, db, **changes):
    from doors.panel import create_app
    app = create_app(settings.replace(web_secret_key="l" * 40, **changes), db)
    return app.test_client()


def log_in(client, login: str = "owner") -> None:
    page = client.get("/login").data
    answer = client.post("/login", data={"csrf_token": token_of(page), "login": login,
                                         "password": PASSWORD})
    assert answer.status_code == 302, answer.data


def heading(page: str) -> str:
    return re.search(r"<h1>(.*?)</h1>", page, re.S).group(1)


CYRILLIC = re.compile("[А-Яа-яІіЇїЄє]")


def webhook_cell(page: str) -> str:
    return re.search(r'id="webhook">(.*?)</td>', page).group(1)


def choose(client, language: str, page: str = "/account", back: str | None = None):
    form = {"csrf_token": token_of(client.get(page).data), "language": language}
    if back:
        form["back"] = back
    return client.post("/language", data=form)


@pytest.fixture
def owner(db):
    PanelAuth(db, datetime.utcnow).set_password("owner", PASSWORD)
    PanelAuth(db, datetime.utcnow).set_password("clerk", PASSWORD)


def test_a_new_panel_user_sees_every_page_in_ukrainian(settings, db, owner):
    assert settings.bot_language is None
    client = make_client(settings, db)
    setup = client.get("/setup").data
    short = client.post("/setup", data={"csrf_token": token_of(setup), "login": "owner", "code": "1",
                                        "password": "short", "again": "short"})
    assert short.status_code == 400
    assert "Не задано: пароль має щонайменше 10 символів." in short.get_data(as_text=True)
    login_page = client.get("/login").get_data(as_text=True)
    assert 'lang="uk"' in login_page and heading(login_page) == "Вхід" and "Password" not in login_page
    log_in(client)
    for path, (uk, en) in PAGES.items():
        page = client.get(path).get_data(as_text=True)
        assert heading(page).startswith(uk), path
        assert 'lang="uk"' in page and ">Log out<" not in page and ">Вийти<" in page, path
    missing = client.get("/conversations/999999").get_data(as_text=True)
    assert "Немає такої сторінки" in missing and "Такої переписки немає." in missing
    assert "Такої сторінки немає." in client.get("/no-such-page").get_data(as_text=True)


def test_english_chosen_on_the_account_page_switches_every_page_at_once(settings, db, owner):
    client = make_client(settings, db)
    log_in(client)
    home = client.get("/").get_data(as_text=True)
    assert heading(home) == "Головна" and CYRILLIC.search(webhook_cell(home))
    answer = choose(client, "en")
    assert answer.status_code == 302 and answer.location.endswith("/account")
    account = client.get("/account").get_data(as_text=True)
    assert "The panel&#39;s language is changed." in account
    assert re.search(r'<option value="en" selected>English</option>', account)
    assert db.scalar("SELECT language FROM panel_users WHERE login = 'owner'") == "en"
    for path, (uk, en) in PAGES.items():
        page = client.get(path).get_data(as_text=True)
        assert heading(page).startswith(en), path
        assert 'lang="en"' in page and uk not in page, path
    # What the panel words itself, kept between pages (Telegram's webhook state), too.
    assert webhook_cell(client.get("/").get_data(as_text=True)).startswith(("unknown (", "not set", "set;"))
    # Error pages and flash messages too.
    missing = client.get("/conversations/999999").get_data(as_text=True)
    assert "No such page" in missing and "There is no such conversation." in missing
    form = {"csrf_token": token_of(client.get("/settings").data), "name": ""}
    assert "A token needs a name" in client.post("/settings/tokens", data=form,
                                                 follow_redirects=True).get_data(as_text=True)
    # Kept on the user, not on this browser: another browser of the same login is English
    # from its first page after login, another login stays Ukrainian.
    elsewhere = make_client(settings, db)
    log_in(elsewhere)
    assert heading(elsewhere.get("/team").get_data(as_text=True)) == "Team"
    clerk = make_client(settings, db)
    log_in(clerk, "clerk")
    assert heading(clerk.get("/team").get_data(as_text=True)) == "Команда"
    # And back to Ukrainian.
    choose(client, "uk")
    assert heading(client.get("/reports").get_data(as_text=True)) == "Звіти"


def test_the_login_page_switch_works_before_login(settings, db, owner):
    client = make_client(settings, db)
    assert heading(client.get("/login").get_data(as_text=True)) == "Вхід"
    answer = choose(client, "en", page="/login", back="panel.login")
    assert answer.status_code == 302 and answer.location.endswith("/login")
    cookie = client.get_cookie(texts.COOKIE)
    assert cookie.value == "en" and cookie.http_only
    login_page = client.get("/login").get_data(as_text=True)
    assert heading(login_page) == "Log in" and 'lang="en"' in login_page
    assert 'id="lang-en" class="current"' in login_page
    # What the pages before login say follows it: a wrong password, a refused form, setup.
    wrong = client.post("/login", data={"csrf_token": token_of(login_page.encode()), "login": "owner",
                                        "password": "not the password"})
    assert wrong.status_code == 401 and "Wrong login or password." in wrong.get_data(as_text=True)
    refused = client.post("/login", data={"login": "owner", "password": PASSWORD})
    assert refused.status_code == 400 and "Nothing was changed" in refused.get_data(as_text=True)
    assert heading(client.get("/setup").get_data(as_text=True)) == "Set a password"
    assert "Please log in" in client.get("/", follow_redirects=True).get_data(as_text=True)
    # Back from the setup page goes back there; a made-up target goes to the login page.
    assert choose(client, "uk", page="/setup", back="panel.setup").location.endswith("/setup")
    assert heading(client.get("/setup").get_data(as_text=True)) == "Задати пароль"
    assert choose(client, "en", page="/login", back="https://evil.example/").location.endswith("/login")
    # An unknown language changes nothing; a forged form neither.
    assert choose(client, "de", page="/login").status_code == 302
    assert client.get_cookie(texts.COOKIE).value == "en"
    assert client.post("/language", data={"language": "uk"}).status_code == 400
    assert client.get_cookie(texts.COOKIE).value == "en"
    # After login the browser's choice holds until the user chooses on the account page.
    log_in(client)
    assert heading(client.get("/").get_data(as_text=True)) == "Home"
    assert db.scalar("SELECT language FROM panel_users WHERE login = 'owner'") is None


def test_the_shops_language_is_the_default_and_a_users_choice_wins(settings, db, owner):
    client = make_client(settings, db, bot_language="en")
    assert heading(client.get("/login").get_data(as_text=True)) == "Log in"
    log_in(client)
    assert heading(client.get("/").get_data(as_text=True)) == "Home"
    choose(client, "uk")
    assert heading(client.get("/").get_data(as_text=True)) == "Головна"


# -- the catalogues ---------------------------------------------------------------------------

# Keys the templates build from a value ('status.' ~ c.status): every value they can take.
DYNAMIC = {
    "status.": ("new", "in_work", "done", "archive"),
    "role.": ("pending", "manager", "admin", "banned"),
    "lang.": texts.LANGUAGES,
    "team.do_": ("approve", "admin", "ban"),
    "tg.do_": ("start", "stop", "restart"),
    "walink.do_": ("setup", "logout", "reboot", "remove"),
}
# label(prefix, value): a stored value's name where the catalogue has one (else the value).
# The values each can take (the schema's and the services' own words) are all named.
LABELS = {"digest.status_": ("queued", "sending", "sent", "unknown", "failed"),
          "tg.state_": ("online", "offline", "revoked", "stopped"),
          "wa.provider_": ("cloud", "greenapi", "devino"),
          "wa.receive_": ("webhook", "poll")}


def fields(value: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(value) if name}


def test_both_catalogues_have_the_same_keys_and_placeholders_and_no_markup():
    uk, en = texts.TEXTS["uk"], texts.TEXTS["en"]
    assert set(texts.TEXTS) == set(texts.LANGUAGES)
    assert sorted(set(uk) - set(en)) == [], "missing in English"
    assert sorted(set(en) - set(uk)) == [], "missing in Ukrainian"
    for key in uk:
        assert fields(uk[key]) == fields(en[key]), key
        for value in (uk[key], en[key]):
            assert value.strip() or key.startswith("chart."), key
            assert "<" not in value and ">" not in value.replace("→", ""), key   # no markup
            value.format(**{name: "x" for name in fields(value)})                 # braces sound
            assert all(name.isidentifier() and name.islower() for name in fields(value)), key


def used_keys() -> tuple[set[str], set[str], set[str]]:
    """(literal keys, dynamic prefixes, label prefixes) the panel's templates and code use."""
    literal, dynamic, labels = set(), set(), set()
    for path in sorted((PANEL / "templates").glob("*.html")):
        source = path.read_text()
        literal |= set(re.findall(r"\bt\('([a-z0-9_.]+)'[,)]", source))
        dynamic |= set(re.findall(r"\bt\('([a-z0-9_.]+)' ~", source))
        labels |= set(re.findall(r"\blabel\('([a-z0-9_.]+)'", source))
        # Nothing visible outside the catalogue: no tag's text starts with a letter.
        stripped = re.sub(r"{[{%#].*?[}%#]}", "", source, flags=re.S)
        stripped = re.sub(r"<code>.*?</code>", "", stripped)      # commands and setting names
        for words in re.findall(r">([^<>]*[A-Za-zА-Яа-яІіЇїЄє][^<>]*)<", stripped):
            assert words.strip(" ·:()—") in ALLOWED_WORDS, (path.name, words)
    for path in sorted(PANEL.glob("*.py")):
        source = path.read_text()
        literal |= set(re.findall(r'\btext\(\s*"([a-z0-9_.]+)"', source))
        literal |= set(re.findall(r'\babort\(\d+, "([a-z0-9_.]+)"\)', source))
        dynamic |= set(re.findall(r'\btext\(f"([a-z0-9_.]+)\{', source))
        literal |= {key for key in re.findall(r'"((?:webhook|tg|wa|reports)\.[a-z0-9_]+)"', source)
                    if not key.endswith(".html")}      # keys chosen in code, not templates' names
    return literal, dynamic, labels


# Words a template may show as they are: names of products and of settings, not words.
ALLOWED_WORDS = {"KeepDesk", "WhatsApp", "Planfix", "apiUrl", "idInstance", "apiTokenInstance",
                 "PID", "{apiUrl}/waInstance{id}/{method}/{token} (Green-API"}


def test_every_key_the_panel_uses_is_in_the_catalogue():
    literal, dynamic, labels = used_keys()
    catalogue = texts.TEXTS[texts.DEFAULT_LANGUAGE]
    assert len(literal) > 200
    assert sorted(k for k in literal if k not in catalogue) == []
    for prefix in dynamic:
        if prefix in ("error.", "error.desc_", "retry.why_", "refusal.", "role."):
            continue    # in code: checked below
        assert prefix in DYNAMIC, f"a template builds keys from {prefix!r}: list its values"
        for value in DYNAMIC[prefix]:
            assert f"{prefix}{value}" in catalogue, (prefix, value)
    assert labels <= set(LABELS)
    for prefix, values in LABELS.items():
        for value in values:
            assert f"{prefix}{value}" in catalogue, (prefix, value)
    for code in (404, 405, 413):
        assert f"error.{code}" in catalogue and f"error.desc_{code}" in catalogue
    for why in ("done", "pending", "running", "missing"):
        assert f"retry.why_{why}" in catalogue


def test_the_whatsapp_scripts_words_come_from_the_page():
    script = (PANEL / "static" / "whatsapp.js").read_text()
    shown = re.findall(r'textContent = "([^"]*)"', script)
    assert shown == [] and 'getAttribute("data-unknown")' in script
    assert "data-unknown=\"{{ t('walink.unknown') }}\"" in (PANEL / "templates" / "whatsapp_link.html").read_text()


# -- in a browser -----------------------------------------------------------------------------

@pytest.mark.xdist_group("browser")
def test_the_language_switch_in_chromium(browser, settings, db, owner, artifacts):
    from selenium.webdriver.common.by import By
    from doors.panel import create_app
    from sandbox._server import ServerThread
    from test_panel_browser import submit
    server = ServerThread(create_app(settings.replace(web_secret_key="c" * 48), db)).start()
    try:
        browser.delete_all_cookies()
        browser.get(f"{server.url}/login")
        h1 = lambda: browser.find_element(By.TAG_NAME, "h1").text  # noqa: E731
        assert h1() == "Вхід"
        submit(browser, "lang-en")
        assert h1() == "Log in" and browser.find_element(By.ID, "login-submit").text == "Log in"
        browser.find_element(By.ID, "login").send_keys("owner")
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        submit(browser, "login-submit")
        assert browser.find_element(By.ID, "nav-home").text == "Home"
        browser.get(f"{server.url}/account")
        browser.find_element(By.CSS_SELECTOR, '#language option[value="uk"]').click()
        submit(browser, "language-submit")
        assert "Мову панелі змінено." in browser.find_element(By.TAG_NAME, "body").text
        assert browser.find_element(By.ID, "nav-home").text == "Головна"
        browser.save_screenshot(str(artifacts / "panel-language-uk.png"))
        for path, (uk, _) in PAGES.items():
            browser.get(f"{server.url}{path}")
            assert h1().startswith(uk), path
        assert db.scalar("SELECT language FROM panel_users WHERE login = 'owner'") == "uk"
    finally:
        server.stop()
