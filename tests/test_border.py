"""Bad data stays at the border (SPEC §6): an odd CRM record affects itself only.

Seen in a shop's first month: a client e-mail of a few hundred characters failed every
sync of its chat with "Data too long for column 'email'", and none of that customer's
later messages reached Telegram; so did long product titles and long file URLs (a
percent-encoded Cyrillic file name is enough). Here the CRM sandbox produces such
records and the real pipeline (doors, workers, MariaDB, Telegram sandbox) must deliver
them, and the customer's next message too. Behind the border, the store itself keeps a
refused row from taking its conversation down.
"""
from __future__ import annotations

import urllib.parse
from datetime import datetime

import pytest

from conftest import SHARED_CHAT
from crm import client as crm_client
from crm.client import CrmMessage
from channels.keepingcrm.sync import inbound
from harness import crm_chat, install_release_2, wait_for
from models.conversations import ConversationRepository
from models.db import Database, migrate
from models.inbound import ConversationInfo
from models.messages import MessageRepository
from sandbox.telegram import parse_html, utf16_len

LINK_KEY = "test-link-key"

LONG_EMAIL = "customer." + "x" * 379 + "@example.com"                 # 400 characters
LONG_PRODUCT = ("Ключ активації Windows 11 Pro OEM — " * 100)[:3000]
CYRILLIC_FILE = "Рахунок-фактура для замовлення " * 12 + ".pdf"        # 376 characters


def shared_posts(tg):
    return [m for m in tg.messages(SHARED_CHAT) if not m.get("deleted")]


def visible(message) -> str:
    return parse_html(message.get("text") or message.get("caption") or "")[0]


def links(message) -> list[str]:
    html = message.get("text") or message.get("caption") or ""
    return [e["url"] for e in parse_html(html)[1] if e["type"] == "text_link"]


# --------------------------------------------------------------------------- the pipeline

def test_a_chat_with_long_metadata_and_a_long_file_url_is_delivered_and_goes_on(desk, crm, tg, db):
    file_message = crm.customer_writes(7001, "Ось рахунок, перевірте, будь ласка", email=LONG_EMAIL,
                                       product=LONG_PRODUCT, file=b"%PDF-1.4 invoice",
                                       filename=CYRILLIC_FILE)
    assert len(file_message["url"]) > 2048                  # the URL that failed before
    assert urllib.parse.quote(CYRILLIC_FILE) in file_message["url"]
    assert crm.signal(desk.listener_url, LINK_KEY, 7001) == [200]
    [post] = wait_for(lambda: shared_posts(tg))
    shown = visible(post)
    assert "Ось рахунок, перевірте, будь ласка" in shown
    assert links(post)[-1] == file_message["url"]          # the link whole, never cut
    assert "Ключ активації Windows 11 Pro OEM" in shown and "customer.xxx" in shown

    chat = db.fetchone("SELECT customer_email AS email, title AS product FROM conversations"
                       " WHERE id = 7001")
    assert len(chat["email"]) == crm_client.EMAIL_MAX and chat["email"].endswith("…")
    assert len(chat["product"]) == crm_client.PRODUCT_MAX and chat["product"].endswith("…")
    stored = db.fetchone("SELECT url, filename FROM messages WHERE external_id = %s",
                         (str(file_message["id"]),))
    assert stored == {"url": file_message["url"], "filename": CYRILLIC_FILE}

    # The customer's next message in the same chat arrives too.
    crm.customer_writes(7001, "Ви отримали рахунок?")
    crm.signal(desk.listener_url, LINK_KEY, 7001)
    second = wait_for(lambda: len(shared_posts(tg)) == 2 and shared_posts(tg)[1])
    assert visible(second).endswith("Ви отримали рахунок?")


def test_a_file_name_too_long_for_its_column_keeps_its_extension(desk, crm, tg, db):
    name = "Акт про пошкодження упаковки " * 30 + ".docx"                  # 875 characters
    message = crm.customer_writes(7002, "", email="a@example.com", file=b"data", filename=name)
    crm.signal(desk.listener_url, LINK_KEY, 7002)
    [post] = wait_for(lambda: shared_posts(tg))
    assert links(post) == [f"{crm.web_url}/purchases_inv_detail?id_i=7002&view=debate", message["url"]]
    assert visible(post).endswith("….docx")
    stored = db.scalar("SELECT filename FROM messages WHERE external_id = %s", (str(message["id"]),))
    assert len(stored) == crm_client.FILENAME_MAX and stored.endswith("….docx")
    assert stored.startswith("Акт про пошкодження упаковки")


def test_a_long_text_with_a_file_is_shown_whole_with_the_file_link(desk, crm, tg):
    text = ("Опис проблеми: коробка прийшла зім'ята, всередині бракує кабелю. " * 80).strip()
    message = crm.customer_writes(7003, text, file=b"data", filename="фото.jpg.pdf")
    crm.signal(desk.listener_url, LINK_KEY, 7003)
    desk.idle()
    posts = shared_posts(tg)
    shown = "".join(visible(p) for p in posts)
    assert shown.count("Опис проблеми") == 80               # nothing the customer wrote is lost
    assert links(posts[-1])[-1] == message["url"] and visible(posts[-1]).endswith("фото.jpg.pdf")


def test_a_record_the_database_refuses_becomes_a_placeholder_and_the_chat_goes_on(
        desk, crm, tg, db, monkeypatch):
    # Defence in depth: let a file name past the border that its column cannot hold.
    monkeypatch.setattr(crm_client, "FILENAME_MAX", 10_000)
    crm.customer_writes(7004, "before", email="a@example.com")
    poison = crm.customer_writes(7004, "the poison", file=b"x", filename="ф" * 600 + ".pdf")
    crm.customer_writes(7004, "after")
    crm.signal(desk.listener_url, LINK_KEY, 7004)
    desk.idle()
    shown = [visible(p) for p in shared_posts(tg)]
    assert [s.rsplit(": ", 1)[-1] for s in (shown[0], shown[2])] == ["before", "after"]
    assert "(this message could not be stored: Data too long for column 'filename'" in shown[1]
    assert db.scalar("SELECT COUNT(*) FROM messages WHERE conversation_id = 7004") == 3
    assert db.scalar("SELECT url FROM messages WHERE external_id = %s", (str(poison["id"]),)) is None
    crm.customer_writes(7004, "and the next one")
    crm.signal(desk.listener_url, LINK_KEY, 7004)
    wait_for(lambda: visible(shared_posts(tg)[-1]).endswith("and the next one"))


def test_claiming_a_chat_of_long_messages_shows_its_history_and_the_writing_prompt(desk, crm, tg, db):
    """8 long messages with long file links made a history page over 4096 characters:
    the send failed and the claim ended without the writing prompt."""
    olena = 7701
    db.execute("INSERT INTO users (tg_id, username, first_name, language, role)"
               " VALUES (%s, 'olena', 'Olena', 'uk', 'manager')", (olena,))
    for number in range(8):
        crm.customer_writes(7005, f"{number}: " + "Дуже довгий опис замовлення. " * 40,
                            email="client@example.com", file=b"x", filename=CYRILLIC_FILE)
    crm.signal(desk.listener_url, LINK_KEY, 7005)
    desk.idle()
    post = shared_posts(tg)[-1]
    [button] = post["reply_markup"]["inline_keyboard"][0]
    tg.user_presses_button(olena, SHARED_CHAT, post["message_id"], button["callback_data"],
                           username="olena")
    history, prompt = wait_for(lambda: len(tg.messages(olena)) >= 2 and tg.messages(olena))
    shown = visible(history)
    assert shown.startswith("📁 Історія чата #7005") and utf16_len(shown) <= 4096
    assert all(f"{number}: Дуже довгий опис" in shown for number in range(8))
    assert len(links(history)) == 8
    assert visible(prompt).startswith("Ви відповідаєте на ордер #7005")


# --------------------------------------------------------------------------- the store

def crm_message(number: int, **overrides) -> CrmMessage:
    fields = dict(id=number, id_i=7100, text=f"message {number}", from_client=True,
                  from_shop=False, deleted=False, date_written=datetime(2024, 5, 1, 10, number),
                  date_seen=None, is_file=False, is_img=False, filename=None, url=None,
                  preview=None)
    fields.update(overrides)
    return CrmMessage(**fields)


@pytest.mark.parametrize("poison", [
    {"filename": "x" * 600},                  # 1406 data too long
    {"text": "broken \ud83d surrogate"},      # not encodable as UTF-8 at all
    {"date_written": "2024-02-30 10:00:00"},  # 1292 incorrect datetime (and its placeholder too)
], ids=["too-long", "lone-surrogate", "bad-date"])
def test_one_refused_row_of_a_batch_affects_itself_only(db, poison):
    messages = MessageRepository(db)
    batch = [crm_message(1), crm_message(2, **poison), crm_message(3)]
    crm_chat(db, 7100, customer_email="a@example.com")
    with db.transaction() as cur:
        messages.store(cur, 7100, [inbound(m) for m in batch])
    rows = {int(r["external_id"]): r for r in
            db.fetchall("SELECT * FROM messages WHERE conversation_id = 7100")}
    assert sorted(rows) == [1, 2, 3]
    assert rows[1]["text"] == "message 1" and rows[3]["text"] == "message 3"
    assert rows[2]["text"].startswith("(this message could not be stored: ")
    assert rows[2]["direction"] == "client" and rows[2]["filename"] is None


def test_chat_metadata_the_database_refuses_is_left_out_and_the_rest_saved(db):
    chats = ConversationRepository(db)
    crm_chat(db, 7101)

    def save(cur, cnt_msg=None, **info):
        chats.save_info(cur, 7101, ConversationInfo(**info), last_date=None,
                        last_customer_at=None, cnt_msg=cnt_msg, kind=None)

    with db.transaction() as cur:
        save(cur, customer_email="x" * 400, title="Ноутбук", cnt_msg=3, cnt_new=1)
    saved = chats.get(7101)
    assert (saved.customer_email, saved.title, saved.cnt_msg, saved.cnt_new) == (None, "Ноутбук", 3, 1)
    with db.transaction() as cur:          # a later refusal never erases what was known
        save(cur, customer_email="ok@example.com")
        save(cur, customer_email="y" * 400, cnt_msg=2**40)
    saved = chats.get(7101)
    assert (saved.customer_email, saved.cnt_msg) == ("ok@example.com", 3)


# --------------------------------------------------------------------------- the schema

def test_the_borders_bounds_fit_the_columns(db):
    def column(table, name):
        return db.fetchone("SELECT DATA_TYPE AS type, CHARACTER_MAXIMUM_LENGTH AS chars,"
                           " CHARACTER_OCTET_LENGTH AS bytes FROM information_schema.COLUMNS"
                           " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s"
                           " AND COLUMN_NAME = %s", (table, name))
    assert column("conversations", "customer_email")["chars"] >= crm_client.EMAIL_MAX
    assert column("conversations", "title")["chars"] >= crm_client.PRODUCT_MAX
    assert column("messages", "filename")["chars"] >= crm_client.FILENAME_MAX
    for name in ("url", "preview"):
        assert column("messages", name)["bytes"] >= crm_client.URL_MAX_BYTES
    text_max = len(crm_client.TEXT_CUT) + crm_client.TEXT_MAX
    assert column("messages", "text")["bytes"] >= 4 * text_max


def test_an_installation_of_version_2_is_upgraded_keeping_its_messages(mariadb, settings):
    mariadb.create_database("keepdesk_v2", drop=True)
    old = Database(settings.replace(mysql_db="keepdesk_v2"), pool_size=1)
    try:
        install_release_2(old)  # URLs of at most 2048 characters there
        old.execute("INSERT INTO chats (id_i, email) VALUES (1, 'a@example.com')")
        old.execute("INSERT INTO messages (id, id_i, direction, text, url)"
                    " VALUES (10, 1, 'client', 'kept', 'http://crm.example/f/1/a.pdf')")
        migrate(old)
        assert old.scalar("SELECT value FROM schema_meta WHERE name = 'version'") == "4"
        types = {r["COLUMN_NAME"]: r["DATA_TYPE"] for r in old.fetchall(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'messages'"
            " AND COLUMN_NAME IN ('url', 'preview')")}
        assert types == {"url": "text", "preview": "text"}
        assert old.fetchone("SELECT text, url FROM messages WHERE id = 10") == \
            {"text": "kept", "url": "http://crm.example/f/1/a.pdf"}
        old.execute("UPDATE messages SET url = %s WHERE id = 10", ("http://crm.example/" + "%D0" * 3000,))
    finally:
        old.close()
        mariadb.create_database("keepdesk_v2", drop=True)
