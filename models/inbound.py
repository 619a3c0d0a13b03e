"""What a channel hands to the ingest service: the conversation's key and what the
channel knows of it, and its messages — already bounded values (channels parse outside
input at their border), whatever the channel's wire format."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ConversationKey:
    """A conversation is (channel, account, external id) (CHANNELS.md §1)."""
    channel: str
    account: str
    external_id: str

    @property
    def numeric_id(self) -> int | None:
        """The source's own number, when it is one (the CRM's id_i): a conversation keeps
        it as its desk number when it is free."""
        if self.channel != "keepingcrm":   # a phone or a user id is no desk number
            return None
        return int(self.external_id) if self.external_id.isdigit() and len(self.external_id) < 19 else None


@dataclass(frozen=True)
class ConversationInfo:
    """What the channel says about the conversation; None = it does not say (kept as is)."""
    title: str | None = None
    customer_name: str | None = None
    customer_email: str | None = None
    customer_phone: str | None = None
    customer_tg_id: int | None = None
    cnt_msg: int | None = None
    cnt_new: int | None = None


@dataclass(frozen=True)
class InboundMessage:
    """One message of a conversation, keyed by the channel's own message id."""
    external_id: str
    from_customer: bool
    text: str = ""
    is_file: bool = False
    is_img: bool = False
    filename: str | None = None
    url: str | None = None
    preview: str | None = None
    date_written: datetime | None = None
    date_seen: datetime | None = None
    deleted: bool = False
    # The channel's own reference of a photo or file the desk cannot link to (a WhatsApp
    # media id): the Telegram sender asks the channel for its bytes.
    media_ref: str | None = None
    # A quick-reply button's payload (WhatsApp), for dialogues that wait for one.
    payload: str | None = None

    @property
    def sort_key(self) -> tuple:
        return (int(self.external_id) if self.external_id.isdigit() else 0, self.external_id)


@dataclass(frozen=True)
class StatusUpdate:
    """What the channel says became of a message the shop sent (CHANNELS.md §1)."""
    external_id: str
    status: str                       # sent | delivered | read | failed
    at: datetime
    error_code: int | None = None
    error: str | None = None
