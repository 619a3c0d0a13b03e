"""SMS when WhatsApp cannot reach a customer: the settings, the texts, and reading Devino's
status callbacks in every form its documentation leaves open (no processes; the whole
path runs in tests/reliability/test_sms.py)."""
import json
from datetime import datetime

import pytest

from config import SettingsError, load_settings

BASE = {"BOT_TOKEN": "1:x", "DB_NAME": "k", "DB_USER": "k"}


def test_sms_settings_come_together_and_a_bad_template_is_named():
    assert not load_settings(BASE, env_file=None).sms_configured
    assert load_settings({**BASE, "SMS_DEVINO_KEY": "a2V5", "SMS_DEVINO_FROM": "Clinic"}, env_file=None).sms_configured
    with pytest.raises(SettingsError, match="SMS_DEVINO_FROM is required to send SMS through Devino"):
        load_settings({**BASE, "SMS_DEVINO_KEY": "a2V5"}, env_file=None)
    with pytest.raises(SettingsError, match=r"SMS_TEMPLATE_APPOINTMENT is malformed: unknown placeholder \{doctr\}"):
        load_settings({**BASE, "SMS_TEMPLATE_APPOINTMENT": "До {doctr} о {time}"}, env_file=None)
    with pytest.raises(SettingsError, match="SMS_DEVINO_FROM is malformed"):
        load_settings({**BASE, "SMS_DEVINO_KEY": "a2V5", "SMS_DEVINO_FROM": "A sender name too long"}, env_file=None)
    settings = load_settings({**BASE, "SMS_DEVINO_KEY": "sms-key-value", "SMS_DEVINO_FROM": "Clinic"}, env_file=None)
    assert "sms-key-value" in settings.secrets and "sms-key-value" not in repr(settings)


def test_each_notice_reads_as_its_sms_template():
    from models.whatsapp import OutboxMessage
    from services.sms import sms_text
    settings = load_settings(BASE, env_file=None)

    def message(purpose, params):
        return OutboxMessage(1, "a", "380671234567", purpose, "template", {"name": "t", "params": params},
                             "queued", None, None, None, None, datetime(2026, 1, 1), None)
    assert sms_text(settings, message("appointment", ["Іваненко", "05.12", "10:30"])) == \
        "Вас записано до Іваненко на 05.12 о 10:30."
    assert sms_text(settings, message("birthday", ["Олено", "05.12"])) == "Олено, вітаємо з днем народження!"
    assert sms_text(settings, message("review", ["Олено"])).startswith("Олено, дякуємо за візит!")
    assert sms_text(settings, message("custom", ["Ваше замовлення готове", "№ 12"])) == \
        "Ваше замовлення готове, № 12"
    short = settings.replace(sms_template_appointment="Запис: {doctor} {date} {time}")
    assert sms_text(short, message("appointment", ["Іваненко"])) == "Запис: Іваненко"


@pytest.mark.parametrize("body", [
    [{"messageId": "3000000000000000001", "ts": "2026-12-08T01:00:00Z", "status": "DELIVERED",
      "options": {"ref": "o42"}}],
    {"messageId": 3000000000000000001, "ts": 1796605200, "status": "delivered", "options": '{"ref": "o42"}'},
])
def test_a_status_callback_is_read_as_one_object_or_a_list_with_either_time_and_options(body):
    from channels.sms import parse_statuses
    statuses, unclear = parse_statuses(json.dumps(body).encode(), datetime(2026, 12, 8))
    assert unclear == []
    assert [(s.message_id, s.status, s.ref, s.at.year) for s in statuses] == [("3000000000000000001", "delivered",
                                                                              "o42", 2026)]


def test_an_undelivered_sms_keeps_devinos_code_and_an_unknown_status_is_not_guessed():
    from channels.sms import parse_statuses
    body = [{"messageId": "3000000000000000002", "status": "UNDELIVERED", "errorCode": "2305", "options": {"ref": "o7"}},
            {"messageId": "3000000000000000003", "status": "TELEPORTED"}]
    statuses, unclear = parse_statuses(json.dumps(body).encode(), datetime(2026, 12, 8))
    assert [(s.status, s.error_code, s.error) for s in statuses] == [("failed", 2305, "Devino SMS: UNDELIVERED, error 2305")]
    assert unclear == ["status TELEPORTED"]
