"""CRM → Telegram: every customer message reaches the right people once (SPEC §3.1, §6).

Real parts: the CRM and Telegram sandboxes over loopback, the listener door on a real
port, workers with the real pyTelegramBotAPI, the session's MariaDB.
"""
import time


from conftest import SHARED_CHAT
from harness import crm_chat, wait_for
from sandbox.telegram import parse_html

LINK_KEY = "test-link-key"


def shared_posts(tg):
    return [m for m in tg.messages(SHARED_CHAT) if not m.get("deleted")]


def visible(message) -> str:
    return parse_html(message.get("text") or message.get("caption") or "")[0]


def buttons(message):
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def add_manager(db, tg_id=700, username="olena", language="uk"):
    db.execute("INSERT INTO users (tg_id, username, first_name, language, role)"
               " VALUES (%s, %s, 'Olena', %s, 'manager')", (tg_id, username, language))
    return tg_id


def pin(db, id_i, manager_id, kind="PIN"):
    crm_chat(db, id_i)
    db.execute("INSERT INTO pins (conversation_id, manager_id, kind) VALUES (%s, %s, %s)", (id_i, manager_id, kind))


def test_a_new_customer_message_appears_in_the_shared_chat_with_the_reply_button(desk, crm, tg):
    crm.customer_writes(5001, "Добрий день! Є в наявності?", email="buyer@example.com",
                        product="Ноутбук Lenovo")
    assert crm.signal(desk.listener_url, LINK_KEY, 5001) == [200]
    [post] = wait_for(lambda: shared_posts(tg))
    text = visible(post)
    assert text.startswith("📧 Повідомлення від клієнта\nНоутбук Lenovo\nРахунок: 5001 Клієнт: buyer@example.com")
    assert text.endswith("Повідомлення: Добрий день! Є в наявності?")
    assert f'href="{crm.web_url}/purchases_inv_detail?id_i=5001&amp;view=debate"' in post["text"]
    [button] = buttons(post)
    assert button["text"] == "✍ Відповісти"
    callback = desk.deps.codec.decode(button["callback_data"])
    # The button names the customer's message (KeepDesk's number of the CRM's message).
    stored = desk.db.scalar("SELECT id FROM messages WHERE external_id = %s",
                            (str(crm.messages(5001)[0]["id"]),))
    assert callback.action == "reply" and callback.args == (stored,)
    assert not post.get("disable_notification")


def test_a_pinned_chat_goes_to_its_manager_and_quietly_to_the_shared_chat(desk, crm, tg, db):
    manager = add_manager(db)
    crm.add_chat(5002, email="c@example.com", product="Телефон")
    pin(db, 5002, manager)
    crm.customer_writes(5002, "Коли відправка?")
    crm.signal(desk.listener_url, LINK_KEY, 5002)
    [to_manager] = wait_for(lambda: tg.messages(manager))
    [to_shared] = wait_for(lambda: shared_posts(tg))
    assert visible(to_manager).endswith("Коли відправка?")
    [open_button] = buttons(to_manager)
    assert open_button["text"] == "⚡ Відкрити чат"
    assert desk.deps.codec.decode(open_button["callback_data"]).args == (5002,)
    assert to_shared["disable_notification"] is True
    assert "Закріплений менеджер: @olena" in visible(to_shared)
    assert buttons(to_shared) == []


def test_an_image_arrives_as_a_photo_and_a_file_as_a_link(desk, crm, tg):
    image = crm.customer_writes(5003, "фото товару", image=b"\x89PNG fake", filename="item.png")
    document = crm.customer_writes(5003, "", file=b"%PDF fake", filename="invoice.pdf")
    crm.signal(desk.listener_url, LINK_KEY, 5003)
    photo_post, file_post = wait_for(lambda: len(shared_posts(tg)) == 2 and shared_posts(tg))
    assert photo_post["photo"] and visible(photo_post).endswith("фото товару")
    sent_photo = tg.calls("sendPhoto")[0]["params"]["photo"]
    assert sent_photo == image["url"]
    assert visible(file_post).endswith("invoice.pdf")
    assert f'<a href="{document["url"]}">invoice.pdf</a>' in file_post["text"]


def test_hostile_and_long_text_arrives_escaped_and_split_with_nothing_cut(desk, crm, tg):
    body = ("<b>not bold</b> & <script>x</script> 😀 " * 200)[:5000]
    crm.customer_writes(5004, body.replace("\n", "<br>"))
    crm.signal(desk.listener_url, LINK_KEY, 5004)
    parts = wait_for(lambda: len(shared_posts(tg)) >= 2 and shared_posts(tg))
    desk.idle()
    parts = shared_posts(tg)
    assert len(parts) == 2
    texts = [visible(p) for p in parts]
    assert all(len(t.encode("utf-16-le")) // 2 <= 4096 for t in texts)
    first_body = texts[0].split("Повідомлення: ", 1)[1]
    second_body = texts[1].split("\n", 1)[1]  # after the "(продовження …)" line
    assert first_body + second_body == body
    assert "&lt;b&gt;not bold&lt;/b&gt; &amp;" in parts[0]["text"]
    assert buttons(parts[0]) == [] and len(buttons(parts[1])) == 1  # button under the end


def test_the_same_signal_five_times_in_a_burst_gives_one_post(desk, crm, tg, db):
    crm.customer_writes(5005, "one message")
    assert crm.signal(desk.listener_url, LINK_KEY, 5005, times=5) == [200] * 5
    wait_for(lambda: shared_posts(tg))
    desk.idle()
    time.sleep(0.3)
    assert len(shared_posts(tg)) == 1
    assert db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'crm_sync'") == 1


def test_a_message_answered_in_the_crm_page_before_the_sync_is_not_announced(desk, crm, tg, db):
    crm.customer_writes(5006, "first question")
    crm.signal(desk.listener_url, LINK_KEY, 5006)
    wait_for(lambda: shared_posts(tg))
    crm.customer_writes(5006, "second question")
    crm.shop_writes(5006, "answered from the CRM web page")
    crm.signal(desk.listener_url, LINK_KEY, 5006)
    wait_for(lambda: db.scalar("SELECT COUNT(*) FROM messages WHERE conversation_id = 5006") == 3)
    desk.idle()
    assert len(shared_posts(tg)) == 1
    assert db.scalar("SELECT COUNT(*) FROM messages WHERE conversation_id = 5006 AND direction = 'shop'") == 1


def test_a_sync_of_a_known_chat_costs_at_most_two_crm_calls(desk, crm, tg):
    crm.customer_writes(5007, "hello")
    crm.signal(desk.listener_url, LINK_KEY, 5007)
    wait_for(lambda: shared_posts(tg))
    desk.idle()
    before = len(crm.calls())
    crm.customer_writes(5007, "hello again")
    crm.signal(desk.listener_url, LINK_KEY, 5007)
    wait_for(lambda: len(shared_posts(tg)) == 2)
    desk.idle()
    during = crm.calls()[before:]
    assert 1 <= len(during) <= 2
    assert not [c for c in during if "chats" in c["path"]]  # never a walk of the chat list


def test_a_message_whose_signal_never_came_is_posted_by_reconciliation(reconciling_desk, crm, tg):
    crm.customer_writes(5008, "nobody signalled me")
    post = wait_for(lambda: shared_posts(tg), timeout=15)
    assert visible(post[0]).endswith("nobody signalled me")


def test_crm_down_for_a_while_delays_the_message_and_loses_nothing(desk, crm, tg, db):
    crm.customer_writes(5009, "written while the CRM API is down")
    crm.set_down(503)
    crm.signal(desk.listener_url, LINK_KEY, 5009)
    wait_for(lambda: db.scalar("SELECT attempts FROM jobs WHERE dedupe_key = 'sync:5009'") >= 1)
    # the attempt failed for the reason it had, and the sync waits to try again
    assert "CrmUnavailable" in wait_for(
        lambda: db.scalar("SELECT last_error FROM jobs WHERE dedupe_key = 'sync:5009'"))
    time.sleep(1.0)
    crm.set_refuse(True)  # and then not even answering
    time.sleep(1.0)
    assert shared_posts(tg) == []
    crm.set_refuse(False)
    crm.set_up()
    [post] = wait_for(lambda: shared_posts(tg), timeout=20)
    assert visible(post).endswith("written while the CRM API is down")


def test_an_expired_token_is_renewed_without_a_failed_sync(desk, crm, tg, db):
    crm.customer_writes(5010, "first")
    crm.signal(desk.listener_url, LINK_KEY, 5010)
    wait_for(lambda: shared_posts(tg))
    desk.idle()
    logins = crm.count_calls("apilogin")
    crm.expire_tokens()
    crm.customer_writes(5010, "after the token expired")
    crm.signal(desk.listener_url, LINK_KEY, 5010)
    wait_for(lambda: len(shared_posts(tg)) == 2)
    desk.idle()
    job = db.fetchone("SELECT attempts, last_error, status FROM jobs WHERE dedupe_key = 'sync:5010'")
    assert (job["status"], job["last_error"]) == ("done", None)
    assert crm.count_calls("apilogin") == logins + 1


def test_every_sent_post_is_in_the_message_map(desk, crm, tg, db):
    crm.customer_writes(5011, "map me")
    crm.signal(desk.listener_url, LINK_KEY, 5011)
    [post] = wait_for(lambda: shared_posts(tg))
    desk.idle()
    row = db.fetchone("SELECT * FROM tg_message_map WHERE tg_chat_id = %s AND tg_message_id = %s",
                      (SHARED_CHAT, post["message_id"]))
    stored = db.scalar("SELECT id FROM messages WHERE external_id = %s",
                       (str(crm.messages(5011)[0]["id"]),))
    assert row["conversation_id"] == 5011 and row["message_id"] == stored
