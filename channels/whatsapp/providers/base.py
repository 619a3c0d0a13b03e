"""The provider contract: everything the WhatsApp channel needs from a provider, and
nothing about its wire format. A provider turns calls into its HTTP requests and its
webhooks into `Event`s; it maps its refusals onto `channels/whatsapp/errors.py`.

    outbound   send_text · send_media (after upload_media) · send_template ·
               send_location · send_contact · mark_read      → the provider's message id
               send_batch (many messages in one call, each result in its place: Devino)
    inbound    verify_subscription (the webhook handshake) · authentic (signature on the
               raw body, before parsing) · parse (raw body → events) · fetch_media ·
               receive / acknowledge (the notification queue, for an account polled
               instead of called: Green-API)
    other      check_phone · history · contacts · state (the instance's state) · health

`features` says what a provider can do at all; a call it cannot serve raises
`Unsupported` ("not supported by this provider": the 1C API answers 422, a manager is
told). `reply_window` is WhatsApp's 24-hour rule where the provider is bound by it (the
Business API: Cloud, Devino), None where it is not (a linked personal account: Green-API).

Every send raises one of the contract's errors (Unavailable, Rejected, ShopMustAct …);
a provider never decides to retry — the durable step around it does.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from channels.base import Health, Media
from channels.whatsapp.accounts import Account
from channels.whatsapp.errors import Unsupported
from models.inbound import InboundMessage, StatusUpdate

REPLY_WINDOW = timedelta(hours=24)

# What a provider may be able to do (the 1C API's feature names).
FEATURES = ("text", "file_url", "file_upload", "location", "contact", "template", "read",
            "check", "history", "contacts", "batch")


@dataclass(frozen=True)
class ReceivedMessage:
    account: str                  # the shop's account (number, instance, sender) it came to
    phone: str                    # the customer: E.164 digits without "+"
    name: str | None              # the customer's WhatsApp profile name
    message: InboundMessage       # from_customer False: typed on the shop's phone / sent by API


@dataclass(frozen=True)
class ReceivedStatus:
    account: str
    phone: str
    status: StatusUpdate
    ref: str | None = None        # what we told the provider to say back (Devino's callbackData)


@dataclass
class Event:
    """What one webhook body (or notification) said, already bounded values."""
    messages: list[ReceivedMessage] = field(default_factory=list)
    statuses: list[ReceivedStatus] = field(default_factory=list)
    states: list[tuple[str, str]] = field(default_factory=list)   # (account, instance state)
    # (account, old phone, new phone): the customer changed number; the conversation follows
    moves: list[tuple[str, str, str]] = field(default_factory=list)
    # What this body said that the parser could not read: the body becomes a dead letter
    # naming each part (what it did understand is taken in all the same).
    not_understood: list[str] = field(default_factory=list)
    # What the body said that is deliberately not the desk's (a group chat): documented,
    # counted, nothing to do.
    skipped: list[str] = field(default_factory=list)
    # Worth one line in the log, nothing lost (a Devino `to` read as our one sender).
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Notification:
    """One notification taken from a provider's queue (Green-API's receiveNotification)."""
    receipt: str
    body: bytes


@dataclass(frozen=True)
class BatchItem:
    """One message of a batch: to, kind (text, image, document, template …), its body,
    and what the provider should say back in status callbacks (`ref`)."""
    to: str
    kind: str
    body: dict
    ref: str


@dataclass(frozen=True)
class BatchResult:
    """What the provider said of one message of a batch, in its place."""
    message_id: str | None                  # accepted
    reasons: tuple[str, ...] = ()           # refused: the provider's reason keys
    description: str = ""


@dataclass(frozen=True)
class HistoryItem:
    id: str
    from_customer: bool
    text: str
    at: datetime | None
    kind: str = "text"
    status: str | None = None


class Provider(ABC):
    name: str
    features: frozenset[str] = frozenset(FEATURES) - {"batch", "history", "contacts"}
    reply_window: timedelta | None = REPLY_WINDOW
    max_text: int = 4096

    def supports(self, feature: str) -> bool:
        return feature in self.features

    def require(self, feature: str) -> None:
        if feature not in self.features:
            raise Unsupported(feature, self.name)

    # -- outbound ----------------------------------------------------------------------
    @abstractmethod
    def send_text(self, account: Account, to: str, text: str, *, ref: str = "") -> str: ...

    @abstractmethod
    def upload_media(self, account: Account, data: bytes, mime: str, filename: str) -> str: ...

    @abstractmethod
    def send_media(self, account: Account, to: str, kind: str, media_id: str | None, *,
                   link: str | None = None, caption: str = "", filename: str | None = None,
                   mime: str | None = None, ref: str = "") -> str: ...

    @abstractmethod
    def send_template(self, account: Account, to: str, name: str, language: str,
                      params: list[str], *, ref: str = "") -> str: ...

    @abstractmethod
    def send_location(self, account: Account, to: str, latitude: float, longitude: float,
                      name: str = "", address: str = "", *, ref: str = "") -> str: ...

    @abstractmethod
    def send_contact(self, account: Account, to: str, contact: dict, *, ref: str = "") -> str: ...

    @abstractmethod
    def mark_read(self, account: Account, message_id: str, phone: str = "") -> None: ...

    def send_batch(self, account: Account, items: list[BatchItem]) -> list[BatchResult]:
        """Many messages in one call, one result per item in the same order."""
        raise Unsupported("batch", self.name)

    # -- inbound -----------------------------------------------------------------------
    def verify_subscription(self, accounts: list[Account], args: dict) -> str | None:
        """The webhook handshake: what to echo, or None (refused)."""
        return None

    def authentic(self, accounts: list[Account], raw: bytes, headers) -> bool:
        """Is this raw body really from the provider (checked before parsing)?"""
        return False

    @abstractmethod
    def parse(self, raw: bytes, now: datetime, context: dict | None = None) -> Event:
        """A stored body → events. `context`: what the door knew (Devino's route, the
        accounts its secret path stands for)."""

    @abstractmethod
    def fetch_media(self, account: Account, media_ref: str, max_bytes: int) -> Media: ...

    def receive(self, account: Account, timeout: int) -> Notification | None:
        """The next notification of the account's queue, waiting up to `timeout` s."""
        raise Unsupported("poll", self.name)

    def acknowledge(self, account: Account, receipt: str) -> None:
        """Delete a notification from the queue (only after it is stored)."""
        raise Unsupported("poll", self.name)

    # -- other -------------------------------------------------------------------------
    def check_phone(self, account: Account, phone: str) -> bool | None:
        """Has this phone WhatsApp? None: the provider cannot tell."""
        return None

    def history(self, account: Account, phone: str, count: int) -> list[HistoryItem]:
        """The chat as the provider keeps it, newest last."""
        raise Unsupported("history", self.name)

    def contacts(self, account: Account) -> list[tuple[str, str]]:
        """The account's WhatsApp contacts as (phone, name)."""
        raise Unsupported("contacts", self.name)

    def state(self, account: Account) -> str | None:
        """The instance's state (Green-API: authorized, notAuthorized, blocked, …); None:
        the provider has no such notion."""
        return None

    @abstractmethod
    def health(self, account: Account) -> Health: ...
