"""WhatsApp: customers who write to the shop's WhatsApp numbers (CHANNELS.md §1, §3, §4).

A conversation is (whatsapp, the shop's account — Cloud API phone_number_id, Green-API
idInstance or Devino sender —, the customer's phone in E.164 digits without "+"). The
wire format lives in a provider (`providers/`: Meta's Cloud API, Green-API-compatible
gateways, Devino), one per account (`accounts.py`); this package speaks the connector
contract, and `gateways.py` holds what only the gateways need (their webhooks, the
notification poll, instance states, Devino's batches are in services/gateways.py):

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
from datetime import datetime, timedelta
from typing import Callable

from channels.base import (Capabilities, Channel, Health, Incoming, Ingest, Intake, Media,
                           Rejected, Sent, Unavailable)
from channels.limits import Limit, SharedLimits, bucket_name, per_second
from channels.whatsapp.accounts import Account, load_accounts
from channels.whatsapp.errors import Throttled, WindowClosed
from channels.whatsapp.inbound import WHATSAPP, WebhookJob, key_of
from channels.whatsapp.errors import NotAuthorized, OutcomeUnknown, Undeliverable
from channels.whatsapp.providers.base import Provider
from channels.whatsapp.providers.cloud import CloudApi
from channels.whatsapp.providers.devino import Devino
from channels.whatsapp.providers.greenapi import LIMITS as GREENAPI_LIMITS, GreenApi
from channels.whatsapp.templates import TemplateTexts
from models.gateways import FileRepository, InstanceRepository
from config import Settings
from models.conversations import Conversation, ConversationRepository
from models.db import Database
from models.inbound import ConversationKey, InboundMessage
from models.jobs import RetryLater
from models.locks import LockManager
from models.messages import MessageRepository
from models.outbound import Attachment, Outbound
from channels.whatsapp.panel_accounts import load_panel_accounts
from models.wa_accounts import PanelAccountRepository
from utils import fetch, redact
from utils.clock import utc_now

log = logging.getLogger(__name__)

HEALTH_CACHE_SECONDS = 30.0
MAX_TEXT = 4096          # a WhatsApp text message
MAX_CAPTION = 1024       # a media caption
REPLY_WINDOW = timedelta(hours=24)
FEATURE_OF = {"image": "file_url", "document": "file_url", "location": "location",
              "contact": "contact", "template": "template"}
SHORT_WAIT = 0.25        # a limiter slot this close is waited for in the thread
LOST_ANSWER_SLACK_SECONDS = 5.0   # the gateway's clock may lag ours this much
STATE_TTL_GOOD = 30.0    # an authorized instance's state is asked again after this long
STATE_TTL_BAD = 3.0      # a bad one sooner: sends resume within seconds of it coming back
PANEL_REFRESH_SECONDS = 2.0   # the panel's accounts are read again this often
PANEL_AFRESH_SECONDS = 0.5    # … and at most this often for a webhook naming an unknown one


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
        self._configured: dict[str, Account] = load_accounts(settings)
        self.panel_accounts = PanelAccountRepository(db)
        self._panel: tuple[float, dict[str, Account]] | None = None
        self._panel_lock = threading.Lock()
        # Secrets from WHATSAPP_NUMBERS_FILE never reach a log line either.
        redact.register(v for a in self._configured.values()
                        for v in (a.token, a.app_secret, a.verify_token, a.webhook_token, a.callback_secret) if v)
        # A call still waiting when its job's lease ends would be taken over by another
        # worker and sent again: a gateway gets at most half the lease to answer.
        timeout = min(settings.whatsapp_gateway_timeout_seconds, settings.job_lease_seconds / 2)
        self.providers: dict[str, Provider] = {
            "cloud": CloudApi(settings.whatsapp_cloud_graph_url, settings.whatsapp_cloud_api_version),
            "greenapi": GreenApi(TemplateTexts.load(settings.whatsapp_template_texts), read_timeout=timeout,
                                 guarded=fetch.for_settings(settings)),
            "devino": Devino(settings.public_url, read_timeout=timeout)}
        if provider is not None:
            self.providers[provider.name] = provider
        self.files = FileRepository(db)
        self.instances = InstanceRepository(db)
        self._states: dict[str, tuple[float, str]] = {}
        self._known_phones: set[str] = set()       # checked or written to: no checkWhatsapp again
        self.conversations = ConversationRepository(db)
        # Set by the container: ErrorReporter.report (#ERROR, deduplicated per cause).
        self.report = lambda cause, detail="": log.error("#ERROR %s: %s", cause, detail)
        self.capabilities = Capabilities(max_text=MAX_TEXT, attachments=("photo", "document"),
                                         files_per_message=1, reply_window=REPLY_WINDOW,
                                         read_receipts=True, delivery_statuses=True, templates=True)
        self.limits = SharedLimits(db)
        self.number_limit = per_second(settings.whatsapp_limit_per_number_per_s)
        self.customer_limit = Limit(1, settings.whatsapp_limit_customer_seconds)
        self.messages = MessageRepository(db)
        self.ingest: Ingest | None = None
        self._health: dict[str, tuple[float, Health]] = {}
        self._health_lock = threading.Lock()

    @staticmethod
    def configured_in(settings: Settings, db: Database) -> bool:
        """The settings describe an account, or an owner added one in the panel."""
        if settings.whatsapp_configured:
            return True
        try:
            return PanelAccountRepository(db).count() > 0
        except Exception as exc:
            from models.db import is_unavailable
            if getattr(exc, "args", (None,))[0] == 1146:   # not migrated yet: no table, no account
                return False
            if is_unavailable(exc):
                # The doors start and answer 503 while the database is away; accounts added
                # only in the panel are then served after the next restart.
                log.warning("WhatsApp: the database is away at start: accounts added in the panel are not read")
                return False
            raise

    @property
    def accounts(self) -> dict[str, Account]:
        """The shop's accounts by id: the settings' and WHATSAPP_NUMBERS_FILE's, then the
        ones added in the panel (read again every few seconds: a new one is used by every
        process without a restart)."""
        now = time.monotonic()
        cached = self._panel
        if cached is None or now - cached[0] >= PANEL_REFRESH_SECONDS:
            with self._panel_lock:
                cached = self._panel
                if cached is None or now - cached[0] >= PANEL_REFRESH_SECONDS:
                    cached = self._panel = (now, load_panel_accounts(self.settings, self.panel_accounts))
        merged = dict(self._configured)
        for account_id, account in cached[1].items():
            merged.setdefault(account_id, account)
        return merged

    def account_afresh(self, account_id: str) -> Account | None:
        """The account as the panel's table has it now (read again unless it was read in
        the last half second: strangers' guesses cannot make every request a query)."""
        cached = self._panel
        if cached is None or time.monotonic() - cached[0] >= PANEL_AFRESH_SECONDS:
            self._panel = None
        return self.accounts.get(account_id)

    def refresh_accounts(self) -> None:
        """Read the panel's accounts at the next look (one was added or removed)."""
        self._panel = None
        with self._health_lock:
            self._health.clear()

    @property
    def default_account(self) -> Account:
        return next(iter(self.accounts.values()))

    @property
    def provider(self) -> Provider:
        """The default account's provider."""
        return self.providers[self.default_account.provider]

    def provider_for(self, account: Account | str) -> Provider:
        if isinstance(account, str):
            account = self.account(account)
        return self.providers[account.provider]

    def window_closed(self, conversation: Conversation, now) -> bool:
        """WhatsApp's 24-hour rule binds the Business API (Cloud, Devino), not a linked
        account driven by a Green-API gateway."""
        account = self.accounts.get(conversation.account)
        if account is not None and self.providers[account.provider].reply_window is None:
            return False
        return super().window_closed(conversation, now)

    def account(self, account_id: str) -> Account:
        account = self.accounts.get(account_id)
        if account is None:
            raise Rejected(f"WhatsApp number {account_id} is not configured any more")
        return account

    # -- inbound ---------------------------------------------------------------------------

    def job_handlers(self, ingest: Ingest, intake: Intake) -> dict:
        from channels.whatsapp.gateways import PollNotifications
        self.ingest = ingest
        return {"wa_webhook": WebhookJob(self, ingest, LockManager.instance(self.db)),
                "wa_poll": PollNotifications(self, intake)}

    def periodic(self) -> tuple[tuple[str, str], ...]:
        from models.jobs import SEND, SYNC
        kinds = []
        if any(a.provider == "greenapi" and a.receive == "poll" for a in self.accounts.values()):
            kinds.append((SYNC, "wa_poll"))
        if any(a.provider == "devino" for a in self.accounts.values()):
            kinds.append((SEND, "wa_confirm"))   # services/gateways.py::ConfirmSweep
        return tuple(kinds)

    # -- limits ----------------------------------------------------------------------------

    def reserve(self, account: str, phone: str, method: str = "send") -> None:
        """A slot in the provider's limits for one call, or RetryLater (nothing failed):
        Meta's per number and per customer; a Green-API instance's per method (CHANNELS.md
        §4); Devino's per call (a batch is one call)."""
        provider = self.provider_for(account).name
        if provider == "greenapi":
            # A tenth under the documented rate: the gateway counts in its own window.
            limits = {bucket_name("wa", account, method): per_second(GREENAPI_LIMITS[method] * 0.9)}
        elif provider == "devino":
            limits = {bucket_name("wa", account): per_second(self.settings.whatsapp_devino_limit_per_s)}
        else:
            limits = {bucket_name("wa", account): self.number_limit,
                      bucket_name("wa", account, phone): self.customer_limit}
        wait = self.limits.reserve(limits)
        if 0 < wait <= SHORT_WAIT:
            # A slot a moment away is waited for here: handing the job back costs more.
            time.sleep(wait)
            wait = self.limits.reserve(limits)
        if wait > 0:
            raise RetryLater(f"WhatsApp {method} budget of {account} used up", wait)

    def throttled(self, account: str, phone: str, exc: Throttled, method: str = "send") -> None:
        """The provider said "too fast": hold that customer (Meta's 131056), the method's
        bucket (a gateway's 429) or the whole number back."""
        provider = self.provider_for(account).name
        if provider == "greenapi":
            name = bucket_name("wa", account, method)
        elif exc.code == 131056:
            name = bucket_name("wa", account, phone)
        else:
            name = bucket_name("wa", account)
        self.limits.block(name, exc.retry_after)

    # -- a gateway's instance state --------------------------------------------------------

    def instance_state(self, account: Account, *, fresh: bool = False) -> str | None:
        """A Green-API instance's state, asked at most every few seconds per process (and
        kept in `wa_instances` for every process and the admins)."""
        provider = self.providers[account.provider]
        if provider.name != "greenapi":
            return None
        now = time.monotonic()
        cached = self._states.get(account.id)
        ttl = STATE_TTL_GOOD if cached and cached[1] == "authorized" else STATE_TTL_BAD
        if cached is not None and not fresh and now - cached[0] < ttl:
            return cached[1]
        state = provider.state(account)
        self.note_state(account.id, state)
        return state

    def note_state(self, account_id: str, state: str) -> None:
        """An instance's state as seen (a call, a stateInstanceChanged notification): a bad
        one is reported once with #ERROR until it is authorized again."""
        self._states[account_id] = (time.monotonic(), state)
        transition = self.instances.record(account_id, state, utc_now())
        if transition.report:
            self.report(f"WhatsApp instance {account_id} is {state}",
                        "nothing can be sent until the gateway's instance is authorized again (scan its"
                        " QR code in the panel's Settings → WhatsApp, or in the gateway's console);"
                        " messages wait and go out then")
        elif transition.recovered:
            log.warning("WhatsApp instance %s is authorized again: waiting messages go out", account_id)

    def forget_state(self, account_id: str) -> None:
        """Ask the instance's state afresh at the next send (it was logged out or rebooted)."""
        self._states.pop(account_id, None)

    def _gate(self, account: Account) -> None:
        state = self.instance_state(account)
        if state is not None and state != "authorized":
            raise RetryLater(f"WhatsApp instance {account.id} is {state}: the message waits",
                             STATE_TTL_BAD)

    # -- outbound --------------------------------------------------------------------------

    def upload(self, conversation: Conversation, attachment: Attachment, data: bytes) -> list[dict]:
        account = self.account(conversation.account)
        kind = "image" if attachment.mime.startswith("image/") and attachment.mime != "image/webp" else "document"
        if account.provider != "cloud":
            # A gateway takes the file with the message itself (Green-API's upload) or by
            # URL (Devino): KeepDesk keeps it until then.
            file_id = self.files.add(account.id, attachment.name, attachment.mime, data)
            return [{"file_id": file_id, "kind": kind, "name": attachment.name, "mime": attachment.mime}]
        media_id = self.provider_for(account).upload_media(account, data, attachment.mime, attachment.name)
        return [{"id": media_id, "kind": kind, "name": attachment.name}]

    def keep_file(self, account_id: str, name: str, mime: str, data: bytes) -> int:
        return self.files.add(account_id, name, mime, data)

    def send(self, conversation: Conversation, text: str, files: list[dict]) -> Sent:
        if self.window_closed(conversation, utc_now()):
            raise WindowClosed("131047: more than 24 hours since the customer's last message")
        if files:
            file = files[0]
            if len(text) > MAX_CAPTION:
                raise Rejected("a caption is at most 1024 characters", max_length=MAX_CAPTION)
            body = {"media_id": file.get("id"), "file_id": file.get("file_id"), "caption": text,
                    "filename": file.get("name"), "mime": file.get("mime")}
            return self.send_to(conversation.account, conversation.external_id, file["kind"], body)
        return self.send_to(conversation.account, conversation.external_id, "text", {"text": text})

    def send_template(self, conversation: Conversation, template: dict) -> Sent:
        return self.send_to(conversation.account, conversation.external_id, "template", template)

    def send_to(self, account_id: str, phone: str, kind: str, body: dict, *, ref: str = "",
                unsure_since: datetime | None = None,
                attempting: Callable[[], object] | None = None) -> Sent:
        """One message to a phone on one of the shop's accounts, within its provider's
        limits: text {text}, image/document {media_id | file_id | link, caption, filename},
        template {name, language, params}, location {latitude, longitude, name, address},
        contact {…}. `ref`: what the provider says back in status callbacks (Devino).
        `unsure_since`: an earlier attempt began then and its outcome is unknown — on a
        gateway whose history tells, that history is asked first (never a blind resend).
        `attempting`: called just before the provider is asked to send — an attempt held
        back before it (the phone's check throttled, the instance not ready, no slot) left
        nothing unsure, so its retry does not ask the history."""
        account = self.account(account_id)
        provider = self.provider_for(account)
        provider.require(FEATURE_OF.get(kind, "text"))
        self._gate(account)
        if unsure_since is not None and account.provider == "greenapi":
            found = self._in_history(account, provider, phone, kind, body, unsure_since)
            if found is not None:
                return Sent(found)
        self._check_new_phone(account, provider, phone)
        self.reserve(account.id, phone)
        if attempting is not None:
            attempting()
        started = utc_now()
        try:
            if kind == "text":
                wamid = provider.send_text(account, phone, body["text"], ref=ref)
            elif kind in ("image", "document"):
                wamid = self._send_file(account, provider, phone, kind, body, ref)
            elif kind == "template":
                wamid = provider.send_template(
                    account, phone, body["name"],
                    body.get("language") or self.settings.whatsapp_template_language,
                    [str(p) for p in body.get("params") or []], ref=ref)
            elif kind == "location":
                wamid = provider.send_location(account, phone, float(body["latitude"]),
                                               float(body["longitude"]), body.get("name") or "",
                                               body.get("address") or "", ref=ref)
            elif kind == "contact":
                wamid = provider.send_contact(account, phone, body, ref=ref)
            else:
                raise Rejected(f"unknown WhatsApp message kind {kind!r}")
        except Throttled as exc:
            self.throttled(account.id, phone, exc)
            raise
        except NotAuthorized as exc:
            self.note_state(account.id, exc.state)
            raise RetryLater(f"WhatsApp instance {account.id} is {exc.state}: the message waits",
                             exc.retry_after) from exc
        except OutcomeUnknown:
            if account.provider != "greenapi":
                raise
            wamid = self._sent_after_all(account, provider, phone, kind, body, started)
        return Sent(wamid)

    def _sent_after_all(self, account: Account, provider: Provider, phone: str, kind: str, body: dict,
                        started) -> str:
        """A Green-API send whose answer was lost may have gone out: the chat's history
        (getChatHistory) says. Not there (or the history unreadable): the step is retried,
        and a retry that knows an attempt began (`unsure_since`) asks the history again
        before sending."""
        found = self._in_history(account, provider, phone, kind, body, started)
        if found is None:
            raise Unavailable("the answer to a send was lost and the chat's history does not show it: sent again")
        return found

    def _in_history(self, account: Account, provider: Provider, phone: str, kind: str, body: dict,
                    started) -> str | None:
        """The id of an outgoing message with this text (a file: any) that the gateway
        shows since `started`, or None."""
        if kind == "text":
            text = body.get("text")
        elif kind == "template":
            text = provider.templates.render(body["name"], body.get("language")
                                             or self.settings.whatsapp_template_language,
                                             [str(p) for p in body.get("params") or []])
        else:
            text = body.get("caption") or None
        since = started - timedelta(seconds=LOST_ANSWER_SLACK_SECONDS)
        # The history's own limit (1/s) is waited out here: giving up now would resend blindly.
        for _ in range(3):
            wait = self.limits.reserve({bucket_name("wa", account.id, "history"): per_second(GREENAPI_LIMITS["history"])})
            if wait <= 0:
                break
            time.sleep(min(wait, 1.0))
        items = provider.history(account, phone, 20)
        for item in reversed(items):
            if item.from_customer or item.at is None or item.at < since:
                continue
            if text is None or item.text == text:
                log.warning("WhatsApp %s: a send whose answer was lost went out after all (%s)", account.id, item.id)
                return item.id
        return None

    def _check_new_phone(self, account: Account, provider: Provider, phone: str) -> None:
        """Before the first message to a phone the shop never talked to, a gateway that can
        tell (Green-API's checkWhatsapp) is asked whether it has WhatsApp: a linked personal
        account writing to numbers without WhatsApp risks being banned. No WhatsApp: refused
        (the manager or 1C is told why), nothing sent."""
        if account.provider != "greenapi" or not provider.supports("check"):
            return
        if phone in self._known_phones or self.conversations.find(key_of(account.id, phone)) is not None:
            self._known_phones.add(phone)
            return
        self.reserve(account.id, phone, "check")
        try:
            exists = provider.check_phone(account, phone)
        except Throttled as exc:
            self.throttled(account.id, phone, exc, "check")
            raise
        if exists is False:
            raise Undeliverable(f"131026: {phone} has no WhatsApp (checked before the first message)")
        if exists:
            self._known_phones.add(phone)

    def _send_file(self, account: Account, provider: Provider, phone: str, kind: str, body: dict,
                   ref: str) -> str:
        caption = body.get("caption") or ""
        if body.get("file_id") and account.provider == "greenapi":
            kept = self.files.get(int(body["file_id"]))
            if kept is None:
                raise Rejected("the file to send is no longer kept")
            return provider.send_file(account, phone, kept.data, kept.name, kept.mime, caption)
        link = body.get("link")
        if body.get("file_id"):
            from channels.whatsapp.gateways import file_link
            link = file_link(self.settings, int(body["file_id"]))
        return provider.send_media(account, phone, kind, body.get("media_id"), link=link,
                                   caption=caption, filename=body.get("filename"), mime=body.get("mime"),
                                   ref=ref)

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

    def follow_number(self, old: ConversationKey, new: ConversationKey, phone: str) -> None:
        """A customer's new number: later messages from it, and answers, go on in the same
        conversation."""
        if self.conversations.follow(old, new, phone):
            self._known_phones.discard(old.external_id)
            log.info("WhatsApp conversation %s follows the customer's new number", old.external_id[-4:])

    def confirm_sent(self, received) -> None:
        """A status callback naming one of our messages by its reference (Devino's
        callbackData): a message whose batch's answer was lost is sent after all."""
        if not (received.ref or "").startswith("o") or not received.ref[1:].isdigit():
            return
        from models.gateways import BatchRepository
        confirmed = BatchRepository(self.db).confirmed(int(received.ref[1:]), received.status.external_id,
                                                       utc_now())
        if confirmed is not None:
            message, was_unknown = confirmed
            if was_unknown:
                log.warning("WhatsApp message %s of a batch whose answer was lost was sent after all (%s)",
                            message.id, received.status.external_id)
            body = message.body or {}
            text = body.get("text") or (f"📋 {body.get('name')}: " + ", ".join(map(str, body.get("params") or []))
                                        if message.kind == "template" else f"[{message.kind}]")
            self.record_shop_message(message.account, message.phone, received.status.external_id, text)

    def mark_read(self, conversation: Conversation) -> None:
        newest = self.messages.newest_from_customer(conversation.id)
        if newest is None:
            return  # nothing the customer wrote is known: nothing to mark
        account = self.account(conversation.account)
        provider = self.provider_for(account)
        if not provider.supports("read"):
            return  # the provider has no read receipts: nothing to mark (not a failure)
        self._gate(account)
        self.reserve(account.id, conversation.external_id, "read")
        provider.mark_read(account, newest, conversation.external_id)

    def fetch_media(self, conversation: Conversation, media_ref: str) -> Media:
        account = self.account(conversation.account)
        return self.provider_for(account).fetch_media(account, media_ref,
                                                      self.settings.whatsapp_media_max_bytes)

    def provider_history(self, account_id: str, phone: str, count: int) -> list:
        """The chat as the account's provider keeps it (Green-API's getChatHistory)."""
        account = self.account(account_id)
        provider = self.provider_for(account)
        provider.require("history")
        self._gate(account)
        self.reserve(account.id, phone, "history")
        return provider.history(account, phone, count)

    def provider_contacts(self, account_id: str) -> list[tuple[str, str]]:
        """The account's contacts as its provider keeps them (Green-API's getContacts)."""
        account = self.account(account_id)
        provider = self.provider_for(account)
        provider.require("contacts")
        self._gate(account)
        self.reserve(account.id, "", "contacts")
        return provider.contacts(account)

    def check_phone(self, account_id: str, phone: str) -> bool | None:
        """Has this phone WhatsApp? None: the account's provider cannot tell."""
        account = self.account(account_id)
        provider = self.provider_for(account)
        if not provider.supports("check"):
            return None
        self._gate(account)
        self.reserve(account.id, phone, "check")
        return provider.check_phone(account, phone)

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
                    cached = (now, self._account_health(account))
                    self._health[account.id] = cached
                results.append((account.id, cached[1]))
        bad = [f"{number}: {h.detail}" for number, h in results if not h.ok]
        return Health(not bad, "; ".join(bad)[:300])

    def _account_health(self, account: Account) -> Health:
        if account.provider == "greenapi":
            try:
                state = self.instance_state(account, fresh=True)
            except Exception as exc:  # any failure is "not healthy", with its reason
                return Health(False, str(exc)[:200])
            return Health(state == "authorized", "" if state == "authorized" else f"instance state {state}")
        return self.provider_for(account).health(account)


def history_text(outbound: Outbound) -> str:
    """What a manager's message reads as in the history."""
    if outbound.template:
        params = ", ".join(str(p) for p in outbound.template.get("params") or [])
        return f"📋 {outbound.template.get('name')}" + (f": {params}" if params else "")
    if outbound.attachment is not None:
        return "\n".join(filter(None, [f"📎 {outbound.attachment.name}", outbound.text]))
    return outbound.text


__all__ = ["WhatsApp", "Unavailable", "WHATSAPP"]
