"""Reconciliation: every RECONCILE_EVERY seconds, catch what a lost signal would hide.

It reads the CRM's chats with new messages (all their pages) and the newest page of all
chats, and asks for a sync of every chat that is unknown or has a newer message than we
stored (by date, or by message count: the CRM's dates have one-second resolution). A
lost signal therefore delays a message by at most one period; it never loses it. Cost:
a few list calls per period, whatever the number of chats. A periodic job: whatever
happens, it runs again (scripts/failures.py), and repeated failures are reported.
"""
from __future__ import annotations

import logging

from channels.base import Intake
from channels.keepingcrm.listener import request_sync
from crm.client import CrmChat, CrmClient
from models.conversations import KEEPINGCRM, ConversationRepository

log = logging.getLogger(__name__)

PAGESIZE = 100
MAX_NEW_PAGES = 10


class Reconciler:
    """The periodic `reconcile` job."""

    def __init__(self, crm: CrmClient, conversations: ConversationRepository, intake: Intake,
                 every: float) -> None:
        self.crm = crm
        self.conversations = conversations
        self.intake = intake
        self.every = every

    def __call__(self, job) -> float:
        signalled = self.run()
        if signalled:
            log.info("reconciliation found news in %s chats", len(signalled))
        return self.every  # run again after one period

    def candidates(self) -> dict[int, CrmChat]:
        found: dict[int, CrmChat] = {}
        page, pages = 1, 1
        while page <= min(pages, MAX_NEW_PAGES):
            chats, pages = self.crm.chats(page=page, pagesize=PAGESIZE, filter_new=True)
            found.update((c.id_i, c) for c in chats)
            page += 1
        newest, _ = self.crm.chats(page=1, pagesize=PAGESIZE)
        found.update((c.id_i, c) for c in newest)
        return found

    def run(self) -> list[int]:
        candidates = self.candidates()
        stored = self.conversations.freshness(KEEPINGCRM, "", [str(i) for i in candidates])
        signalled = []
        for id_i, chat in candidates.items():
            if str(id_i) not in stored or has_news(chat, *stored[str(id_i)]):
                request_sync(self.intake, id_i)
                signalled.append(id_i)
        return signalled


def has_news(chat: CrmChat, last_date, cnt_msg: int) -> bool:
    """Newer than what we stored, by date, or by count (dates have one-second resolution)."""
    if chat.last_date is not None and (last_date is None or chat.last_date > last_date):
        return True
    return chat.cnt_msg > cnt_msg
