"""The manager's desk end to end: taking a chat, answering from Telegram, never twice
(SPEC §3 flows 2–3)."""
import subprocess
import sys
import threading

import pytest

from conftest import LOG_CHAT, ROOT, SHARED_CHAT
from harness import wait_for
from sandbox.telegram import parse_html

LINK_KEY = "test-link-key"


def visible(message) -> str:
    return parse_html(message.get("text") or message.get("caption") or "")[0]


def buttons(message):
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def add_manager(db, tg_id, username, language="uk"):
    db.execute("INSERT INTO users (tg_id, username, first_name, language, role)"
               " VALUES (%s, %s, %s, %s, 'manager')", (tg_id, username, username.title(), language))
    return tg_id


def new_client_post(desk, crm, tg, id_i, text="Чи є в наявності?", **kwargs):
    """A customer writes and the post lands in the shared chat; returns that post."""
    crm.customer_writes(id_i, text, email=f"client{id_i}@example.com", **kwargs)
    crm.signal(desk.listener_url, LINK_KEY, id_i)
    post = wait_for(lambda: [m for m in tg.messages(SHARED_CHAT)
                             if f"#{id_i}" in visible(m) or f": {id_i} " in visible(m)])[-1]
    desk.idle()
    return post


def tap(tg, user_id, post, username=None, language="uk"):
    [button] = buttons(post)
    return tg.user_presses_button(user_id, post["chat"]["id"] if "chat" in post else SHARED_CHAT,
                                  post["message_id"], button["callback_data"],
                                  username=username, language_code=language)


def answer_for(tg, update):
    query_id = update["callback_query"]["id"]
    return wait_for(lambda: [a for a in tg.callback_answers() if a["callback_query_id"] == query_id])[0]


def active_pins(db, id_i):
    return db.fetchall("SELECT manager_id, kind FROM pins WHERE conversation_id = %s AND state = 'ACTIVE'", (id_i,))


def test_reply_button_claims_the_chat_and_the_manager_can_answer(desk, crm, tg, db):
    olena = add_manager(db, 701, "olena")
    post = new_client_post(desk, crm, tg, 6001)
    answer = answer_for(tg, tap(tg, olena, post, "olena"))
    assert answer["text"] == "✅ Чат 6001 закріплено за вами."
    desk.idle()
    assert active_pins(db, 6001) == [{"manager_id": olena, "kind": "PIN"}]
    edited = tg.message(SHARED_CHAT, post["message_id"])
    assert visible(edited).endswith("Менеджер: @olena")
    to_olena = [visible(m) for m in tg.messages(olena)]
    assert any("Чи є в наявності?" in t for t in to_olena)              # the history
    assert to_olena[-1].startswith("Ви відповідаєте на ордер #6001 (client6001@example.com)")
    keyboard = tg.messages(olena)[-1]["reply_markup"]["keyboard"]
    assert ["📁 Історія чата", "✅ Надіслати статус \"Прочитано\""] == [b["text"] for b in keyboard[0]]
    log = [visible(m) for m in tg.messages(LOG_CHAT)]
    assert any(t.startswith("#CHANGE_PIN @olena") and "6001" in t for t in log)

    tg.user_sends_text(olena, "Так, є. Відправимо сьогодні & без передоплати <3")
    wait_for(lambda: any(m["seller"] for m in crm.messages(6001)))
    desk.idle()
    sent = [m for m in crm.messages(6001) if m["seller"]]
    assert [m["message"] for m in sent] == ["Так, є. Відправимо сьогодні & без передоплати <3"]
    assert visible(tg.messages(olena)[-1]) == "✅ Надіслано клієнту (ордер #6001)."


def test_a_second_manager_is_told_who_has_the_chat(desk, crm, tg, db):
    olena, petro = add_manager(db, 701, "olena"), add_manager(db, 702, "petro", "en")
    post = new_client_post(desk, crm, tg, 6002)
    answer_for(tg, tap(tg, olena, post, "olena"))
    answer = answer_for(tg, tap(tg, petro, post, "petro", "en"))
    assert answer["text"] == "This chat is pinned to @olena." and answer["show_alert"]
    desk.idle()
    edited = visible(tg.message(SHARED_CHAT, post["message_id"]))
    assert "Менеджер: @olena" in edited and "Також хотіли відповісти: @petro" in edited
    assert active_pins(db, 6002) == [{"manager_id": olena, "kind": "PIN"}]
    tg.user_sends_text(petro, "I'll answer anyway")  # not in send mode, chat not his
    desk.idle()
    assert not [m for m in crm.messages(6002) if m["seller"]]


def test_a_reply_typed_in_the_crm_page_before_the_tap_means_already_answered(desk, crm, tg, db):
    olena = add_manager(db, 701, "olena")
    post = new_client_post(desk, crm, tg, 6003)
    crm.shop_writes(6003, "Відповіли з веб-сторінки CRM")
    crm.signal(desk.listener_url, LINK_KEY, 6003)
    wait_for(lambda: db.scalar("SELECT COUNT(*) FROM messages WHERE conversation_id = 6003 AND direction = 'shop'"))
    answer = answer_for(tg, tap(tg, olena, post, "olena"))
    assert answer["text"] == "На це повідомлення вже відповіли."
    desk.idle()
    edited = tg.message(SHARED_CHAT, post["message_id"])
    assert visible(edited).endswith("✅ Клієнту вже відповіли")
    # "✍ Відповісти" is gone; the chat can still be opened from the post (SPEC §8).
    assert [b["text"] for b in buttons(edited)] == ["👉 Відкрити чат"]
    assert active_pins(db, 6003) == []


WORKER_PROCESSES = 2


@pytest.mark.slow
def test_twenty_managers_tapping_at_once_across_two_processes_make_one_claim(
        sandbox_settings, db, tg, crm, subprocess_env):
    from harness import Desk
    desk = Desk(sandbox_settings, db, tg, crm).start(workers=False)  # doors only, here
    env = dict(subprocess_env, TELEGRAM_API_URL=tg.url, KEEPING_API_URL=crm.api_url,
               KEEPING_WEB_URL=crm.web_url, WORKER_THREADS="6")
    workers = [subprocess.Popen([sys.executable, "-m", "bot", "worker"], cwd=ROOT, env=env)
               for _ in range(WORKER_PROCESSES)]
    try:
        managers = [add_manager(db, 800 + n, f"m{n:02d}") for n in range(20)]
        post = new_client_post(desk, crm, tg, 6004)
        barrier = threading.Barrier(len(managers))
        updates = {}
        # Every Bot API answer takes 0.1 s, as over a real network: the taps overlap in
        # time, so both processes work on them at once.
        tg.set_delay(0.1)

        def press(manager):
            barrier.wait()
            updates[manager] = tap(tg, manager, post, f"m{manager - 800:02d}")

        threads = [threading.Thread(target=press, args=(m,)) for m in managers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        answers = {m: answer_for(tg, u)["text"] for m, u in updates.items()}
        tg.set_delay(0)
        [winner] = [m for m, a in answers.items() if a == "✅ Чат 6004 закріплено за вами."]
        winner_name = f"@m{winner - 800:02d}"
        losers = [a for m, a in answers.items() if m != winner]
        assert losers == [f"Цей чат закріплено за {winner_name}."] * 19
        assert active_pins(db, 6004) == [{"manager_id": winner, "kind": "PIN"}]
        workers_seen = db.scalar("SELECT COUNT(DISTINCT SUBSTRING_INDEX(worker, ':', 2)) FROM jobs"
                                 " WHERE kind = 'tg_update'")
        assert workers_seen == WORKER_PROCESSES  # both processes really served taps
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            process.wait(timeout=20)
        desk.stop()


def test_a_manager_photo_lands_in_the_crm_as_an_uploaded_attachment(desk, crm, tg, db):
    olena = add_manager(db, 701, "olena")
    post = new_client_post(desk, crm, tg, 6005)
    answer_for(tg, tap(tg, olena, post, "olena"))
    desk.idle()
    tg.user_sends_photo(olena, b"\x89PNG the product photo", caption="Ось фото")
    wait_for(lambda: [m for m in crm.messages(6005) if m["seller"]])
    desk.idle()
    [upload] = crm.uploads()
    assert upload["data"] == b"\x89PNG the product photo"
    sent = [m for m in crm.messages(6005) if m["seller"]]
    assert sent[0]["message"] == "Ось фото"
    assert any(m["is_img"] or m["is_file"] for m in sent)
    assert visible(tg.messages(olena)[-1]) == "✅ Надіслано клієнту (ордер #6005)."


def test_a_document_sent_as_a_telegram_reply_to_the_notification_reaches_that_chat(desk, crm, tg, db):
    olena = add_manager(db, 701, "olena")
    post = new_client_post(desk, crm, tg, 6006)
    answer_for(tg, tap(tg, olena, post, "olena"))
    desk.idle()
    # A new client message in the pinned chat reaches Olena privately…
    crm.customer_writes(6006, "Надішліть рахунок, будь ласка")
    crm.signal(desk.listener_url, LINK_KEY, 6006)
    notice = wait_for(lambda: [m for m in tg.messages(olena) if "Надішліть рахунок" in visible(m)])[0]
    tg.user_sends_text(olena, "◀ Повернутися до чату")  # leave send mode: only the reply routes
    desk.idle()
    # …and she answers it with a Telegram reply carrying a file.
    tg.user_sends_document(olena, b"%PDF invoice", file_name="rahunok.pdf",
                           reply_to_message_id=notice["message_id"])
    wait_for(lambda: [m for m in crm.messages(6006) if m["seller"]])
    desk.idle()
    assert crm.uploads()[0]["name"] == "rahunok.pdf"
    assert crm.uploads()[0]["data"] == b"%PDF invoice"


def test_text_over_the_crm_limit_is_refused_with_the_limit_named(desk, crm, tg, db):
    olena = add_manager(db, 701, "olena")
    post = new_client_post(desk, crm, tg, 6007)
    answer_for(tg, tap(tg, olena, post, "olena"))
    desk.idle()
    tg.user_sends_text(olena, "x" * 4001)
    desk.idle()
    assert visible(tg.messages(olena)[-1]) == (
        "❌ Повідомлення задовге: 4001 символів, CRM приймає не більше 4000. Нічого не надіслано.")
    assert not [m for m in crm.messages(6007) if m["seller"]]


def test_writing_while_the_crm_is_down_says_so_and_delivers_once_when_it_is_back(desk, crm, tg, db):
    olena = add_manager(db, 701, "olena")
    post = new_client_post(desk, crm, tg, 6008)
    answer_for(tg, tap(tg, olena, post, "olena"))
    desk.idle()
    crm.set_down(503)
    tg.user_sends_text(olena, "Ви тут?")
    # Told at once, and told not to type it again: it waits for the CRM (SPEC §6).
    wait_for(lambda: visible(tg.messages(olena)[-1]).startswith("❌ CRM зараз недоступна"))
    assert "Не надсилайте його ще раз" in visible(tg.messages(olena)[-1])
    crm.set_up()
    wait_for(lambda: visible(tg.messages(olena)[-1]) == "✅ Надіслано клієнту (ордер #6008).",
             timeout=20)
    desk.idle()
    assert [m["message"] for m in crm.messages(6008) if m["seller"]] == ["Ви тут?"]


def test_commands_stickers_and_strangers_texts_never_reach_a_client(desk, crm, tg, db):
    olena = add_manager(db, 701, "olena")
    post = new_client_post(desk, crm, tg, 6009)
    answer_for(tg, tap(tg, olena, post, "olena"))
    desk.idle()
    tg.user_sends_text(olena, "/approve_5")       # an admin command from a manager: silence
    tg.deliver({"message": {"message_id": 999, "date": 0, "chat": {"id": olena, "type": "private"},
                            "from": {"id": olena, "is_bot": False, "first_name": "O"},
                            "sticker": {"file_id": "s", "file_unique_id": "s", "width": 1,
                                        "height": 1, "is_animated": False, "is_video": False,
                                        "type": "regular"}}})
    tg.user_sends_text(999999, "hello?")           # a stranger
    desk.idle()
    assert not [m for m in crm.messages(6009) if m["seller"]]
    assert visible(tg.messages(olena)[-1]).startswith("Цей тип повідомлення не підтримується")
    assert visible(tg.messages(999999)[-1]) == "Натисніть /start, щоб попросити доступ."


@pytest.mark.parametrize("data", ["garbage", "reply:1", "' OR 1=1 --", "x" * 65,
                                  "reply:1~AAAAAAAA", "unpin:6010~forged00"])
def test_forged_callback_data_changes_nothing(desk, crm, tg, db, data):
    olena, petro = add_manager(db, 701, "olena"), add_manager(db, 702, "petro")
    post = new_client_post(desk, crm, tg, 6010)
    answer_for(tg, tap(tg, olena, post, "olena"))
    desk.idle()
    before = db.fetchall("SELECT * FROM pins ORDER BY id")
    try:
        update = tg.user_presses_button(petro, SHARED_CHAT, post["message_id"], data)
    except ValueError:
        return  # the sandbox refuses data Telegram would refuse (over 64 bytes)
    assert answer_for(tg, update)["text"] == "Ця кнопка застаріла."
    desk.idle()
    assert db.fetchall("SELECT * FROM pins ORDER BY id") == before


def test_another_managers_chat_cannot_be_unpinned_or_written_to(desk, crm, tg, db):
    olena, petro = add_manager(db, 701, "olena"), add_manager(db, 702, "petro")
    post = new_client_post(desk, crm, tg, 6011)
    answer_for(tg, tap(tg, olena, post, "olena"))
    desk.idle()
    card = tg.messages(olena)[-1]
    answers = {}
    for action in ("unpin", "write"):
        data = desk.deps.codec.encode(action, 6011)
        update = tg.user_presses_button(petro, olena, card["message_id"], data)
        answers[action] = answer_for(tg, update)["text"]
    desk.idle()
    # Writing mode is refused at the tap, naming the holder (the service checks it) ...
    assert answers == {"unpin": "Цей чат не закріплено за вами.",
                       "write": "Цей чат закріплено за @olena."}
    tg.user_sends_text(petro, "Це Петро")
    desk.idle()
    # ... so his text goes nowhere.
    assert active_pins(db, 6011) == [{"manager_id": olena, "kind": "PIN"}]
    assert not [m for m in crm.messages(6011) if m["seller"]]
    assert visible(tg.messages(petro)[-1]).startswith("Спершу оберіть чат")


def test_an_expired_pin_sends_the_next_client_message_to_the_shared_chat(desk, crm, tg, db):
    from datetime import timedelta
    from utils.clock import utc_now
    olena = add_manager(db, 701, "olena")
    post = new_client_post(desk, crm, tg, 6012)
    answer_for(tg, tap(tg, olena, post, "olena"))
    desk.idle()
    desk.deps.clock = lambda: utc_now() + timedelta(hours=25)  # a day after her last reply
    crm.customer_writes(6012, "Ви мене забули?")
    crm.signal(desk.listener_url, LINK_KEY, 6012)
    repost = wait_for(lambda: [m for m in tg.messages(SHARED_CHAT) if "забули" in visible(m)])[0]
    assert [b["text"] for b in buttons(repost)] == ["✍ Відповісти"]
    assert not repost.get("disable_notification")
    assert not [m for m in tg.messages(olena) if "забули" in visible(m)]
    assert db.scalar("SELECT state FROM pins WHERE conversation_id = 6012") == "UN_PIN"
