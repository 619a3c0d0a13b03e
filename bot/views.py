"""How chats, histories and lists read in Telegram (HTML text plus inline keyboards)."""
from __future__ import annotations

import math
from typing import Callable

from bot import formatting as fmt
from bot.formatting import Html
from bot.callbacks import CallbackCodec
from bot.keyboards import inline
from bot.texts import text
from models.conversations import COUNT_HORIZON, Conversation as Chat
from models.messages import StoredMessage
from models.users import User

PAGE_SIZE = 10
HISTORY_PAGE = 8
HISTORY_SNIPPET = 400  # characters of one message in a history page (the post had all)
MIN_SNIPPET = 10       # what a message keeps when a page of long ones must shrink to fit
FILE_NAME_ROOM = 100   # a file's name in a history line (the link carries the file)


def pages_of(total: int, size: int = PAGE_SIZE) -> int:
    return max(1, math.ceil(total / size))


def chat_label(chat: Chat, prefix: str = "") -> str:
    """A conversation as a button label: plain text (buttons are not HTML), one short line."""
    product = fmt.isolate_bidi((chat.title or "")[:28])
    email = fmt.isolate_bidi(chat.customer or "")
    return f"{prefix}#{chat.ref} {email} {product}".strip()[:60]


def chat_card(chat: Chat, holder: User | None, language: str) -> Html:
    pin_line = (text("chat_pinned_to", language, name=holder.display_name)
                if holder else text("chat_not_pinned", language))
    card = text("chat_card", language, id_i=chat.ref, email=chat.customer or "—",
                product=chat.title or "—", pin_line=pin_line)
    if chat.is_task:
        status = text("task_status", language, status=text(f"status_{chat.status}", language))
        card = fmt.join("\n", [card, status])
    return card


def message_block(message: StoredMessage, language: str, *, snippet: int = HISTORY_SNIPPET) -> Html:
    """One message in a history: who and when, its text (at most `snippet` characters,
    the rest is at its source), and its file or image as a link."""
    who = text("from_client" if message.from_client
               else "from_shop_auto" if message.automatic else "from_shop", language)
    when = message.date_written.strftime("%d.%m %H:%M") if message.date_written else ""
    lines = [fmt.join(" ", [fmt.bold(who), fmt.italic(when)])]
    body = fmt.crm_text(message.text)
    if len(body) > snippet:
        lines.append(fmt.join(" ", [body[:snippet], text("truncated", language)]))
    elif body.strip():
        lines.append(fmt.escape(body))
    if message.is_img or message.is_file:
        label = text("image" if message.is_img else "file", language)
        if message.filename:
            name_room = min(FILE_NAME_ROOM, max(2 * MIN_SNIPPET, snippet))
            label = fmt.join(" ", [label, fmt.shorten_filename(message.filename, name_room)])
        url = message.url or (message.preview if message.is_img else None)
        # Without a link (the CRM's URL could not be kept) the file is still named.
        lines.append(fmt.link(url, label) if url else label)
    if not message.from_client and message.delivery_status:
        lines.append(delivery_mark(message, language))
    return fmt.join("\n", lines)


def delivery_mark(message: StoredMessage, language: str) -> Html:
    """✓ sent, ✓✓ delivered, ✓✓ read, or why it was not delivered (WhatsApp's statuses)."""
    if message.delivery_status == "failed":
        return text("mark_failed", language, reason=message.delivery_error or "—")
    return text(f"mark_{message.delivery_status}", language)


def history_page(chat: Chat, messages: list[StoredMessage], page: int, language: str, *,
                 limit: int = fmt.TEXT_LIMIT) -> Html:
    """A page of a chat's history within Telegram's limit: every message of the page is
    listed; when they are long, their texts are shortened just enough (longest first)."""
    title = text("history_title", language, id_i=chat.ref, page=page + 1)
    if not messages:
        return fmt.join("\n\n", [title, text("history_empty", language)])

    def build(snippet: int) -> Html:
        return fmt.join("\n\n", [title] + [message_block(m, language, snippet=snippet)
                                            for m in messages])

    page_html = build(HISTORY_SNIPPET)
    if fmt.visible_len(page_html) <= limit:
        return page_html
    # The largest snippet that fits (the page's length grows with it).
    low, high = MIN_SNIPPET, HISTORY_SNIPPET - 1
    while low < high:
        middle = (low + high + 1) // 2
        if fmt.visible_len(build(middle)) <= limit:
            low = middle
        else:
            high = middle - 1
    return build(low)


def paging_row(language: str, data_for_page: Callable[[int], str], page: int,
               pages: int) -> list[tuple[str, str]]:
    """◀ ▶ buttons; `data_for_page(n)` is the callback data that shows page n."""
    row = []
    if page > 0:
        row.append((text("prev", language), data_for_page(page - 1)))
    if page + 1 < pages:
        row.append((text("next", language), data_for_page(page + 1)))
    return row


def history_keyboard(codec: CallbackCodec, language: str, id_i: int, page: int,
                     has_older: bool) -> dict:
    # Page 0 is the newest; ◀ goes back in time, ▶ towards now.
    row = []
    if has_older:
        row.append((text("prev", language), codec.encode("hist", id_i, page + 1)))
    if page > 0:
        row.append((text("next", language), codec.encode("hist", id_i, page - 1)))
    rows = [row] if row else []
    rows.append([(text("back_to_chat", language), codec.encode("open", id_i))])
    return inline(rows)


def chat_list(codec: CallbackCodec, language: str, title_key: str, entries: list[tuple[str, int]],
              kind: int, page: int, total: int) -> tuple[Html, dict]:
    """A page of chats as buttons, with ◀ ▶ that edit the same message."""
    pages = pages_of(total)
    counted_all = total < page * PAGE_SIZE + COUNT_HORIZON
    title = text(title_key, language, page=page + 1, pages=pages if counted_all else f"{pages}+")
    if not entries:
        title = fmt.join("\n\n", [title, text("list_empty", language)])
    rows = [[(label, codec.encode("open", id_i))] for label, id_i in entries]
    paging = paging_row(language, lambda n: codec.encode("list", kind, n), page, pages)
    if paging:
        rows.append(paging)
    rows.append([(text("back", language), codec.encode("menu"))])
    return title, inline(rows)


def chat_menu(codec: CallbackCodec, language: str, chat: Chat, *, mine: bool,
              mine_kind: str | None) -> dict:
    rows = [[(text("history_chat", language), codec.encode("hist", chat.id, 0))],
            [(text("send_message_to_chat", language), codec.encode("write", chat.id))],
            [(text("send_status_read", language), codec.encode("read", chat.id))]]
    if chat.is_task:
        rows.append([(text("edit_status_activate_key", language), codec.encode("status", chat.id))])
    if mine and mine_kind == "PIN":
        rows.append([(text("un_status_chat", language), codec.encode("unpin", chat.id))])
        rows.append([(text("btn_mark_done", language), codec.encode("done", chat.id))])
    rows.append([(text("back", language), codec.encode("menu"))])
    return inline(rows)
