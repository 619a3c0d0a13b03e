"""The Telegram sandbox, driven by the real pyTelegramBotAPI as the bot will drive it."""

from __future__ import annotations

import io
import json
import threading
import time

import pytest
import requests
import telebot
from flask import Flask, request
from telebot import apihelper, types

from sandbox._server import ServerThread
from sandbox.telegram import HtmlParseError, TelegramSandbox, parse_html

USER = 501
GROUP = -1001000000001


@pytest.fixture
def sb():
    with TelegramSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def bot(sb, monkeypatch):
    # monkeypatch puts the real Telegram URLs back after the test.
    monkeypatch.setattr(apihelper, "API_URL", sb.api_url)
    monkeypatch.setattr(apihelper, "FILE_URL", sb.file_url)
    return telebot.TeleBot(sb.token, threaded=False)


def keyboard(*pairs: tuple[str, str]) -> types.InlineKeyboardMarkup:
    markup = types.InlineKeyboardMarkup()
    markup.row(*(types.InlineKeyboardButton(text, callback_data=data) for text, data in pairs))
    return markup


def api_error(call) -> apihelper.ApiTelegramException:
    with pytest.raises(apihelper.ApiTelegramException) as caught:
        call()
    return caught.value


# --------------------------------------------------------------------- basics

def test_get_me(bot, sb):
    me = bot.get_me()
    assert me.is_bot and me.id == 123456 and me.username == "keepdesk_bot"
    assert sb.calls("getme")[0]["status"] == 200


def test_wrong_token_and_unknown_method(sb):
    wrong = requests.get(sb.api_url.format("1:wrong", "getMe"), timeout=5)
    assert wrong.status_code == 401
    assert wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    unknown = requests.get(sb.api_url.format(sb.token, "sendTelepathy"), timeout=5)
    assert unknown.status_code == 404
    assert unknown.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


def test_parameters_from_json_and_form_bodies_with_any_method_case(sb):
    url = sb.api_url.format(sb.token, "SENDMESSAGE")
    by_json = requests.post(url, json={"chat_id": USER, "text": "json",
                                       "reply_markup": {"inline_keyboard": [[
                                           {"text": "x", "callback_data": "x"}]]}}, timeout=5)
    by_form = requests.post(url, data={"chat_id": str(USER), "text": "form"}, timeout=5)
    assert by_json.json()["result"]["reply_markup"]["inline_keyboard"][0][0]["text"] == "x"
    assert by_form.json()["result"]["message_id"] == 2
    assert [c["params"]["text"] for c in sb.calls("sendMessage")] == ["json", "form"]
    assert sb.calls("sendmessage")[1]["params"]["chat_id"] == USER


# --------------------------------------------------------------------- sending and editing

def test_send_message_round_trip_with_html_and_inline_keyboard(bot, sb):
    sent = bot.send_message(USER, "<b>Повідомлення:</b> a &lt; b", parse_mode="HTML",
                            reply_markup=keyboard(("✍ Відповісти", "reply:42")),
                            disable_notification=True)

    assert sent.message_id == 1 and sent.chat.type == "private"
    assert sent.text == "Повідомлення: a < b"          # visible text, as Telegram returns it
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [("bold", 0, 13)]
    assert sent.reply_markup.keyboard[0][0].callback_data == "reply:42"
    assert sent.from_user.id == 123456

    call = sb.calls("sendMessage")[0]
    assert call["params"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "reply:42"
    assert call["params"]["disable_notification"] is True and call["status"] == 200
    stored = sb.messages(USER)[0]
    assert stored["text"] == "<b>Повідомлення:</b> a &lt; b" and stored["parse_mode"] == "HTML"
    assert stored["disable_notification"] is True and not stored["edited"]


def test_message_ids_increase_per_chat(bot):
    assert [bot.send_message(USER, "x").message_id for _ in range(2)] == [1, 2]
    assert bot.send_message(GROUP, "x").message_id == 1
    assert bot.send_message(GROUP, "y").chat.type == "supergroup"


def test_edit_with_identical_content_is_not_modified(bot, sb):
    markup = keyboard(("◀", "page:1"), ("▶", "page:3"))
    sent = bot.send_message(USER, "<b>page 2</b>", parse_mode="HTML", reply_markup=markup)

    error = api_error(lambda: bot.edit_message_text(
        "<strong>page 2</strong>", USER, sent.message_id, parse_mode="HTML", reply_markup=markup))
    assert error.error_code == 400 and "message is not modified" in error.description

    edited = bot.edit_message_text("page 3", USER, sent.message_id, reply_markup=markup)
    assert edited.text == "page 3" and edited.edit_date
    record = sb.message(USER, sent.message_id)
    assert record["edited"] and record["text"] == "page 3"

    # Editing the text without a keyboard removes it, as Telegram does.
    assert bot.edit_message_text("page 3", USER, sent.message_id).reply_markup is None
    error = api_error(lambda: bot.edit_message_text("x", USER, 99))
    assert error.description == "Bad Request: message to edit not found"


def test_edit_reply_markup_and_caption(bot, sb):
    sent = bot.send_photo(USER, b"\x89PNG photo", caption="old", reply_markup=keyboard(("a", "a")))
    bot.edit_message_caption("new", USER, sent.message_id, reply_markup=keyboard(("a", "a")))
    bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=keyboard(("b", "b")))
    record = sb.message(USER, sent.message_id)
    assert record["caption"] == "new"
    assert record["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "b"
    error = api_error(lambda: bot.edit_message_reply_markup(
        USER, sent.message_id, reply_markup=keyboard(("b", "b"))))
    assert "message is not modified" in error.description


def test_delete_message(bot, sb):
    sent = bot.send_message(GROUP, "post")
    assert bot.delete_message(GROUP, sent.message_id) is True
    assert sb.messages(GROUP)[0]["deleted"] is True
    error = api_error(lambda: bot.delete_message(GROUP, sent.message_id))
    assert error.description == "Bad Request: message to delete not found"
    old = bot.send_message(GROUP, "old post")
    sb.advance_clock(49 * 3600)
    error = api_error(lambda: bot.delete_message(GROUP, old.message_id))
    assert error.description == "Bad Request: message can't be deleted for everyone"


def test_copy_and_forward(bot, sb):
    source = bot.send_message(USER, "<b>order</b>", parse_mode="HTML")
    assert bot.copy_message(GROUP, USER, source.message_id).message_id == 1
    forwarded = bot.forward_message(GROUP, USER, source.message_id)
    assert forwarded.text == "order" and forwarded.forward_origin.sender_user.is_bot
    assert [m["text"] for m in sb.messages(GROUP)] == ["<b>order</b>"] * 2
    error = api_error(lambda: bot.copy_message(GROUP, USER, 99))
    assert error.description == "Bad Request: message to copy not found"


def test_send_photo_then_download_it(bot, sb):
    content = b"\x89PNG\r\n\x1a\n fake image bytes"
    sent = bot.send_photo(USER, content, caption="<i>photo</i>", parse_mode="HTML")
    assert sent.caption == "photo" and sent.caption_entities[0].type == "italic"

    file_info = bot.get_file(sent.photo[-1].file_id)
    assert file_info.file_size == len(content)
    assert bot.download_file(file_info.file_path) == content
    assert sb.calls("sendPhoto")[0]["files"] == ["photo"]

    again = bot.send_photo(GROUP, sent.photo[-1].file_id)      # re-send by file_id
    assert again.photo[0].file_id == sent.photo[-1].file_id


def test_send_document_keeps_name_and_type(bot, sb):
    upload = types.InputFile(io.BytesIO(b"%PDF-1.4 body"), file_name="invoice.pdf")
    sent = bot.send_document(USER, upload)
    assert sent.document.file_name == "invoice.pdf"
    assert sent.document.mime_type == "application/pdf"
    assert bot.download_file(bot.get_file(sent.document.file_id).file_path) == b"%PDF-1.4 body"


def test_send_media_group(bot, sb):
    album = [types.InputMediaPhoto(b"first", caption="one"), types.InputMediaPhoto(b"second")]
    sent = bot.send_media_group(USER, album)
    assert [m.message_id for m in sent] == [1, 2]
    assert sent[0].media_group_id == sent[1].media_group_id and sent[0].caption == "one"
    assert bot.download_file(bot.get_file(sent[1].photo[0].file_id).file_path) == b"second"
    assert len(sb.messages(USER)) == 2


# --------------------------------------------------------------------- validation

@pytest.mark.parametrize("html", [
    "<b>unclosed", "a < b", "AT&T", "<br>", "<b>x</i>", "x</b>", "<span>s</span>",
    "a > b", "<b>x</b>>", "<p>paragraph</p>", "<a href='x'>a</a",
])
def test_malformed_html_is_refused(bot, sb, html):
    error = api_error(lambda: bot.send_message(USER, html, parse_mode="HTML"))
    assert error.error_code == 400
    assert error.description.startswith("Bad Request: can't parse entities: ")
    assert sb.messages() == [] and sb.calls()[0]["status"] == 400


def test_supported_html_subset():
    text, entities = parse_html(
        '<b>b</b><tg-spoiler>s</tg-spoiler><a href="https://x.test/?a=1&amp;b=2">😀</a>'
        '<pre><code class="language-python">p</code></pre><blockquote expandable>q</blockquote>'
        '&#128512;&#x41;&quot;')
    assert text == 'bs😀pq😀A"'
    assert entities == [
        {"type": "bold", "offset": 0, "length": 1},
        {"type": "spoiler", "offset": 1, "length": 1},
        {"type": "text_link", "offset": 2, "length": 2, "url": "https://x.test/?a=1&b=2"},
        {"type": "pre", "offset": 4, "length": 1, "language": "python"},
        {"type": "expandable_blockquote", "offset": 5, "length": 1},
    ]


def test_bare_gt_is_refused_as_the_documentation_requires():
    # "All <, > and & symbols that are not a part of a tag or an HTML entity must be
    # replaced with the corresponding HTML entities." (The offset counts UTF-8 bytes.)
    with pytest.raises(HtmlParseError, match='Unescaped ">" at byte offset 11, use &gt;'):
        parse_html("<b>→</b> > x")
    assert parse_html('a &gt; b <a href="https://x.test/?q=a>b">l</a>')[0] == "a > b l"


def test_links_are_kept_only_where_telegram_keeps_them():
    def links(html):
        return [e.get("url") for e in parse_html(html)[1] if e["type"] == "text_link"]

    # Without href, the link's own text is its URL.
    assert links("<a>https://shop.example/o?id=1</a>") == ["https://shop.example/o?id=1"]
    assert links('<a href="shop.example/x">x</a>') == ["http://shop.example/x"]
    assert links('<a href="http://127.0.0.1:8080/files/a">a</a>') == ["http://127.0.0.1:8080/files/a"]
    # A URL Telegram cannot use leaves the text without a link (and is not refused).
    for href in ("/files/1/a.pdf", "javascript:alert(1)", "ftp://x.example/a", "localhost/x",
                 "http://x.example:0/", ""):
        assert parse_html(f'<a href="{href}">label</a>') == ("label", []), href
    # "</>" closes the innermost open tag.
    assert parse_html("<b>x</><i>y</i>") == ("xy", [{"type": "bold", "offset": 0, "length": 1},
                                                    {"type": "italic", "offset": 1, "length": 1}])


def test_length_limits_count_visible_utf16_units(bot):
    assert bot.send_message(USER, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    error = api_error(lambda: bot.send_message(USER, "x" * 4097))
    assert (error.error_code, error.description) == (400, "Bad Request: message is too long")
    # An emoji is two UTF-16 units: 2049 of them are over the limit.
    assert "too long" in api_error(lambda: bot.send_message(USER, "😀" * 2049)).description
    error = api_error(lambda: bot.send_photo(USER, b"img", caption="c" * 1025))
    assert error.description == "Bad Request: message caption is too long"


def test_empty_text_and_oversized_callback_data(bot):
    assert api_error(lambda: bot.send_message(USER, "<b> </b>", parse_mode="HTML")).description \
        == "Bad Request: message text is empty"
    error = api_error(lambda: bot.send_message(USER, "x", reply_markup=keyboard(("x", "d" * 65))))
    assert error.description == "Bad Request: BUTTON_DATA_INVALID"


# --------------------------------------------------------------------- users, updates, webhook

def test_user_messages_and_replies_reach_the_bot_by_long_polling(bot, sb):
    first = sb.user_sends_text(USER, "/start", username="ivan", first_name="Ivan")
    updates = bot.get_updates(timeout=5, long_polling_timeout=1)
    assert [u.update_id for u in updates] == [first["update_id"]]
    assert updates[0].message.text == "/start" and updates[0].message.from_user.username == "ivan"

    reply = bot.send_message(USER, "hello", reply_to_message_id=updates[0].message.message_id)
    assert reply.reply_to_message.text == "/start" and reply.message_id == 2

    # A later update arrives while getUpdates is waiting.
    threading.Timer(0.2, sb.user_sends_text, (USER, "answer"),
                    {"reply_to_message_id": reply.message_id}).start()
    later = bot.get_updates(offset=first["update_id"] + 1, timeout=5, long_polling_timeout=3)
    assert later[0].message.reply_to_message.message_id == reply.message_id
    assert sb.pending_updates()[0]["update_id"] == later[0].update_id   # not yet confirmed
    assert bot.get_updates(offset=later[0].update_id + 1, timeout=5, long_polling_timeout=1) == []


def test_button_press_and_answer_callback_query(bot, sb):
    post = bot.send_message(GROUP, "new message", reply_markup=keyboard(("✍", "reply:42")))
    sb.user_presses_button(USER, GROUP, post.message_id, "reply:42", username="ivan")

    query = bot.get_updates(timeout=5, long_polling_timeout=1)[0].callback_query
    assert query.data == "reply:42" and query.message.message_id == post.message_id
    assert bot.answer_callback_query(query.id, "Taken", show_alert=True) is True
    answer = sb.callback_answers()[0]
    assert (answer["text"], answer["show_alert"], answer["user_id"]) == ("Taken", True, USER)

    error = api_error(lambda: bot.answer_callback_query(query.id, "again"))
    assert "query is too old" in error.description


def test_webhook_delivery_with_secret_header(bot, sb):
    received = []
    app = Flask("webhook")

    @app.post("/telegram/hook")
    def hook():
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"),
                         request.get_json()))
        return "", 200

    with ServerThread(app) as server:
        assert bot.set_webhook(f"{server.url}/telegram/hook", secret_token="s3cret")
        update = sb.user_sends_photo(USER, b"customer photo", caption="look")

    secret, body = received[0]
    assert secret == "s3cret" and body == update
    parsed = types.Update.de_json(body)
    assert parsed.message.caption == "look"
    assert bot.download_file(bot.get_file(parsed.message.photo[-1].file_id).file_path) \
        == b"customer photo"
    assert sb.deliveries()[0]["status"] == 200
    assert bot.get_webhook_info().url.endswith("/telegram/hook")
    assert api_error(lambda: bot.get_updates(timeout=5, long_polling_timeout=1)).error_code == 409


def test_redelivery_and_unreachable_webhook(bot, sb):
    calls = []
    app = Flask("webhook")

    @app.post("/hook")
    def hook():
        calls.append(request.get_json()["update_id"])
        return "", 500 if len(calls) == 1 else 200

    with ServerThread(app) as server:
        bot.set_webhook(f"{server.url}/hook")
        update = sb.user_sends_document(USER, b"%PDF", file_name="order.pdf")
        assert sb.redeliver(update) == 200
        url = server.url
    assert calls == [update["update_id"]] * 2
    assert [d["status"] for d in sb.deliveries()] == [500, 200]
    assert "500" in bot.get_webhook_info().last_error_message

    bot.set_webhook(f"{url}/hook")      # the server is gone now
    assert sb.deliver({"message": update["message"]}) == 0


# --------------------------------------------------------------------- limits and faults

def test_private_chat_flood_limit(bot, sb):
    sb.set_limits(True)
    bot.send_message(USER, "first")
    error = api_error(lambda: bot.send_message(USER, "second"))
    assert error.error_code == 429
    assert error.result_json["parameters"]["retry_after"] >= 1
    assert error.description.startswith("Too Many Requests: retry after ")
    assert sb.count_429() == 1 and len(sb.messages(USER)) == 1
    bot.send_message(USER + 1, "another chat is fine")


def test_group_chat_allows_twenty_a_minute(sb, bot):
    limited = TelegramSandbox(enforce_limits=True)
    assert limited.enforce_limits
    sb.set_limits(True)
    for n in range(20):
        bot.send_message(GROUP, f"post {n}")
    error = api_error(lambda: bot.send_message(GROUP, "post 21"))
    assert error.error_code == 429 and error.result_json["parameters"]["retry_after"] > 1


def test_global_limit_counts_album_items(sb, bot):
    sb.set_limits(True, global_per_s=3, private_per_s=10)
    bot.send_media_group(USER, [types.InputMediaPhoto(b"a"), types.InputMediaPhoto(b"b")])
    error = api_error(lambda: bot.send_media_group(
        USER, [types.InputMediaPhoto(b"c"), types.InputMediaPhoto(b"d")]))
    assert error.error_code == 429 and len(sb.messages()) == 2


def test_fail_next(bot, sb):
    sb.fail_next("sendMessage", status=502, description="Bad Gateway", times=2)
    for _ in range(2):
        assert api_error(lambda: bot.send_message(USER, "x")).error_code == 502
    assert bot.send_message(USER, "x").message_id == 1
    sb.fail_next("*", status=429, retry_after=7)
    error = api_error(bot.get_me)
    assert error.result_json["parameters"]["retry_after"] == 7
    assert [c["status"] for c in sb.calls()] == [502, 502, 200, 429]


def test_fail_next_for_one_chat_leaves_the_others_alone(bot, sb):
    sb.fail_next("sendMessage", status=429, times=2, retry_after=1, chat_id=USER)
    sb.fail_next("sendMessage", status=502, chat_id=USER)
    assert bot.send_message(GROUP, "to the group").message_id == 1
    statuses = []
    for _ in range(4):
        try:
            bot.send_message(USER, "to the manager")
            statuses.append(200)
        except apihelper.ApiTelegramException as error:
            statuses.append(error.error_code)
    assert statuses == [429, 429, 502, 200]
    assert sorted(m["chat_id"] for m in sb.messages()) == [GROUP, USER]


def test_a_bot_removed_from_a_group_is_refused_there_until_added_back(bot, sb):
    posted = bot.send_message(GROUP, "before")
    sb.remove_bot_from_chat(GROUP)
    error = api_error(lambda: bot.send_message(GROUP, "while out"))
    assert (error.error_code, error.description) == (
        403, "Forbidden: bot was kicked from the supergroup chat")
    assert api_error(lambda: bot.edit_message_text("edited", GROUP, posted.message_id)).error_code == 403
    assert bot.send_message(USER, "private chats still work").text == "private chats still work"
    sb.remove_bot_from_chat(GROUP, chat_exists=False)
    error = api_error(lambda: bot.send_message(GROUP, "unseen"))
    assert (error.error_code, error.description) == (400, "Bad Request: chat not found")
    sb.add_bot_to_chat(GROUP)
    assert bot.send_message(GROUP, "back").message_id == 2
    assert [m["visible_text"] for m in sb.messages(GROUP)] == ["before", "back"]
    with pytest.raises(ValueError):
        sb.remove_bot_from_chat(USER)


def test_block_user_until_they_write_again(bot, sb):
    sb.block_user(USER)
    error = api_error(lambda: bot.send_message(USER, "x"))
    assert (error.error_code, error.description) == (403, "Forbidden: bot was blocked by the user")
    sb.user_sends_text(USER, "/start")
    assert bot.send_message(USER, "welcome back").text == "welcome back"


def test_delay_wait_until_and_reset(bot, sb):
    sb.set_delay(0.2)
    started = time.monotonic()
    threading.Timer(0.05, bot.send_message, (USER, "late")).start()
    assert sb.wait_until(lambda: sb.messages(USER))[0]["text"] == "late"
    assert time.monotonic() - started >= 0.2
    sb.reset()
    assert sb.calls() == [] and sb.messages() == []
    assert bot.send_message(USER, "fresh").message_id == 1


def test_snapshot_and_restore_carry_messages_buttons_files_and_ids_to_another_sandbox(bot, sb, monkeypatch):
    post = bot.send_message(GROUP, "<b>new</b> message", parse_mode="HTML",
                            reply_markup=keyboard(("✍", "reply:42")))
    bot.send_message(GROUP, "an older post")
    bot.delete_message(GROUP, post.message_id + 1)
    sb.user_sends_document(USER, b"%PDF sandbox", "price.pdf", username="ivan")
    bot.get_updates(timeout=1, long_polling_timeout=1)
    state = sb.snapshot()
    assert json.loads(json.dumps(state)) == state  # JSON as it is
    document = sb.messages(USER, include_user=True)[-1]["document"]

    with TelegramSandbox() as other:
        other.restore(state)
        assert other.messages(GROUP) == sb.messages(GROUP)
        assert other.file(document["file_id"])["content"] == b"%PDF sandbox"
        monkeypatch.setattr(apihelper, "API_URL", other.api_url)
        monkeypatch.setattr(apihelper, "FILE_URL", other.file_url)
        moved = telebot.TeleBot(other.token, threaded=False)
        # An old post's button is pressed; its update id comes after the old ones.
        update = other.user_presses_button(USER, GROUP, post.message_id, "reply:42")
        assert update["update_id"] > state["last_update_id"]
        assert update["callback_query"]["message"]["text"] == "new message"
        moved.edit_message_text("taken", GROUP, post.message_id)  # old posts can be edited
        assert other.message(GROUP, post.message_id)["visible_text"] == "taken"
        # New messages get new ids, in every chat; the deleted one stays deleted.
        assert moved.send_message(GROUP, "next").message_id == post.message_id + 2
        assert moved.send_message(USER, "hi").message_id == 2
        assert other.message(GROUP, post.message_id + 1)["deleted"]
        sent = moved.send_document(USER, ("more.pdf", b"%PDF more"))
        assert sent.document.file_id != document["file_id"]
        assert moved.download_file(moved.get_file(document["file_id"]).file_path) == b"%PDF sandbox"


def test_restore_refuses_a_snapshot_it_cannot_read(sb):
    with pytest.raises(ValueError):
        sb.restore({"version": 99})
