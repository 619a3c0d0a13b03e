"""A customer's photo or file that its channel keeps (WhatsApp's media needs the number's
token, so Telegram cannot fetch it by URL): the Telegram sender asks for its bytes here,
by the stored message, and uploads them itself (`bot/sender.py`)."""
from __future__ import annotations

from channels.base import Media, Rejected
from models.conversations import ConversationRepository
from models.db import Database
from models.messages import MessageRepository


class MediaFetcher:
    def __init__(self, db: Database, channels) -> None:
        self.channels = channels
        self.messages = MessageRepository(db)
        self.conversations = ConversationRepository(db)

    def __call__(self, message_id: int) -> Media:
        message = self.messages.get(message_id)
        if message is None or not message.media_ref:
            raise Rejected("the message or its file is gone")
        conversation = self.conversations.get(message.conversation_id)
        channel = self.channels.get(conversation.channel) if conversation else None
        if channel is None:
            raise Rejected("its channel is not configured")
        return channel.fetch_media(conversation, message.media_ref)
