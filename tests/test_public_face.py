"""What the doors show the world, behind the documented same-host proxy (over real HTTP,
MariaDB): X-Forwarded-For is believed only from TRUSTED_PROXIES, so CRM_ALLOWED_IPS and
/metrics judge the real client; the public /healthz says up or down per part, its details
(phones, errors, host:port) only with the metrics token; a public address without
METRICS_TOKEN stops start-up.
"""
from __future__ import annotations

import pytest
import requests

import crm_listener
import webhook_server
from config import SettingsError, load_settings
from conftest import base_environment
from sandbox._server import ServerThread

LOOPBACK = ("127.0.0.1/32", "::1/128")
TOKEN = "metrics-token-0123456789"


@pytest.fixture
def serve():
    started = []

    def start(app):
        started.append(ServerThread(app).start())
        return started[-1]
    yield start
    for server in started:
        server.stop()


def signal(server, forwarded: str | None = None, invoice: int = 4901):
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return requests.post(f"{server.url}/messages/test-link-key", json={"InvoiceId": invoice},
                         headers=headers, timeout=10).status_code


def test_a_forwarded_address_from_a_peer_that_is_no_trusted_proxy_is_not_believed(settings, db, serve):
    for proxies in ((), ("192.0.2.0/24",)):     # none, or a proxy elsewhere: this peer is not it
        server = serve(crm_listener.create_app(settings.replace(crm_allowed_ips=("10.0.0.0/8",),
                                                                trusted_proxies=proxies), db=db))
        assert signal(server, "10.1.2.3") == 403
        metrics = serve(webhook_server.create_app(settings.replace(trusted_proxies=proxies), db=db))
        # The peer really is this machine: /metrics (no token configured) answers it.
        assert requests.get(f"{metrics.url}/metrics", headers={"X-Forwarded-For": "203.0.113.5"},
                            timeout=10).status_code == 200
    assert db.scalar("SELECT COUNT(*) FROM jobs") == 0


def test_behind_a_trusted_loopback_proxy_crm_allowed_ips_judges_the_forwarded_client(settings, db, serve):
    server = serve(crm_listener.create_app(settings.replace(crm_allowed_ips=("10.0.0.0/8",),
                                                            trusted_proxies=LOOPBACK), db=db))
    assert signal(server) == 403                               # the proxy itself is not the CRM
    assert signal(server, "203.0.113.5") == 403                # a stranger through the proxy
    assert signal(server, "10.1.2.3, 203.0.113.5") == 403      # a stranger who wrote a CRM address first
    assert signal(server, "not-an-address") == 403
    assert db.scalar("SELECT COUNT(*) FROM jobs") == 0
    assert signal(server, "10.1.2.3", invoice=4902) == 200     # the CRM through the proxy
    assert signal(server, "10.1.2.3, 127.0.0.1", invoice=4903) == 200   # two proxies of ours
    assert sorted(r["dedupe_key"] for r in db.fetchall("SELECT dedupe_key FROM jobs")) == ["sync:4902", "sync:4903"]


def test_behind_a_trusted_loopback_proxy_metrics_are_not_public(settings, db, serve):
    server = serve(webhook_server.create_app(settings.replace(trusted_proxies=LOOPBACK), db=db))
    outside = {"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https"}
    assert requests.get(f"{server.url}/metrics", headers=outside, timeout=10).status_code == 403
    with_token = serve(webhook_server.create_app(settings.replace(trusted_proxies=LOOPBACK, metrics_token=TOKEN),
                                                 db=db))
    assert requests.get(f"{with_token.url}/metrics", headers=outside, timeout=10).status_code == 403
    assert requests.get(f"{with_token.url}/metrics", timeout=10,
                        headers={**outside, "Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_the_public_healthz_says_only_up_or_down_and_details_need_the_metrics_token(settings, db, serve):
    # The CRM of these settings is unreachable at 127.0.0.1:9: its error names the address.
    local = settings.replace(metrics_token=TOKEN, trusted_proxies=LOOPBACK)
    server = serve(crm_listener.create_app(local, db=db))
    outside = {"X-Forwarded-For": "203.0.113.5"}
    for headers in ({}, outside, {**outside, "Authorization": "Bearer wrong-token"}):
        answer = requests.get(f"{server.url}/healthz", headers=headers, timeout=10)
        assert answer.status_code == 200
        assert answer.json() == {"ok": True, "database": "up", "channels": {"keepingcrm": {"ok": False}}}
        assert "127.0.0.1:9" not in answer.text and "detail" not in answer.text
    full = requests.get(f"{server.url}/healthz", timeout=10,
                        headers={**outside, "Authorization": f"Bearer {TOKEN}"}).json()
    assert full["channels"]["keepingcrm"]["ok"] is False and full["channels"]["keepingcrm"]["detail"]


def test_the_public_healthz_hides_the_accounts_phone_numbers(settings, db, serve):
    from doors.web import base_app
    phone = "380671234567"
    app = base_app("probe", settings.replace(metrics_token=TOKEN), db, details=lambda: {
        "channels": {"tgaccount": {"ok": False, "detail": f"0/1 accounts online; {phone}: session revoked"},
                     "whatsapp": {"ok": False, "detail": f"{phone}: notAuthorized at 10.0.0.5:8443"}}})
    server = serve(app)
    public = requests.get(f"{server.url}/healthz", timeout=10)
    assert phone not in public.text and "10.0.0.5" not in public.text and "revoked" not in public.text
    assert public.json()["channels"] == {"tgaccount": {"ok": False}, "whatsapp": {"ok": False}}
    private = requests.get(f"{server.url}/healthz", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert phone in private.text


@pytest.mark.parametrize("public", [{"PUBLIC_URL": "https://desk.example"},
                                    {"WEBHOOK_URL": "https://bot.example"}])
def test_a_public_address_without_metrics_token_stops_start_up(mariadb, public):
    env = base_environment(mariadb, **public)
    with pytest.raises(SettingsError, match="METRICS_TOKEN is required when"):
        load_settings(env, env_file=None)
    assert load_settings({**env, "METRICS_TOKEN": TOKEN}, env_file=None).metrics_token == TOKEN


def test_trusted_proxies_are_parsed_and_named_when_malformed(mariadb):
    env = base_environment(mariadb)
    assert load_settings(env, env_file=None).trusted_proxies == ()
    assert load_settings({**env, "TRUSTED_PROXIES": "127.0.0.1, ::1"}, env_file=None).trusted_proxies == (
        "127.0.0.1", "::1")
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES is malformed"):
        load_settings({**env, "TRUSTED_PROXIES": "localhost"}, env_file=None)
