"""Order context on the chat card (SPEC §8): what the channel says of the order behind a
conversation — product, sum, status, delivery — kept in `order_context` and refreshed
in the background (the `order_context` job), so that showing a card never waits for the
CRM and a CRM away never breaks a card. It is fetched when a conversation is new and
when a manager takes it; a card shown with one older than `STALE` asks again."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable

from channels import Channels
from channels.base import ChannelError
from models.conversations import Conversation, ConversationRepository
from models.db import Database
from models.desk_extras import OrderContextRepository
from models.jobs import SYNC, JobQueue, Permanent

STALE = timedelta(minutes=10)


class OrderContext:
    def __init__(self, db: Database, jobs: JobQueue, channels: Channels,
                 clock: Callable[[], datetime]) -> None:
        self.jobs = jobs
        self.channels = channels
        self.clock = clock
        self.cache = OrderContextRepository(db)
        self.conversations = ConversationRepository(db)

    def offered(self, conversation: Conversation) -> bool:
        channel = self.channels.get(conversation.channel)
        return channel is not None and channel.orders

    def of(self, conversation: Conversation) -> dict | None:
        """What is known of the order now (a stale or missing one is refreshed meanwhile)."""
        if not self.offered(conversation):
            return None
        cached = self.cache.get(conversation.id)
        if cached is None or self.clock() - cached[1] > STALE:
            self.request(conversation.id)
        return cached[0] if cached else None

    def request(self, conversation_id: int, cur=None) -> None:
        payload = {"conversation_id": conversation_id}
        if cur is not None:
            self.jobs.enqueue(SYNC, "order_context", payload, dedupe_key=None,
                              lane=f"order:{conversation_id}", cur=cur)
        else:
            self.jobs.enqueue_coalesced(SYNC, "order_context", payload,
                                        dedupe_key=f"order:{conversation_id}")

    def refresh(self, job) -> None:
        """The `order_context` job: ask the channel, keep what it said."""
        conversation = self.conversations.get(int(job.payload["conversation_id"]))
        if conversation is None or not self.offered(conversation):
            return
        try:
            data = self.channels.of(conversation).order(conversation)
        except ChannelError as exc:
            if not exc.transient:
                raise Permanent("the channel refused the order context", str(exc)) from exc
            raise
        self.cache.save(conversation.id, data, self.clock())
