"""Background sends: Telegram's limits, 429, 403, "not modified", and the message map."""
import pytest

from bot.factory import create_bot
from bot.outbox import TelegramOut
from bot.ratelimit import RateLimiter
from bot.sender import Sender
from conftest import LOG_CHAT, SHARED_CHAT
from models.jobs import SEND, JobQueue
from models.locks import LockManager
from models.message_map import MessageMapRepository
from models.users import UserManager
from services.errors import ErrorReporter
from scripts.worker import RetryLater, Worker


@pytest.fixture
def limiter(db, sandbox_settings):
    return RateLimiter(db, sandbox_settings)


@pytest.fixture
def sender(db, sandbox_settings, tg, limiter):
    jobs = JobQueue(db)
    return Sender(create_bot(sandbox_settings), limiter, jobs, MessageMapRepository(db),
                  UserManager.instance(db), ErrorReporter(db, TelegramOut(jobs), LOG_CHAT).report,
                  locks=LockManager.instance(db))


def test_limiter_allows_one_per_second_per_private_chat_and_twenty_per_minute_per_group(limiter):
    assert limiter.reserve(111) == 0.0
    wait = limiter.reserve(111)
    assert 0.9 < wait <= 1.1                      # the same private chat must wait a second
    assert limiter.reserve(222) == 0.0            # another chat need not
    for _ in range(20):
        assert limiter.reserve(SHARED_CHAT) == 0.0
    assert 55 < limiter.reserve(SHARED_CHAT) <= 61  # the 21st group post waits for the window


def test_limiter_caps_the_global_rate(limiter):
    granted = [limiter.reserve(1000 + n) for n in range(31)]
    assert granted[:30] == [0.0] * 30 and granted[30] > 0


def test_retry_after_blocks_only_that_chat(limiter):
    limiter.block(333, 5)
    assert 4 < limiter.reserve(333) <= 5
    assert limiter.reserve(444) == 0.0


def job(jobs, db, payload):
    jobs.enqueue(SEND, "tg_send", payload)
    [claimed] = jobs.claim([SEND], "test")
    return claimed


def test_a_post_is_sent_and_mapped(sender, db, tg):
    jobs = JobQueue(db)
    sender(job(jobs, db, {"chat_id": SHARED_CHAT, "method": "sendMessage", "text": "<b>hi</b>",
                          "conversation_id": 9, "message_id": 99, "purpose": "post"}))
    [sent] = tg.messages(SHARED_CHAT)
    assert sent["text"] == "<b>hi</b>"
    assert MessageMapRepository(db).lookup(SHARED_CHAT, sent["message_id"]).conversation_id == 9


def test_a_429_makes_that_chat_wait_retry_after(sender, db, tg, limiter):
    jobs = JobQueue(db)
    tg.fail_next("sendMessage", status=429, retry_after=7)
    with pytest.raises(RetryLater) as wait:
        sender(job(jobs, db, {"chat_id": 555, "method": "sendMessage", "text": "x"}))
    assert wait.value.delay == 7
    assert 6 < limiter.reserve(555) <= 7   # the block is shared with every process
    assert limiter.reserve(556) == 0.0


def test_a_user_who_blocked_the_bot_is_marked_unreachable_and_reported(sender, db, tg):
    db.execute("INSERT INTO users (tg_id, role) VALUES (777, 'manager')")
    tg.block_user(777)
    jobs = JobQueue(db)
    sender(job(jobs, db, {"chat_id": 777, "method": "sendMessage", "text": "x"}))
    assert db.scalar("SELECT reachable FROM users WHERE tg_id = 777") == 0
    report = db.fetchone("SELECT payload FROM jobs WHERE lane = %s", (f"send:{LOG_CHAT}",))
    assert '"notice":"log_error_cause"' in report["payload"] and "777" in report["payload"]


def test_a_refused_image_url_is_sent_as_a_link(sender, db, tg):
    jobs = JobQueue(db)
    tg.fail_next("sendPhoto", status=400, description="Bad Request: wrong file identifier/HTTP URL specified")
    sender(job(jobs, db, {"chat_id": SHARED_CHAT, "method": "sendPhoto", "text": "caption",
                          "photo": "http://crm.example/img.png?a=1&b=2"}))
    [sent] = tg.messages(SHARED_CHAT)
    assert 'href="http://crm.example/img.png?a=1&amp;b=2"' in sent["text"]


def test_the_worker_retries_a_5xx_and_delivers(sender, db, tg):
    jobs = JobQueue(db)
    jobs.enqueue(SEND, "tg_send", {"chat_id": 901, "method": "sendMessage", "text": "retry me"})
    tg.fail_next("sendMessage", status=502)
    worker = Worker(jobs, {"tg_send": sender})
    assert worker.run_once()
    # Skip the backoff and the second the failed attempt took from the chat's budget.
    db.execute("UPDATE jobs SET run_after = NOW(6)")
    db.execute("UPDATE tg_rate SET stamps = ''")
    assert worker.run_once()
    assert [m["text"] for m in tg.messages(901)] == ["retry me"]
    assert db.scalar("SELECT status FROM jobs") == "done"


def test_a_send_counts_from_when_telegram_answered(limiter, db):
    """A request delayed on its way must not let the next one arrive inside the window."""
    assert limiter.reserve(112) == 0.0
    reserved = float(db.scalar("SELECT stamps FROM tg_rate WHERE bucket = 'chat:112'"))
    db.execute("DO SLEEP(0.2)")  # the request spends 0.2 s on the wire
    limiter.confirm(112)
    answered = float(db.scalar("SELECT stamps FROM tg_rate WHERE bucket = 'chat:112'"))
    assert answered - reserved >= 0.2
    assert 0.95 < limiter.reserve(112) <= 1.1  # a full second from the answer, not from the reservation


def post(conversation_id: int, message_id: int, text: str) -> dict:
    html = f"Повідомлення: {text}"
    return {"chat_id": SHARED_CHAT, "method": "sendMessage", "text": "<b>Чат</b>\n" + html,
            "merge_html": html, "conversation_id": conversation_id, "message_id": message_id,
            "purpose": "post", "reply_markup": {"inline_keyboard": [[
                {"text": "✍ Відповісти", "callback_data": f"w:{message_id}"}]]}}


def test_news_seconds_after_a_post_joins_it_when_the_groups_budget_is_spent(sender, db, tg, limiter):
    jobs = JobQueue(db)
    sender(job(jobs, db, post(9, 91, "перше")))
    for _ in range(19):
        limiter.reserve(SHARED_CHAT)             # the minute's budget is gone
    sender(job(jobs, db, post(9, 92, "друге")))  # no wait for the next minute
    [shown] = tg.messages(SHARED_CHAT)
    assert shown["text"].endswith("Повідомлення: перше\n\nПовідомлення: друге")
    assert shown["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "w:92"
    mapped = MessageMapRepository(db).lookup(SHARED_CHAT, shown["message_id"])
    assert mapped.message_id == 92 and mapped.html == shown["text"]  # a tap's note keeps both


def test_news_does_not_join_a_post_someone_tapped_nor_one_of_another_chat(sender, db, tg, limiter):
    jobs = JobQueue(db)
    sender(job(jobs, db, post(9, 91, "перше")))
    sender(job(jobs, db, post(10, 101, "інший чат")))
    tapped = tg.messages(SHARED_CHAT)[0]["message_id"]
    MessageMapRepository(db).set_notes(SHARED_CHAT, tapped, {"appendable": True, "answered": True})
    for _ in range(18):
        limiter.reserve(SHARED_CHAT)
    with pytest.raises(RetryLater):
        sender(job(jobs, db, post(9, 92, "друге")))
    assert [m["text"].rsplit(": ", 1)[1] for m in tg.messages(SHARED_CHAT)] == ["перше", "інший чат"]
