"""The shop's WhatsApp numbers (CHANNELS.md §3): one from the WHATSAPP_CLOUD_* settings,
more from WHATSAPP_NUMBERS_FILE — a JSON list, one object per number:

    [{"phone_number_id": "1234567890", "token": "EAAG…", "app_secret": "…",
      "verify_token": "…", "label": "Shop Kyiv"}]

`token`, `app_secret` and `verify_token` may be left out to use the settings' values (one
Meta app serving several numbers), or given as `token_env` / `app_secret_env` /
`verify_token_env`: the name of an environment variable holding it.
A conversation's account is its number's phone_number_id.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from config import Settings

_ID = re.compile(r"^\d{5,32}$")


class AccountsError(ValueError):
    """WHATSAPP_NUMBERS_FILE cannot be used; the message says why."""


@dataclass(frozen=True)
class Account:
    phone_number_id: str
    token: str = field(repr=False)
    app_secret: str = field(repr=False)
    verify_token: str = field(default="", repr=False)
    label: str = ""

    @property
    def id(self) -> str:
        return self.phone_number_id


def load_accounts(settings: Settings) -> dict[str, Account]:
    """The configured numbers by phone_number_id (the settings' number first)."""
    accounts: dict[str, Account] = {}
    if settings.whatsapp_cloud_phone_number_id and settings.whatsapp_cloud_token:
        accounts[settings.whatsapp_cloud_phone_number_id] = Account(
            settings.whatsapp_cloud_phone_number_id, settings.whatsapp_cloud_token,
            settings.whatsapp_cloud_app_secret or "", settings.whatsapp_cloud_verify_token or "")
    if settings.whatsapp_numbers_file:
        for entry in _read(Path(settings.whatsapp_numbers_file)):
            account = _account(entry, settings)
            accounts.setdefault(account.phone_number_id, account)
    return accounts


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


def _account(entry: dict, settings: Settings) -> Account:
    number = str(entry.get("phone_number_id", ""))
    if not _ID.match(number):
        raise AccountsError("WHATSAPP_NUMBERS_FILE: every entry needs a phone_number_id (digits)")
    token = _secret(entry, "token", settings.whatsapp_cloud_token)
    app_secret = _secret(entry, "app_secret", settings.whatsapp_cloud_app_secret)
    if not token or not app_secret:
        raise AccountsError(f"WHATSAPP_NUMBERS_FILE: number {number} has no token or app_secret")
    return Account(number, token, app_secret,
                   _secret(entry, "verify_token", settings.whatsapp_cloud_verify_token),
                   str(entry.get("label") or "")[:64])
