"""The sync of one KeepingCRM chat: the work behind a signal (SPEC §6).

One signal costs O(1) CRM calls: the chat's newest messages (one call for a known chat,
more only when over a page of messages arrived at once) and, for a chat seen for the
first time, its metadata. The CRM's messages become `InboundMessage`s and go to the one
ingest service, which stores them once and fans them out to the desk.
"""
from __future__ import annotations

import logging

from channels.base import Incoming, Ingest
from crm.client import CrmChat, CrmClient, CrmMessage
from models.conversations import KEEPINGCRM, ConversationRepository
from models.db import Database
from models.inbound import ConversationInfo, ConversationKey, InboundMessage
from models.messages import MessageRepository

log = logging.getLogger(__name__)

PAGE = 50
MAX_PAGES = 20


def key_of(id_i: int) -> ConversationKey:
    return ConversationKey(KEEPINGCRM, "", str(id_i))


def inbound(message: CrmMessage) -> InboundMessage:
    return InboundMessage(
        external_id=str(message.id), from_customer=message.from_client, text=message.text,
        is_file=message.is_file, is_img=message.is_img, filename=message.filename,
        url=message.url, preview=message.preview, date_written=message.date_written,
        date_seen=message.date_seen, deleted=message.deleted)


def info_of(chat: CrmChat | None) -> ConversationInfo | None:
    if chat is None:
        return None
    return ConversationInfo(title=chat.product, customer_email=chat.email,
                            cnt_msg=chat.cnt_msg, cnt_new=chat.cnt_new)


class CrmSync:
    """The `crm_sync` job."""

    def __init__(self, db: Database, crm: CrmClient, ingest: Ingest) -> None:
        self.crm = crm
        self.ingest = ingest
        self.conversations = ConversationRepository(db)
        self.messages = MessageRepository(db)

    def __call__(self, job) -> None:
        id_i = int(job.payload["id_i"])
        result = self.sync(id_i, signal_at=job.payload.get("signal_at"))
        log.info("synced chat %s: %s fetched, %s new, %s announced, %s posts queued", id_i,
                 result.stored, result.new, result.announced, len(result.posts))

    def sync(self, id_i: int, *, signal_at: float | None = None):
        known = self.conversations.find(key_of(id_i))
        fetched = self._fetch(id_i, known)
        meta = None if known else self.crm.find_chat(id_i)
        return self.ingest(Incoming(key_of(id_i), [inbound(m) for m in fetched], info_of(meta),
                                    signal_at, known=known))

    def _fetch(self, id_i: int, known) -> list[CrmMessage]:
        """The newest page; older pages only while every message on a page is new to us."""
        page = self.crm.messages(id_i, count=PAGE)
        collected = {m.id: m for m in page}
        pages = 1
        last_known = None
        if known is not None and len(page) >= PAGE:  # a full page: how far back is new?
            last_known = self.messages.max_numeric_external_id(known.id)
        while (last_known is not None and len(page) >= PAGE and page[0].id > last_known + 1
               and pages < MAX_PAGES):
            page = self.crm.messages(id_i, count=PAGE, id_from=page[0].id - 1)
            collected.update((m.id, m) for m in page)
            pages += 1
        return [collected[k] for k in sorted(collected)]
