"""WhatsApp and 1C data at the border: phones, Graph API errors, webhook bodies, the
numbers file — each parsed into bounded values or refused, never a crash."""
import json
from datetime import datetime

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from channels.base import Rejected, Unavailable
from channels.whatsapp.accounts import AccountsError, load_accounts
from channels.whatsapp.errors import BadToken, TemplateProblem, Throttled, Undeliverable, WindowClosed, from_graph
from channels.whatsapp.providers.cloud import CloudApi
from utils.phones import InvalidPhone, normalise

NOW = datetime(2026, 12, 2, 10, 0)


@pytest.mark.parametrize("raw,region,expected", [
    ("0671234567", "UA", "380671234567"), ("+380 (67) 123-45-67", "RU", "380671234567"),
    ("380671234567", "RU", "380671234567"), ("9001234567", "RU", "79001234567"),
    ("89001234567", "RU", "79001234567"), ("79001234567", "RU", "79001234567"),
])
def test_phones_without_country_or_plus_are_normalised_to_e164_digits(raw, region, expected):
    assert normalise(raw, region) == expected


@pytest.mark.parametrize("raw", ["", "12", "abc", "067-ABC-45", "+1" + "5" * 40, None, 380671234567,
                                 "0671234567\x00", "<script>"])
def test_what_is_not_a_phone_number_is_refused(raw):
    with pytest.raises(InvalidPhone):
        normalise(raw, "UA")


def graph(code, status=400, details="x"):
    return {"error": {"message": "m", "type": "OAuthException", "code": code,
                      "error_data": {"details": details}}}


@pytest.mark.parametrize("status,code,kind", [
    (400, 131047, WindowClosed), (400, 131026, Undeliverable), (429, 130429, Throttled),
    (400, 131056, Throttled), (400, 132000, TemplateProblem), (404, 132001, TemplateProblem),
    (401, 190, BadToken), (503, 2, Unavailable), (500, None, Unavailable), (400, 100, Rejected),
])
def test_graph_api_errors_map_to_what_the_shop_must_know(status, code, kind):
    error = from_graph(status, graph(code) if code else None)
    assert isinstance(error, kind)
    assert getattr(error, "shop_must_act", False) == (kind in (TemplateProblem, BadToken))


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                           lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.sampled_from(["object", "entry", "changes", "field", "value",
                                                              "messages", "statuses", "from", "id", "type",
                                                              "text", "body", "metadata", "phone_number_id",
                                                              "timestamp", "image", "status", "errors"]),
                                             inner, max_size=5), max_leaves=25)


@hsettings(max_examples=300, deadline=None)
@given(json_values)
def test_any_webhook_body_parses_into_bounded_values_or_nothing(body):
    raw = json.dumps({"object": "whatsapp_business_account", "entry": body}).encode()
    event = CloudApi("http://graph.invalid", "v21.0").parse(raw, NOW)
    for received in event.messages:
        assert received.phone.isdigit() and len(received.message.external_id) <= 128
    for received in event.statuses:
        assert received.status.status in ("sent", "delivered", "read", "failed")


def test_a_customer_message_of_every_kind_is_understood():
    value = {"metadata": {"phone_number_id": "100"}, "contacts": [{"wa_id": "380671234567", "profile": {"name": "Оля"}}],
             "messages": [
                 {"from": "380671234567", "id": "w1", "timestamp": "1764669600", "type": "text", "text": {"body": "hi"}},
                 {"from": "380671234567", "id": "w2", "timestamp": "x", "type": "image",
                  "image": {"id": "m1", "caption": "c"}},
                 {"from": "380671234567", "id": "w3", "type": "button", "button": {"text": "Так", "payload": "confirm"}},
                 {"from": "380671234567", "id": "w4", "type": "location", "location": {"latitude": 1, "longitude": 2}},
                 {"from": "380671234567", "id": "w" * 200, "type": "text", "text": {"body": "too long an id"}},
                 {"from": "not-a-phone", "id": "w5", "type": "text", "text": {"body": "x"}}]}
    raw = json.dumps({"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": value}]}]})
    messages = [r.message for r in CloudApi("http://g", "v21.0").parse(raw.encode(), NOW).messages]
    assert [m.external_id for m in messages] == ["w1", "w2", "w3", "w4"]
    assert messages[0].date_written == datetime(2025, 12, 2, 10, 0)
    assert messages[1].is_img and messages[1].media_ref == "m1" and messages[1].date_written == NOW
    assert messages[2].payload == "confirm" and messages[2].text == "Так"
    assert messages[3].text.startswith("📍 1, 2")


def test_the_numbers_file_adds_numbers_and_its_mistakes_are_named(tmp_path, settings, monkeypatch):
    numbers = tmp_path / "numbers.json"
    monkeypatch.setenv("WA_TOKEN_2", "second-token")
    numbers.write_text(json.dumps([{"phone_number_id": "222222", "token_env": "WA_TOKEN_2",
                                    "app_secret": "s2", "label": "Lviv"}]))
    configured = settings.replace(whatsapp_cloud_token="t1", whatsapp_cloud_phone_number_id="111111",
                                  whatsapp_cloud_app_secret="s1", whatsapp_numbers_file=numbers)
    accounts = load_accounts(configured)
    assert list(accounts) == ["111111", "222222"] and accounts["222222"].token == "second-token"
    assert "second-token" not in repr(accounts["222222"])
    numbers.write_text('[{"phone_number_id": "abc"}]')
    with pytest.raises(AccountsError, match="phone_number_id"):
        load_accounts(configured)
