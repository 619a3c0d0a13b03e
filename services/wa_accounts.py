"""WhatsApp accounts in the panel (Settings → WhatsApp): an owner adds a Green-API-compatible
gateway account, links it by the gateway's QR code or by a code typed on the phone, logs
it out or reboots it; KeepDesk itself points the instance at its webhook (or leaves it to
be polled) with `setSettings`. The accounts of the settings and WHATSAPP_NUMBERS_FILE are
listed beside them, with their health.

* The apiUrl came from a form: it is checked by the guarded fetcher's policy before
  anything is stored (a loopback or private address is refused unless it is exactly an
  origin the operator trusts — FETCH_TRUSTED_ORIGINS or a configured gateway URL), and
  every call to it goes through the guarded fetcher's connections (`GreenApi(guarded=…)`).
* The token is checked by asking the instance's state (a wrong one stores nothing), then
  kept only sealed; it is never shown again, never logged (registered with the redaction).
* With PUBLIC_URL the instance notifies KeepDesk's webhook with a token KeepDesk made;
  without it the instance keeps notifications in its queue and the channel polls them.
  Either way the notifications the channel reads are turned on (incoming, outgoing
  messages and statuses, state changes).
* Each gateway call here answers a click: all of them are idempotent on the gateway's side
  (the same settings again, the state, a QR code, a logout of a logged-out instance).
"""
from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass

from channels.base import Health, Unavailable
from channels.whatsapp.accounts import Account, AccountsError, load_accounts
from channels.whatsapp.errors import BadToken, ChannelError
from channels.whatsapp.gateways import GREENAPI_PATH
from channels.whatsapp.panel_accounts import account_of, box_for
from channels.whatsapp.providers.greenapi import GreenApi
from config import Settings
from models.db import Database
from models.jobs import SYNC
from models.wa_accounts import PanelAccountRepository, PanelAccountRow
from utils import fetch, redact
from utils.clock import utc_now
from utils.fetch import FetchError

log = logging.getLogger(__name__)

_INSTANCE = re.compile(r"^\d{5,32}$")
_TOKEN = re.compile(r"^[\x21-\x7e]{8,256}$")
_PHONE = re.compile(r"^\d{8,15}$")
PAGE_TIMEOUT = 8.0
NOTIFICATIONS = {"incomingWebhook": "yes", "outgoingWebhook": "yes", "outgoingMessageWebhook": "yes",
                 "outgoingAPIMessageWebhook": "yes", "stateWebhook": "yes"}


class AccountProblem(Exception):
    """What the owner asked was not done; `str()` says why (no secret in it)."""


@dataclass(frozen=True)
class Listed:
    id: str
    provider: str          # cloud | greenapi | devino
    label: str
    source: str            # settings | panel
    ok: bool
    detail: str            # the health's words, or the instance's state
    receive: str = ""
    url: str = ""
    configured: bool = False
    configure_error: str | None = None


@dataclass(frozen=True)
class Link:
    """What the linking page shows: the instance's state and, while it is not authorized,
    the QR code to scan (a base64 PNG) or why there is none."""
    state: str
    qr: str | None = None
    note: str = ""


class WhatsAppAccounts:
    def __init__(self, settings: Settings, db: Database, channel=None, jobs=None) -> None:
        self.settings = settings
        self.jobs = jobs                    # to start polling at once (else the workers' minute)
        self.repository = PanelAccountRepository(db)
        self.channel = channel              # the running WhatsApp channel, if this process has one
        self.fetcher = fetch.for_settings(settings)
        # A page waits for these answers: a gateway that does not answer soon is "unreachable".
        self.gateway = GreenApi(read_timeout=PAGE_TIMEOUT, guarded=self.fetcher)

    # -- the list ---------------------------------------------------------------------------

    def listing(self) -> list[Listed]:
        shown: list[Listed] = []
        try:
            configured = load_accounts(self.settings)
        except AccountsError as exc:
            configured = {}
            shown.append(Listed("—", "file", "WHATSAPP_NUMBERS_FILE", "settings", False, str(exc)))
        for account in configured.values():
            health = self._health(account)
            shown.append(Listed(account.id, account.provider, account.label, "settings", health.ok,
                                health.detail or "ok", account.receive if account.provider == "greenapi" else "",
                                account.url))
        for row in self.repository.all():
            if row.instance in configured:
                continue
            try:
                account = self._account(row)
                state = self._state(account)
                ok, detail = state == "authorized", state
            except AccountProblem as exc:
                ok, detail = False, str(exc)
            shown.append(Listed(row.instance, "greenapi", row.label, "panel", ok, detail, row.receive,
                                row.api_url, row.configured_at is not None, row.configure_error))
        return shown

    def _health(self, account: Account) -> Health:
        try:
            if account.provider == "greenapi":
                state = self._state(account)
                return Health(state == "authorized", "" if state == "authorized" else f"instance state {state}")
            if self.channel is not None:
                return self.channel.provider_for(account).health(account)
            return Health(False, "not running in this process")
        except AccountProblem as exc:
            return Health(False, str(exc))
        except Exception as exc:  # a page must show even when a provider does not answer
            return Health(False, f"{type(exc).__name__}")

    # -- adding -----------------------------------------------------------------------------

    def add(self, api_url: str, instance: str, token: str, *, style: str = "path",
            media_url: str = "", label: str = "", by: str = "") -> PanelAccountRow:
        api_url, media_url = _url(api_url, "apiUrl"), _url(media_url, "mediaUrl") if media_url else ""
        instance = (instance or "").strip()
        token = (token or "").strip()
        if not _INSTANCE.match(instance):
            raise AccountProblem("idInstance is the instance's number (digits only)")
        if not _TOKEN.match(token):
            raise AccountProblem("apiTokenInstance is 8-256 visible characters")
        if style not in ("path", "bearer"):
            raise AccountProblem("the URL style is path or bearer")
        for address in filter(None, (api_url, media_url)):
            try:
                self.fetcher.policy.check(address)
            except FetchError as exc:
                raise AccountProblem(f"the gateway's address is refused: {exc}") from None
        if instance in _configured_ids(self.settings) or self.repository.get(instance) is not None:
            raise AccountProblem(f"the instance {instance} is already one of the shop's accounts")
        redact.register([token])
        receive = "webhook" if self.settings.public_url else "poll"
        webhook_token = secrets.token_urlsafe(32) if receive == "webhook" else ""
        trial = Account(instance, token, provider="greenapi", url=api_url, media_url=media_url or api_url,
                        style=style, webhook_token=webhook_token, receive=receive, source="panel")
        self._state(trial)   # a wrong token or instance: refused here, nothing stored
        box = box_for(self.settings)
        if not self.repository.add(instance, api_url, media_url or api_url, style, box.seal(token),
                                   box.seal(webhook_token) if webhook_token else None, receive,
                                   (label or "").strip()[:64], by[:64]):
            raise AccountProblem(f"the instance {instance} is already one of the shop's accounts")
        log.info("WhatsApp: %s added the gateway instance %s (%s)", by or "?", instance, receive)
        self.configure(instance)
        if self.channel is not None:
            self.channel.refresh_accounts()
            if receive == "poll" and self.jobs is not None:
                # The workers would schedule it within a minute; a new account need not wait.
                self.jobs.ensure_periodic(SYNC, "wa_poll")
        return self.repository.get(instance)

    def configure(self, instance: str) -> str | None:
        """Point the instance at KeepDesk (setSettings); None when done, else why not (kept
        on the account and shown; the owner may press Set up again)."""
        row = self._switched(self._row(instance))
        account = self._account(row)
        values = dict(NOTIFICATIONS)
        if account.receive == "webhook":
            values.update(webhookUrl=webhook_url(self.settings), webhookUrlToken=account.webhook_token)
        else:
            values.update(webhookUrl="", webhookUrlToken="")
        try:
            saved = self.gateway.set_settings(account, values)
            error = None if saved else "the gateway did not save the settings"
        except (ChannelError, Unavailable) as exc:
            error = str(exc)[:300]
        self.repository.configured(instance, utc_now(), error)
        if error:
            log.warning("WhatsApp instance %s: setSettings failed: %s", instance, error)
        return error

    def _switched(self, row: PanelAccountRow) -> PanelAccountRow:
        """PUBLIC_URL set or removed since the account was added: it now receives by webhook
        (with a new token) or by polling, and the running channel follows."""
        wanted = "webhook" if self.settings.public_url else "poll"
        if row.receive == wanted:
            return row
        sealed = box_for(self.settings).seal(secrets.token_urlsafe(32)) if wanted == "webhook" else None
        self.repository.set_receive(row.instance, wanted, sealed)
        log.info("WhatsApp instance %s now receives by %s", row.instance, wanted)
        if self.channel is not None:
            self.channel.refresh_accounts()
            if wanted == "poll" and self.jobs is not None:
                self.jobs.ensure_periodic(SYNC, "wa_poll")
        return self.repository.get(row.instance)

    def remove(self, instance: str) -> bool:
        removed = self.repository.remove(instance)
        if removed and self.channel is not None:
            self.channel.refresh_accounts()
        return removed

    # -- linking ----------------------------------------------------------------------------

    def link(self, instance: str) -> Link:
        account = self._account(self._row(instance))
        state = self._state(account)
        if state == "authorized":
            return Link(state)
        if state != "notAuthorized":
            return Link(state, note="the instance is not ready for linking yet; wait or reboot it")
        try:
            kind, message = self.gateway.qr(account)
        except (ChannelError, Unavailable) as exc:
            return Link(state, note=_short(exc))
        if kind == "qrCode":
            return Link(state, qr=message)
        if kind == "alreadyLogged":
            return Link("authorized")
        return Link(state, note=message or "the gateway gave no QR code")

    def phone_code(self, instance: str, phone: str) -> str:
        phone = re.sub(r"[\s()+-]", "", phone or "")
        if not _PHONE.match(phone):
            raise AccountProblem("the phone number in international format, digits only (e.g. 380671234567)")
        account = self._account(self._row(instance))
        try:
            code = self.gateway.authorization_code(account, phone)
        except (ChannelError, Unavailable) as exc:
            raise AccountProblem(_short(exc)) from None
        if code is None:
            raise AccountProblem("the gateway gave no code (is the instance logged out already?)")
        return code

    def logout(self, instance: str) -> bool:
        return self._do(instance, self.gateway.logout)

    def reboot(self, instance: str) -> bool:
        return self._do(instance, self.gateway.reboot)

    def _do(self, instance: str, action) -> bool:
        account = self._account(self._row(instance))
        try:
            done = action(account)
        except (ChannelError, Unavailable) as exc:
            raise AccountProblem(_short(exc)) from None
        if self.channel is not None:
            # Sends must see the new state at once, not in half a minute.
            self.channel.forget_state(instance)
        return done

    # -- helpers ----------------------------------------------------------------------------

    def _row(self, instance: str) -> PanelAccountRow:
        row = self.repository.get(instance) if _INSTANCE.match(instance or "") else None
        if row is None:
            raise AccountProblem("no such account added in the panel")
        return row

    def _account(self, row: PanelAccountRow) -> Account:
        try:
            return account_of(row, box_for(self.settings))
        except ValueError:
            raise AccountProblem("its token cannot be opened (SECRET_KEY changed?): remove it and add it again") from None

    def _state(self, account: Account) -> str:
        try:
            state = self.gateway.state(account)
        except BadToken as exc:
            raise AccountProblem(f"the gateway refused the instance or its token (HTTP {exc.code})") from None
        except (ChannelError, Unavailable) as exc:
            raise AccountProblem(_short(exc)) from None
        if self.channel is not None and account.id in self.channel.accounts:
            self.channel.note_state(account.id, state)
        return state or "unknown"


def webhook_url(settings: Settings) -> str:
    return f"{(settings.public_url or '').rstrip('/')}{GREENAPI_PATH}"


def _configured_ids(settings: Settings) -> set[str]:
    try:
        return set(load_accounts(settings))
    except AccountsError:
        return set()


def _url(value: str, name: str) -> str:
    value = (value or "").strip().rstrip("/")
    if not re.match(r"^https?://[^\s/?#@]+(/[^\s?#]*)?$", value) or len(value) > 500:
        raise AccountProblem(f"{name} is the gateway's http(s) address, e.g. https://1101.api.green-api.com")
    return value


def _short(exc: Exception) -> str:
    return str(exc)[:200]
