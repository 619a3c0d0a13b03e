"""Fuzzing (issue 6) with hypothesis: the callback codec, the update parser and the
Telegram door, and the text formatter.

Properties, not examples: the codec never raises and never accepts data it did not make;
the door answers 200 or 400 to any JSON, never 500; customer text of any kind comes out
as valid Telegram HTML, in parts within Telegram's limits, that give back the text.
Example counts are moderate so the file stays fast; run with `-s` to see them.
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings as hsettings
from hypothesis import strategies as st

import webhook_server
from bot import formatting as fmt
from bot.callbacks import ACTIONS, MAX_BYTES, Callback, CallbackCodec
from bot.posts import (LINK_LABEL_LIMIT, POST_CAPTION_LIMIT, POST_TEXT_LIMIT, file_name,
                       header, render)
from bot.texts import text as ui_text
from conftest import BOT_TOKEN
from bot.updates import BadUpdate, lane_of, parse_update_id
from harness import crm_conversation as Chat, crm_source, stored_message as StoredMessage
from models.users import User
from sandbox.telegram import parse_html

EXAMPLES: Counter = Counter()  # examples run, by property
FAST = hsettings(max_examples=300, deadline=None)
SLOW = hsettings(max_examples=120, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True)
def _report_examples():
    yield
    detail = ", ".join(f"{name}: {n}" for name, n in sorted(EXAMPLES.items()))
    print(f"\nhypothesis examples run: {sum(EXAMPLES.values())} ({detail})")


def visible(html_text: str) -> str:
    return parse_html(html_text)[0]  # raises HtmlParseError where Telegram would refuse


# --------------------------------------------------------------------------- (a) codec

CODEC = CallbackCodec(BOT_TOKEN)
# The text a client can send back is any Unicode scalar value (Telegram's JSON is UTF-8).
scalar_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=120)
# Text that looks like button data, so mutations land near the valid shape.
data_like = st.text(alphabet=st.sampled_from(list("reply:conetsu~0123456789-_AZaz=+/ ")), max_size=80)
anything = st.one_of(scalar_text, data_like, st.binary(max_size=80), st.none(), st.booleans(),
                     st.integers(), st.floats(), st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.text(max_size=5), st.integers(), max_size=3))


@FAST
@given(data=anything)
@example(data="menu~")
@example(data="~")
@example(data="x" * 65)
@example(data="ї" * 40)
def test_decode_never_raises_and_rejects_what_it_did_not_make(data):
    EXAMPLES["codec: decode anything"] += 1
    decoded = CODEC.decode(data)
    # Random input that happens to carry a valid 48-bit MAC: 1 in 2**48 per try.
    assert decoded is None


def valid_action_args():
    return st.sampled_from(sorted(ACTIONS)).flatmap(
        lambda action: st.tuples(st.just(action),
                                 st.lists(st.integers(-2**63, 2**63 - 1), min_size=ACTIONS[action],
                                          max_size=ACTIONS[action]).map(tuple)))


@FAST
@given(action_args=valid_action_args())
@example(action_args=("list", (-2**63, -2**63)))
@example(action_args=("hist", (2**63 - 1, 2**63 - 1)))
def test_encode_decode_round_trips_within_64_bytes(action_args):
    EXAMPLES["codec: round trip"] += 1
    action, args = action_args
    data = CODEC.encode(action, *args)
    assert len(data.encode("utf-8")) <= MAX_BYTES
    assert CODEC.decode(data) == Callback(action, args)
    assert CallbackCodec("654321:another-bot").decode(data) is None  # keyed by the bot token


@FAST
@given(action=st.sampled_from(sorted(ACTIONS)), args=st.lists(st.integers(), max_size=3))
def test_encode_refuses_rather_than_make_bad_data(action, args):
    EXAMPLES["codec: encode anything"] += 1
    try:
        data = CODEC.encode(action, *args)
    except ValueError:
        return  # wrong arity, or too long for Telegram: refused loudly
    assert len(data.encode("utf-8")) <= MAX_BYTES and CODEC.decode(data) == Callback(action, tuple(args))


def mutations(data: str):
    """Every way a person with the data in hand could change it, one edit at a time."""
    index = st.integers(0, len(data))
    char = st.one_of(st.sampled_from(list(":~-_0123456789AZaz=+/") + ["ї", "😀", "\x00"]),
                     st.characters(exclude_categories=("Cs",)))
    replace = st.tuples(st.integers(0, len(data) - 1), char).map(
        lambda p: data[:p[0]] + p[1] + data[p[0] + 1:])
    insert = st.tuples(index, char).map(lambda p: data[:p[0]] + p[1] + data[p[0]:])
    delete = st.integers(0, len(data) - 1).map(lambda i: data[:i] + data[i + 1:])
    truncate = st.integers(0, len(data) - 1).map(lambda i: data[:i])
    append = st.text(min_size=1, max_size=10).map(lambda extra: data + extra)
    swapcase = st.integers(0, len(data) - 1).map(lambda i: data[:i] + data[i].swapcase() + data[i + 1:])
    body_swap = st.integers(-10**6, 10**6).map(
        lambda n: f"{data.rpartition('~')[0].rpartition(':')[0] or data.rpartition('~')[0]}:{n}~"
                  f"{data.rpartition('~')[2]}")
    return st.one_of(replace, insert, delete, truncate, append, swapcase, body_swap)


@FAST
@given(st.data())
def test_mutated_data_is_rejected(data):
    action, args = data.draw(valid_action_args())
    valid = CODEC.encode(action, *args)
    mutated = data.draw(mutations(valid))
    assume(mutated != valid)
    EXAMPLES["codec: mutations"] += 1
    assert CODEC.decode(mutated) is None, (valid, mutated)


SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


@hsettings(max_examples=50, deadline=None)
@given(data=st.text(alphabet=SURROGATES | st.sampled_from("a:~1"), min_size=1, max_size=20)
       .filter(lambda s: any(0xD800 <= ord(c) <= 0xDFFF for c in s)))
@example(data="reply:1~\ud800")
def test_decode_never_raises_even_for_unpaired_surrogates(data):
    assert CODEC.decode(data) is None


# --------------------------------------------------------------------------- (b) parser and door

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30))
json_values = st.recursive(
    json_leaf,
    lambda children: (st.lists(children, max_size=5)
                      | st.dictionaries(st.text(max_size=12), children, max_size=5)),
    max_leaves=25)
# Keys of a real update, so the fuzz reaches the parser's interesting branches.
UPDATE_KEYS = ["update_id", "message", "edited_message", "channel_post", "callback_query",
               "my_chat_member", "chat_member", "business_message", "message_reaction", "chat",
               "from", "id", "data", "text"]
update_like = st.recursive(
    st.dictionaries(st.sampled_from(UPDATE_KEYS) | st.text(max_size=8), json_leaf, max_size=4),
    lambda children: st.dictionaries(st.sampled_from(UPDATE_KEYS) | st.text(max_size=8),
                                     children | json_leaf, max_size=5),
    max_leaves=30)
update_ids = st.one_of(st.integers(-5, 2**31), st.integers(), json_leaf)
bodies = st.one_of(
    json_values,
    st.tuples(st.integers(0, 2**31), update_like).map(lambda p: {**p[1], "update_id": p[0]}),
    st.tuples(update_ids, update_like).map(lambda p: {**p[1], "update_id": p[0]}),
    update_like,
)


def should_accept(value) -> bool:
    if not isinstance(value, dict):
        return False
    update_id = value.get("update_id")
    return type(update_id) is int and 0 <= update_id < 2**63  # Telegram ids are 64-bit


@FAST
@given(value=st.one_of(json_values, update_like, bodies))
def test_parse_update_id_and_lane_of_never_raise(value):
    EXAMPLES["parser: parse_update_id / lane_of"] += 1
    try:
        update_id = parse_update_id(value)
    except BadUpdate:
        assert not should_accept(value)
    else:
        assert should_accept(value) and update_id == value["update_id"]
    if isinstance(value, dict):
        lane = lane_of(value)
        assert lane is None or (isinstance(lane, str) and lane.startswith("tg:"))


@pytest.fixture
def door(settings, db):
    return webhook_server.create_app(settings, db=db, bell=_NoBell()).test_client()


class _NoBell:
    def ring(self, hint=None) -> None:
        pass


@SLOW
@given(value=bodies)
@example(value={"update_id": 0})
@example(value={"update_id": 2**64, "message": {"chat": {"id": -(10**70)}}})
@example(value={"update_id": True})
@example(value=[{"update_id": 1}])
def test_the_door_answers_any_json_with_200_or_400_never_500(door, db, value):
    EXAMPLES["door: arbitrary JSON"] += 1
    before = db.scalar("SELECT COUNT(*) FROM jobs")
    answer = door.post("/telegram/test-webhook-path", data=json.dumps(value),
                       content_type="application/json",
                       headers={"X-Telegram-Bot-Api-Secret-Token": "test-secret-token"})
    event(f"door answered {answer.status_code}")
    assert answer.is_json
    if should_accept(value):
        assert answer.status_code == 200 and answer.json == {"ok": True}
        key = f"tg:{value['update_id']}"[:191]
        assert db.scalar("SELECT COUNT(*) FROM jobs WHERE dedupe_key = %s", (key,)) == 1
    else:
        assert answer.status_code == 400 and answer.json["ok"] is False
        assert db.scalar("SELECT COUNT(*) FROM jobs") == before


# --------------------------------------------------------------------------- (c) formatter

SPECIALS = ["<", ">", "&", "<br>", "<br/>", "<BR />", "&amp;", "&lt;", "&#60;", "&#x3c;", "&",
            "<b>", "</b>", "<a href='x'>", "</a>", "<tg-spoiler>", "\"", "'", "\n", "\r\n", " ",
            "\t", "😀", "👨‍👩‍👧", "🇺🇦", "ї", "\u200d", "\ufeff", "\x00", "\U0010ffff",
            "x" * 500, "😀" * 300, "слово " * 120, "\n" * 300, " " * 700, "&" * 400, "<br>" * 200]
# Any Unicode scalar value (no lone surrogates: they cannot be sent to Telegram at all).
_pieces = st.one_of(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=60),
                    st.sampled_from(SPECIALS))
customer_text = st.one_of(
    st.lists(_pieces, max_size=40).map("".join),
    # Long enough to be split, with the awkward pieces at random places around the cuts.
    st.lists(st.one_of(_pieces, st.sampled_from([p for p in SPECIALS if len(p) >= 300])),
             min_size=10, max_size=40).map("".join))
# Text as a client could type it into a marketplace form.
short_text = st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc")), max_size=40)


@FAST
@given(body=customer_text, header_text=short_text,
       limit=st.sampled_from([fmt.TEXT_LIMIT, fmt.CAPTION_LIMIT, POST_TEXT_LIMIT, 200]))
@example(body="😀" * 5000, header_text="", limit=fmt.TEXT_LIMIT)
@example(body="&" * 4096, header_text="&", limit=fmt.TEXT_LIMIT)
@example(body="a" * 4095 + "😀", header_text="", limit=fmt.TEXT_LIMIT)
def test_compose_gives_valid_html_parts_within_the_limit_that_give_back_the_text(body, header_text, limit):
    EXAMPLES["formatter: compose"] += 1
    head = f"<b>{fmt.escape(header_text)}</b>\n"
    continuation = "<i>(далі)</i>\n"
    parts = fmt.compose(head, body, limit=limit, continuation_html=continuation)
    texts = [visible(part) for part in parts]
    assert all(fmt.utf16_len(t) <= limit for t in texts)
    assert all(fmt.visible_len(part) == fmt.utf16_len(t) for part, t in zip(parts, texts))
    head_text, continuation_text = visible(head), visible(continuation)
    assert texts[0].startswith(head_text)
    assert all(t.startswith(continuation_text) for t in texts[1:])
    rebuilt = texts[0][len(head_text):] + "".join(t[len(continuation_text):] for t in texts[1:])
    assert rebuilt == body
    event(f"{len(parts)} part(s)")


no_tags = st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="<"), max_size=30)


@FAST
@given(segments=st.lists(no_tags, min_size=1, max_size=8),
       breaks=st.lists(st.sampled_from(["<br>", "<BR>", "<br/>", "<br />", "<Br  />"]),
                       min_size=8, max_size=8),
       typed=customer_text)
def test_crm_text_turns_br_into_new_lines_and_touches_nothing_else(segments, breaks, typed):
    EXAMPLES["formatter: crm_text"] += 1
    raw = segments[0] + "".join(b + s for b, s in zip(breaks, segments[1:]))
    assert fmt.crm_text(raw) == "\n".join(segments)
    plain = fmt.crm_text(typed)
    assert visible(fmt.escape(plain)) == plain  # escaped, it shows exactly as typed


emails = st.one_of(st.none(), st.emails(), short_text)
products = st.one_of(st.none(), st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc")),
                                        max_size=400), st.sampled_from(["😀" * 300, "Ключ Windows 11 Pro"]))
names = st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=64)


@st.composite
def client_messages(draw):
    kind = draw(st.sampled_from(["text", "file", "image"]))
    url = draw(st.sampled_from(["http://crm.example/f/1/a.pdf", "http://crm.example/x?a=1&b=\"2\"",
                                "https://crm.example/'<>&"]))
    body = draw(customer_text)
    return StoredMessage(
        id=draw(st.integers(1, 2**63 - 1)), conversation_id=1, direction="client", text=body,
        is_file=kind == "file", is_img=kind == "image",
        filename=draw(st.one_of(st.none(), short_text, st.just("😀" * 512))),
        url=url if kind != "text" else None,
        preview=draw(st.one_of(st.none(), st.just(url))) if kind == "image" else None,
        date_written=datetime(2024, 1, 1), date_seen=None, deleted=False)


@st.composite
def chats(draw):
    return Chat(id_i=draw(st.integers(1, 2**63 - 1)), email=draw(emails), product=draw(products),
                last_date=None, cnt_msg=1, cnt_new=1, kind=draw(st.sampled_from(["ordinary", "task"])),
                status="new")


@st.composite
def managers(draw):
    usernames = st.one_of(st.none(), st.from_regex(r"[a-z][a-z0-9_]{4,31}", fullmatch=True))
    return draw(st.one_of(st.none(), st.builds(
        User, tg_id=st.integers(1, 2**40), username=usernames, first_name=names,
        language=st.sampled_from(["uk", "en", None]), role=st.just("manager"),
        reachable=st.just(True))))


@FAST
@given(chat=chats(), message=client_messages(), pinned_to=managers(),
       language=st.sampled_from(["uk", "en"]))
@example(chat=Chat(1, "a@b.c", "😀" * 300, None, 1, 1, "ordinary", "new"),
         message=StoredMessage(5, 1, "client", "😀" * 3000, False, True, None, "http://x/i.jpg", None,
                               None, None, False),
         pinned_to=None, language="uk")
def test_posts_are_valid_html_within_telegrams_limits(chat, message, pinned_to, language):
    EXAMPLES["formatter: posts.render"] += 1
    keyboard = {"inline_keyboard": [[{"text": "✍", "callback_data": CODEC.encode("reply", message.id)}]]}
    posts = render(chat, message, chat_id=-100, source=crm_source(chat), language=language,
                   keyboard=keyboard, pinned_to=pinned_to)
    body = fmt.crm_text(message.text)
    for number, post in enumerate(posts):
        shown = visible(post.text)
        if post.method == "sendPhoto":
            assert fmt.utf16_len(shown) <= fmt.CAPTION_LIMIT
        else:
            assert post.method == "sendMessage"
            assert fmt.utf16_len(shown) <= fmt.TEXT_LIMIT
            assert shown.strip(), "Telegram refuses a message with no visible text"
    assert posts[-1].reply_markup == keyboard and all(p.reply_markup is None for p in posts[:-1])
    head = visible(header(chat, crm_source(chat), language, pinned_to=pinned_to))
    if message.is_file and message.url and fmt.utf16_len(body.strip()) <= LINK_LABEL_LIMIT:
        assert len(posts) == 1 and visible(posts[0].text).startswith(head)
    elif message.is_img and (message.url or message.preview):
        assert posts[0].method == "sendPhoto" and visible(posts[0].text).startswith(head)
        continued = visible(ui_text("post_continued", language, id_i=chat.ref))
        caption_body = visible(posts[0].text)[len(head):]
        texts = [visible(p.text) for p in posts[1:]]
        if texts:  # every later part is marked as a continuation
            assert caption_body == "" and all(t.startswith(continued) for t in texts)
            texts = [t[len(continued):] for t in texts]
        assert caption_body + "".join(texts) == body
    else:
        continued = visible(ui_text("post_continued", language, id_i=chat.ref))
        texts = [visible(p.text) for p in posts]
        assert texts[0].startswith(head) and all(t.startswith(continued) for t in texts[1:])
        shown = texts[0][len(head):] + "".join(t[len(continued):] for t in texts[1:])
        if message.is_file:  # a text too long to be the link: all of it, then the file's link
            name = file_name(message, language)
            assert shown in (body + "\n" + name, body + name)
        else:
            assert shown == body
    # Room for the notes added later ("Менеджер: @name"): the post itself stays within it.
    if len(posts) == 1 and posts[0].method == "sendMessage" and not message.is_file:
        assert fmt.visible_len(posts[0].text) <= POST_TEXT_LIMIT
    if posts[0].method == "sendPhoto" and len(posts) == 1:
        assert fmt.visible_len(posts[0].text) <= POST_CAPTION_LIMIT


def test_no_part_of_an_image_post_is_blank():
    chat = Chat(9604, "client@example.com", "Ноутбук", None, 1, 1, "ordinary", "new")
    # A long caption text whose last lines are empty, as the CRM sends them (<br>).
    message = StoredMessage(5, 9604, "client", "а" * 3800 + "<br>" * 100, False, True, None,
                            "http://crm.example/i.jpg", None, None, None, False)
    posts = render(chat, message, chat_id=-100, source=crm_source(chat), language="uk",
                   keyboard={"inline_keyboard": []})
    assert all(visible(p.text).strip() for p in posts)
