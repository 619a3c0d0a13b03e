"""One customer across channels: conversations whose customer has the same phone (as
E.164, PHONE_DEFAULT_REGION for a number without a country code) or the same e-mail
are the same customer; a chat's card names the others ("🔗 Також: WhatsApp #12,
KeepingCRM #9301") with a button to each. Found when the card is drawn, so nothing is
kept that could go stale; claims stay per conversation. A manager links two conversations
by hand (`/link_12_34`) or keeps two apart (`/unlink_12_34`): what they said wins over
the phones and e-mails."""
from __future__ import annotations

from datetime import datetime

from models.conversations import Conversation
from models.customers import MAX_LINKED, CustomerRepository
from models.db import Database
from models.users import User
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
        by_hand = self.repo.by_hand(conversation.id)
        for other in self.repo.get_many([i for i, linked in by_hand.items() if linked][:MAX_LINKED]):
            found.setdefault(other.id, other)
        for other_id, linked in by_hand.items():
            if not linked:
                found.pop(other_id, None)
        return sorted(found.values(), key=lambda c: (c.last_date is not None, c.last_date or 0),
                      reverse=True)[:MAX_LINKED]

    def link(self, by: User, first: Conversation, second: Conversation, linked: bool,
             now: datetime) -> bool:
        """Link two conversations as one customer (or keep them apart); False: one chat twice."""
        if first.id == second.id:
            return False
        self.repo.set_link(first.id, second.id, linked, by.tg_id, now)
        return True
