"""Delivery at Telegram's limits (SPEC §6): the limiter's decisions, not its speed.

The sandbox enforces Telegram's limits here and answers 429 like Telegram would.
"""
import json

import pytest

from conftest import SHARED_CHAT
from harness import crm_chat, wait_for
from sandbox.telegram import parse_html

LINK_KEY = "test-link-key"


def visible(message) -> str:
    return parse_html(message.get("text") or message.get("caption") or "")[0]


@pytest.fixture
def enforcing(tg):
    tg.set_limits(True, global_per_s=30, private_per_s=1, group_per_min=20)
    yield tg
    tg.set_limits(False)


def add_manager(db, tg_id, username):
    db.execute("INSERT INTO users (tg_id, username, role) VALUES (%s, %s, 'manager')", (tg_id, username))


def test_a_burst_to_pinned_managers_and_the_shared_chat_gets_no_429(desk, crm, enforcing, db):
    tg = enforcing
    managers = [add_manager(db, 1100 + n, f"mgr{n}") or 1100 + n for n in range(4)]
    for n, manager in enumerate(managers):
        crm_chat(db, 7100 + n)
        db.execute("INSERT INTO pins (conversation_id, manager_id) VALUES (%s, %s)", (7100 + n, manager))
    for n in range(4):
        for k in range(2):  # two messages each: the private chats need a second between
            crm.customer_writes(7100 + n, f"chat {n} message {k}")
            crm.signal(desk.listener_url, LINK_KEY, 7100 + n)
    wait_for(lambda: all(len(tg.messages(m)) == 2 for m in managers), timeout=30)
    wait_for(lambda: len(tg.messages(SHARED_CHAT)) == 8, timeout=30)
    assert tg.count_429() == 0
    for manager in managers:  # 1 per second per private chat, as Telegram asks
        first, second = [c for c in tg.calls("sendMessage") if c["params"]["chat_id"] == str(manager)
                         or c["params"]["chat_id"] == manager]
        assert second["time"] - first["time"] >= 1.0


def test_retry_after_holds_back_only_that_chat(desk, crm, tg, db):
    add_manager(db, 1201, "slow")
    crm_chat(db, 7201)
    db.execute("INSERT INTO pins (conversation_id, manager_id) VALUES (7201, 1201)")
    tg.fail_next("sendMessage", status=429, retry_after=2)  # the first send: to the manager
    crm.customer_writes(7201, "for the slow chat")
    crm.signal(desk.listener_url, LINK_KEY, 7201)
    wait_for(lambda: tg.count_429() == 1)
    crm.customer_writes(7202, "for everyone else")
    crm.signal(desk.listener_url, LINK_KEY, 7202)
    wait_for(lambda: [m for m in tg.messages(SHARED_CHAT) if "everyone else" in visible(m)])
    assert tg.messages(1201) == []                       # still waiting out its retry_after
    [late] = wait_for(lambda: tg.messages(1201), timeout=10)
    refused = [c for c in tg.calls("sendMessage") if c["status"] == 429][0]
    assert late["date"] >= int(refused["time"]) + 2 - 1
    assert [c for c in tg.calls("sendMessage") if c["status"] == 200
            and str(c["params"]["chat_id"]) == "1201"][0]["time"] >= refused["time"] + 2


def test_posts_waiting_for_the_group_budget_are_merged_with_nothing_dropped(
        sandbox_settings, db, tg, crm):
    from harness import Desk
    desk = Desk(sandbox_settings.replace(tg_limit_group_per_min=1), db, tg, crm).start()
    try:
        for n in range(5):
            crm.customer_writes(7301, f"питання номер {n}")
            crm.signal(desk.listener_url, LINK_KEY, 7301)
            wait_for(lambda: db.scalar("SELECT COUNT(*) FROM messages WHERE conversation_id = 7301") == n + 1)
            if n == 0:
                # The first post went out a while ago: news no longer joins it by an edit
                # (bot/sender.py, APPEND_WITHIN), it waits for the budget and merges.
                wait_for(lambda: db.execute("UPDATE tg_message_map SET created_at ="
                                            " NOW(6) - INTERVAL 1 MINUTE WHERE conversation_id = 7301"))
        # Post 1 waits for the minute's budget; posts 2-4 queue up behind it.
        wait_for(lambda: db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'tg_send'"
                                   " AND status = 'pending'") >= 1 and
                 db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'crm_sync' AND status <> 'done'") == 0)
        assert len(tg.messages(SHARED_CHAT)) == 1           # the minute's budget: one post
        # Let the minute pass (for the limiter and for the waiting job) instead of sleeping.
        db.execute("UPDATE tg_rate SET stamps = ''")
        db.execute("UPDATE jobs SET run_after = NOW(6) WHERE status = 'pending' AND kind = 'tg_send'")
        desk.bell.ring_all()
        wait_for(lambda: len(tg.messages(SHARED_CHAT)) == 2)
        desk.idle()
        assert len(tg.messages(SHARED_CHAT)) == 2           # five messages, two posts
        assert db.scalar("SELECT COUNT(*) FROM jobs WHERE last_error LIKE 'merged into%%'") == 3
        first, merged = tg.messages(SHARED_CHAT)
        # Every message appears exactly once across the two posts, in the customer's order.
        both = visible(first) + "\n" + visible(merged)
        assert [both.count(f"питання номер {n}") for n in range(5)] == [1] * 5
        assert [both.index(f"номер {n}") for n in range(5)] == sorted(both.index(f"номер {n}") for n in range(5))
        assert visible(merged).endswith("питання номер 4")
        newest = db.scalar("SELECT id FROM messages WHERE external_id = %s",
                           (str(crm.messages(7301)[-1]["id"]),))
        [button] = merged["reply_markup"]["inline_keyboard"][0]
        assert desk.deps.codec.decode(button["callback_data"]).args == (newest,)
        carriers = [json.loads(r["payload"]) for r in
                    db.fetchall("SELECT payload FROM jobs WHERE payload LIKE '%%\"merged\"%%'")]
        assert sum(p["merged"] for p in carriers) == 3   # each carrier counts what it took in
    finally:
        desk.stop()


def test_a_manager_who_blocked_the_bot_is_skipped_and_the_shared_chat_hears_aloud(desk, crm, tg, db):
    add_manager(db, 1401, "gone")
    crm_chat(db, 7401)
    db.execute("INSERT INTO pins (conversation_id, manager_id) VALUES (7401, 1401)")
    tg.block_user(1401)
    crm.customer_writes(7401, "first")
    crm.signal(desk.listener_url, LINK_KEY, 7401)
    wait_for(lambda: db.scalar("SELECT reachable FROM users WHERE tg_id = 1401") == 0)
    desk.idle()
    crm.customer_writes(7401, "second")
    crm.signal(desk.listener_url, LINK_KEY, 7401)
    post = wait_for(lambda: [m for m in tg.messages(SHARED_CHAT) if visible(m).endswith("second")])[0]
    assert not post.get("disable_notification")
    assert "Закріплений менеджер: @gone" in visible(post)
    sends_to_gone = [c for c in tg.calls("sendMessage") if str(c["params"]["chat_id"]) == "1401"]
    assert len(sends_to_gone) == 1                        # the one that told us, no more


def test_a_managers_tap_is_answered_while_500_posts_wait(desk, crm, tg, db):
    from models.jobs import SEND
    add_manager(db, 1501, "olena")
    for n in range(500):  # a backlog the group budget will take 25 minutes to clear
        desk.deps.jobs.enqueue(SEND, "tg_send", {"chat_id": SHARED_CHAT, "method": "sendMessage",
                                                 "text": f"backlog {n}"}, lane=f"send:{SHARED_CHAT}")
    crm_chat(db, 7501)
    tg.user_sends_text(1501, "🔥 Мої переписки")
    reply = wait_for(lambda: tg.messages(1501), timeout=10)[0]
    assert visible(reply).startswith("🔥 Мої переписки")
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'tg_send' AND status = 'pending'") > 450
