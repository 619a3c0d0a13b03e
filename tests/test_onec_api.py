"""The 1C API end to end (issue 11; CHANNELS.md §2): the compatible routes with their
exact answers, the dialogue (confirm, unsubscribe, reviews), `get_all_data` / `get_data`,
tokens and phones refused, and `/api/v1/` as JSON with its OpenAPI description.

Real parts: the integrations door on a real port, the WhatsApp sandbox calling the signed
webhook, workers, MariaDB; tokens issued by `python -m bot api-token` in a child process.
"""
import subprocess
import sys

import pytest
import requests

from conftest import ROOT, SHARED_CHAT
from harness import wait_for
from sandbox.telegram import parse_html

PHONE = "380671234567"          # what KeepDesk answers with (E.164 digits)
LOCAL = "0671234567"            # how 1C sends it ("without +38 / 8"), PHONE_DEFAULT_REGION=UA


@pytest.fixture
def api(wa_desk, wa, db):
    from services.api_tokens import ApiTokens
    for name, params in (("appointment", 3), ("review", 2), ("birthday", 2), ("order_ready", 1)):
        wa.add_template(name, params)
    token = ApiTokens(db).create("1c-clinic")
    return Api(wa_desk.listener_url, token)


class Api:
    def __init__(self, url, token):
        self.url, self.token = url, token

    def call(self, route, method="GET", token=None, **params):
        params["token"] = self.token if token is None else token
        if method == "GET":
            answer = requests.get(f"{self.url}/{route}", params=params, timeout=10)
        else:
            answer = requests.post(f"{self.url}/{route}", data=params, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json() if answer.headers["Content-Type"].startswith("application/json") else answer.text

    def v1(self, method, path, token=None, **body):
        headers = {"Authorization": f"Bearer {self.token if token is None else token}"}
        return requests.request(method, f"{self.url}/api/v1{path}", json=body if method == "POST" else None,
                                headers=headers, timeout=10)


def templates_to(wa, phone=PHONE):
    return [m for m in wa.sent(phone) if m["type"] == "template"]


def texts_to(wa, phone=PHONE):
    return [m["content"]["body"] for m in wa.sent(phone) if m["type"] == "text"]


def test_the_api_token_cli_prints_the_token_alone_on_its_last_line_and_revokes_it(subprocess_env, db, api):
    run = lambda *args: subprocess.run([sys.executable, "-m", "bot", "api-token", *args], cwd=ROOT,  # noqa: E731
                                       env=subprocess_env, capture_output=True, text=True, timeout=60)
    created = run("create", "1c-warehouse")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("kd1_") and " " not in token
    assert api.call("get_all_data", token=token, type="confirm") == {"phones": None}
    listed = run("list").stdout
    assert "1c-warehouse" in listed and token not in listed
    assert token not in str(db.fetchall("SELECT * FROM api_tokens"))   # only its hash is kept
    assert run("revoke", "1c-warehouse").returncode == 0
    assert api.call("get_all_data", token=token, type="confirm") == "ERROR TOKEN"


def test_the_api_token_cli_revokes_by_name_or_by_hash_id_never_one_for_the_other(subprocess_env, db, api):
    run = lambda *args: subprocess.run([sys.executable, "-m", "bot", "api-token", *args], cwd=ROOT,  # noqa: E731
                                       env=subprocess_env, capture_output=True, text=True, timeout=60)
    first = run("create", "clinic").stdout.strip().splitlines()[-1]
    first_id = db.scalar("SELECT id FROM api_tokens WHERE name = 'clinic'")
    named_like_it = run("create", str(first_id)).stdout.strip().splitlines()[-1]
    assert run("revoke", str(first_id)).returncode == 0          # the token *named* so
    assert api.call("get_all_data", token=first, type="confirm") == {"phones": None}
    assert api.call("get_all_data", token=named_like_it, type="confirm") == "ERROR TOKEN"
    assert run("revoke", f"#{first_id}").returncode == 0         # the token with that id
    assert api.call("get_all_data", token=first, type="confirm") == "ERROR TOKEN"
    assert run("revoke", "#999999").returncode == 1


def test_an_appointment_is_sent_and_confirmed_by_its_button(api, wa, wa_desk):
    assert api.call("appointment", "POST", phone=LOCAL, doctor="Др. Коваль", date="05.12",
                    time="10:30") == "OK"
    [notice] = wait_for(lambda: templates_to(wa), timeout=20)
    assert notice["content"]["name"] == "appointment"
    assert [p["text"] for p in notice["content"]["components"][0]["parameters"]] == ["Др. Коваль", "05.12", "10:30"]
    assert api.call("get_data", phone=LOCAL) == {"appointment": False, "unsubscribe": None}
    wa.customer_presses_button(PHONE, "Підтвердити", "confirm", context_id=notice["id"])
    wait_for(lambda: api.call("get_data", phone=LOCAL)["appointment"] is True)
    assert api.call("get_all_data", type="confirm") == {"phones": [PHONE]}
    wait_for(lambda: texts_to(wa) == ["Дякуємо! Ваш запис підтверджено."], timeout=20)
    wa_desk.idle()
    # The tap answered the notice: nothing for the desk.
    assert not [m for m in wa_desk.tg.messages(SHARED_CHAT) if "Підтвердити" in (m.get("text") or "")]


def test_unsubscribe_by_button_stops_every_later_notification(api, wa, wa_desk):
    api.call("appointment", phone=LOCAL, doctor="Коваль", date="05.12", time="10:30")
    wait_for(lambda: templates_to(wa), timeout=20)
    wa.customer_presses_button(PHONE, "Відписатися", "unsubscribe")
    wait_for(lambda: api.call("get_all_data", type="unsubscribe") == {"phones": [PHONE]})
    assert api.call("get_data", phone=LOCAL)["unsubscribe"] is True
    wait_for(lambda: texts_to(wa), timeout=20)
    for route, params in (("appointment", dict(doctor="Коваль", date="06.12", time="11:00")),
                          ("review", dict(name="Олена", date="01.12")),
                          ("happy_birthday_client", dict(name="Олена", date="07.12")),
                          ("custom_request", dict(sample="order_ready", params='["5521"]'))):
        assert api.call(route, phone=LOCAL, **params) == "OK"
    wa_desk.idle()
    assert len(templates_to(wa)) == 1
    assert wa_desk.db.scalar("SELECT COUNT(*) FROM wa_outbox WHERE status = 'skipped'") == 4


def test_a_full_review_dialogue_and_a_low_score_opens_a_desk_conversation(api, wa, wa_desk, tg):
    assert api.call("review", phone=LOCAL, name="Олена", date="01.12") == "OK"
    wait_for(lambda: templates_to(wa), timeout=20)
    wa.customer_presses_button(PHONE, "2", "2")
    wait_for(lambda: texts_to(wa) == ["Дякуємо за оцінку! Напишіть, будь ласка, кілька слів про ваш візит."],
             timeout=20)
    wa.customer_writes(PHONE, "Довго чекала в черзі")
    post = wait_for(lambda: [m for m in tg.messages(SHARED_CHAT)
                             if "Довго чекала" in parse_html(m.get("text") or "")[0]], timeout=20)[0]
    assert "⭐ Відгук: 2/5" in parse_html(post["text"])[0]
    wait_for(lambda: texts_to(wa)[-1:] == ["Дякуємо за відгук!"], timeout=20)
    reviews = api.v1("GET", "/reviews").json()["reviews"]
    assert [(r["phone"], r["score"], r["text"]) for r in reviews] == [(PHONE, 2, "Довго чекала в черзі")]


def test_a_good_review_is_kept_for_1c_without_troubling_the_desk(api, wa, wa_desk, tg):
    api.call("review", phone=LOCAL, name="Олена", date="01.12")
    wait_for(lambda: templates_to(wa), timeout=20)
    wa.customer_writes(PHONE, "5")
    wait_for(lambda: len(texts_to(wa)) == 1, timeout=20)
    wa.customer_writes(PHONE, "Все чудово, дякую!")
    wait_for(lambda: api.v1("GET", "/reviews").json()["reviews"], timeout=20)
    wa_desk.idle()
    assert [r["score"] for r in api.v1("GET", "/reviews").json()["reviews"]] == [5]
    assert not [m for m in tg.messages(SHARED_CHAT) if "чудово" in (m.get("text") or "")]


def test_each_compatible_route_sends_once_even_when_1c_repeats_it(api, wa, wa_desk):
    for _ in range(3):
        assert api.call("custom_request", "POST", phone=LOCAL, sample="order_ready", params='["№ 77"]') == "OK"
        assert api.call("happy_birthday_client", phone=LOCAL, name="Олена", date="07.12") == "OK"
    assert api.call("happy_birthday_client", phone=LOCAL, name="Олена", date="08.12") == "OK"  # 7 days
    assert api.call("appointment", phone=LOCAL, doctor="A", date="1", time="2", request_id="r1") == "OK"
    assert api.call("appointment", phone=LOCAL, doctor="B", date="1", time="2", request_id="r1") == "OK"
    wa_desk.idle(timeout=30)
    names = [m["content"]["name"] for m in templates_to(wa)]
    assert sorted(names) == ["appointment", "birthday", "order_ready"]


@pytest.mark.parametrize("params,answer", [
    (dict(token="wrong"), "ERROR TOKEN"),
    (dict(token=""), "ERROR TOKEN"),
    (dict(phone="12"), "ERROR PHONE"),
    (dict(phone="not a phone"), "ERROR PHONE"),
    (dict(phone="+1" + "5" * 40), "ERROR PHONE"),
    (dict(doctor=""), "ERROR PARAMS"),
    (dict(doctor="x" * 5000), "ERROR PARAMS"),
])
def test_bad_1c_requests_get_a_clear_answer_and_send_nothing(api, wa, wa_desk, params, answer):
    given = {**dict(phone=LOCAL, doctor="Коваль", date="05.12", time="10:30"), **params}
    assert api.call("appointment", **given) == answer
    wa_desk.idle()
    assert wa.sent() == [] and wa_desk.db.scalar("SELECT COUNT(*) FROM wa_outbox") == 0


def test_a_template_with_the_wrong_number_of_parameters_is_refused(api, wa, wa_desk):
    assert api.call("custom_request", phone=LOCAL, sample="order_ready", params='["a", "b"]') == "ERROR TEMPLATE"
    assert api.call("custom_request", phone=LOCAL, sample="order_ready", params='not json') == "ERROR PARAMS"
    assert api.v1("POST", "/notifications/custom", phone=LOCAL, template="order_ready",
                  params=["a", "b"]).status_code == 422
    wa_desk.idle()
    assert wa.sent() == []


def test_the_switch_turns_the_1c_api_off(wa_settings, db, tg, crm, wa):
    from harness import Desk
    desk = Desk(wa_settings.replace(onec_api_enabled=False), db, tg, crm, wa=wa).start(workers=False)
    try:
        answer = requests.get(f"{desk.listener_url}/appointment", params={"token": "x"}, timeout=5)
        assert (answer.status_code, answer.text) == (200, "WEB DASHBOARD OFF")
        assert requests.get(f"{desk.listener_url}/api/v1/reviews", timeout=5).status_code == 503
    finally:
        desk.stop()


def test_the_json_api_sends_reports_statuses_and_describes_itself(api, wa, wa_desk):
    assert api.v1("GET", "/reviews", token="wrong").status_code == 401
    sent = api.v1("POST", "/notifications/appointment", phone=LOCAL, doctor="Коваль", date="05.12", time="10:30")
    assert sent.status_code == 202
    message_id = sent.json()["id"]
    wait_for(lambda: api.v1("GET", f"/messages/{message_id}").json()["delivery"] == "delivered", timeout=20)
    assert api.v1("GET", f"/messages/{message_id}").json()["status"] == "sent"
    # Free-form text is only for a customer who wrote in the last 24 hours.
    refused = api.v1("POST", "/messages", phone=LOCAL, text="Привіт")
    assert refused.status_code == 409 and "24-hour" in refused.json()["error"]
    wa.customer_writes(PHONE, "Добрий день")
    wait_for(lambda: api.v1("GET", f"/phones/{LOCAL}").json()["whatsapp"] is True)
    assert api.v1("POST", "/messages", phone=LOCAL, text="Вітаємо!").status_code == 202
    assert api.v1("POST", "/messages", phone=LOCAL, type="location", latitude=50.45, longitude=30.52,
                  name="Клініка").status_code == 202
    wait_for(lambda: [m["type"] for m in wa.sent(PHONE)] == ["template", "text", "location"], timeout=30)
    history = wait_for(lambda: len(api.v1("GET", f"/phones/{LOCAL}/messages").json()["messages"]) == 4
                       and api.v1("GET", f"/phones/{LOCAL}/messages").json()["messages"])
    assert [m["from"] for m in history] == ["shop", "customer", "shop", "shop"]
    assert history[0]["text"] == "📋 appointment: Коваль, 05.12, 10:30"
    assert api.v1("POST", "/messages", phone="12", text="x").status_code == 400
    assert api.v1("POST", "/messages", phone=LOCAL, text="x" * 5000).status_code == 400
    spec = requests.get(f"{wa_desk.listener_url}/api/v1/openapi.json", timeout=5).json()
    assert spec["openapi"].startswith("3.") and "/notifications/appointment" in spec["paths"]


def test_a_template_meta_does_not_know_is_a_dead_letter_with_error_and_1c_sees_why(api, wa, wa_desk, tg):
    from conftest import LOG_CHAT
    wa.templates.pop(("birthday", "uk"))          # deleted at Meta, still in the settings
    sent = api.v1("POST", "/notifications/birthday", phone=LOCAL, name="Олена", date="07.12")
    assert sent.status_code == 202
    report = wait_for(lambda: [m for m in tg.messages(LOG_CHAT)
                               if "#ERROR" in parse_html(m.get("text") or "")[0]], timeout=20)[0]
    assert "132001" in parse_html(report["text"])[0]
    status = wait_for(lambda: api.v1("GET", f"/messages/{sent.json()['id']}").json(), timeout=10)
    wait_for(lambda: api.v1("GET", f"/messages/{sent.json()['id']}").json()["status"] == "failed")
    assert "132001" in api.v1("GET", f"/messages/{sent.json()['id']}").json()["error"]
    assert status["id"] == sent.json()["id"] and wa.sent() == []
