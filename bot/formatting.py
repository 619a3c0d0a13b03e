"""Telegram HTML built safely: every value escaped, every text within Telegram's limits.

`Html` marks a string that is already safe Telegram HTML (our own tags around escaped
values). Everything that builds markup here returns `Html`; anything that is not `Html`
is text, and is escaped wherever it is put into markup (`join`, `link`, `bold`, and
`bot.texts.text`). So a value cannot be pasted into a message unescaped by mistake: a
forgotten `escape()` costs at most an `&amp;` shown too many, never a refused message.

Customer text: the CRM marks new lines with `<br>`; everything else a customer typed —
`<b>`, `&`, emoji — is shown literally: escaped, never interpreted. Long texts are split
into parts that each fit Telegram's limit as Telegram counts it (visible characters, in
UTF-16 code units); the split happens on the plain text before escaping, so an entity is
never cut, and the parts joined give back the whole text.
"""
from __future__ import annotations

import html
import re
from typing import Iterable

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_TEXT_LIMIT = 200  # answerCallbackQuery: plain text, 0-200 characters
ELLIPSIS = "…"

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
# A lone surrogate (JSON "\ud800") cannot be encoded as UTF-8: Telegram and MariaDB
# would refuse the whole text.
_SURROGATE = re.compile("[\ud800-\udfff]")
# Explicit bidi controls (LRE … RLO, LRI … PDI): a value carrying one is isolated so that
# it cannot reorder the text around it ("‮" in a name turning our sentence around).
_BIDI_CONTROL = re.compile("[\u202a-\u202e\u2066-\u2069]")
_FSI, _PDI = "\u2068", "\u2069"
_EXTENSION = re.compile(r"\.[^.\s/\\]{1,16}$")


class Html(str):
    """Telegram HTML that is safe to send as it is.

    Made only by the helpers of this module and by `bot.texts.text`, or by wrapping a
    literal of our own markup. Html + Html stays Html; Html + str is a plain str (we
    cannot know whether that str is text or markup), so it will be escaped again if it
    is put into a template — visible, but never broken.
    """

    __slots__ = ()

    def __add__(self, other):
        joined = str.__add__(self, other)
        return Html(joined) if isinstance(other, Html) else joined


def escape(text: str) -> Html:
    """Text → HTML showing exactly that text. Html passes unchanged (it is not text)."""
    if isinstance(text, Html):
        return text
    return Html(html.escape(_SURROGATE.sub("\ufffd", text), quote=False))


def escape_attr(text: str) -> str:
    return html.escape(_SURROGATE.sub("\ufffd", text), quote=True)


def link(url: str, label: str) -> Html:
    return Html(f'<a href="{escape_attr(url)}">{escape(label)}</a>')


def bold(text: str) -> Html:
    return Html(f"<b>{escape(text)}</b>")


def italic(text: str) -> Html:
    return Html(f"<i>{escape(text)}</i>")


def join(separator: str, parts: Iterable[str]) -> Html:
    """Like str.join, but text parts (and a text separator) are escaped, Html kept."""
    return Html(escape(separator).join(escape(part) for part in parts))


def isolate_bidi(text: str) -> str:
    """Wrap a value that carries explicit bidi controls in an isolate (FSI … PDI)."""
    return f"{_FSI}{text}{_PDI}" if _BIDI_CONTROL.search(text) else text


def shorten(text: str, limit: int, marker: str = ELLIPSIS) -> str:
    """`text` within `limit` UTF-16 units: cut, with `marker` at the end, when longer."""
    if utf16_len(text) <= limit:
        return text
    room = limit - utf16_len(marker)
    return text[:_prefix_length(text, max(0, room))] + marker


def shorten_filename(name: str, limit: int) -> str:
    """A file name within `limit` UTF-16 units, keeping its extension: "Договір….pdf"."""
    if utf16_len(name) <= limit:
        return name
    match = _EXTENSION.search(name)
    extension = match.group() if match and utf16_len(match.group()) <= limit // 2 else ""
    return shorten(name[:len(name) - len(extension)], limit - utf16_len(extension)) + extension


def plain(html_text: str) -> str:
    """The visible text of our own HTML: tags dropped, entities decoded."""
    return html.unescape(_TAG.sub("", html_text))


def callback_text(html_text: str) -> str:
    """A text for answerCallbackQuery: plain (no HTML there) and within its 200 limit."""
    return shorten(plain(html_text), CALLBACK_TEXT_LIMIT)


def crm_text(raw: str | None) -> str:
    """CRM message text → plain text (new lines restored, nothing else touched)."""
    return _BR.sub("\n", raw or "")


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: characters outside the BMP (most emoji) count twice."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def visible_len(html_text: str) -> int:
    """Visible length of our own HTML (tags dropped, entities counted as one character)."""
    return utf16_len(plain(html_text))


def _prefix_length(text: str, limit: int) -> int:
    """How many characters of `text` fit in `limit` UTF-16 units (never half an emoji)."""
    units = 0
    for index, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def split_plain(text: str, first_room: int, room: int) -> list[str]:
    """Split `text` into pieces of at most `first_room`, then `room`, UTF-16 units.

    Cuts at the last new line, else the last space, in the second half of a piece;
    otherwise hard at the limit. Nothing is dropped: "".join(pieces) == text.
    """
    if first_room <= 0 or room <= 0:
        raise ValueError("no room for text")
    pieces: list[str] = []
    limit = first_room
    while utf16_len(text) > limit:
        cut = _cut_index(text, limit)
        pieces.append(text[:cut])
        text = text[cut:]
        limit = room
    pieces.append(text)
    return pieces


def _cut_index(text: str, limit: int) -> int:
    hard = max(1, _prefix_length(text, limit))
    for separator in ("\n", " "):
        soft = text.rfind(separator, 0, hard)
        if soft >= hard // 2:
            return soft + 1  # the separator stays with the first piece
    return hard


def compose(header_html: str, body_text: str, *, limit: int = TEXT_LIMIT,
            continuation_html: str = "") -> list[Html]:
    """Header plus escaped body, split into Telegram-sized HTML messages.

    The first part carries the header; later parts start with `continuation_html`.
    Both are markup of our own (Html); the body is text.
    """
    first_room = limit - visible_len(header_html)
    room = limit - visible_len(continuation_html)
    pieces = split_plain(body_text, first_room, room)
    parts = [Html(header_html + escape(pieces[0]))]
    parts += [Html(continuation_html + escape(piece)) for piece in pieces[1:]]
    return parts
