"""KeepingCRM: marketplace conversations (OLX, Prom, Rozetka, the shop's site) through the
CRM's "debates" chat API (SPEC §5) — the first channel behind the connector contract.

* inbound: the CRM's signal route (`listener.py`), the per-chat sync (`sync.py`) and the
  periodic reconciliation (`reconcile.py`);
* outbound: upload, send, "seen" — through the CRM client (`crm/client.py`), each called
  by one durable step; an answer whose outcome is unknown is looked for before it is
  sent again;
* health: the CRM's login.
"""
from __future__ import annotations

import dataclasses
import re
import threading
import time

from channels.base import (Capabilities, Channel, ChannelError, Health, Ingest, Intake,
                           Rejected, Sent, Unavailable)
from channels.keepingcrm.listener import request_sync
from channels.keepingcrm.reconcile import Reconciler
from channels.keepingcrm.sync import CrmSync
from config import Settings
from crm.client import CrmClient, CrmError, CrmRejected, UploadedFile
from models.conversations import KEEPINGCRM, Conversation, ConversationRepository
from models.db import Database
from models.jobs import SYNC
from models.outbound import Attachment, Outbound

HEALTH_CACHE_SECONDS = 30.0
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def order_url(web_url: str, id_i: int | str) -> str:
    return f"{web_url.rstrip('/')}/purchases_inv_detail?id_i={id_i}&view=debate"


def _plain(text: str | None) -> str:
    return _BR.sub("\n", text or "").replace("\r\n", "\n").strip()


class KeepingCrm(Channel):
    name = KEEPINGCRM
    label = "KeepingCRM"
    icon = "📧"

    @staticmethod
    def configured(settings: Settings) -> bool:
        return settings.crm_configured

    def __init__(self, settings: Settings, db: Database, crm: CrmClient | None = None) -> None:
        self.settings = settings
        self.db = db
        self.crm = crm or CrmClient.from_settings(settings)
        self.capabilities = Capabilities(max_text=settings.crm_max_message_len,
                                         attachments=("photo", "document"), read_receipts=True)
        self.intake: Intake | None = None
        self._health: tuple[float, Health] | None = None
        self._health_lock = threading.Lock()

    # -- inbound ---------------------------------------------------------------------------

    def job_handlers(self, ingest: Ingest, intake: Intake) -> dict:
        self.intake = intake
        return {"crm_sync": CrmSync(self.db, self.crm, ingest),
                "reconcile": Reconciler(self.crm, ConversationRepository(self.db), intake,
                                        self.settings.reconcile_every)}

    def periodic(self) -> tuple[tuple[str, str], ...]:
        return ((SYNC, "reconcile"),)

    # -- outbound --------------------------------------------------------------------------

    def upload(self, conversation: Conversation, attachment: Attachment, data: bytes) -> list[dict]:
        with _mapped_errors():
            uploaded = self.crm.upload([(attachment.name, data, attachment.mime)])
        return [{"newid": f.newid, "name": f.name, "type": f.type} for f in uploaded]

    def send(self, conversation: Conversation, text: str, files: list[dict]) -> Sent:
        with _mapped_errors():
            self.crm.send(int(conversation.external_id), text, [UploadedFile(**f) for f in files])
        return Sent()

    def arrived(self, conversation: Conversation, outbound: Outbound) -> bool:
        """A shop message with this text (or this file) after the newest message we knew
        when the answer was decided: the earlier attempt got through."""
        wanted = _plain(outbound.text)
        with _mapped_errors():
            recent = self.crm.messages(int(conversation.external_id), count=50)
        for message in recent:
            if not message.from_shop or (outbound.after_message_id is not None
                                         and message.id <= outbound.after_message_id):
                continue
            if wanted and _plain(message.text) == wanted:
                return True
            if (not wanted and message.is_file and outbound.attachment is not None
                    and message.filename == outbound.attachment.name):
                return True
        return False

    def after_send(self, conversation: Conversation, outbound: Outbound | None = None,
                   external_id: str | None = None) -> None:
        if self.intake is not None:  # store the shop's message: the customer counts as answered
            request_sync(self.intake, int(conversation.external_id))

    def mark_read(self, conversation: Conversation) -> None:
        with _mapped_errors():
            self.crm.seen(int(conversation.external_id))

    # -- presentation and health -----------------------------------------------------------

    orders = True

    def order(self, conversation: Conversation) -> dict | None:
        with _mapped_errors():
            found = self.crm.order(int(conversation.external_id))
        return None if found is None else {k: v for k, v in dataclasses.asdict(found).items()
                                           if k != "id_i"}

    def link(self, conversation: Conversation) -> str | None:
        return order_url(self.settings.keeping_web_url, conversation.external_id)

    def health(self) -> Health:
        """The CRM's login (a token still valid counts), checked at most every 30 s."""
        with self._health_lock:
            now = time.monotonic()
            if self._health is not None and now - self._health[0] < HEALTH_CACHE_SECONDS:
                return self._health[1]
            try:
                self.crm.token()
                health = Health(True)
            except CrmError as exc:
                health = Health(False, str(exc)[:200])
            self._health = (now, health)
            return health


class _mapped_errors:
    """The CRM client's errors as the contract's: refused, away, or broken."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or not isinstance(exc, CrmError):
            return False
        if isinstance(exc, CrmRejected):
            raise Rejected(exc.error_text or f"HTTP {exc.status}", max_length=exc.max_length) from exc
        if exc.transient:
            raise Unavailable(str(exc)) from exc
        raise ChannelError(str(exc)) from exc
