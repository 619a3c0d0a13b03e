"""The account side of the relay, behind one small interface (CHANNELS.md §5).

`AccountClient` is what the accounts process drives for one of the shop's Telegram
accounts: start the session, say whether it is online, send, find a recipient, mark read,
download a file, and a stream of `AccountEvent`s. Two implementations:

* `telethon_client.TelethonAccount` — the real thing (Telethon, MTProto);
* `emulated.EmulatedAccount` — the sandbox's account emulator over loopback HTTP
  (`sandbox/tgaccounts.py`), for tests, the demo and the playground.

Everything the rest of KeepDesk sees of Telegram accounts is these types; nothing
outside this package knows Telethon's.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import AsyncIterator

SERVICE_ACCOUNT = 777000        # Telegram's notifications (login codes): never relayed
IGNORED_USERNAMES = ("planfix_bot",)


@dataclass(frozen=True)
class Person:
    """A Telegram user as the account sees them."""
    id: int
    username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    is_bot: bool = False


@dataclass(frozen=True)
class MediaInfo:
    kind: str                 # photo | document | voice | audio | video | video_note | sticker | other
    name: str
    mime: str
    size: int | None = None


@dataclass(frozen=True)
class MessageEvent:
    """A message in one of the account's chats."""
    account: str
    message_id: int
    peer_id: int               # the other side of a private chat (the customer)
    private: bool
    outgoing: bool             # written by the account (its owner's phone, or us)
    text: str = ""
    media: MediaInfo | None = None
    customer: Person | None = None   # the other side, when known
    date: float | None = None        # unix time
    handle: object = field(default=None, compare=False, repr=False)   # what download() needs

    @property
    def relayable(self) -> bool:
        """Only private chats with people: not groups or channels, not Telegram's
        service account, not Planfix's own bot."""
        if not self.private or self.peer_id == SERVICE_ACCOUNT:
            return False
        username = (self.customer.username or "").lower() if self.customer else ""
        return username not in IGNORED_USERNAMES


@dataclass(frozen=True)
class ReadEvent:
    """The customer read the account's messages up to `max_id` (outbox read)."""
    account: str
    peer_id: int
    max_id: int


AccountEvent = MessageEvent | ReadEvent


@dataclass(frozen=True)
class OutFile:
    name: str
    mime: str
    data: bytes


class AccountError(Exception):
    """A call failed; `transient`: trying again later may help."""
    transient = False


class SessionRevoked(AccountError):
    """The session is no longer authorised (logged out from another device, deleted)."""


class AccountOffline(AccountError):
    transient = True


class FloodWait(AccountError):
    transient = True

    def __init__(self, seconds: float) -> None:
        super().__init__(f"FLOOD_WAIT {int(seconds)} s")
        self.retry_after = float(seconds)


class Refused(AccountError):
    """Telegram refused for good: privacy settings, blocked, no such user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotFound(Refused):
    pass


class AccountClient(ABC):
    account: str

    @abstractmethod
    async def start(self) -> Person:
        """Connect and check the session; the account's own user. Raises SessionRevoked."""

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    def is_online(self) -> bool: ...

    @abstractmethod
    def events(self) -> AsyncIterator[AccountEvent]:
        """The account's events, as they come, until the connection drops."""

    async def confirm(self, event: AccountEvent) -> None:
        """The event is stored durably; a source that redelivers may forget it now."""

    @abstractmethod
    async def send_message(self, peer_id: int, text: str, files: list[OutFile]) -> int:
        """Send to a user; the new message's id (of the last part when files and a text
        go as several messages)."""

    @abstractmethod
    async def resolve(self, *, user_id: int | None = None, username: str | None = None,
                      phone: str | None = None) -> Person:
        """Find a user by id, then username, then phone (imported as a contact); raises
        NotFound."""

    @abstractmethod
    async def mark_read(self, peer_id: int, max_id: int | None = None) -> None: ...

    @abstractmethod
    async def download(self, event: MessageEvent, limit: int) -> bytes | None:
        """The event's file, or None when over `limit` bytes."""
