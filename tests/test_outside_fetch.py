"""Addresses that come from outside are downloaded only from the public internet or from
exactly an origin the operator configured (utils/fetch.py): a Planfix attachment, a CRM
file link the panel shows, a gateway's downloadUrl, a Devino content URL, a 1C file URL.

Nothing here sends a packet to a non-loopback address: every test watches the sockets
and fails if a connection to anything but 127.0.0.1 / ::1 is even attempted — the
refusals of 10.x and 169.254.x happen when the address is checked, before connecting.
"""
from __future__ import annotations

import ipaddress
import socket
from datetime import datetime

import pytest
import requests
from flask import Flask, Response, redirect, request

from channels.base import Rejected
from channels.whatsapp.accounts import Account
from harness import Desk, relayed_message_dead_letter, wait_for
from sandbox._server import ServerThread
from utils import fetch

NUMBER = "380501112233"


@pytest.fixture(autouse=True)
def only_loopback_is_ever_connected(monkeypatch):
    """Every connection attempt of this process, recorded; a non-loopback one fails the test
    (and is never made)."""
    attempts: list[str] = []
    real = socket.socket.connect

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else str(address)
        attempts.append(host)
        if isinstance(address, tuple) and not ipaddress.ip_address(host.split("%")[0]).is_loopback:
            raise AssertionError(f"a connection to {host} was attempted")
        return real(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield attempts


class Recorder:
    """A local HTTP server that keeps the headers of every request; /file answers bytes,
    /big a large body, /to?url=… redirects there."""

    def __init__(self) -> None:
        self.seen: list[dict] = []
        app = Flask(__name__)

        @app.route("/<path:path>", methods=["GET", "POST"])
        def any_path(path):
            self.seen.append({"path": "/" + path, "headers": dict(request.headers)})
            if request.method == "POST":
                return {}
            if path == "to":
                return redirect(request.args["url"], 302)
            if path == "big":
                return Response(b"x" * 200_000, mimetype="application/octet-stream")
            return Response(b"%PDF file", mimetype="application/pdf")

        self.server = ServerThread(app).start()
        self.url = self.server.url

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def recorder():
    running = Recorder()
    yield running
    running.stop()


# -- the fetcher itself ------------------------------------------------------------------

@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::",
                                     "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
                                     "64:ff9b::a00:1", "2002:7f00:1::1", "192.0.2.1"])
def test_private_loopback_link_local_and_reserved_addresses_are_not_public(address):
    assert not fetch.public_address(address)


def test_public_addresses_are_public():
    assert all(fetch.public_address(a) for a in ("8.8.8.8", "1.1.1.1", "::ffff:8.8.8.8", "2606:4700::1111"))


@pytest.mark.parametrize("url", ["http://10.0.0.1/x", "http://169.254.169.254/latest/meta-data/",
                                 "http://[fd00::1]:8080/", "http://[::ffff:10.0.0.1]/", "http://0x7f000001/",
                                 "http://2130706433/", "http://localhost/", "file:///etc/passwd",
                                 "gopher://127.0.0.1/", "ftp://example.com/a"])
def test_internal_or_non_http_addresses_are_refused_before_any_connection(url, only_loopback_is_ever_connected):
    with pytest.raises(fetch.Refused):
        fetch.Fetcher().get(url, max_bytes=1000)
    assert only_loopback_is_ever_connected == []


def test_a_configured_origin_may_be_local_but_only_exactly_it(recorder):
    port = int(recorder.url.rsplit(":", 1)[1])
    trusted = fetch.Fetcher([recorder.url])
    assert trusted.get(f"{recorder.url}/file", max_bytes=1000).data == b"%PDF file"
    for other in (f"http://localhost:{port}/file", f"http://127.0.0.2:{port}/file",
                  f"https://127.0.0.1:{port}/file", f"http://user@127.0.0.1:{port}/file"):
        with pytest.raises(fetch.Refused):
            trusted.get(other, max_bytes=1000)
    assert [s["path"] for s in recorder.seen] == ["/file"]


def test_a_name_that_resolves_to_loopback_at_connect_time_is_refused_there(recorder, monkeypatch):
    """No DNS-rebinding gap: the connection resolves and checks again, and connects to
    exactly the address it checked."""
    port = int(recorder.url.rsplit(":", 1)[1])
    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port))]])
    real = socket.getaddrinfo

    def rebinding(host, *args, **kwargs):
        if host == "rebind.example":
            return next(answers, [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))])
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    with pytest.raises(fetch.Refused, match="not a public address"):
        fetch.Fetcher().get(f"http://rebind.example:{port}/file", max_bytes=1000)
    assert recorder.seen == []


def test_every_redirect_is_checked_and_credentials_never_follow_one(recorder):
    other = Recorder()
    try:
        # The redirecting server plays a public host (trusted here: the tests cannot reach
        # the internet); the place it sends us to is not configured.
        fetcher = fetch.Fetcher([recorder.url])
        with pytest.raises(fetch.Refused, match="not a public address"):
            fetcher.get(f"{recorder.url}/to?url={other.url}/file", max_bytes=1000)
        assert other.seen == []
        both = fetch.Fetcher([recorder.url, other.url])
        got = both.get(f"{recorder.url}/to?url={other.url}/file", max_bytes=1000,
                       headers={"Authorization": "Key secret"}, credentials_for=recorder.url)
        assert got.data == b"%PDF file"
        assert recorder.seen[-1]["headers"].get("Authorization") == "Key secret"
        assert "Authorization" not in other.seen[-1]["headers"]
        with pytest.raises(fetch.Refused, match="redirects"):
            both.get(f"{recorder.url}/to?url={recorder.url}/to%3Furl%3D{recorder.url}/to%253Furl%253D"
                     f"{recorder.url}/to%25253Furl%25253D{recorder.url}/file", max_bytes=1000)
    finally:
        other.stop()


def test_a_body_over_the_cap_stops_the_download(recorder):
    with pytest.raises(fetch.TooLarge):
        fetch.Fetcher([recorder.url]).get(f"{recorder.url}/big", max_bytes=100_000)


# -- Planfix: an employee's attachment -----------------------------------------------------

@pytest.fixture
def guarded_relay(planfix_settings, db, tg, crm, tga, planfix, accounts_env, recorder):
    # The recorder plays a public file host that redirects; the desk's own door is not trusted.
    settings = planfix_settings.replace(media_max_bytes=100_000,
                                        fetch_trusted_origins=(planfix.url, recorder.url))
    running = Desk(settings, db, tg, crm).start()
    running.accounts = running.start_accounts(accounts_env)
    yield running
    running.stop()


def test_planfix_attachments_from_inside_are_refused_and_reported_while_a_planfix_file_is_sent(
        guarded_relay, tga, planfix, tmp_path, recorder):
    from test_planfix_e2e import received, start_account
    relay = guarded_relay
    token = start_account(relay, tga, planfix, tmp_path)
    customer = tga.add_user("Ivan")
    tga.customer_writes(NUMBER, customer["id"], "Привіт")
    wait_for(lambda: received(planfix), timeout=20)
    cases = {"pf-metrics": f"{relay.listener_url}/metrics",
             "pf-metadata": "http://169.254.169.254/latest/meta-data/iam/",
             "pf-lan": "http://10.0.0.1/admin",
             "pf-redirect": f"{recorder.url}/to?url={relay.listener_url}/metrics",
             "pf-big": f"{recorder.url}/big"}
    for message_id, url in cases.items():
        answer = planfix.send(relay.listener_url, token=token, message="Файл", chat_id=str(customer["id"]),
                              channel=NUMBER, message_id=message_id, attachments=[("f.txt", url)])
        assert answer.status_code == 200
    good = planfix.add_file("invoice.pdf", b"%PDF-1.4 invoice", "application/pdf")
    planfix.send(relay.listener_url, token=token, message="Рахунок", chat_id=str(customer["id"]),
                 channel=NUMBER, message_id="pf-good", attachments=[("invoice.pdf", good)])
    wait_for(lambda: planfix.statuses("pf-good") == ["sent"], timeout=30)
    for message_id in cases:
        wait_for(lambda: planfix.statuses(message_id) == ["error"], timeout=30)
    reasons = {r["messageId"]: r["errorText"] for r in received(planfix, "messageStatus", messageStatus="error")}
    for message_id in ("pf-metrics", "pf-metadata", "pf-lan", "pf-redirect"):
        assert "not a public address" in reasons[message_id], reasons[message_id]
    assert "over 100000 bytes" in reasons["pf-big"]
    # Only the Planfix file reached the customer; nothing of /metrics did.
    sent = tga.sent(NUMBER, to=customer["id"])
    assert [(m["text"], (m.get("file") or {}).get("name")) for m in sent] == [("Рахунок", "invoice.pdf")]
    assert [s["path"] for s in recorder.seen if s["path"] == "/to"] == ["/to"]   # it redirected; not followed


# -- WhatsApp gateways ---------------------------------------------------------------------

def test_devino_sends_its_key_only_to_exactly_its_own_origin(recorder, monkeypatch):
    """`https://api.devino.online.evil.example/…` and `…@evil.example/…` start with the
    account's URL; neither receives the key. The names resolve, in this test only, to the
    recorder, which plays every host (its address counted as public here)."""
    from channels.whatsapp.providers.devino import Devino
    port = int(recorder.url.rsplit(":", 1)[1])
    real = socket.getaddrinfo

    def dns(host, *args, **kwargs):
        if host in ("api.devino.test", "api.devino.test.evil.example", "evil.example"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", dns)
    base, evil = "http://api.devino.test", "http://api.devino.test.evil.example"   # both on port 80 "here"
    monkeypatch.setattr(fetch, "public_address", lambda address: True)   # every host plays a public one
    account = Account("380441234567", "devino-KEY-1", provider="devino", url=base)
    provider = Devino(None)
    assert provider.fetch_media(account, f"{base}/files/1", 1000).data == b"%PDF file"
    assert recorder.seen[-1]["headers"]["Authorization"] == "Key devino-KEY-1"
    provider.fetch_media(account, f"{evil}/files/2", 1000)
    assert recorder.seen[-1]["path"] == "/files/2" and "Authorization" not in recorder.seen[-1]["headers"]
    with pytest.raises(Rejected):
        provider.fetch_media(account, f"{base}@evil.example/files/3", 1000)
    assert [s["path"] for s in recorder.seen] == ["/files/1", "/files/2"]
    assert not [s for s in recorder.seen[1:] if "Authorization" in s["headers"]]


def test_a_green_api_download_url_inside_is_refused(recorder):
    from channels.whatsapp.providers.greenapi import GreenApi
    account = Account("1101000001", "green-token", provider="greenapi", url=recorder.url, media_url=recorder.url)
    assert GreenApi().fetch_media(account, f"{recorder.url}/file", 1000).data == b"%PDF file"
    for url in ("http://127.0.0.1:9/metrics", "http://169.254.169.254/latest/", "http://10.1.2.3/f",
                f"{recorder.url}/to?url=http://127.0.0.1:9/metrics"):
        with pytest.raises(Rejected, match="not a public address"):
            GreenApi().fetch_media(account, url, 1000)


# -- 1C: a file by URL ---------------------------------------------------------------------

def test_a_1c_file_url_inside_is_refused_at_the_door(api, wa, tg, monkeypatch):
    from conftest import SHARED_CHAT
    wa.customer_writes("380671234567", "Надішліть, будь ласка, рахунок")   # the 24-hour window is open
    wait_for(lambda: [m for m in tg.messages(SHARED_CHAT) if "рахунок" in (m.get("visible_text") or "")],
             timeout=20)
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: (   # a public name; never connected to
        [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))] if host == "files.shop.example"
        else real(host, *a, **k)))
    public = api.v1("POST", "/messages", phone="0671234567", type="document",
                    url="https://files.shop.example/a.pdf", filename="a.pdf")
    assert public.status_code == 202, public.text
    for url in ("https://127.0.0.1:9/metrics", "https://169.254.169.254/latest/", "https://10.0.0.1/a.pdf",
                "https://[::1]/a.pdf", "https://localhost/a.pdf"):
        answer = api.v1("POST", "/messages", phone="0671234567", type="document", url=url, filename="a.pdf")
        assert answer.status_code == 400, (url, answer.text)
        assert "url" in answer.json()["error"]


@pytest.fixture
def api(wa_desk, wa, db):
    from test_onec_api import Api
    from services.api_tokens import ApiTokens
    return Api(wa_desk.listener_url, ApiTokens(db).create("1c-shop"))


# -- the panel: a CRM file link --------------------------------------------------------------

def test_the_panel_does_not_fetch_a_crm_link_that_points_inside(settings, db, recorder):
    from doors.panel import create_app
    from models.inbound import ConversationKey
    from models.conversations import ConversationRepository
    from services.panel_auth import PanelAuth
    from test_panel import log_in, seed_wait
    app = create_app(settings.replace(web_secret_key="k" * 40, keeping_web_url=recorder.url), db)
    PanelAuth(db, datetime.utcnow).set_password("owner", "correct horse battery")
    client = app.test_client()
    seed_wait(db, "9001", "keepingcrm", datetime.utcnow(), None, None)
    conversation = ConversationRepository(db).find(ConversationKey("keepingcrm", "", "9001")).id
    links = {"good": f"{recorder.url}/file", "metrics": "http://127.0.0.1:9/metrics",
             "metadata": "http://169.254.169.254/latest/", "redirect": f"{recorder.url}/to?url=http://127.0.0.1:9/x"}
    ids = {name: db.insert("INSERT INTO messages (conversation_id, external_id, direction, is_file, filename, url)"
                           " VALUES (%s, %s, 'client', 1, 'f.pdf', %s)", (conversation, f"file-{name}", url))
           for name, url in links.items()}
    log_in(client)
    assert client.get(f"/conversations/{conversation}/files/{ids['good']}").data == b"%PDF file"
    for name in ("metrics", "metadata", "redirect"):
        assert client.get(f"/conversations/{conversation}/files/{ids[name]}").status_code == 404, name
    assert [s["path"] for s in recorder.seen] == ["/file", "/to"]


def test_a_trickling_download_meets_its_deadline():
    import threading
    import time as clock
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def trickle():
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        try:
            for _ in range(40):
                conn.sendall(b"x")
                clock.sleep(0.1)
        except OSError:
            pass
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    started = clock.monotonic()
    with pytest.raises(fetch.Unreachable, match="took over"):
        fetch.Fetcher([f"http://127.0.0.1:{port}"], deadline=1.0).get(f"http://127.0.0.1:{port}/", max_bytes=10_000)
    assert clock.monotonic() - started < 2.5
    listener.close()


@pytest.fixture
def green_desk(sandbox_settings, db, tg, crm, ga):
    from wa_providers import driver_for
    driver = driver_for("greenapi", ga)
    running = Desk(driver.settings(sandbox_settings), db, tg, crm, wa=ga).start()
    driver.desk = running
    yield driver
    running.stop()


def test_a_green_api_webhook_naming_an_inside_download_url_brings_none_of_it_to_telegram(green_desk, ga, tg):
    from conftest import SHARED_CHAT
    listener = green_desk.desk.listener_url
    for caption, url in (("Дивіться метрики", f"{listener}/metrics"),
                         ("Дивіться метадані", "http://169.254.169.254/latest/meta-data/")):
        ga._incoming("380671234567", "Іра", {"typeMessage": "documentMessage", "fileMessageData": {
            "downloadUrl": url, "caption": caption, "fileName": "stats.txt", "mimeType": "text/plain"}})
    ga.customer_sends_document("380671234567", b"%PDF receipt", "chek.pdf")   # the gateway's own storage
    wait_for(lambda: [m for m in tg.messages(SHARED_CHAT) if m.get("document")], timeout=20)
    green_desk.desk.idle(timeout=20)
    posts = tg.messages(SHARED_CHAT)
    documents = [m for m in posts if m.get("document")]
    assert [d["document"]["file_name"] for d in documents] == ["chek.pdf"]
    assert tg.file(documents[0]["document"]["file_id"])["content"] == b"%PDF receipt"
    # The managers see each refused file named, with why; none of /metrics is anywhere.
    for caption, host in (("Дивіться метрики", "127.0.0.1"), ("Дивіться метадані", "169.254.169.254")):
        [post] = [m for m in posts if caption in (m.get("visible_text") or "")]
        assert f"the host '{host}' is not a public address" in post["visible_text"]
    assert not any("keepdesk_" in (m.get("visible_text") or "") for m in posts)


def test_a_planfix_address_inside_is_never_called(guarded_relay, tga, planfix, tmp_path, tg, db):
    """url_planfix comes through the clients API: a server on this machine that is not a
    configured origin gets no newMessage (nor its token); the refusal is a dead letter
    reported with #ERROR."""
    from conftest import LOG_CHAT, PLANFIX_ADMIN_TOKEN
    from test_planfix_e2e import account_body, clients, status
    inside = Recorder()
    try:
        (tmp_path / "main.session").write_text(tga.add_account(NUMBER))
        body = dict(account_body(planfix, tmp_path), url_planfix=inside.url)
        answer = clients(guarded_relay, "POST", body, PLANFIX_ADMIN_TOKEN)
        assert answer.status_code == 200, answer.text
        token = answer.json()["token"]
        wait_for(lambda: status(guarded_relay, token) == "online", timeout=20)
        customer = tga.add_user("Ivan")
        tga.customer_writes(NUMBER, customer["id"], "Привіт")
        assert "Planfix" in relayed_message_dead_letter(db, tg, LOG_CHAT, "not a public address")
        assert inside.seen == []
    finally:
        inside.stop()
