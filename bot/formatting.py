"""Customer text, shown verbatim and safely in Telegram HTML.

The CRM marks new lines with `<br>`; everything else a customer typed — `<b>`, `&`,
emoji — is shown literally: escaped, never interpreted. Long texts are split into parts
that each fit Telegram's limit as Telegram counts it (visible characters, in UTF-16 code
units); the split happens on the plain text before escaping, so an entity is never cut,
and the parts joined give back the whole text.
"""
from __future__ import annotations

import html
import re

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def crm_text(raw: str | None) -> str:
    """CRM message text → plain text (new lines restored, nothing else touched)."""
    return _BR.sub("\n", raw or "")


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def escape_attr(text: str) -> str:
    return html.escape(text, quote=True)


def link(url: str, label: str) -> str:
    return f'<a href="{escape_attr(url)}">{escape(label)}</a>'


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: characters outside the BMP (most emoji) count twice."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def visible_len(html_text: str) -> int:
    """Visible length of our own HTML (tags dropped, entities counted as one character)."""
    return utf16_len(html.unescape(re.sub(r"<[^>]+>", "", html_text)))


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
    # The longest prefix within `limit` UTF-16 units (never half an emoji).
    units, end = 0, 0
    for end, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            break
    hard = max(1, end)
    for separator in ("\n", " "):
        soft = text.rfind(separator, 0, hard)
        if soft >= hard // 2:
            return soft + 1  # the separator stays with the first piece
    return hard


def compose(header_html: str, body_text: str, *, limit: int = TEXT_LIMIT,
            continuation_html: str = "") -> list[str]:
    """Header plus escaped body, split into Telegram-sized HTML messages.

    The first part carries the header; later parts start with `continuation_html`.
    """
    first_room = limit - visible_len(header_html)
    room = limit - visible_len(continuation_html)
    pieces = split_plain(body_text, first_room, room)
    parts = [header_html + escape(pieces[0])]
    parts += [continuation_html + escape(piece) for piece in pieces[1:]]
    return parts
