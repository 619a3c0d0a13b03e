"""How a chat taken (services/chat_actions.py::ChatActions.take) is shown to the person who
tapped: one short answer under the tap, an alert when it was not theirs to take."""
from __future__ import annotations

from bot.texts import text
from services.claims import ClaimResult, Outcome


def tap_answer(result: ClaimResult | None, chat_ref: object, language: str) -> tuple[str, bool]:
    """(the answer's text, whether it is an alert); `result` None: the chat was busy."""
    if result is None:
        return text("busy_try_again", language), False
    if result.outcome is Outcome.CLAIMED:
        return text("claimed", language, id_i=chat_ref), False
    if result.outcome is Outcome.ALREADY_MINE:
        return text("already_mine", language), False
    if result.outcome is Outcome.TAKEN_BY:
        name = result.holder.display_name if result.holder else "?"
        return text("taken_by", language, name=name), True
    return text("already_answered", language), True
