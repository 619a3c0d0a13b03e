"""The Green-API-compatible accounts an owner added in the panel (models/wa_accounts.py),
as the channel's `Account`s: their secrets opened with a key derived from SECRET_KEY
(utils/keys.py, WA_ACCOUNTS) and registered with the log redaction. They sit beside the
accounts of the settings and WHATSAPP_NUMBERS_FILE (which win on the same id)."""
from __future__ import annotations

import base64
import logging

from channels.whatsapp.accounts import Account
from config import Settings
from models.wa_accounts import PanelAccountRepository, PanelAccountRow
from utils import keys, redact
from utils.secretbox import SecretBox

log = logging.getLogger(__name__)


def box_for(settings: Settings) -> SecretBox:
    """The box that seals the panel accounts' tokens (one key for every process)."""
    return SecretBox(base64.urlsafe_b64encode(keys.derive(settings, keys.WA_ACCOUNTS)).decode("ascii"))


def account_of(row: PanelAccountRow, box: SecretBox) -> Account:
    token = box.open(row.token_sealed)
    webhook_token = box.open(row.webhook_sealed) if row.webhook_sealed else ""
    redact.register(v for v in (token, webhook_token) if v)
    return Account(row.instance, token, label=row.label, provider="greenapi", url=row.api_url,
                   media_url=row.media_url or row.api_url, style=row.style,
                   webhook_token=webhook_token, receive=row.receive, source="panel")


def load_panel_accounts(settings: Settings, repository: PanelAccountRepository,
                        box: SecretBox | None = None) -> dict[str, Account]:
    """Every panel account by id; one whose secret no longer opens (SECRET_KEY changed) is
    left out with a warning — the panel shows it and says so."""
    rows = repository.all()
    if not rows:
        return {}
    box = box or box_for(settings)
    found: dict[str, Account] = {}
    for row in rows:
        try:
            found[row.instance] = account_of(row, box)
        except ValueError:
            log.warning("WhatsApp account %s added in the panel cannot be opened (SECRET_KEY changed?)",
                        row.instance)
    return found
