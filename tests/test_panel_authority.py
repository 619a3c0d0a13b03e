"""Authority in the admin panel follows the person, on the server — each case an attack
through the panel's real HTTP door (a threaded werkzeug server on a real port, the
running desk, the Telegram emulator, MariaDB), now refused:

* an admin banned or demoted in Telegram loses the panel at the next request (a copied
  cookie too), and cannot log in again;
* logout ends the session on the server, so a copied cookie opens nothing; idle and old
  sessions end by themselves;
* guesses from one address never lock the owner out from another, and 20 parallel
  guesses get no more password checks than the limit;
* `/web_access` by a Telegram admin whose username is the owner's login never gives a
  code for the owner's login;
* revoking 1C token id N revokes that token only, not one named "N".
"""
from __future__ import annotations

import hashlib
import re
import threading

import pytest
import requests

from conftest import ADMIN_ID
from harness import wait_for
from models.users import ADMIN
from sandbox._server import ServerThread
from sandbox.telegram import parse_html
from services.panel_auth import LOGIN_LIMIT, PanelAuth

PASSWORD = "a long panel password"
OLENA = 7001          # a second Telegram admin, with a panel login of her own


@pytest.fixture
def panel(desk, db):
    from doors.panel import create_app
    app = create_app(desk.settings.replace(web_secret_key="a" * 48, trusted_proxies=("127.0.0.1",), bot_language="en"), db, deps=desk.deps)
    server = ServerThread(app).start()
    server.app = app
    yield server
    server.stop()


def csrf(browser: requests.Session, url: str) -> str:
    page = browser.get(url, allow_redirects=False).text
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def log_in(url: str, login: str, password: str = PASSWORD, address: str | None = None,
           browser: requests.Session | None = None) -> tuple[requests.Session, requests.Response]:
    browser = browser or requests.Session()
    headers = {"X-Forwarded-For": address} if address else {}
    answer = browser.post(f"{url}/login", allow_redirects=False, headers=headers,
                          data={"csrf_token": csrf(browser, f"{url}/login"), "login": login,
                                "password": password})
    return browser, answer


def copy_of(browser: requests.Session) -> requests.Session:
    """Another machine with the very same cookie (stolen, or kept after logout)."""
    other = requests.Session()
    for cookie in browser.cookies:
        other.cookies.set(cookie.name, cookie.value)
    return other


def opens(browser: requests.Session, url: str) -> bool:
    answer = browser.get(f"{url}/team", allow_redirects=False)
    assert answer.status_code in (200, 302), answer.status_code
    return answer.status_code == 200


def second_admin(desk, tg, username: str = "olena_admin") -> None:
    tg.user_sends_text(OLENA, "/start", username=username)
    wait_for(lambda: desk.deps.users.get(OLENA) is not None, timeout=20)
    desk.deps.users.set_role(OLENA, ADMIN)


def said(tg, chat: int) -> list[str]:
    return [parse_html(m.get("text") or "")[0] for m in tg.messages(chat)]


def test_an_admin_banned_in_telegram_loses_the_panel_at_once_and_cannot_log_in(panel, desk, db, tg):
    second_admin(desk, tg)
    PanelAuth(db, desk.deps.clock).set_password("olena", PASSWORD, OLENA)
    browser, answer = log_in(panel.url, "olena")
    assert answer.status_code == 302 and opens(browser, panel.url)
    stolen = copy_of(browser)
    assert opens(stolen, panel.url)
    token = csrf(browser, f"{panel.url}/team")
    _, code = PanelAuth(db, desk.deps.clock).grant_setup(OLENA, "olena_admin")   # a /web_access code

    # The owner bans her in Telegram (through the bot's update door).
    tg.user_sends_text(ADMIN_ID, "/start", username="owner_tg")
    tg.user_sends_text(ADMIN_ID, f"/ban_{OLENA}")
    wait_for(lambda: db.scalar("SELECT role FROM users WHERE tg_id = %s", (OLENA,)) == "banned",
             timeout=20)
    assert db.scalar("SELECT COUNT(*) FROM panel_sessions") == 0
    assert not opens(browser, panel.url) and not opens(stolen, panel.url)
    # Her open form cannot make anyone admin or ban the owner.
    desk.deps.users.register(5005, "accomplice", "Ivan", "uk")
    for target, action in ((5005, "admin"), (ADMIN_ID, "ban")):
        refused = browser.post(f"{panel.url}/team/{target}/{action}", data={"csrf_token": token},
                               allow_redirects=False)
        assert refused.status_code == 302 and "/login" in refused.headers["Location"]
    roles = {r["tg_id"]: r["role"] for r in db.fetchall("SELECT tg_id, role FROM users")}
    assert roles[5005] == "pending" and roles[ADMIN_ID] == "admin"
    # A fresh login with the right password is refused too.
    _, again = log_in(panel.url, "olena")
    assert again.status_code == 403 and "not an admin" in again.text
    # Nor does the /web_access code she got while an admin set a password any more.
    setup = requests.Session()
    refused = setup.post(f"{panel.url}/setup", allow_redirects=False, data={
        "csrf_token": csrf(setup, f"{panel.url}/setup"), "login": "olena", "code": code,
        "password": "a password of hers", "again": "a password of hers"})
    assert refused.status_code == 400
    _, old_password = log_in(panel.url, "olena", address="198.51.100.20")
    assert old_password.status_code == 403
    assert db.scalar("SELECT COUNT(*) FROM panel_sessions") == 0


def test_every_request_reads_the_persons_role_not_a_cached_one(panel, desk, db, tg):
    second_admin(desk, tg)
    PanelAuth(db, desk.deps.clock).set_password("olena", PASSWORD, OLENA)
    browser, _ = log_in(panel.url, "olena")
    assert opens(browser, panel.url)
    # Demoted by another process (its own cache, its own connection): the session row
    # is still there, and the very next request is refused all the same.
    db.execute("UPDATE users SET role = 'manager' WHERE tg_id = %s", (OLENA,))
    assert db.scalar("SELECT COUNT(*) FROM panel_sessions") == 1
    assert not opens(browser, panel.url)
    # Made admin again, the same session works again: the check is the person's role now.
    db.execute("UPDATE users SET role = 'admin' WHERE tg_id = %s", (OLENA,))
    assert opens(browser, panel.url)
    # A demotion through the desk ends the session for good.
    desk.deps.users.set_role(OLENA, "manager")
    desk.deps.users.set_role(OLENA, ADMIN)
    assert not opens(browser, panel.url)


def test_a_login_stays_bound_to_its_telegram_id(db, desk):
    auth = PanelAuth(db, desk.deps.clock)
    auth.set_password("olena", PASSWORD, OLENA)
    with pytest.raises(ValueError, match="bound to another Telegram id"):
        auth.set_password("olena", "another long password", ADMIN_ID)
    assert db.scalar("SELECT tg_id FROM panel_users WHERE login = 'olena'") == OLENA


def test_logout_ends_the_session_on_the_server(panel, desk, db):
    PanelAuth(db, desk.deps.clock).set_password("owner", PASSWORD)
    browser, _ = log_in(panel.url, "owner")
    kept = copy_of(browser)
    assert opens(kept, panel.url)
    assert browser.post(f"{panel.url}/logout", data={"csrf_token": csrf(browser, f"{panel.url}/team")},
                        allow_redirects=False).status_code == 302
    assert not opens(kept, panel.url)
    assert db.scalar("SELECT COUNT(*) FROM panel_sessions") == 0
    # The cookie's session id is not in the database: only its SHA-256.
    browser, _ = log_in(panel.url, "owner")
    app = panel.app
    cookie = app.session_interface.get_signing_serializer(app).loads(browser.cookies["keepdesk_panel"])
    session_id = cookie["_user_id"]
    [row] = db.fetchall("SELECT * FROM panel_sessions")
    assert session_id not in str(row) and row["id_hash"] == hashlib.sha256(session_id.encode()).hexdigest()


def test_idle_and_old_sessions_end_by_themselves(panel, desk, db):
    PanelAuth(db, desk.deps.clock).set_password("owner", PASSWORD)
    idle, _ = log_in(panel.url, "owner")
    old, _ = log_in(panel.url, "owner")
    assert opens(idle, panel.url) and opens(old, panel.url)
    hours = panel.app.extensions["keepdesk.panel"].auth
    [first, second] = db.fetchall("SELECT id_hash FROM panel_sessions ORDER BY created_at")
    db.execute("UPDATE panel_sessions SET seen_at = seen_at - INTERVAL %s SECOND WHERE id_hash = %s",
               (int(hours.idle.total_seconds()) + 60, first["id_hash"]))
    db.execute("UPDATE panel_sessions SET created_at = created_at - INTERVAL %s SECOND WHERE id_hash = %s",
               (int(hours.longest.total_seconds()) + 60, second["id_hash"]))
    assert not opens(idle, panel.url) and not opens(old, panel.url)


def test_guesses_from_one_address_do_not_lock_the_owner_out_from_another(panel, desk, db):
    PanelAuth(db, desk.deps.clock).set_password("owner", PASSWORD)
    for _ in range(LOGIN_LIMIT + 3):
        _, answer = log_in(panel.url, "owner", "not the password", address="203.0.113.9")
    assert answer.status_code == 429
    _, still = log_in(panel.url, "owner", PASSWORD, address="203.0.113.9")
    assert still.status_code == 429                    # that address stays locked
    browser, welcome = log_in(panel.url, "owner", PASSWORD, address="198.51.100.7")
    assert welcome.status_code == 302 and opens(browser, panel.url)


def test_parallel_guesses_get_no_more_password_checks_than_the_limit(panel, desk, db):
    PanelAuth(db, desk.deps.clock).set_password("owner", PASSWORD)
    auth = panel.app.extensions["keepdesk.panel"].auth
    checks, lock = [], threading.Lock()
    verify = auth._verify

    def counted(password_hash, password):
        with lock:
            checks.append(password)
        return verify(password_hash, password)

    auth._verify = counted
    browsers = []
    for _ in range(20):
        browser = requests.Session()
        browsers.append((browser, csrf(browser, f"{panel.url}/login")))
    start, answers = threading.Barrier(20), []

    def guess(n: int) -> None:
        browser, token = browsers[n]
        start.wait()
        answer = browser.post(f"{panel.url}/login", allow_redirects=False,
                              headers={"X-Forwarded-For": "203.0.113.50"},
                              data={"csrf_token": token, "login": "owner", "password": f"guess {n:04d} x"})
        with lock:
            answers.append(answer.status_code)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == 20
    assert len(checks) == LOGIN_LIMIT, (len(checks), sorted(answers))
    assert answers.count(429) >= 20 - LOGIN_LIMIT + 1 and set(answers) <= {401, 429}


def test_web_access_by_a_namesake_of_the_owner_gives_no_code_for_the_owners_login(panel, desk, db, tg):
    PanelAuth(db, desk.deps.clock).set_password("owner", PASSWORD)      # create-admin owner
    second_admin(desk, tg, username="owner")             # a Telegram admin renamed to "owner"
    tg.user_sends_text(OLENA, "/web_access", username="owner")
    wait_for(lambda: any("/setup" in t for t in said(tg, OLENA)), timeout=20)
    message = [t for t in said(tg, OLENA) if "/setup" in t][-1]
    login = re.search(r"(?:Login|Логін): (\S+)", message).group(1)
    code = re.search(r"([A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4})", message).group(1)
    assert login != "owner"

    browser = requests.Session()

    def setup(name: str) -> requests.Response:
        return browser.post(f"{panel.url}/setup", allow_redirects=False, data={
            "csrf_token": csrf(browser, f"{panel.url}/setup"), "login": name, "code": code,
            "password": "the attacker's password", "again": "the attacker's password"})

    assert setup("owner").status_code == 400
    _, owner = log_in(panel.url, "owner", PASSWORD, address="198.51.100.7")
    assert owner.status_code == 302                       # the owner's password still works
    _, attacker = log_in(panel.url, "owner", "the attacker's password", address="198.51.100.8")
    assert attacker.status_code == 401
    # Her own login works, bound to her Telegram id; a later /web_access finds it by the id.
    assert setup(login).status_code == 302
    assert db.scalar("SELECT tg_id FROM panel_users WHERE login = %s", (login,)) == OLENA
    tg.user_sends_text(OLENA, "/web_access", username="renamed_again")
    wait_for(lambda: len([t for t in said(tg, OLENA) if "/setup" in t]) == 2, timeout=20)
    again = [t for t in said(tg, OLENA) if "/setup" in t][-1]
    assert re.search(r"(?:Login|Логін): (\S+)", again).group(1) == login
    assert db.scalar("SELECT tg_id FROM panel_users WHERE login = 'owner'") is None


def test_revoking_1c_token_id_n_leaves_a_token_named_n(panel, desk, db):
    from services.api_tokens import ApiTokens
    tokens = ApiTokens(db)
    first = tokens.create("1c-main")
    first_id = db.scalar("SELECT id FROM api_tokens WHERE name = '1c-main'")
    namesake = tokens.create(str(first_id))
    PanelAuth(db, desk.deps.clock).set_password("owner", PASSWORD)
    browser, _ = log_in(panel.url, "owner")
    answer = browser.post(f"{panel.url}/settings/tokens/{first_id}/revoke", allow_redirects=False,
                          data={"csrf_token": csrf(browser, f"{panel.url}/settings")})
    assert answer.status_code == 302
    assert not tokens.valid(first)
    assert tokens.valid(namesake)
