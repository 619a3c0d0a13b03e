"""WhatsApp: customers who write to the shop's WhatsApp numbers (CHANNELS.md §1, §3).

A conversation is (whatsapp, phone_number_id of the shop's number, the customer's phone
in E.164 digits without "+" — WhatsApp's wa_id). The wire format lives in a provider
(`providers/`: Meta's Cloud API today); this package speaks the connector contract:

* inbound: `GET|POST /whatsapp/cloud` (`webhook.py`) stores each signed body; the
  `wa_webhook` job (`inbound.py`) turns it into the ingest service's batches;
* outbound: `upload`, `send`, `send_template`, `mark_read`, `send_to` (1C and the API),
  each called by one durable step, within Meta's limits shared by every process
  (per number and per customer, `channels/limits.py`); the Graph API's refusals are
  mapped in `errors.py`;
* media: customer photos and files need the number's token, so the Telegram sender
  asks `fetch_media` for their bytes and uploads them itself;
* the 24-hour window: free-form answers only within 24 h of the customer's last
  message; outside it, the shop's approved templates (`templates`);
* health: the number's Graph API object, checked at most every 30 s.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from channels.base import (Capabilities, Channel, Health, Incoming, Ingest, Intake, Media,
                           Rejected, Sent, Unavailable)
from channels.limits import Limit, SharedLimits, bucket_name, per_second
from channels.whatsapp import webhook
from channels.whatsapp.accounts import Account, load_accounts
from channels.whatsapp.errors import Throttled, WindowClosed
from channels.whatsapp.inbound import WHATSAPP, WebhookJob, key_of
from channels.whatsapp.providers.base import Provider
from channels.whatsapp.providers.cloud import CloudApi
from config import Settings
from models.conversations import Conversation
from models.db import Database
from models.inbound import InboundMessage
from models.jobs import RetryLater
from models.locks import LockManager
from models.messages import MessageRepository
from models.outbound import Attachment, Outbound
from utils import redact
from utils.clock import utc_now

log = logging.getLogger(__name__)

HEALTH_CACHE_SECONDS = 30.0
MAX_TEXT = 4096          # a WhatsApp text message
MAX_CAPTION = 1024       # a media caption
REPLY_WINDOW = timedelta(hours=24)


class WhatsApp(Channel):
    name = WHATSAPP
    label = "WhatsApp"
    icon = "🟢"
    waiting_notice = "wa_answer_waits"

    @staticmethod
    def configured(settings: Settings) -> bool:
        return settings.whatsapp_configured

    def __init__(self, settings: Settings, db: Database, provider: Provider | None = None) -> None:
        self.settings = settings
        self.db = db
        self.accounts: dict[str, Account] = load_accounts(settings)
        # Secrets from WHATSAPP_NUMBERS_FILE never reach a log line either.
        redact.register(v for a in self.accounts.values() for v in (a.token, a.app_secret, a.verify_token))
        self.provider = provider or CloudApi(settings.whatsapp_cloud_graph_url,
                                             settings.whatsapp_cloud_api_version)
        self.capabilities = Capabilities(max_text=MAX_TEXT, attachments=("photo", "document"),
                                         files_per_message=1, reply_window=REPLY_WINDOW, read_receipts=True,
                                         delivery_statuses=True, templates=True)
        self.limits = SharedLimits(db)
        self.number_limit = per_second(settings.whatsapp_limit_per_number_per_s)
        self.customer_limit = Limit(1, settings.whatsapp_limit_customer_seconds)
        self.messages = MessageRepository(db)
        self.ingest: Ingest | None = None
        self._health: dict[str, tuple[float, Health]] = {}
        self._health_lock = threading.Lock()

    @property
    def default_account(self) -> Account:
        return next(iter(self.accounts.values()))

    def account(self, account_id: str) -> Account:
        account = self.accounts.get(account_id)
        if account is None:
            raise Rejected(f"WhatsApp number {account_id} is not configured any more")
        return account

    # -- inbound ---------------------------------------------------------------------------

    def routes(self, app, intake: Intake) -> None:
        webhook.register(app, self, intake)

    def job_handlers(self, ingest: Ingest, intake: Intake) -> dict:
        self.ingest = ingest
        return {"wa_webhook": WebhookJob(self, ingest, LockManager.instance(self.db))}

    # -- limits ----------------------------------------------------------------------------

    def reserve(self, account: str, phone: str) -> None:
        """A slot in Meta's limits for one message, or RetryLater (nothing failed)."""
        wait = self.limits.reserve({bucket_name("wa", account): self.number_limit,
                                    bucket_name("wa", account, phone): self.customer_limit})
        if wait > 0:
            raise RetryLater(f"WhatsApp send budget of {account}/{phone} used up", wait)

    def throttled(self, account: str, phone: str, exc: Throttled) -> None:
        """Meta said "too fast": hold that customer (131056) or the whole number back."""
        name = bucket_name("wa", account, phone) if exc.code == 131056 else bucket_name("wa", account)
        self.limits.block(name, exc.retry_after)

    # -- outbound --------------------------------------------------------------------------

    def upload(self, conversation: Conversation, attachment: Attachment, data: bytes) -> list[dict]:
        account = self.account(conversation.account)
        media_id = self.provider.upload_media(account, data, attachment.mime, attachment.name)
        kind = "image" if attachment.mime.startswith("image/") and attachment.mime != "image/webp" else "document"
        return [{"id": media_id, "kind": kind, "name": attachment.name}]

    def send(self, conversation: Conversation, text: str, files: list[dict]) -> Sent:
        if self.window_closed(conversation, utc_now()):
            raise WindowClosed("131047: more than 24 hours since the customer's last message")
        if files:
            file = files[0]
            if len(text) > MAX_CAPTION:
                raise Rejected("a caption is at most 1024 characters", max_length=MAX_CAPTION)
            body = {"media_id": file["id"], "caption": text, "filename": file.get("name")}
            return self.send_to(conversation.account, conversation.external_id, file["kind"], body)
        return self.send_to(conversation.account, conversation.external_id, "text", {"text": text})

    def send_template(self, conversation: Conversation, template: dict) -> Sent:
        return self.send_to(conversation.account, conversation.external_id, "template", template)

    def send_to(self, account_id: str, phone: str, kind: str, body: dict) -> Sent:
        """One message to a phone on one of the shop's numbers, within Meta's limits:
        text {text}, image/document {media_id | link, caption, filename}, template {name,
        language, params}, location {latitude, longitude, name, address}, contact {…}."""
        account = self.account(account_id)
        self.reserve(account.id, phone)
        try:
            if kind == "text":
                wamid = self.provider.send_text(account, phone, body["text"])
            elif kind in ("image", "document"):
                wamid = self.provider.send_media(account, phone, kind, body.get("media_id"),
                                                 link=body.get("link"), caption=body.get("caption") or "",
                                                 filename=body.get("filename"))
            elif kind == "template":
                wamid = self.provider.send_template(
                    account, phone, body["name"],
                    body.get("language") or self.settings.whatsapp_template_language,
                    [str(p) for p in body.get("params") or []])
            elif kind == "location":
                wamid = self.provider.send_location(account, phone, float(body["latitude"]),
                                                    float(body["longitude"]), body.get("name") or "",
                                                    body.get("address") or "")
            elif kind == "contact":
                wamid = self.provider.send_contact(account, phone, body)
            else:
                raise Rejected(f"unknown WhatsApp message kind {kind!r}")
        except Throttled as exc:
            self.throttled(account.id, phone, exc)
            raise
        return Sent(wamid)

    def after_send(self, conversation: Conversation, outbound: Outbound | None = None,
                   external_id: str | None = None) -> None:
        """The manager's message becomes a shop message of the conversation (its history
        and its delivery marks), keyed by its WhatsApp id."""
        if outbound is None or not external_id:
            return
        self.record_shop_message(conversation.account, conversation.external_id, external_id,
                                 history_text(outbound))
        statuses = getattr(self.ingest, "statuses", None)
        if statuses is not None and hasattr(statuses, "caught_up"):
            statuses.caught_up(conversation.id, external_id)

    def record_shop_message(self, account: str, phone: str, external_id: str, text: str,
                            *, is_file: bool = False, filename: str | None = None) -> None:
        if self.ingest is None:
            return
        message = InboundMessage(external_id=external_id, from_customer=False, text=text,
                                 is_file=is_file, filename=filename, date_written=utc_now())
        with LockManager.instance(self.db).lock("wa", f"{account}:{phone}", timeout=30):
            self.ingest(Incoming(key_of(account, phone), [message]))

    def mark_read(self, conversation: Conversation) -> None:
        newest = self.messages.newest_from_customer(conversation.id)
        if newest is None:
            return  # nothing the customer wrote is known: nothing to mark
        self.provider.mark_read(self.account(conversation.account), newest)

    def fetch_media(self, conversation: Conversation, media_ref: str) -> Media:
        return self.provider.fetch_media(self.account(conversation.account), media_ref,
                                         self.settings.whatsapp_media_max_bytes)

    def templates(self) -> tuple[tuple[str, int], ...]:
        return self.settings.whatsapp_templates

    # -- presentation and health -----------------------------------------------------------

    def health(self) -> Health:
        """Every number's Graph API object, checked at most every 30 s."""
        with self._health_lock:
            now = time.monotonic()
            results = []
            for account in self.accounts.values():
                cached = self._health.get(account.id)
                if cached is None or now - cached[0] >= HEALTH_CACHE_SECONDS:
                    cached = (now, self.provider.health(account))
                    self._health[account.id] = cached
                results.append((account.id, cached[1]))
        bad = [f"{number}: {h.detail}" for number, h in results if not h.ok]
        return Health(not bad, "; ".join(bad)[:300])


def history_text(outbound: Outbound) -> str:
    """What a manager's message reads as in the history."""
    if outbound.template:
        params = ", ".join(str(p) for p in outbound.template.get("params") or [])
        return f"📋 {outbound.template.get('name')}" + (f": {params}" if params else "")
    if outbound.attachment is not None:
        return "\n".join(filter(None, [f"📎 {outbound.attachment.name}", outbound.text]))
    return outbound.text


__all__ = ["WhatsApp", "Unavailable", "WHATSAPP"]
