"""A manager's tools on a chat (SPEC §8): internal notes, canned replies, finding a chat.

* Notes are never sent anywhere: they are stored and shown to colleagues on the chat's
  card and in its history. Every manager may see every chat (SPEC §3, "all chats"), so a
  note may be left on any chat that exists; an unknown chat, an empty or over-long note
  gets a clear answer and changes nothing.
* Canned replies: text with placeholders (`PLACEHOLDERS`), checked when an admin saves
  one — an unknown placeholder or a stray brace is refused with the list of the known
  ones — and filled for a chat when a manager picks one.
* Search: a query is parsed at the border into what it looks like — a number (the chat's
  number, or a phone when it has 9+ digits), an e-mail, a phone, or words — and each kind
  walks an index (models/search.py). A query shorter than 3 characters is refused.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from models.conversations import Conversation, ConversationListRepository, ConversationRepository
from models.db import Database
from models.desk_extras import CannedReply, CannedReplyRepository, Note, NoteRepository
from models.search import SearchRepository
from models.users import User

NOTE_MAX = 1000
TITLE_MAX = 64
REPLY_MAX = 3000
MIN_QUERY = 3
QUERY_MAX = 200
RESULTS = 20

PLACEHOLDERS = {
    "order": "the chat's number (a CRM order number)",
    "name": "the customer's name (else e-mail or phone)",
    "email": "the customer's e-mail",
    "phone": "the customer's phone",
    "product": "the product / what the chat is about",
    "manager": "the manager's name",
}
from services.results import Refusal, Refused


class Notes:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.notes = NoteRepository(db)
        self.conversations = ConversationRepository(db)

    def add(self, author: User, conversation_id: int | None, raw: str) -> Conversation | Refused:
        conversation = self.conversations.get(conversation_id) if conversation_id else None
        if conversation is None or not author.is_manager:
            return Refused(Refusal.UNKNOWN_CHAT, detail=str(conversation_id or ""))
        body = (raw or "").strip()
        if not body:
            return Refused(Refusal.EMPTY)
        if len(body) > NOTE_MAX:
            return Refused(Refusal.TOO_LONG, detail=str(len(body)), limit=NOTE_MAX)
        self.notes.add(conversation.id, author.tg_id, body, self.clock())
        return conversation

    def latest(self, conversation_id: int, limit: int = 3) -> list[Note]:
        return self.notes.latest(conversation_id, limit)

    def for_page(self, conversation_id: int, lowest: int | None, highest: int | None, *,
                 newest: bool, oldest: bool) -> list[Note]:
        return self.notes.for_page(conversation_id, lowest, highest, newest=newest, oldest=oldest)


def check_template(body: str) -> Refused | None:
    """None when every placeholder is known and every brace is paired."""
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion
                  in string.Formatter().parse(body) if name is not None]
    except ValueError as exc:
        return Refused(Refusal.BAD_BRACES, detail=str(exc))
    for name, spec, conversion in fields:
        if name not in PLACEHOLDERS or spec or conversion:
            return Refused(Refusal.UNKNOWN_PLACEHOLDER, detail="{" + name + (f"!{conversion}" if conversion
                                                                      else "") + (f":{spec}" if spec else "") + "}")
    return None


def fill(body: str, conversation: Conversation | None, manager: User) -> str:
    """The reply for this chat: placeholders filled (missing data: left empty)."""
    values = {"order": conversation.ref if conversation else "",
              "name": (conversation.customer_name or conversation.customer or "") if conversation else "",
              "email": (conversation.customer_email or "") if conversation else "",
              "phone": (conversation.customer_phone or "") if conversation else "",
              "product": (conversation.title or "") if conversation else "",
              "manager": manager.first_name or manager.display_name}
    try:
        filled = body.format(**values)
    except (KeyError, ValueError, IndexError):  # saved before a check existed: shown as it is
        return body
    return re.sub(r"[ \t]{2,}", " ", filled).replace(" ,", ",").replace(" !", "!").strip()


class CannedReplies:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.replies = CannedReplyRepository(db)
        self.conversations = ConversationRepository(db)

    def add(self, admin: User, raw: str, *, file_id: str | None = None, file_kind: str | None = None,
            file_name: str | None = None, file_mime: str | None = None,
            file_size: int | None = None) -> CannedReply | Refused:
        """First line: the title; the rest: the text (a reply of one line is its own title)."""
        lines = (raw or "").strip().split("\n", 1)
        title = lines[0].strip()
        body = (lines[1] if len(lines) > 1 else lines[0]).strip()
        if not title and not file_id:
            return Refused(Refusal.NO_TITLE)
        if len(title) > TITLE_MAX:
            return Refused(Refusal.TOO_LONG, detail="title", limit=TITLE_MAX)
        if len(body) > REPLY_MAX:
            return Refused(Refusal.TOO_LONG, detail=str(len(body)), limit=REPLY_MAX)
        refused = check_template(body) or check_template(title)
        if refused is not None:
            return refused
        reply = CannedReply(0, title or (file_name or "file")[:TITLE_MAX], body, file_id, file_kind,
                            (file_name or None) and file_name[:255], file_mime, file_size)
        reply_id = self.replies.add(reply, admin.tg_id, self.clock())
        return self.replies.get(reply_id)

    def delete(self, reply_id: int) -> bool:
        return self.replies.delete(reply_id, self.clock())

    def page(self, offset: int, limit: int, words: str = "") -> tuple[list[CannedReply], int]:
        return self.replies.live(offset, limit, words[:QUERY_MAX])

    def get(self, reply_id: int) -> CannedReply | None:
        return self.replies.get(reply_id)

    def filled(self, reply: CannedReply, conversation_id: int | None, manager: User) -> str:
        conversation = self.conversations.get(conversation_id) if conversation_id else None
        return fill(reply.text, conversation, manager)


# -- search ----------------------------------------------------------------------------------

_EMAIL = re.compile(r"^[^\s@]+@[^\s@]*$")
_PHONE = re.compile(r"^\+?[\d\s().-]{9,}$")
_WORD = re.compile(r"\w+", re.UNICODE)
# InnoDB's default stopwords: a `+stopword` would match nothing, so they are left out.
_STOPWORDS = frozenset("a about an are as at be by com de en for from how i in is it la of on or"
                       " that the this to was what when where who will with und www".split())


@dataclass(frozen=True)
class Query:
    kind: str            # number | email | phone | words
    value: str


def parse_query(raw: str | None) -> Query | Refused:
    text = (raw or "").strip()[:QUERY_MAX]
    if len(text) < MIN_QUERY:
        return Refused(Refusal.TOO_SHORT, detail=text, limit=MIN_QUERY)
    digits = re.sub(r"\D", "", text)
    if text.lstrip("#").isdigit():
        return Query("number", text.lstrip("#"))
    if _EMAIL.match(text):
        return Query("email", text.lower())
    if _PHONE.match(text) and len(digits) >= 9:
        return Query("phone", digits)
    words = [w.lower() for w in _WORD.findall(text) if len(w) >= MIN_QUERY and w.lower() not in _STOPWORDS]
    if not words:
        return Refused(Refusal.TOO_SHORT, detail=text, limit=MIN_QUERY)
    return Query("words", " ".join(words[:8]))


class Search:
    def __init__(self, db: Database) -> None:
        self.search = SearchRepository(db)
        self.lists = ConversationListRepository(db)

    def find(self, raw: str | None, limit: int = RESULTS) -> list[Conversation] | Refused:
        query = parse_query(raw)
        if isinstance(query, Refused):
            return query
        if query.kind == "number":
            ids = self.search.by_number(query.value, limit)
            if len(query.value) >= 9:
                ids += [i for i in self.search.by_phone(query.value[-9:], limit) if i not in ids]
        elif query.kind == "email":
            ids = self.search.by_email(query.value, limit)
        elif query.kind == "phone":
            ids = self.search.by_phone(query.value[-9:], limit)
        else:
            ids = self.search.by_words(query.value.split(), limit)
        found = self.lists.by_ids(ids[:limit])
        return [found[i] for i in ids[:limit] if i in found]
