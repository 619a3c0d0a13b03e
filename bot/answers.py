"""One view of what writing to a customer gave (services/writing.py::WriteResult), for
every way a manager writes: a message, a canned reply, an inline draft, a template, an
album. A refusal is always said, in the same words, whichever way it came; nothing is
ever reported as going out when it was not."""
from __future__ import annotations

from bot.texts import text
from services.notices import Notice
from services.writing import Outcome, WriteResult

REFUSALS = {
    Outcome.TOO_LONG: "too_long",
    Outcome.FILE_TOO_BIG: "file_too_big",
    Outcome.TAKEN_BY: "taken_by",
    Outcome.UNKNOWN_CHAT: "unknown_chat",
    Outcome.WINDOW_CLOSED: "window_closed_not_sent",
}


def accepted(result: WriteResult) -> bool:
    """Recorded for the customer (or recorded already): the ✅ of delivery follows."""
    return result.outcome in (Outcome.QUEUED, Outcome.DUPLICATE)


def refusal(result: WriteResult, chat_ref: object) -> tuple[str, dict] | None:
    """The refusal's text key and its (unescaped) values; None when it was accepted."""
    key = REFUSALS.get(result.outcome)
    if key is None:
        return None
    values = {Outcome.TOO_LONG: {"length": result.length, "limit": result.limit},
              Outcome.TAKEN_BY: {"name": result.holder.display_name if result.holder else "?"},
              Outcome.UNKNOWN_CHAT: {"id_i": chat_ref}}.get(result.outcome, {})
    return key, values


def refusal_text(result: WriteResult, chat_ref: object, language: str) -> str | None:
    found = refusal(result, chat_ref)
    if found is None:
        return None
    key, values = found
    return text(key, language, **values)     # text() escapes and bounds each value


class AlbumAnswers:
    """The `send_album` job: the album goes to the customer (services/albums.py) and each
    part refused is answered to the manager, quoting it."""

    def __init__(self, albums, out) -> None:
        self.albums = albums
        self.out = out

    def __call__(self, job) -> None:
        for refused in self.albums(job) or ():
            found = refusal(refused.result, refused.chat_ref)
            if found is not None:
                self.out.tell(Notice(refused.tg_chat_id, found[0], found[1], reply_to=refused.tg_message_id,
                                     key=refused.key))
