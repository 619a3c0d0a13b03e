"""Each door's whole URL map, rule by rule: a route added, lost, moved or given another
method fails here (doors/__init__.py: the doors serve blueprints named in one table each)."""
from __future__ import annotations

import json

import pytest

import crm_listener
import webhook_server
from wa_providers import DEVINO_SECRET, GREENAPI_WEBHOOK_TOKEN

IMPLICIT = {"HEAD", "OPTIONS"}


def url_map(app) -> set[tuple[str, str]]:
    """(rule, methods) of every route but the implicit HEAD / OPTIONS."""
    return {(r.rule, ",".join(sorted(r.methods - IMPLICIT))) for r in app.url_map.iter_rules()}


# Flask's own static route (no folder behind it on the two doors: always 404) is kept as it was.
BASE = {("/healthz", "GET"), ("/metrics", "GET"), ("/static/<path:filename>", "GET")}
TELEGRAM = BASE | {("/telegram/<path:secret_path>", "POST")}
KEEPINGCRM = {("/messages/<path:key>", "POST")}
WHATSAPP_CLOUD = {("/whatsapp/cloud", "GET"), ("/whatsapp/cloud", "POST")}
GREENAPI = {("/whatsapp/greenapi", "POST")}
DEVINO = {("/whatsapp/devino/<secret>/<route>", "POST"), ("/whatsapp/files/<int:file_id>", "GET")}
ONEC_COMPAT = {(path, "GET,POST") for path in (
    "/custom_request", "/review", "/appointment", "/happy_birthday_client", "/get_all_data", "/get_data")}
ONEC_V1 = {("/api/v1/notifications/appointment", "POST"), ("/api/v1/notifications/review", "POST"),
           ("/api/v1/notifications/birthday", "POST"), ("/api/v1/notifications/custom", "POST"),
           ("/api/v1/messages", "POST"), ("/api/v1/messages/file", "POST"),
           ("/api/v1/messages/<int:message_id>", "GET"), ("/api/v1/phones/<raw>", "GET"),
           ("/api/v1/phones/<raw>/messages", "GET"), ("/api/v1/contacts", "GET"),
           ("/api/v1/reviews", "GET"), ("/api/v1/openapi.json", "GET")}
PLANFIX = {("/planfix/clients", "POST"), ("/planfix/clients", "GET"), ("/planfix/clients", "DELETE"),
           ("/planfix/clients", "PUT"), ("/planfix/webhook", "POST")}
MEDIA = {("/media/<int:media_id>", "GET")}
PANEL_PAGES = {("/healthz", "GET"), ("/login", "GET,POST"), ("/setup", "GET,POST"), ("/account", "GET,POST"),
               ("/language", "POST"),
               ("/logout", "POST"), ("/", "GET"), ("/errors", "GET"), ("/errors/<int:job_id>/retry", "POST"),
               ("/conversations", "GET"), ("/conversations/<int:conversation_id>", "GET"),
               ("/conversations/<int:conversation_id>/files/<int:message_id>", "GET"),
               ("/team", "GET"), ("/team/<int:tg_id>/<action>", "POST"), ("/reports", "GET"),
               ("/reports/digest", "POST"),
               ("/settings", "GET"), ("/settings/tokens", "POST"),
               ("/settings/tokens/<int:token_id>/revoke", "POST"), ("/settings/replies", "POST"),
               ("/settings/replies/<int:reply_id>/edit", "POST"),
               ("/settings/replies/<int:reply_id>/delete", "POST")}
# Settings → WhatsApp (doors/panel/whatsapp.py)
PANEL_WHATSAPP = {("/settings/whatsapp", "GET"), ("/settings/whatsapp", "POST"),
                  ("/settings/whatsapp/<instance>", "GET"), ("/settings/whatsapp/<instance>/link", "GET"),
                  ("/settings/whatsapp/<instance>/code", "POST"),
                  ("/settings/whatsapp/<instance>/<action>", "POST")}
# Settings → Telegram accounts (doors/panel/tgaccounts.py)
PANEL_TG = {("/settings/telegram", "GET"), ("/settings/telegram/logins", "POST"),
            ("/settings/telegram/logins/<ref>", "GET"), ("/settings/telegram/logins/<ref>/state", "GET"),
            ("/settings/telegram/logins/<ref>/answer", "POST"), ("/settings/telegram/<number>/<action>", "POST")}


def test_the_telegram_door_serves_its_update_route_health_and_metrics(settings, db):
    assert url_map(webhook_server.create_app(settings, db=db)) == TELEGRAM


def test_the_integrations_door_with_only_the_crm(settings, db):
    assert url_map(crm_listener.create_app(settings, db=db)) == BASE | KEEPINGCRM


def test_the_integrations_door_without_any_channel(settings, db):
    bare = settings.replace(keeping_api_url=None, keeping_api_key=None, keeping_seller_id=None,
                            link_key=None)
    assert not bare.crm_configured
    assert url_map(crm_listener.create_app(bare, db=db)) == BASE


@pytest.fixture
def everything(settings, tmp_path, planfix_settings):
    """Settings with the CRM, a WhatsApp number of each provider and the Planfix relay."""
    numbers = tmp_path / "numbers.json"
    numbers.write_text(json.dumps([
        {"phone_number_id": "109876543210987", "token": "t", "app_secret": "s", "verify_token": "v"},
        {"provider": "greenapi", "id": "1101000001", "token": "g", "url": "https://ga.example",
         "webhook_token": GREENAPI_WEBHOOK_TOKEN},
        {"provider": "devino", "from": "380441234567", "key": "k", "url": "https://dv.example",
         "callback_secret": DEVINO_SECRET}]), encoding="utf-8")
    return planfix_settings.replace(whatsapp_numbers_file=numbers)


def test_the_integrations_door_with_every_channel_desk_and_api(everything, db):
    assert everything.planfix_configured
    assert url_map(crm_listener.create_app(everything, db=db)) == (
        BASE | KEEPINGCRM | WHATSAPP_CLOUD | GREENAPI | DEVINO | ONEC_COMPAT | ONEC_V1 | PLANFIX | MEDIA)


# A gateway's webhook is served whenever WhatsApp runs: an owner may add a Green-API
# account in the panel while the door runs (an instance that is not the shop's is 404).
@pytest.mark.parametrize("provider, served", [
    ("cloud", WHATSAPP_CLOUD | GREENAPI), ("greenapi", GREENAPI), ("devino", DEVINO | GREENAPI)])
def test_a_whatsapp_provider_brings_only_its_own_routes(settings, db, tmp_path, provider, served):
    entry = {"cloud": {"phone_number_id": "109876543210987", "token": "t", "app_secret": "s",
                       "verify_token": "v"},
             "greenapi": {"provider": "greenapi", "id": "1101000001", "token": "g", "url": "https://ga.example",
                          "webhook_token": GREENAPI_WEBHOOK_TOKEN},
             "devino": {"provider": "devino", "from": "380441234567", "key": "k", "url": "https://dv.example",
                        "callback_secret": DEVINO_SECRET}}[provider]
    numbers = tmp_path / "numbers.json"
    numbers.write_text(json.dumps([entry]), encoding="utf-8")
    app = crm_listener.create_app(settings.replace(whatsapp_numbers_file=numbers), db=db)
    assert url_map(app) == BASE | KEEPINGCRM | served | ONEC_COMPAT | ONEC_V1


@pytest.mark.parametrize("prefix", ["", "/panel"])
def test_the_panel_serves_its_pages_and_static_files(settings, db, prefix):
    from doors.panel import create_app
    app = create_app(settings.replace(web_secret_key="k" * 40), db, prefix=prefix)
    pages = {(prefix + rule, methods) for rule, methods in PANEL_PAGES | PANEL_WHATSAPP | PANEL_TG}
    assert url_map(app) == pages | {(f"{prefix}/static/<path:filename>", "GET")}
