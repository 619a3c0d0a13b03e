"""A key per purpose, links that expire, and files that never run on our origin.

Through the integrations door over real HTTP (MariaDB, the Devino sandbox, a worker):
a file link offered to Devino and an attachment link given to Planfix open their file
until they expire and never after; a link signed with LINK_KEY (which the CRM knows and
proxy logs show) or with the old key derived from TG_ACCOUNTS_KEY opens nothing; each
purpose has its own key; a customer's HTML or SVG file is downloaded, sandboxed, never
rendered; the master secret is required and strong with a public address, and made once
(0600 in a 0700 folder) without one.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import stat
import time

import pytest
import requests

import crm_listener
from channels.whatsapp.gateways import FILE_LINK_TTL, file_link
from config import SettingsError, load_settings
from conftest import METRICS_TOKEN, SECRET_KEY, base_environment
from harness import Desk, wait_for
from models.gateways import FileRepository
from models.tgaccounts import MediaRepository
from sandbox._server import ServerThread
from utils import keys, signed
from utils.secretbox import SecretBox
from wa_providers import gateway_settings

HTML = b"<html><script>fetch('/metrics').then(r=>r.text()).then(alert)</script></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>'
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def devino_settings(settings, public_url="http://127.0.0.1:9"):
    return settings.replace(whatsapp_provider="devino", whatsapp_devino_url="http://127.0.0.1:9",
                            whatsapp_devino_key="a2V5", whatsapp_devino_from="380441234567",
                            whatsapp_devino_callback_secret="devino-secret-0001", public_url=public_url)


def on(server, link: str) -> str:
    """The link as the door at `server` serves it (the link's base is the public URL)."""
    return server.url + "/" + link.split("/", 3)[3]


@pytest.fixture
def devino_door(settings, db):
    local = devino_settings(settings)
    server = ServerThread(crm_listener.create_app(local, db=db)).start()
    yield local, server
    server.stop()


def test_a_devino_file_link_opens_its_file_until_it_expires_and_never_after(devino_door, db):
    settings, server = devino_door
    file_id = FileRepository(db).add("380441234567", "rahunok.pdf", "application/pdf", b"%PDF invoice")
    fresh = requests.get(on(server, file_link(settings, file_id)), timeout=10)
    assert fresh.status_code == 200 and fresh.content == b"%PDF invoice"
    assert fresh.headers["Content-Disposition"].startswith('attachment; filename="rahunok.pdf"')
    # A link made more than FILE_LINK_TTL ago, however well signed, opens nothing.
    old = file_link(settings, file_id, now=time.time() - FILE_LINK_TTL - 5)
    assert requests.get(on(server, old), timeout=10).status_code == 403
    # Its expiry pushed forward: the signature no longer matches.
    query = signed.sign(f"/whatsapp/files/{file_id}", keys.derive(settings, keys.FILE_LINKS), ttl=60)
    pushed = f"{server.url}/whatsapp/files/{file_id}?e={int(query['e']) + 10**6}&s={query['s']}"
    assert requests.get(pushed, timeout=10).status_code == 403
    # No signature, or another file's: nothing is told about the file.
    assert requests.get(f"{server.url}/whatsapp/files/{file_id}", timeout=10).status_code == 403
    other = file_link(settings, file_id + 1)
    assert requests.get(on(server, other).replace(f"/{file_id + 1}?", f"/{file_id}?"),
                        timeout=10).status_code == 403


def test_a_file_link_signed_with_link_key_opens_nothing(devino_door, db):
    settings, server = devino_door
    file_id = FileRepository(db).add("380441234567", "secret.pdf", "application/pdf", b"%PDF secret")
    link_key = settings.link_key.encode()
    # The old scheme: /whatsapp/files/<id>/<HMAC(LINK_KEY)>, never expiring.
    old_signature = hmac.new(link_key, f"wa-file:{file_id}".encode(), hashlib.sha256).hexdigest()[:32]
    assert requests.get(f"{server.url}/whatsapp/files/{file_id}/{old_signature}",
                        timeout=10).status_code == 404
    # Today's scheme, but keyed by what the CRM knows.
    query = signed.sign(f"/whatsapp/files/{file_id}", link_key, ttl=600)
    forged = requests.get(f"{server.url}/whatsapp/files/{file_id}", params=query, timeout=10)
    assert forged.status_code == 403 and b"secret" not in forged.content


def test_devino_downloads_a_file_1c_sent_through_its_expiring_link(sandbox_settings, db, tg, crm, dv):
    from services.api_tokens import ApiTokens
    desk = Desk(gateway_settings(sandbox_settings, "devino", dv, onec_api_enabled=True,
                                 tg_limit_private_per_s=50.0), db, tg, crm, wa=dv).start()
    try:
        token = ApiTokens(db).create("1c")
        dv.customer_writes("380671234567", "Надішліть рахунок")   # the 24-hour window opens

        def upload():
            answer = requests.post(f"{desk.listener_url}/api/v1/messages/file", timeout=10,
                                   headers={"Authorization": f"Bearer {token}"},
                                   data={"phone": "0671234567", "caption": "Рахунок"},
                                   files={"file": ("rahunok.pdf", b"%PDF 1C invoice", "application/pdf")})
            return answer.status_code == 202
        wait_for(upload, timeout=20)
        wait_for(lambda: dv.files, timeout=20)
        assert [f["data"] for f in dv.files.values()] == [b"%PDF 1C invoice"]
    finally:
        desk.stop()


@pytest.fixture
def media_door(planfix_settings, db):
    server = ServerThread(crm_listener.create_app(planfix_settings, db=db)).start()
    yield planfix_settings, server
    server.stop()


def media_link(settings, server, media_id: int, *, key: bytes | None = None, ttl=600, now=None) -> str:
    key = key if key is not None else keys.derive(settings, keys.MEDIA_LINKS)
    return signed.signed_url(server.url, f"/media/{media_id}", key, ttl=ttl, now=now)


def test_an_attachment_link_works_until_it_expires_and_no_other_key_signs_one(media_door, db):
    settings, server = media_door
    media_id = MediaRepository(db).store("380670000001", 501, "photo.png", "image/png", PNG)
    good = requests.get(media_link(settings, server, media_id), timeout=10)
    assert good.status_code == 200 and good.content == PNG
    assert requests.get(media_link(settings, server, media_id, ttl=60, now=time.time() - 120),
                        timeout=10).status_code == 403
    for other in (settings.link_key.encode(),                                # the CRM's key
                  SecretBox(settings.tg_accounts_key).derive("signed-media"),  # the old derivation
                  keys.derive(settings, keys.FILE_LINKS)):                   # another purpose's
        refused = requests.get(media_link(settings, server, media_id, key=other), timeout=10)
        assert refused.status_code == 403 and PNG not in refused.content


@pytest.mark.parametrize("name, mime, data", [
    ("invoice.html", "text/html", HTML),
    ("logo.svg", "image/svg+xml", SVG),
    ('evil"; filename=x.html', "text/html; charset=utf-8", HTML),
])
def test_a_customers_html_or_svg_is_downloaded_sandboxed_never_rendered(media_door, db, name, mime, data):
    settings, server = media_door
    media_id = MediaRepository(db).store("380670000001", 600 + len(name), name, mime, data)
    answer = requests.get(media_link(settings, server, media_id), timeout=10)
    assert answer.status_code == 200 and answer.content == data
    disposition = answer.headers["Content-Disposition"]
    assert disposition.startswith("attachment; filename=\"") and disposition.count('"') == 2
    assert answer.headers["Content-Security-Policy"] == "sandbox"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_a_customers_photo_is_still_shown_inline_but_sandboxed(media_door, db):
    settings, server = media_door
    media_id = MediaRepository(db).store("380670000001", 701, "фото.png", "image/png", PNG)
    answer = requests.get(media_link(settings, server, media_id), timeout=10)
    assert answer.headers["Content-Disposition"].startswith("inline;")
    assert answer.headers["Content-Type"] == "image/png"
    assert answer.headers["Content-Security-Policy"] == "sandbox"


def test_a_devino_file_link_serves_html_as_a_sandboxed_download(devino_door, db):
    settings, server = devino_door
    file_id = FileRepository(db).add("380441234567", "page.html", "text/html", HTML)
    answer = requests.get(on(server, file_link(settings, file_id)), timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    assert answer.headers["Content-Security-Policy"] == "sandbox"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


# -- the master secret ------------------------------------------------------------------------

def test_every_purpose_has_its_own_key_and_none_is_the_master_secret(settings):
    derived = {purpose: keys.derive(settings, purpose) for purpose in keys.PURPOSES}
    assert len(set(derived.values())) == len(keys.PURPOSES) >= 2
    assert SECRET_KEY.encode() not in derived.values()
    assert all(len(key) == 32 for key in derived.values())
    assert keys.derive(settings.replace(secret_key=SECRET_KEY[::-1]), keys.MEDIA_LINKS) != derived[keys.MEDIA_LINKS]


@pytest.mark.parametrize("public", [{"PUBLIC_URL": "https://desk.example"},
                                    {"WEBHOOK_URL": "https://bot.example"}])
def test_with_a_public_address_a_missing_or_weak_secret_key_stops_start_up(mariadb, public):
    env = {k: v for k, v in base_environment(mariadb, METRICS_TOKEN=METRICS_TOKEN, **public).items()
           if k != "SECRET_KEY"}
    with pytest.raises(SettingsError, match="SECRET_KEY is required when"):
        load_settings(env, env_file=None)
    for weak in ("short-secret", "a" * 64, "0123456789abcdef" * 4, "x1" * 30):
        with pytest.raises(SettingsError, match="SECRET_KEY is malformed"):
            load_settings({**env, "SECRET_KEY": weak}, env_file=None)
    assert load_settings({**env, "SECRET_KEY": keys.generate()}, env_file=None).public_deployment


def test_without_a_public_address_one_private_secret_is_made_once_and_shared(settings, tmp_path):
    local = settings.replace(secret_key="", var_dir=tmp_path / "var")
    first = keys.derive(local, keys.MEDIA_LINKS)
    path = tmp_path / "var" / "keys" / "secret_key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert keys.derive(local, keys.MEDIA_LINKS) == first            # every process agrees
    assert keys.weakness(path.read_text().strip()) is None
    with pytest.raises(keys.MasterSecretError, match="SECRET_KEY is required"):
        keys.derive(local.replace(public_url="https://desk.example"), keys.MEDIA_LINKS)


# -- the Green-API webhook is never open -------------------------------------------------------

INSTANCE = "1101000077"


def greenapi_body(kind: str = "incomingMessageReceived", message_id: str = "FAKE1") -> dict:
    body = {"typeWebhook": kind, "instanceData": {"idInstance": int(INSTANCE), "wid": "380440000001@c.us"},
            "timestamp": int(time.time()), "idMessage": message_id,
            "senderData": {"chatId": "380671112233@c.us", "sender": "380671112233@c.us", "senderName": "X"},
            "messageData": {"typeMessage": "textMessage", "textMessageData": {"textMessage": "так"}}}
    return body


def greenapi_door(settings, db, **changes):
    local = settings.replace(whatsapp_provider="greenapi", whatsapp_greenapi_url="http://127.0.0.1:9",
                             whatsapp_greenapi_id=INSTANCE, whatsapp_greenapi_token="t0ken", **changes)
    return ServerThread(crm_listener.create_app(local, db=db)).start()


@pytest.mark.parametrize("changes", [
    {"whatsapp_greenapi_receive": "webhook", "whatsapp_greenapi_webhook_token": None},  # slipped past start-up
    {"whatsapp_greenapi_receive": "poll", "whatsapp_greenapi_webhook_token": None},     # polled: no webhook
    {"whatsapp_greenapi_receive": "poll", "whatsapp_greenapi_webhook_token": "hook-t0ken-1"},
])
def test_a_green_api_account_without_a_webhook_token_takes_no_webhook(settings, db, changes):
    server = greenapi_door(settings, db, **changes)
    try:
        for kind in ("incomingMessageReceived", "outgoingMessageReceived"):
            for headers in ({}, {"Authorization": ""}, {"Authorization": "Bearer "}):
                answer = requests.post(f"{server.url}/whatsapp/greenapi", json=greenapi_body(kind),
                                       headers=headers, timeout=10)
                assert answer.status_code == 401
        assert db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'wa_webhook'") == 0
    finally:
        server.stop()


def test_a_green_api_webhook_needs_the_accounts_token(settings, db):
    server = greenapi_door(settings, db, whatsapp_greenapi_webhook_token="hook-t0ken-1")
    try:
        url = f"{server.url}/whatsapp/greenapi"
        for given in ("", "hook-t0ken-2", "Bearer hook-t0ken-", "hook-t0ken-1x"):
            assert requests.post(url, json=greenapi_body(), headers={"Authorization": given},
                                 timeout=10).status_code == 401
        assert db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'wa_webhook'") == 0
        assert requests.post(url, json=greenapi_body(), headers={"Authorization": "Bearer hook-t0ken-1"},
                             timeout=10).status_code == 200
        assert db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'wa_webhook'") == 1
    finally:
        server.stop()


def test_green_api_in_webhook_mode_without_a_token_stops_start_up(mariadb):
    env = base_environment(mariadb, WHATSAPP_GREENAPI_URL="https://api.example", WHATSAPP_GREENAPI_ID=INSTANCE,
                           WHATSAPP_GREENAPI_TOKEN="t0ken")
    with pytest.raises(SettingsError, match="WHATSAPP_GREENAPI_WEBHOOK_TOKEN is required"):
        load_settings(env, env_file=None)
    with pytest.raises(SettingsError, match="WHATSAPP_GREENAPI_WEBHOOK_TOKEN is required"):
        load_settings({**env, "WHATSAPP_GREENAPI_RECEIVE": "webhook"}, env_file=None)
    assert load_settings({**env, "WHATSAPP_GREENAPI_RECEIVE": "poll"}, env_file=None).whatsapp_greenapi_receive == "poll"
    assert load_settings({**env, "WHATSAPP_GREENAPI_WEBHOOK_TOKEN": "hook-t0ken-1"}, env_file=None)


def test_every_webhook_mode_green_api_entry_of_the_accounts_file_needs_a_token(settings, tmp_path, monkeypatch):
    import json
    from channels.whatsapp.accounts import AccountsError, load_accounts
    from config import ROOT
    numbers = tmp_path / "numbers.json"
    entry = {"provider": "greenapi", "id": INSTANCE, "token": "t0ken", "url": "https://a.example"}
    for webhook_entry in (entry, dict(entry, receive="webhook")):
        numbers.write_text(json.dumps([webhook_entry]))
        with pytest.raises(AccountsError, match="needs a `webhook_token`"):
            load_accounts(settings.replace(whatsapp_numbers_file=numbers))
    numbers.write_text(json.dumps([dict(entry, receive="poll"), dict(entry, id="1101000078", webhook_token="w-t0ken")]))
    loaded = load_accounts(settings.replace(whatsapp_numbers_file=numbers))
    assert {a.id: a.webhook_token for a in loaded.values()} == {INSTANCE: "", "1101000078": "w-t0ken"}
    # The example the README points to is a valid file: its webhook accounts have tokens.
    example = json.loads((ROOT / "whatsapp_numbers.example.json").read_text())
    for item in example:
        for key, value in item.items():
            if key.endswith("_env"):
                monkeypatch.setenv(value, f"example-{value.lower()}")
    accounts = load_accounts(settings.replace(whatsapp_numbers_file=ROOT / "whatsapp_numbers.example.json",
                                              whatsapp_cloud_token="t", whatsapp_cloud_app_secret="s"))
    assert len(accounts) == len(example)
    assert all(a.webhook_token for a in accounts.values() if a.provider == "greenapi" and a.receive == "webhook")
