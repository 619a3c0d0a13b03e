"""The shop's WhatsApp accounts (CHANNELS.md §3, §4), each with its provider: one from the
settings (of WHATSAPP_PROVIDER's family — `cloud`, `greenapi` or `devino` — by default the
one family whose settings are set), more from WHATSAPP_NUMBERS_FILE — a JSON list, one
object per account, its `provider` defaulting to WHATSAPP_PROVIDER:

    [{"phone_number_id": "1234567890", "token_env": "WA_TOKEN", "label": "Shop Kyiv"},
     {"provider": "greenapi", "id": "1101000001", "token_env": "GA_TOKEN",
      "url": "https://1101.api.green-api.com", "style": "path", "receive": "poll"},
     {"provider": "devino", "from": "380441234567", "key_env": "DEVINO_KEY"}]

* cloud: `phone_number_id`, `token`, `app_secret`, `verify_token`, `label` — secrets left
  out use the WHATSAPP_CLOUD_* settings' (one Meta app serving several numbers);
* greenapi: `id` (idInstance), `token` (apiTokenInstance), `url` (apiUrl), `media_url`,
  `style` (path | bearer), `webhook_token` (required with `receive` webhook, the
  default), `receive` (webhook | poll), `label`;
* devino: `from` (the sender Devino gave the shop), `key` (the value after `Key `), `url`,
  `callback_secret` (its callbacks' secret path part), `label`.

Any secret may be given as `<name>_env`: the name of an environment variable holding it
(keep secrets out of the file). A conversation's account is the account's `id`: the Cloud
API's phone_number_id, Green-API's idInstance, Devino's sender.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from config import Settings

_ID = re.compile(r"^\d{5,32}$")
_SENDER = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SECRET_PATH = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
PROVIDERS = ("cloud", "greenapi", "devino")


class AccountsError(ValueError):
    """WHATSAPP_NUMBERS_FILE cannot be used; the message says why."""


@dataclass(frozen=True)
class Account:
    phone_number_id: str                  # the account's id (see `id`)
    token: str = field(repr=False)        # Bearer token / apiTokenInstance / Devino key
    app_secret: str = field(default="", repr=False)
    verify_token: str = field(default="", repr=False)
    label: str = ""
    provider: str = "cloud"
    url: str = ""                         # Green-API apiUrl, Devino's base URL
    media_url: str = ""                   # Green-API's upload host
    style: str = "path"                   # Green-API: path | bearer
    webhook_token: str = field(default="", repr=False)   # Green-API webhook's Authorization
    receive: str = "webhook"              # Green-API: webhook | poll
    callback_secret: str = field(default="", repr=False)  # Devino's callback path part
    # Where it was configured: "settings" (the settings or WHATSAPP_NUMBERS_FILE) or "panel"
    # (an owner typed its URL: every call to it goes through the guarded fetcher).
    source: str = "settings"

    @property
    def id(self) -> str:
        return self.phone_number_id


def load_accounts(settings: Settings) -> dict[str, Account]:
    """The configured accounts by id (the settings' account first)."""
    accounts: dict[str, Account] = {}
    own = settings_account(settings)
    if own is not None:
        accounts[own.id] = own
    if settings.whatsapp_numbers_file:
        for entry in _read(Path(settings.whatsapp_numbers_file)):
            account = _account(entry, settings)
            accounts.setdefault(account.id, account)
    return accounts


def settings_account(settings: Settings) -> Account | None:
    provider = settings.whatsapp_settings_provider
    if provider == "cloud":
        return Account(settings.whatsapp_cloud_phone_number_id, settings.whatsapp_cloud_token,
                       settings.whatsapp_cloud_app_secret or "", settings.whatsapp_cloud_verify_token or "")
    if provider == "greenapi":
        url = settings.whatsapp_greenapi_url or ""
        return Account(settings.whatsapp_greenapi_id, settings.whatsapp_greenapi_token,
                       provider="greenapi", url=url,
                       media_url=settings.whatsapp_greenapi_media_url or url,
                       style=settings.whatsapp_greenapi_style,
                       webhook_token=settings.whatsapp_greenapi_webhook_token or "",
                       receive=settings.whatsapp_greenapi_receive)
    if provider == "devino":
        return Account(settings.whatsapp_devino_from, settings.whatsapp_devino_key, provider="devino",
                       url=settings.whatsapp_devino_url,
                       callback_secret=settings.whatsapp_devino_callback_secret or "")
    return None


def _read(path: Path) -> list:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AccountsError(f"WHATSAPP_NUMBERS_FILE {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise AccountsError(f"WHATSAPP_NUMBERS_FILE {path}: not JSON ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise AccountsError(f"WHATSAPP_NUMBERS_FILE {path}: expected a JSON list of objects")
    return data


def _secret(entry: dict, name: str, fallback: str | None) -> str:
    if isinstance(entry.get(name), str) and entry[name]:
        return entry[name]
    variable = entry.get(f"{name}_env")
    if isinstance(variable, str) and variable:
        value = os.environ.get(variable, "")
        if not value:
            raise AccountsError(f"WHATSAPP_NUMBERS_FILE: environment variable {variable} is empty")
        return value
    return fallback or ""


def _url(entry: dict, name: str, fallback: str | None, who: str) -> str:
    value = entry.get(name) or fallback or ""
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value):
        raise AccountsError(f"WHATSAPP_NUMBERS_FILE: {who} needs an http(s) `{name}`")
    return value.rstrip("/")


def _choice(entry: dict, name: str, choices: tuple[str, ...], default: str, who: str) -> str:
    value = entry.get(name) or default
    if value not in choices:
        raise AccountsError(f"WHATSAPP_NUMBERS_FILE: {who}: `{name}` is one of {', '.join(choices)}")
    return value


def _account(entry: dict, settings: Settings) -> Account:
    provider = entry.get("provider") or settings.whatsapp_default_provider
    if provider not in PROVIDERS:
        raise AccountsError(f"WHATSAPP_NUMBERS_FILE: provider is one of {', '.join(PROVIDERS)}")
    label = str(entry.get("label") or "")[:64]
    if provider == "greenapi":
        instance = str(entry.get("id") or entry.get("idInstance") or "")
        if not _ID.match(instance):
            raise AccountsError("WHATSAPP_NUMBERS_FILE: every greenapi entry needs an `id` (idInstance, digits)")
        who = f"instance {instance}"
        token = _secret(entry, "token", None)
        if not token:
            raise AccountsError(f"WHATSAPP_NUMBERS_FILE: {who} has no token")
        url = _url(entry, "url", settings.whatsapp_greenapi_url, who)
        receive = _choice(entry, "receive", ("webhook", "poll"), "webhook", who)
        webhook_token = _secret(entry, "webhook_token", None)
        if receive == "webhook" and not webhook_token:
            # Anyone who knows the instance id could post customer messages otherwise.
            raise AccountsError(f"WHATSAPP_NUMBERS_FILE: {who} receives by webhook and needs a"
                                " `webhook_token` (or `webhook_token_env`), or `receive`: `poll`")
        return Account(instance, token, label=label, provider="greenapi", url=url,
                       media_url=_url(entry, "media_url", url, who),
                       style=_choice(entry, "style", ("path", "bearer"), "path", who),
                       webhook_token=webhook_token, receive=receive)
    if provider == "devino":
        sender = str(entry.get("from") or "").lstrip("+")
        if not _SENDER.match(sender):
            raise AccountsError("WHATSAPP_NUMBERS_FILE: every devino entry needs a `from` (its sender)")
        who = f"Devino sender {sender}"
        key = _secret(entry, "key", settings.whatsapp_devino_key)
        secret = _secret(entry, "callback_secret", settings.whatsapp_devino_callback_secret)
        if not key or not _SECRET_PATH.match(secret or ""):
            raise AccountsError(f"WHATSAPP_NUMBERS_FILE: {who} needs a `key` and a `callback_secret`"
                                " (8-128 of A-Z a-z 0-9 _ -)")
        return Account(sender, key, label=label, provider="devino",
                       url=_url(entry, "url", settings.whatsapp_devino_url, who), callback_secret=secret)
    number = str(entry.get("phone_number_id", ""))
    if not _ID.match(number):
        raise AccountsError("WHATSAPP_NUMBERS_FILE: every entry needs a phone_number_id (digits)")
    token = _secret(entry, "token", settings.whatsapp_cloud_token)
    app_secret = _secret(entry, "app_secret", settings.whatsapp_cloud_app_secret)
    if not token or not app_secret:
        raise AccountsError(f"WHATSAPP_NUMBERS_FILE: number {number} has no token or app_secret")
    return Account(number, token, app_secret,
                   _secret(entry, "verify_token", settings.whatsapp_cloud_verify_token), label)
