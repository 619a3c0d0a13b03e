"""One customer across channels: conversations whose customer has the same phone (as
E.164, PHONE_DEFAULT_REGION for a number without a country code) or the same e-mail
are the same customer; a chat's card names the others ("🔗 Також: WhatsApp #12,
KeepingCRM #9301") with a button to each. Found when the card is drawn, so nothing is
kept that could go stale; claims stay per conversation."""
from __future__ import annotations

from models.conversations import Conversation
from models.customers import MAX_LINKED, CustomerRepository
from models.db import Database
from utils.phones import InvalidPhone, normalise


class Customers:
    def __init__(self, db: Database, default_region: str) -> None:
        self.region = default_region
        self.repo = CustomerRepository(db)

    def e164(self, phone: str | None) -> str | None:
        if not phone:
            return None
        try:
            return normalise(phone, self.region)
        except InvalidPhone:
            return None

    def others(self, conversation: Conversation) -> list[Conversation]:
        """The same customer's other conversations, newest first (a few)."""
        found: dict[int, Conversation] = {}
        phone = self.e164(conversation.customer_phone)
        if phone:
            for other in self.repo.same_phone_tail(conversation.id, phone[-9:]):
                if self.e164(other.customer_phone) == phone:
                    found.setdefault(other.id, other)
        if conversation.customer_email and "@" in conversation.customer_email:
            for other in self.repo.same_email(conversation.id, conversation.customer_email.strip()):
                found.setdefault(other.id, other)
        return sorted(found.values(), key=lambda c: (c.last_date is None, c.last_date), reverse=True
                      )[:MAX_LINKED]
