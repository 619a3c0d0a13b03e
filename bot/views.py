"""How chats, histories and lists read in Telegram (HTML text plus inline keyboards)."""
from __future__ import annotations

import math
from typing import Callable

from bot import formatting as fmt
from bot.callbacks import CallbackCodec
from bot.keyboards import inline
from bot.texts import text
from models.chats import COUNT_HORIZON, Chat
from models.messages import StoredMessage
from models.users import User

PAGE_SIZE = 10
HISTORY_PAGE = 8
HISTORY_SNIPPET = 400  # characters of one message in a history page (the post had all)


def pages_of(total: int, size: int = PAGE_SIZE) -> int:
    return max(1, math.ceil(total / size))


def chat_label(chat: Chat, prefix: str = "") -> str:
    product = (chat.product or "")[:28]
    return f"{prefix}#{chat.id_i} {chat.email or ''} {product}".strip()[:60]


def chat_card(chat: Chat, holder: User | None, language: str) -> str:
    pin_line = (text("chat_pinned_to", language, name=fmt.escape(holder.display_name))
                if holder else text("chat_not_pinned", language))
    card = text("chat_card", language, id_i=chat.id_i, email=fmt.escape(chat.email or "—"),
                product=fmt.escape(chat.product or "—"), pin_line=pin_line)
    if chat.is_task:
        card += "\n" + text("task_status", language, status=text(f"status_{chat.status}", language))
    return card


def message_block(message: StoredMessage, language: str) -> str:
    who = text("from_client" if message.from_client else "from_shop", language)
    when = message.date_written.strftime("%d.%m %H:%M") if message.date_written else ""
    body = fmt.crm_text(message.text)
    if len(body) > HISTORY_SNIPPET:
        body = body[:HISTORY_SNIPPET] + " " + text("truncated", language)
    lines = [f"<b>{who}</b> <i>{when}</i>"]
    if body.strip():
        lines.append(fmt.escape(body))
    if message.url and (message.is_img or message.is_file):
        label = text("image" if message.is_img else "file", language)
        if message.filename:
            label += f" {message.filename}"
        lines.append(fmt.link(message.url, label))
    return "\n".join(lines)


def history_page(chat: Chat, messages: list[StoredMessage], page: int, language: str) -> str:
    title = text("history_title", language, id_i=chat.id_i, page=page + 1)
    if not messages:
        return title + "\n\n" + text("history_empty", language)
    return title + "\n\n" + "\n\n".join(message_block(m, language) for m in messages)


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
              kind: int, page: int, total: int) -> tuple[str, dict]:
    """A page of chats as buttons, with ◀ ▶ that edit the same message."""
    pages = pages_of(total)
    counted_all = total < page * PAGE_SIZE + COUNT_HORIZON
    title = text(title_key, language, page=page + 1, pages=pages if counted_all else f"{pages}+")
    if not entries:
        title += "\n\n" + text("list_empty", language)
    rows = [[(label, codec.encode("open", id_i))] for label, id_i in entries]
    paging = paging_row(language, lambda n: codec.encode("list", kind, n), page, pages)
    if paging:
        rows.append(paging)
    rows.append([(text("back", language), codec.encode("menu"))])
    return title, inline(rows)


def chat_menu(codec: CallbackCodec, language: str, chat: Chat, *, mine: bool,
              mine_kind: str | None) -> dict:
    rows = [[(text("history_chat", language), codec.encode("hist", chat.id_i, 0))],
            [(text("send_message_to_chat", language), codec.encode("write", chat.id_i))],
            [(text("send_status_read", language), codec.encode("read", chat.id_i))]]
    if chat.is_task:
        rows.append([(text("edit_status_activate_key", language), codec.encode("status", chat.id_i))])
    if mine and mine_kind == "PIN":
        rows.append([(text("un_status_chat", language), codec.encode("unpin", chat.id_i))])
    rows.append([(text("back", language), codec.encode("menu"))])
    return inline(rows)
