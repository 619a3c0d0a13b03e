"""Telegram → webhook door → durable queue → worker → real pyTelegramBotAPI → Telegram."""
from harness import wait_for
from conftest import ADMIN_ID


def test_start_from_a_stranger_is_answered_and_admins_are_told(desk, tg, db):
    tg.user_sends_text(ADMIN_ID, "/start", username="boss")  # the bootstrap admin
    tg.user_sends_text(555, "/start", username="newbie", first_name="Ann")
    wait_for(lambda: any("/approve_555" in (m.get("text") or "") for m in tg.messages(ADMIN_ID)))
    desk.idle()
    [answer] = [m for m in tg.messages(555)]
    assert "Очікуйте підтвердження" in answer["text"]
    notice = next(m for m in tg.messages(ADMIN_ID) if "/approve_555" in m["text"])
    assert "/ban_555" in notice["text"] and "/admin_555" in notice["text"] and "@newbie" in notice["text"]
    assert db.fetchone("SELECT role FROM users WHERE tg_id = 555")["role"] == "pending"
    assert db.fetchone("SELECT role FROM users WHERE tg_id = %s", (ADMIN_ID,))["role"] == "admin"


def test_english_speakers_get_english(desk, tg):
    tg.user_sends_text(556, "/start", language_code="en")
    wait_for(lambda: tg.messages(556))
    assert "wait for approval" in tg.messages(556)[0]["text"]


def test_a_redelivered_update_is_processed_once(desk, tg, db):
    update = tg.user_sends_text(557, "/start")
    for _ in range(2):
        assert tg.redeliver(update) == 200
    desk.idle()
    assert len(tg.messages(557)) == 1
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE dedupe_key = %s",
                     (f"tg:{update['update_id']}",)) == 1


def test_banned_people_get_no_answer(desk, tg, db):
    db.execute("INSERT INTO users (tg_id, role) VALUES (558, 'banned')")
    tg.user_sends_text(558, "/start")
    desk.idle()
    assert tg.messages(558) == []
    assert tg.calls("sendMessage") == []
