"""SMS when WhatsApp cannot reach a customer (docs/sms.md), with real processes: gunicorn
doors, `python -m bot worker`s, the session's MariaDB, Devino's WhatsApp and SMS sandboxes
over loopback.

* 1C's appointments to phones without WhatsApp (Devino's UNDELIVERED) go by SMS exactly
  once — every worker killed with -9 while Devino holds the answer to the first SMS batch
  included — and 1C's GET /api/v1/messages/{id} says channel sms, delivered; the SMS is in
  the customer's history as the shop's message. Phones with WhatsApp get no SMS.
* A Cloud API notice failed with 131026 (its status callback) goes by SMS; a delivered one
  does not.
* A gateway's checkWhatsapp false (the send's own answer) goes by SMS through an SMS
  outage (connection refused, then 5xx): retried, then delivered once.
* A permanent refusal — REJECTED for a recipient, or a key Devino refuses (401) — is a
  dead letter with #ERROR in the log chat, and 1C reads `failed`.
* Without an SMS provider a notice WhatsApp could not deliver stays a WhatsApp failure.
"""
import random
import time

import pytest
import requests

from harness import wait_for
from reliability.traffic import failed_jobs, log_posts, settle, unfinished_jobs, wait_log_posts
from wa_providers import DEVINO_SECRET, GREENAPI_WEBHOOK_TOKEN

pytestmark = pytest.mark.reliability

SMS_SECRET = "sms-callback-secret-0123"


def devino_env(dv, **extra) -> dict:
    return {"WHATSAPP_PROVIDER": "devino", "WHATSAPP_DEVINO_URL": dv.url, "WHATSAPP_DEVINO_KEY": dv.key,
            "WHATSAPP_DEVINO_FROM": dv.sender, "WHATSAPP_DEVINO_CALLBACK_SECRET": DEVINO_SECRET,
            "WHATSAPP_TEMPLATE_APPOINTMENT": "appointment", **extra}


def sms_env(sms, **extra) -> dict:
    return {"SMS_DEVINO_URL": sms.url, "SMS_DEVINO_KEY": sms.key, "SMS_DEVINO_FROM": sms.sender,
            "SMS_DEVINO_CALLBACK_SECRET": SMS_SECRET, **extra}


def until(condition, timeout: float, db):
    try:
        return wait_for(condition, timeout=timeout, interval=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{unfinished_jobs(db)}\n{failed_jobs(db)}") from None


class OneC:
    """1C's side of the API."""

    def __init__(self, cluster, db) -> None:
        from services.api_tokens import ApiTokens
        self.url = f"{cluster.listener_url}/api/v1"
        self.headers = {"Authorization": f"Bearer {ApiTokens(db).create('1c')}"}

    def appointment(self, phone: str, n: int) -> int:
        answer = requests.post(f"{self.url}/notifications/appointment", headers=self.headers, timeout=10,
                               json={"phone": phone, "doctor": f"Лікар {n}", "date": "05.12", "time": "10:30"})
        assert answer.status_code == 202, answer.text
        return answer.json()["id"]

    def message(self, message_id: int) -> dict:
        return requests.get(f"{self.url}/messages/{message_id}", headers=self.headers, timeout=10).json()

    def history(self, phone: str) -> list[dict]:
        return requests.get(f"{self.url}/phones/{phone}/messages", headers=self.headers, timeout=10).json()["messages"]


def test_appointments_to_phones_without_whatsapp_go_by_sms_exactly_once_through_a_kill_9_mid_batch(
        cluster_factory, figures, dv, sms, db):
    rng = random.Random()
    dv.add_template("appointment", 3)
    # A lease of 8 s: a call may take 4 s, longer than Devino holds the answer (3 s) — so the
    # workers are surely killed while the call is under way, not after it timed out.
    cluster = cluster_factory(workers=2, public_url=True, JOB_LEASE_SECONDS="8", **devino_env(dv), **sms_env(
        sms, SMS_DEVINO_BATCH="25", SMS_DEVINO_CONFIRM_SECONDS="4"))
    onec = OneC(cluster, db)
    without = [f"3806733{k:05d}" for k in range(12)]
    with_whatsapp = [f"3806744{k:05d}" for k in range(4)]
    for phone in without:
        dv.not_on_whatsapp(phone)
    # Devino takes the first SMS batch and holds its answer while every worker is killed.
    sms.hold_next_answer(3.0)
    ids = {phone: onec.appointment(phone, n) for n, phone in enumerate(without + with_whatsapp)}
    until(lambda: sms.calls, 60, db)
    time.sleep(0.3)
    kills = 0
    while cluster.kill_worker(rng) is not None:
        kills += 1
    cluster.restart_workers()
    until(lambda: all(onec.message(ids[p]).get("delivery") == "delivered" for p in without), 90, db)
    assert settle(db, timeout=60), unfinished_jobs(db)
    time.sleep(1.0)   # late callbacks
    got = [m["to"] for m in sms.sent()]
    figures.note(f"sms: {len(without)} notices in {len(sms.calls)} calls {sms.calls} after {kills} kills")
    assert sorted(got) == sorted(without), f"SMS sent: {sorted(got)}"   # each once, none to WhatsApp phones
    first = sms.sent(without[0])[0]
    assert first["text"] == "Вас записано до Лікар 0 на 05.12 о 10:30."
    for phone in without:
        answer = onec.message(ids[phone])
        assert (answer["channel"], answer["status"], answer["delivery"]) == ("sms", "sent", "delivered"), answer
        assert answer["whatsapp"]["error_code"] == 131026
        # The customer's history: the WhatsApp notice that failed, then the SMS, delivered.
        shop = [(m["text"], m["delivery"]) for m in onec.history(phone) if m["from"] == "shop"]
        assert shop == [(f"📋 appointment: Лікар {without.index(phone)}, 05.12, 10:30", "failed"),
                        (f"✉️ SMS: {sms.sent(phone)[0]['text']}", "delivered")], shop
    for phone in with_whatsapp:
        answer = onec.message(ids[phone])
        assert answer["channel"] == "whatsapp" and answer["status"] == "sent", answer
    # The killed call's batch: its re-run found it `sending` and did not send it again.
    assert db.scalar("SELECT COUNT(*) FROM wa_batches WHERE account = 'sms' AND state = 'unknown'") >= 1
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed'") == 0, failed_jobs(db)
    cluster.assert_all_alive()


def test_an_sms_outage_is_retried_then_the_sms_is_delivered_once(cluster_factory, figures, ga, sms, db):
    phone = "380675550001"
    ga.not_on_whatsapp(phone)
    cluster = cluster_factory(workers=2, public_url=True, WHATSAPP_PROVIDER="greenapi",
                              WHATSAPP_GREENAPI_URL=ga.url, WHATSAPP_GREENAPI_ID=ga.instance,
                              WHATSAPP_GREENAPI_TOKEN=ga.token, WHATSAPP_GREENAPI_WEBHOOK_TOKEN=GREENAPI_WEBHOOK_TOKEN,
                              WHATSAPP_TEMPLATE_APPOINTMENT="appointment", **sms_env(sms))
    onec = OneC(cluster, db)
    sms.go_offline()
    try:
        message_id = onec.appointment(phone, 1)
        until(lambda: (db.scalar("SELECT attempts FROM jobs WHERE kind = 'sms_send'") or 0) >= 2, 60, db)
        assert onec.message(message_id)["status"] == "queued"
        sms.fail_next(503, times=2)
        figures.fault("5xx", 2)
    finally:
        sms.come_back()
    until(lambda: onec.message(message_id).get("delivery") == "delivered", 90, db)
    assert settle(db, timeout=30), unfinished_jobs(db)
    assert [m["to"] for m in sms.sent()] == [phone]
    answer = onec.message(message_id)
    assert (answer["channel"], answer["status"]) == ("sms", "sent"), answer
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed'") == 0, failed_jobs(db)


def test_an_sms_rejected_for_its_recipient_is_a_dead_letter_with_error(cluster_factory, dv, sms, db, tg):
    dv.add_template("appointment", 3)
    phone = "380675550002"
    dv.not_on_whatsapp(phone)
    sms.reject(phone, "invalid")
    cluster = cluster_factory(workers=2, public_url=True, **devino_env(dv), **sms_env(sms))
    onec = OneC(cluster, db)
    message_id = onec.appointment(phone, 1)
    until(lambda: (onec.message(message_id)["channel"], onec.message(message_id)["status"]) == ("sms", "failed"),
          60, db)
    answer = onec.message(message_id)
    assert "REJECTED (invalid)" in answer["error"], answer
    assert wait_log_posts(tg, "#ERROR", "Devino SMS refused a message", timeout=30)
    assert sms.sent() == []


def test_an_sms_key_devino_refuses_is_a_dead_letter_with_error(cluster_factory, dv, sms, db, tg):
    dv.add_template("appointment", 3)
    phone = "380675550003"
    dv.not_on_whatsapp(phone)
    cluster = cluster_factory(workers=2, public_url=True, **devino_env(dv), **sms_env(sms, SMS_DEVINO_KEY="not-the-key"))
    onec = OneC(cluster, db)
    message_id = onec.appointment(phone, 2)
    until(lambda: (onec.message(message_id)["channel"], onec.message(message_id)["status"]) == ("sms", "failed"),
          60, db)
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'sms_send' AND status = 'failed'") == 1
    assert wait_log_posts(tg, "#ERROR", "SMS_DEVINO_KEY", timeout=30)
    assert sms.unauthorized >= 1 and sms.sent() == []


def test_without_an_sms_provider_a_notice_whatsapp_could_not_deliver_stays_a_whatsapp_failure(
        cluster_factory, dv, sms, db, tg):
    dv.add_template("appointment", 3)
    phone = "380675550004"
    dv.not_on_whatsapp(phone)
    cluster = cluster_factory(workers=1, public_url=True, **devino_env(dv))
    onec = OneC(cluster, db)
    message_id = onec.appointment(phone, 1)
    until(lambda: onec.message(message_id)["status"] == "failed", 60, db)
    assert settle(db, timeout=30), unfinished_jobs(db)
    answer = onec.message(message_id)
    assert (answer["channel"], answer["error_code"]) == ("whatsapp", 131026), answer
    assert "whatsapp" not in answer
    assert sms.calls == [] and db.scalar("SELECT COUNT(*) FROM jobs WHERE kind LIKE 'sms%%'") == 0
    assert not [p for p in log_posts(tg, "#ERROR") if "SMS" in p["visible_text"]]


def test_a_cloud_api_notice_failed_with_131026_goes_by_sms_and_one_delivered_does_not(
        cluster_factory, wa, sms, db):
    wa.add_template("appointment", 3)
    without, reached = "380675550005", "380675550006"
    wa.not_on_whatsapp(without)
    cluster = cluster_factory(workers=2, public_url=True, WHATSAPP_CLOUD_TOKEN=wa.token,
                              WHATSAPP_CLOUD_PHONE_NUMBER_ID=wa.phone_number_id,
                              WHATSAPP_CLOUD_APP_SECRET=wa.app_secret, WHATSAPP_CLOUD_VERIFY_TOKEN=wa.verify_token,
                              WHATSAPP_CLOUD_GRAPH_URL=wa.url, WHATSAPP_TEMPLATE_APPOINTMENT="appointment",
                              **sms_env(sms))
    assert wa.subscribe(f"{cluster.listener_url}/whatsapp/cloud").status_code == 200
    onec = OneC(cluster, db)
    ids = {phone: onec.appointment(phone, n) for n, phone in enumerate((without, reached))}
    until(lambda: onec.message(ids[without]).get("delivery") == "delivered", 60, db)
    until(lambda: onec.message(ids[reached]).get("delivery") == "delivered", 60, db)
    assert settle(db, timeout=30), unfinished_jobs(db)
    assert [m["to"] for m in sms.sent()] == [without]
    answer = onec.message(ids[without])
    assert (answer["channel"], answer["status"], answer["whatsapp"]["error_code"]) == ("sms", "sent", 131026), answer
    assert onec.message(ids[reached])["channel"] == "whatsapp"
