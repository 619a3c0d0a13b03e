"""What a service tells people, as plain values: a `Notice` names a text (bot/texts.py)
and its values; the Telegram desk words it in the reader's language, adds its button
and sends it through its one outbox (bot/outbox.py). Services never render or send.

A service is given a `Notices` port by the composition root (`container.py`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol


@dataclass(frozen=True)
class Button:
    """One inline button under a notice: its label's text key and the tap it makes."""
    label: str
    action: str
    args: tuple[int, ...]


@dataclass(frozen=True)
class Says:
    """A value that is itself a text, worded in the same language (e.g. why a pin changed)."""
    key: str
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Notice:
    to: int | None                       # a Telegram chat: a person's or a group's
    says: str                            # the text's key
    values: Mapping[str, Any] = field(default_factory=dict)
    key: str | None = None               # idempotency: stored once for this key
    button: Button | None = None
    main_menu: bool = False              # the person's main menu comes with it
    conversation_id: int | None = None   # a reply to this message finds the conversation
    message_id: int | None = None        # the customer's message it is about
    reply_to: int | None = None          # quoting the person's own message
    language_of: int | None = None       # worded for this person (a notice in a group)
    purpose: str = "desk"
    priority: int = 0


class Notices(Protocol):
    def tell(self, notice: Notice, cur=None) -> int | None:
        """Store the notice durably (in `cur` when given); None: no chat, or stored already."""

    def as_job(self, notice: Notice):
        """The notice as a job for the caller to store with its own transaction."""

    def key(self, purpose: str | None = None) -> str | None:
        """The idempotency key of the current update's send for `purpose` (None outside one)."""
