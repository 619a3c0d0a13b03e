"""Every text a person reads survives hostile values: Telegram accepts it, within its limits.

Each key of each language is filled, in every placeholder at once, with values that broke
bots before — markup, entities, a 5,000-character string, right-to-left overrides, emoji
beyond the BMP — and checked with the sandbox's Telegram HTML parser. The same holds for
the views and posts built from CRM data. The first test shows the check has teeth: the
text that once got a 400 from Telegram (a holder's name with "<", pasted unescaped) fails it.
"""
from __future__ import annotations

import string
from datetime import datetime

import pytest

from bot import formatting as fmt
from bot import views
from bot.callbacks import CallbackCodec
from bot.formatting import Html
from bot.posts import POST_CAPTION_LIMIT, POST_TEXT_LIMIT, render
from bot.texts import TEXTS, VALUE_LIMIT, text
from harness import crm_conversation, crm_source, stored_message
from models.users import User
from sandbox.telegram import HtmlParseError, parse_html, utf16_len

HOSTILE = {
    "lt": "<",
    "gt": ">",
    "amp": "&",
    "quote": '"',
    "tag": "<b>x</b>",
    "entity": "&amp;",
    "long": ("a<&>\"'" * 1000)[:5000],
    "long_emoji": "😀" * 5000,                                   # 10,000 UTF-16 units
    "rtl": "مرحبا بالعالم שלום \u202eevil\u202c <",
    "emoji": "👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 \U0001F9D1\u200D\U0001F4BB \U0001F600",
    "format": "{name} {0} {{}}",                                 # not a template itself
    "lone_surrogate": "a\ud83d b",                               # a JSON "\ud83d" on its own
    "new_lines": "line\nline\r\n\tend",
}

KEYS = [(language, key) for language, table in TEXTS.items() for key in table]


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def accepted(html: str, limit: int = fmt.TEXT_LIMIT) -> str:
    """What Telegram would show for `html`; fails where Telegram would refuse it."""
    shown, _ = parse_html(html)          # raises HtmlParseError like Telegram's 400
    assert shown.strip(), "Telegram refuses a message with no visible text"
    assert utf16_len(shown) <= limit, f"{utf16_len(shown)} UTF-16 units > {limit}"
    return shown


def test_the_check_catches_a_name_pasted_unescaped():
    """The original bug: "this chat is pinned to {name}" with a name like "Ann <3"."""
    with pytest.raises(HtmlParseError):
        accepted(TEXTS["uk"]["taken_by"].format(name="Ann <3"))
    with pytest.raises(AssertionError):
        accepted(TEXTS["uk"]["log_error"].format(text="x" * 5000))
    assert accepted(text("taken_by", "uk", name="Ann <3")) == "Цей чат закріплено за Ann <3."


@pytest.mark.parametrize("language,key", KEYS, ids=[f"{lang}:{key}" for lang, key in KEYS])
def test_every_text_with_every_hostile_value_is_accepted_by_telegram(language, key):
    names = placeholders(TEXTS[language][key])
    if not names:
        accepted(text(key, language))
        return
    for label, value in HOSTILE.items():
        shown = accepted(text(key, language, **{name: value for name in names}))
        if len(value) < 100 and label != "lone_surrogate":  # shown as it is, not escaped twice
            assert value in shown, (label, shown[:200])


def test_values_are_escaped_once_and_bounded():
    assert text("taken_by", "en", name="A&B") == "This chat is pinned to A&amp;B."
    assert text("taken_by", "en", name=fmt.escape("A&B")) == "This chat is pinned to A&amp;B."
    assert text("unknown_chat", "en", id_i=42) == "Chat 42 not found."
    assert isinstance(text("no_access", "en"), Html) and isinstance(text("claimed", id_i=1), Html)
    welcome = fmt.plain(text("welcome", "en", name="n" * 1000))
    assert "n" * (VALUE_LIMIT - 1) + "…!" in welcome and "n" * VALUE_LIMIT not in welcome
    # An error report may be long, but never longer than a message.
    report = accepted(text("log_error", "en", text="<" * 10_000))
    assert 3000 < len(report) <= 3600 and report.endswith("…")
    # A right-to-left override cannot turn the rest of our sentence around.
    assert fmt.plain(text("taken_by", "en", name="\u202eevil")) == \
        "This chat is pinned to \u2068\u202eevil\u2069."


def test_plain_and_callback_texts():
    html = text("taken_by", "uk", name="Ann <&> Co")
    assert fmt.plain(html) == "Цей чат закріплено за Ann <&> Co."
    assert fmt.plain('<b>x</b> <a href="http://a.b/?q=1&amp;r=2">l&lt;</a>') == "x l<"
    assert fmt.callback_text(html) == "Цей чат закріплено за Ann <&> Co."
    long_answer = fmt.callback_text(text("log_error", "uk", text="😀" * 500))
    assert utf16_len(long_answer) <= fmt.CALLBACK_TEXT_LIMIT and long_answer.endswith("…")
    assert "&" not in fmt.callback_text(text("taken_by", "uk", name="&"))[:-3]


def test_join_escapes_text_and_keeps_html():
    joined = fmt.join(" · ", [fmt.bold("<b>"), "a&b", Html("<i>i</i>")])
    assert joined == "<b>&lt;b&gt;</b> · a&amp;b · <i>i</i>"
    assert isinstance(joined, Html) and isinstance(fmt.bold("x") + fmt.italic("y"), Html)
    assert not isinstance(fmt.bold("x") + "<y>", Html)  # text + markup: no longer known safe


# --------------------------------------------------------------------------- views, posts

HOSTILE_URL = "https://crm.example/files/\"q\"/<script>?a=1&b='2'"
CYRILLIC_NAME = "Договір поставки " * 40 + ".pdf"


def hostile_chat(**overrides):
    fields = dict(id_i=2**63 - 1, email="<x>&" * 100 + "@example.com",
                  product="<b>Ноутбук</b> & \u202eevil 😀 " * 150, last_date=None, cnt_msg=1,
                  cnt_new=1, kind="task", status="in_work")
    fields.update(overrides)
    return crm_conversation(**fields)


def hostile_message(number: int, text_: str, **overrides):
    fields = dict(id=number, conversation_id=1, direction="client" if number % 2 else "shop", text=text_,
                  is_file=True, is_img=False, filename="<&> " + CYRILLIC_NAME,
                  url=HOSTILE_URL + "x" * 3000, preview=None, date_written=datetime(2024, 5, 1, 9, 30),
                  date_seen=None, deleted=False)
    fields.update(overrides)
    return stored_message(**fields)


HOLDER = User(tg_id=7, username=None, first_name="Ann <&> Co \u202e" + "😀" * 300, language="uk",
              role="manager", reachable=True)


def test_chat_card_with_hostile_crm_data():
    for holder in (HOLDER, None):
        shown = accepted(views.chat_card(hostile_chat(), holder, "uk"))
        assert "<b>Ноутбук</b> & " in shown and "<x>&<x>&" in shown


def test_history_page_of_long_messages_fits_and_lists_every_message():
    body = ("<b>не жирний</b> & 😀 " * 300)
    messages = [hostile_message(n, body) for n in range(1, views.HISTORY_PAGE + 1)]
    page = views.history_page(hostile_chat(), messages, 0, "uk")
    shown = accepted(page)
    assert shown.count("👤 Клієнт") + shown.count("🏪 Магазин") == views.HISTORY_PAGE
    links = [e["url"] for e in parse_html(page)[1] if e["type"] == "text_link"]
    assert links == [HOSTILE_URL + "x" * 3000] * views.HISTORY_PAGE   # whole, never cut
    # Short messages are not shortened to make room for long ones.
    mixed = [hostile_message(1, "коротке <питання>")] + messages[1:]
    assert "коротке <питання>" in accepted(views.history_page(hostile_chat(), mixed, 0, "uk"))


def test_message_block_with_hostile_file_and_no_link():
    block = views.message_block(hostile_message(1, "", url=None), "uk")
    shown = accepted(block)
    assert "📎 файл <&> Договір" in shown and shown.endswith(".pdf") and "<a" not in block


def test_chat_labels_are_plain_short_text():
    label = views.chat_label(hostile_chat(email="<b>&amp;</b>"), "★ ")
    assert label.startswith("★ #9223372036854775807 <b>&amp;</b> ") and len(label) <= 60
    rtl = views.chat_label(hostile_chat(email="\u202eevil", product="x"))
    assert "\u2068\u202eevil\u2069" in rtl        # the override stays inside the e-mail


@pytest.mark.parametrize("kind", ["text", "file", "image", "file_without_url"])
@pytest.mark.parametrize("size", [0, 30, 1500, 9000])
def test_posts_with_hostile_crm_data(kind, size):
    body = ("<b>Привіт</b> & \u202eevil 😀 👨‍👩‍👧‍👦 " * 300)[:size]
    message = hostile_message(
        3, body.replace("\n", "<br>"), direction="client",
        is_file=kind.startswith("file"), is_img=kind == "image",
        url=None if kind == "file_without_url" else HOSTILE_URL,
        preview=HOSTILE_URL if kind == "image" else None)
    codec = CallbackCodec("secret")
    keyboard = {"inline_keyboard": [[{"text": "✍", "callback_data": codec.encode("reply", 3)}]]}
    posts = render(hostile_chat(), message, chat_id=-100, source=crm_source(hostile_chat()),
                   language="uk", keyboard=keyboard, pinned_to=HOLDER)
    shown = [accepted(p.text, POST_CAPTION_LIMIT if p.method == "sendPhoto" else POST_TEXT_LIMIT)
             for p in posts]
    everything = "".join(shown)
    # Nothing the customer wrote is lost: every word of the text is in the posts.
    for word in set(body.split()):
        assert word in everything
    if kind.startswith("file") and (size > 1000 or size == 0):
        assert "<&> Договір поставки" in shown[-1]          # the file, by its name, at the end
    if kind == "file" or kind == "image" and size > 1000:
        urls = {e.get("url") for p in posts for e in parse_html(p.text)[1]}
        assert HOSTILE_URL in urls or posts[0].photo == HOSTILE_URL
