"""Customer text in Telegram HTML: escaped, split at the limits, nothing cut or lost."""
from hypothesis import given, settings as hsettings, strategies as st

from bot import formatting as fmt
from sandbox.telegram import parse_html


def visible(html_text: str) -> str:
    return parse_html(html_text)[0]


def test_crm_line_breaks_become_new_lines_and_nothing_else_is_interpreted():
    assert fmt.crm_text("a<br>b<BR/>c<br />d") == "a\nb\nc\nd"
    assert fmt.crm_text("<b>bold?</b> & <i>") == "<b>bold?</b> & <i>"
    assert fmt.escape("<b>x</b> & y") == "&lt;b&gt;x&lt;/b&gt; &amp; y"


def test_utf16_length_counts_emoji_twice():
    assert fmt.utf16_len("ab") == 2
    assert fmt.utf16_len("😀") == 2
    assert fmt.utf16_len("ї") == 1


def test_a_long_text_is_split_at_white_space_within_the_limit():
    header = "<b>Header</b>\n"
    body = ("слово " * 1000).strip()  # 5,999 characters
    parts = fmt.compose(header, body, continuation_html="(cont.)\n")
    assert len(parts) == 2
    assert all(fmt.utf16_len(visible(p)) <= fmt.TEXT_LIMIT for p in parts)
    assert visible(parts[0]).endswith("слово ")  # cut after a space, not inside a word
    joined = visible(parts[0])[len("Header\n"):] + visible(parts[1])[len("(cont.)\n"):]
    assert joined == body


customer_text = st.lists(
    st.sampled_from(list("ab <>&\"'\n;#") + ["😀", "ї", "\u200d", "&amp;", "<b>", "</a>", "x" * 500]),
    max_size=400).map("".join)


@hsettings(max_examples=200, deadline=None)
@given(body=customer_text, header_len=st.integers(0, 300), limit=st.sampled_from([1024, 4096]))
def test_parts_are_valid_html_within_the_limit_and_give_back_the_text(body, header_len, limit):
    header = "<b>" + fmt.escape("H" * header_len) + "</b>\n"
    continuation = "<i>more</i>\n"
    parts = fmt.compose(header, body, limit=limit, continuation_html=continuation)
    texts = [visible(p) for p in parts]  # raises if Telegram could not parse it
    assert all(fmt.utf16_len(t) <= limit for t in texts)
    rebuilt = texts[0][header_len + 1:] + "".join(t[len("more\n"):] for t in texts[1:])
    assert rebuilt == body


def test_shorten_counts_utf16_units_and_never_halves_an_emoji():
    assert fmt.shorten("short", 10) == "short"
    assert fmt.shorten("😀" * 10, 7) == "😀😀😀…"          # 6 units + the marker
    assert fmt.utf16_len(fmt.shorten("ї😀" * 1000, 200)) <= 200
    assert fmt.shorten_filename("Договір поставки № 15" * 10 + ".pdf", 30) == "Договір поставки № 15Дого….pdf"
    assert fmt.shorten_filename("x" * 50, 10) == "xxxxxxxxx…"


def test_escape_marks_html_once_and_makes_text_sendable():
    once = fmt.escape("<b> & \ud83d")
    assert once == "&lt;b&gt; &amp; \ufffd" and isinstance(once, fmt.Html)
    assert fmt.escape(once) == once                        # already Html: not escaped again
    assert fmt.link('http://a.b/?q="x"&y=<1>', "<l>") == \
        '<a href="http://a.b/?q=&quot;x&quot;&amp;y=&lt;1&gt;">&lt;l&gt;</a>'
