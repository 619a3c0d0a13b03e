"""The border of the desk of SPEC §8: working hours and time zones parsed into bounded
values with clear errors, placeholders and search queries checked, and the Telegram
emulator's command scopes and inline mode behaving as the Bot API documents them."""
from __future__ import annotations

from datetime import datetime

import pytest
import requests

from config import SettingsError, load_settings
from services.desk_tools import Query, check_template, fill, parse_query
from services.results import Refusal, Refused
from utils.hours import HoursError, WorkingHours


# -- working hours -----------------------------------------------------------------------------

def test_working_minutes_skip_nights_and_weekends_in_the_shops_time_zone():
    hours = WorkingHours.parse("Mon-Fri 09-18, Sat 10:00-14:00", "Europe/Kyiv")
    friday_1755 = datetime(2025, 12, 5, 15, 55)                  # UTC; 17:55 in Kyiv
    assert hours.add(friday_1755, 15) == datetime(2025, 12, 6, 8, 10)   # Saturday 10:10
    assert hours.between(friday_1755, datetime(2025, 12, 6, 8, 10)) == 15.0
    # Summer time: 09:00 in Kyiv is 06:00 UTC.
    assert hours.add(datetime(2025, 7, 7, 5, 0), 1) == datetime(2025, 7, 7, 6, 1)
    assert WorkingHours.parse("", "UTC").add(friday_1755, 15) == datetime(2025, 12, 5, 16, 10)


@pytest.mark.parametrize("raw, says", [
    ("Mon-Fri 18-09", "the end must come after the start"),
    ("Funday 09-18", "should look like 'Mon-Fri 09-18'"),
    ("Mon 09-25", "is not a time of day"),
    ("09-18", "should look like"),
])
def test_malformed_working_hours_are_refused_with_the_reason(raw, says):
    with pytest.raises(HoursError, match=says):
        WorkingHours.parse(raw)


def test_settings_name_a_bad_working_hours_or_time_zone(mariadb):
    from conftest import base_environment
    with pytest.raises(SettingsError) as refused:
        load_settings(base_environment(mariadb, WORKING_HOURS="weekdays", TZ="Mars/Olympus",
                                       SLA_REMIND_MINUTES="-5"), env_file=None)
    message = str(refused.value)
    assert "WORKING_HOURS is malformed" in message and "TZ is malformed" in message
    assert "SLA_REMIND_MINUTES is malformed" in message
    fine = load_settings(base_environment(mariadb, WORKING_HOURS="Mon-Fri 09-18", TZ=":Europe/Kyiv"),
                         env_file=None)
    assert fine.tz == "Europe/Kyiv" and fine.hours.week[5] == ()


# -- canned replies and search queries -----------------------------------------------------------

def test_placeholders_are_checked_when_saved_and_filled_for_a_chat():
    assert check_template("Добрий день, {name}! Замовлення {order}.") is None
    assert check_template("{status}").why is Refusal.UNKNOWN_PLACEHOLDER
    assert check_template("{order!r}").why is Refusal.UNKNOWN_PLACEHOLDER
    assert check_template("ціна {100").why is Refusal.BAD_BRACES
    from harness import crm_conversation
    from models.users import User
    chat = crm_conversation(42, email="a@b.c", product="Ключ")
    manager = User(1, "olena", "Олена", "uk", "manager", True)
    assert fill("Вітаю, {name}! {order}: {product}. {manager}", chat, manager) == "Вітаю, a@b.c! 42: Ключ. Олена"


@pytest.mark.parametrize("raw, expected", [
    ("ab", Refused(Refusal.TOO_SHORT, detail="ab", limit=3)),
    ("  #12345 ", Query("number", "12345")),
    ("Maria@Shop.ua", Query("email", "maria@shop.ua")),
    ("+38 (067) 123-45-67", Query("phone", "380671234567")),
    ("ДОСТАВКА в Київ", Query("words", "доставка київ")),
    ("the to", Refused(Refusal.TOO_SHORT, detail="the to", limit=3)),
])
def test_a_search_query_is_parsed_at_the_border(raw, expected):
    assert parse_query(raw) == expected


# -- the Telegram emulator: command scopes and inline mode ---------------------------------------

def call(tg, method, **params):
    import json
    body = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in params.items()}
    return requests.post(tg.api_url.format(tg.token, method), data=body, timeout=5).json()


def test_command_lists_follow_their_scope_and_language_as_telegram_resolves_them(tg):
    menu = lambda *names: [{"command": n, "description": n.title()} for n in names]  # noqa: E731
    assert call(tg, "setMyCommands", commands=menu("start"))["ok"]
    assert call(tg, "setMyCommands", commands=menu("start", "find"), scope={"type": "chat", "chat_id": 5})["ok"]
    assert call(tg, "setMyCommands", commands=menu("find"),
                scope={"type": "chat_member", "chat_id": -100, "user_id": 5})["ok"]
    assert call(tg, "setMyCommands", commands=menu("start", "help"), language_code="en")["ok"]
    assert [c["command"] for c in tg.commands_for(5)] == ["start", "find"]
    assert [c["command"] for c in tg.commands_for(6)] == ["start"]
    assert [c["command"] for c in tg.commands_for(6, language_code="en")] == ["start", "help"]
    assert [c["command"] for c in tg.commands_for(5, -100)] == ["find"]
    assert call(tg, "getMyCommands", scope={"type": "chat", "chat_id": 5})["result"] == menu("start", "find")
    refused = [call(tg, "setMyCommands", commands=menu("Bad-Name")),
               call(tg, "setMyCommands", commands=menu("x"), scope={"type": "chat_member", "chat_id": 5,
                                                                     "user_id": 5}),
               call(tg, "setMyCommands", commands=menu("x"), scope={"type": "nowhere"}),
               call(tg, "setMyCommands", commands=menu(*[f"c{n}" for n in range(101)]))]
    assert [r["ok"] for r in refused] == [False] * 4 and all(r["error_code"] == 400 for r in refused)
    assert call(tg, "deleteMyCommands", scope={"type": "chat", "chat_id": 5})["ok"]
    assert [c["command"] for c in tg.commands_for(5)] == ["start"]


def test_inline_queries_are_answered_once_with_valid_results_as_telegram_requires(tg):
    with pytest.raises(ValueError):
        tg.user_sends_inline_query(7, "hi")                  # inline mode off (BotFather)
    tg.set_inline_mode(True)
    assert call(tg, "getMe")["result"]["supports_inline_queries"] is True
    query = tg.user_sends_inline_query(7, "hi")["inline_query"]["id"]
    article = {"type": "article", "id": "a", "title": "Hi",
               "input_message_content": {"message_text": "Hello <b>there</b>", "parse_mode": "HTML"}}
    duplicate = call(tg, "answerInlineQuery", inline_query_id=query, results=[article, article])
    assert duplicate["description"] == "Bad Request: RESULT_ID_DUPLICATE"
    empty = dict(article, input_message_content={"message_text": " "})
    assert call(tg, "answerInlineQuery", inline_query_id=query, results=[empty])["ok"] is False
    assert call(tg, "answerInlineQuery", inline_query_id=query, results=[article])["ok"]
    again = call(tg, "answerInlineQuery", inline_query_id=query, results=[article])
    assert again["ok"] is False and "query is too old" in again["description"]
    chosen = tg.user_chooses_inline_result(7, query, "a")["message"]
    assert chosen["text"] == "Hello there" and chosen["via_bot"]["is_bot"]


# -- the CRM's order at the border ------------------------------------------------------------

def test_an_order_from_the_crm_is_bounded_field_by_field():
    from crm.client import ORDER_TEXT_MAX, parse_order
    hostile = {"retval": 0, "invoice": {
        "product": "<b>" + "Ноутбук " * 100, "qty": "9" * 30, "sum": "1e308", "currency": "UAHUAHUAHUAH",
        "status_name": ["not", "text"], "paid": "yes",
        "delivery": {"service": "Нова\x00пошта\n", "city": "К" * 500, "ttn": 20450000123456}}}
    order = parse_order(hostile, 7)
    assert order.id_i == 7 and len(order.product) <= ORDER_TEXT_MAX and order.product.startswith("<b>Ноутбук")
    assert order.quantity is None and order.total is None      # absurd values are dropped, not cut
    assert order.currency == "UAHUAHUA" and order.paid is True and order.status is None
    assert order.delivery_service == "Нова пошта" and order.tracking == "20450000123456"
    assert len(order.delivery_address) <= ORDER_TEXT_MAX
    assert parse_order({"retval": 0}, 7) is None and parse_order("<html>", 7) is None
    assert parse_order({"data": {"total": "1 250,50", "status": "new"}}, 7).total == "1250.50"
