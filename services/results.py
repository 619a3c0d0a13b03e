"""What a business action answers when it does not do what was asked: one vocabulary for
every service (taking, writing beside, reading, tasks, hand-over, notes, canned replies,
search). The Telegram desk and the panel turn a `Refused` into words; a service never does."""
from __future__ import annotations

import enum
from dataclasses import dataclass

from models.users import User


class Refusal(enum.Enum):
    UNKNOWN_CHAT = "unknown_chat"
    TAKEN_BY = "taken_by"                # held by another manager
    NOT_A_TASK = "not_a_task"
    NOT_HOLDER = "not_holder"            # not this person's (a task's status, a chat to give)
    OFF_SHIFT = "off_shift"              # the colleague went off shift
    NOT_A_MANAGER = "not_a_manager"      # banned, pending or unknown
    SELF = "self"
    NOBODY_HOLDS = "nobody_holds"        # join: nothing to join, take it instead
    OWN_CHAT = "own_chat"                # join: the admin holds it already
    HOLDER_BACK = "holder_back"          # an offer: its holder is on shift again
    EMPTY = "empty"
    TOO_LONG = "too_long"
    UNKNOWN_PLACEHOLDER = "unknown_placeholder"
    BAD_BRACES = "bad_braces"
    TOO_SHORT = "too_short"
    NO_TITLE = "no_title"


@dataclass(frozen=True)
class Refused:
    why: Refusal
    who: User | None = None    # the person it is about (the holder, the colleague)
    detail: str = ""           # what was wrong (a length, a placeholder)
    limit: int = 0             # the bound it broke
