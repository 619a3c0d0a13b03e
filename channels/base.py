"""The connector contract (CHANNELS.md §1): what every channel — KeepingCRM, WhatsApp,
a Telegram user account — provides, and nothing outside its package knows its wire format.

* **inbound**: `routes` (HTTP routes on the integrations door, each behind its own secret
  path or signature check) and `job_handlers` (syncs, polling loops); both turn provider
  payloads into `Incoming` batches for the one ingest service (`services/ingest.py`).
* **outbound**: `upload`, `send`, `arrived`, `mark_read` — called by the durable steps of
  `services/writing.py` and `services/chat_actions.py`, each executed at most once.
* **capabilities**: text length, attachments, reply window, read receipts, statuses.
* **health**: a cheap check shown on `/healthz` of the integrations door.
Adding a channel means one package under `channels/` and one line in `channels/__init__.py`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Protocol

from models.conversations import Conversation
from models.inbound import ConversationInfo, ConversationKey, InboundMessage, StatusUpdate
from models.outbound import Attachment, Outbound


@dataclass(frozen=True)
class Capabilities:
    max_text: int                              # longest text a customer can be sent
    attachments: tuple[str, ...] = ()          # "photo", "document"
    files_per_message: int = 10                # an album of more goes as one message per file
    reply_window: timedelta | None = None      # free-form answers only this long after the customer wrote
    read_receipts: bool = False                # "read" can be sent to the customer
    delivery_statuses: bool = False            # sent / delivered / read come back
    templates: bool = False                    # approved templates reopen a closed window


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Sent:
    """What a channel says of a message it took: its id there, when it has one."""
    external_id: str | None = None


class ChannelError(Exception):
    """A channel call failed; `transient` says whether trying again later can help."""
    transient = False


class Unavailable(ChannelError):
    """The channel is away or busy (network, 5xx, rate limit): try again later."""
    transient = True


class Rejected(ChannelError):
    """The channel understood and refused (too long, not allowed): the manager is told.
    `notice`: the text key that tells the manager (default: the CRM's refusal)."""
    notice: str | None = None

    def __init__(self, reason: str, *, max_length: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.max_length = max_length


@dataclass(frozen=True)
class Media:
    """A customer's photo or file, fetched from the channel for the desk."""
    data: bytes
    mime: str
    filename: str


@dataclass(frozen=True)
class Incoming:
    """A batch for the ingest service: one conversation and its messages as the channel
    sees them now. `info` None: the channel did not look the conversation up."""
    key: ConversationKey
    messages: list[InboundMessage] = field(default_factory=list)
    info: ConversationInfo | None = None
    signal_at: float | None = None           # when the news was signalled (latency figures)
    # The conversation as the channel just read it (None: not stored yet); left out, the
    # ingest service looks it up itself.
    known: Conversation | None | type(Ellipsis) = ...
    # Delivery statuses of messages the shop sent in this conversation.
    statuses: list[StatusUpdate] = field(default_factory=list)


class Ingest(Protocol):
    def __call__(self, incoming: Incoming) -> object: ...


class Intake(Protocol):
    """How a channel's door or poller hands work in, durably, before it answers."""

    def request(self, kind: str, key: str, payload: dict, *, queue: str = ...) -> str: ...


class Channel(ABC):
    name: str            # conversations.channel
    label: str           # shown in posts and on the panel
    icon: str
    capabilities: Capabilities
    # The manager's notice while an answer waits for the channel to come back.
    waiting_notice = "answer_waits_for_crm"

    # -- inbound ---------------------------------------------------------------------------

    def job_handlers(self, ingest: Ingest, intake: Intake) -> dict[str, Callable]:
        """Job kind → handler for this channel's inbound work (syncs, polls)."""
        return {}

    def periodic(self) -> tuple[tuple[str, str], ...]:
        """(queue, kind) of this channel's periodic jobs (reconciliation, polling)."""
        return ()

    # -- outbound (called by durable steps: each call at most once) -------------------------

    def upload(self, conversation: Conversation, attachment: Attachment, data: bytes) -> list[dict]:
        """Hand a file to the channel; what `send` attaches."""
        raise Rejected(f"{self.label} takes no files")

    @abstractmethod
    def send(self, conversation: Conversation, text: str, files: list[dict]) -> Sent:
        """Send the customer a message; raises Unavailable or Rejected."""

    def arrived(self, conversation: Conversation, outbound: Outbound) -> bool:
        """After an attempt whose outcome is unknown: is the message there already?
        Channels that cannot tell answer False (the one message on the wire when a
        process died may then go twice, SPEC §6)."""
        return False

    def after_send(self, conversation: Conversation, outbound: Outbound | None = None,
                   external_id: str | None = None) -> None:
        """What follows a message taken (the CRM: a sync, so the answer is stored)."""

    def send_template(self, conversation: Conversation, template: dict) -> Sent:
        """Send an approved template {"name", "language", "params"} (channels with templates)."""
        raise Rejected(f"{self.label} has no templates")

    def window_closed(self, conversation: Conversation, now) -> bool:
        """Outside the reply window (capabilities.reply_window) only templates may go."""
        window = self.capabilities.reply_window
        if window is None:
            return False
        last = conversation.last_customer_at
        return last is None or now - last >= window

    def templates(self) -> tuple[tuple[str, int], ...]:
        """The approved templates a manager may send: (name, number of body parameters)."""
        return ()

    def fetch_media(self, conversation: Conversation, media_ref: str) -> Media:
        """The bytes of a customer's photo or file the desk cannot link to."""
        raise Rejected(f"{self.label} keeps no media")

    def mark_read(self, conversation: Conversation) -> None:
        """Tell the customer their messages were read."""
        raise Rejected(f"{self.label} has no read status")

    # -- presentation and health -----------------------------------------------------------

    # Whether `order` can tell anything (the desk refreshes order context only then).
    orders = False

    def order(self, conversation: Conversation) -> dict | None:
        """The order behind the conversation, for its card (SPEC §8 "Order context"):
        bounded values under the keys product, quantity, total, currency, status, paid,
        delivery_service, delivery_address, tracking, delivery_status; None: none."""
        return None

    def link(self, conversation: Conversation) -> str | None:
        """Where a person opens the conversation at its source (the CRM's order page)."""
        return None

    def health(self) -> Health:
        return Health(True)
