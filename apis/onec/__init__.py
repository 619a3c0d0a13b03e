"""The 1C API on the integrations door (CHANNELS.md §2):

* the compatible routes 1C configurations already call (`compat.py`): `/custom_request`,
  `/review`, `/appointment`, `/happy_birthday_client`, `/get_all_data`, `/get_data` —
  GET or POST, parameters in the query string or a form, plain-string answers;
* the same and more as JSON under `/api/v1/` with proper status codes, described by
  `/api/v1/openapi.json` (`v1.py`).

Each is a blueprint (`onec`, `onec_v1`) bound to one `OnecApi` (`bind`). Both only check
and decide at the border and store: the messages are sent by the `wa_send`
durable step (services/notifications.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from channels.whatsapp.accounts import load_accounts
from config import Settings
from bot.outbox import TelegramOut
from models.conversations import ConversationRepository
from models.db import Database
from models.jobs import JobQueue
from models.messages import MessageRepository
from models.whatsapp import DeliveryStatusRepository, OnecRepository, OutboxRepository
from services.api_tokens import ApiTokens
from services.errors import ErrorReporter
from services.notifications import Notifications


@dataclass
class OnecApi:
    settings: Settings
    account: str
    notifications: Notifications
    tokens: ApiTokens
    onec: OnecRepository
    outbox: OutboxRepository
    statuses: DeliveryStatusRepository
    conversations: ConversationRepository
    messages: MessageRepository
    reporter: ErrorReporter
    channel: object | None = None


def bind(settings: Settings, db: Database, ring: Callable[[int], object], channel=None) -> OnecApi | None:
    """The context of both 1C blueprints (`compat.blueprint`, `v1.blueprint`), or None
    when no WhatsApp number is configured (they send through it): then neither is served."""
    accounts = load_accounts(settings)
    if not accounts:
        return None
    jobs = JobQueue(db, lease_seconds=settings.job_lease_seconds)
    account = next(iter(accounts))
    return OnecApi(settings, account, Notifications(settings, db, jobs, account, ring=ring),
                   ApiTokens(db), OnecRepository(db), OutboxRepository(db),
                   DeliveryStatusRepository(db), ConversationRepository(db), MessageRepository(db),
                   ErrorReporter(db, TelegramOut(jobs), settings.channel_log), channel)
