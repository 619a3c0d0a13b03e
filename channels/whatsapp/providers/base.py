"""The provider contract: everything the WhatsApp channel needs from a provider, and
nothing about its wire format. A provider turns calls into its HTTP requests and its
webhooks into `Event`s; it maps its refusals onto `channels/whatsapp/errors.py`.

    outbound   send_text · send_media (after upload_media) · send_template ·
               send_location · send_contact · mark_read      → the provider's message id
    inbound    verify_subscription (the webhook handshake) · authentic (signature on the
               raw body, before parsing) · parse (raw body → events) · fetch_media
    other      check_phone · health

Every send raises one of the contract's errors (Unavailable, Rejected, ShopMustAct …);
a provider never decides to retry — the durable step around it does.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime

from channels.base import Health, Media
from channels.whatsapp.accounts import Account
from models.inbound import InboundMessage, StatusUpdate


@dataclass(frozen=True)
class ReceivedMessage:
    account: str                  # the shop's number (phone_number_id) it came to
    phone: str                    # the customer: E.164 digits without "+"
    name: str | None              # the customer's WhatsApp profile name
    message: InboundMessage


@dataclass(frozen=True)
class ReceivedStatus:
    account: str
    phone: str
    status: StatusUpdate


@dataclass
class Event:
    """What one webhook body said, already bounded values."""
    messages: list[ReceivedMessage] = field(default_factory=list)
    statuses: list[ReceivedStatus] = field(default_factory=list)


class Provider(ABC):
    name: str

    # -- outbound ----------------------------------------------------------------------
    @abstractmethod
    def send_text(self, account: Account, to: str, text: str) -> str: ...

    @abstractmethod
    def upload_media(self, account: Account, data: bytes, mime: str, filename: str) -> str: ...

    @abstractmethod
    def send_media(self, account: Account, to: str, kind: str, media_id: str | None, *,
                   link: str | None = None, caption: str = "", filename: str | None = None) -> str: ...

    @abstractmethod
    def send_template(self, account: Account, to: str, name: str, language: str,
                      params: list[str]) -> str: ...

    @abstractmethod
    def send_location(self, account: Account, to: str, latitude: float, longitude: float,
                      name: str = "", address: str = "") -> str: ...

    @abstractmethod
    def send_contact(self, account: Account, to: str, contact: dict) -> str: ...

    @abstractmethod
    def mark_read(self, account: Account, message_id: str) -> None: ...

    # -- inbound -----------------------------------------------------------------------
    @abstractmethod
    def verify_subscription(self, accounts: list[Account], args: dict) -> str | None:
        """The webhook handshake: what to echo, or None (refused)."""

    @abstractmethod
    def authentic(self, accounts: list[Account], raw: bytes, headers) -> bool:
        """Is this raw body really from the provider (checked before parsing)?"""

    @abstractmethod
    def parse(self, raw: bytes, now: datetime) -> Event: ...

    @abstractmethod
    def fetch_media(self, account: Account, media_ref: str, max_bytes: int) -> Media: ...

    # -- other -------------------------------------------------------------------------
    def check_phone(self, account: Account, phone: str) -> bool | None:
        """Has this phone WhatsApp? None: the provider cannot tell."""
        return None

    @abstractmethod
    def health(self, account: Account) -> Health: ...
