"""How the desk's tools of SPEC §8 read in Telegram: the card's order context, notes and
watchers, the chat menu's extra buttons, the task board, the colleagues to hand a chat
to, canned replies and their drafts, search results. Every value goes through
`bot.texts.text` / `bot.formatting` (escaped, bounded)."""
from __future__ import annotations

from datetime import datetime

from bot import formatting as fmt
from bot import views
from bot.callbacks import CallbackCodec
from bot.formatting import Html
from bot.keyboards import inline
from bot.texts import text
from models.conversations import Conversation
from models.desk_extras import CannedReply, Note
from models.shifts import Colleague
from models.tasks import BoardRow
from models.users import User

NOTE_ROOM = 300          # a note's text on a card or a history page
NOTES_ON_CARD = 3
NOTES_ON_PAGE = 5
PAGE = 10
COPY_TEXT_LIMIT = 256    # Telegram's CopyTextButton.text


def age(since: datetime | None, now: datetime, language: str) -> str:
    if since is None:
        return ""
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return text("age_minutes", language, n=minutes)
    if minutes < 48 * 60:
        return text("age_hours", language, n=minutes // 60)
    return text("age_days", language, n=minutes // (24 * 60))


def order_lines(order: dict | None, language: str) -> list[Html]:
    if not order:
        return []
    parts = [order.get("product") or "—"]
    if order.get("quantity"):
        parts[0] = f"{parts[0]} ×{order['quantity']}"
    if order.get("total"):
        parts.append(" ".join(filter(None, (order["total"], order.get("currency")))))
    if order.get("status"):
        parts.append(order["status"])
    lines = [text("card_order", language, order=" · ".join(parts))]
    delivery = [v for v in (order.get("delivery_service"), order.get("delivery_address")) if v]
    if order.get("tracking"):
        delivery.append(text("card_tracking", language, ttn=order["tracking"]))
    if order.get("delivery_status"):
        delivery.append(order["delivery_status"])
    if delivery:
        lines.append(text("card_delivery", language, delivery=fmt.join(" · ", delivery)))
    return lines


def note_line(note: Note, language: str) -> Html:
    return text("note_line", language, who=note.author.display_name,
                when=f"{note.created_at:%d.%m %H:%M}", text=fmt.shorten(note.text, NOTE_ROOM))


def card_extras(order: dict | None, notes: list[Note], watchers: list[User], language: str) -> Html:
    lines = order_lines(order, language)
    if watchers:
        lines.append(text("card_watchers", language,
                          names=", ".join(w.display_name for w in watchers)))
    if notes:
        lines.append(text("card_notes", language))
        lines += [note_line(n, language) for n in notes[-NOTES_ON_CARD:]]
    return fmt.join("\n", lines)


def notes_block(notes: list[Note], language: str) -> Html:
    if not notes:
        return Html("")
    return fmt.join("\n", [text("history_notes", language)] + [note_line(n, language) for n in notes])


def desk_rows(codec: CallbackCodec, language: str, chat: Conversation, user: User, *,
              holder: User | None, joined: bool) -> list[list[tuple[str, str]]]:
    """The chat menu's buttons for the desk's tools, by who looks at the chat."""
    rows = [[(text("btn_canned", language), codec.encode("canned", chat.id, 0)),
             (text("btn_note", language), codec.encode("note", chat.id))]]
    mine = holder is not None and holder.tg_id == user.tg_id
    if holder is not None and (mine or user.is_admin):
        rows.append([(text("btn_handover", language), codec.encode("handover", chat.id, 0))])
    if user.is_admin and holder is not None and not mine:
        rows.append([(text("btn_leave", language), codec.encode("leave", chat.id))] if joined else
                    [(text("btn_join", language), codec.encode("join", chat.id)),
                     (text("btn_takeover", language), codec.encode("takeover", chat.id))])
    return rows


def with_rows(keyboard: dict, rows: list[list[tuple[str, str]]]) -> dict:
    """The chat menu with `rows` put before its last row (◀ Назад)."""
    extra = inline(rows)["inline_keyboard"]
    buttons = keyboard["inline_keyboard"]
    return {"inline_keyboard": buttons[:-1] + extra + buttons[-1:]}


def board_label(row: BoardRow, now: datetime, language: str) -> str:
    """A task on 📊: its marker, who holds it and for how long (plain text, a button)."""
    holder = ""
    if row.holder is not None:
        holder = f"{row.holder.display_name} {fmt.plain(age(row.held_since, now, language))} "
    elif row.conversation.status == "done":
        holder = fmt.plain(age(row.status_changed_at, now, language)) + " "
    return views.chat_label(row.conversation, f"{row.marker} {holder}")[:64]


def colleagues(codec: CallbackCodec, language: str, chat: Conversation, people: list[Colleague],
               page: int, total: int) -> tuple[Html, dict]:
    title = text("handover_title", language, id_i=chat.ref)
    if not people:
        title = fmt.join("\n\n", [title, text("handover_nobody", language)])
    rows = [[(fmt.plain(text("handover_person", language, name=c.user.display_name,
                             load=c.open_chats))[:64],
              codec.encode("handto", chat.id, c.user.tg_id))] for c in people]
    paging = views.paging_row(language, lambda n: codec.encode("handover", chat.id, n), page,
                              views.pages_of(total, PAGE))
    if paging:
        rows.append(paging)
    rows.append([(text("back_to_chat", language), codec.encode("open", chat.id))])
    return title, inline(rows)


def replies_list(codec: CallbackCodec, language: str, chat: Conversation | None,
                 replies: list[CannedReply], page: int, total: int, *, admin: bool) -> tuple[Html, dict]:
    """Canned replies: to pick one for a chat, or (no chat) an admin's list to manage."""
    if chat is not None:
        title = text("canned_title_chat", language, id_i=chat.ref)
        rows = [[(r.title[:60], codec.encode("cpick", r.id, chat.id))] for r in replies]
        paging = views.paging_row(language, lambda n: codec.encode("canned", chat.id, n), page,
                                  views.pages_of(total, PAGE))
    else:
        title = text("canned_title_admin", language, total=total)
        rows = [[(f"🗑 {r.title}"[:60], codec.encode("cdel", r.id))] for r in replies]
        paging = []
        if admin:
            rows.append([(text("btn_canned_add", language), codec.encode("cadd"))])
    if not replies:
        title = fmt.join("\n\n", [title, text("canned_empty", language)])
    if paging:
        rows.append(paging)
    if chat is not None:
        rows.append([(text("back_to_chat", language), codec.encode("open", chat.id))])
    lines = [title] + ([text("canned_line", language, title=r.title,
                                 text=fmt.shorten(r.text, 120)) for r in replies] if chat is None else [])
    return fmt.join("\n", lines), inline(rows)


def draft(codec: CallbackCodec, language: str, chat: Conversation, reply: CannedReply,
          filled: str) -> tuple[Html, dict]:
    """A canned reply filled for a chat, to send as it is or to copy and change."""
    lines = [text("draft_title", language, id_i=chat.ref), fmt.escape(filled)]
    if reply.file_id:
        lines.append(text("draft_file", language, name=reply.file_name or reply.file_kind or "file"))
    lines.append(text("draft_hint", language))
    buttons = [{"text": text("btn_draft_send", language),
                "callback_data": codec.encode("csend", reply.id, chat.id)}]
    if filled and len(filled) <= COPY_TEXT_LIMIT:
        buttons.append({"text": text("btn_draft_copy", language), "copy_text": {"text": filled}})
    return fmt.join("\n", lines), {"inline_keyboard": [buttons]}


def results(codec: CallbackCodec, language: str, found: list[Conversation], query: str) -> tuple[Html, dict]:
    title = text("search_results", language, query=fmt.shorten(query, 60), count=len(found))
    rows = [[(views.chat_label(c), codec.encode("open", c.id))] for c in found]
    return title, inline(rows) if rows else None
