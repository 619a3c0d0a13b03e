"""Telegram user accounts: customers writing to a shop employee's own Telegram account
(CHANNELS.md §5). A conversation is (`tgaccount`, the account's number, the customer's
Telegram user id).

* inbound: the accounts process (`scripts/accounts.py`, `python -m bot accounts`) runs
  every account's session behind `account.AccountClient` (Telethon, or the sandbox's
  emulator) and stores each event as a durable job (`tga_message`, `tga_read`); the
  relay (`services/tgrelay.py`) hands them to the desk(s) routing names;
* outbound: `send`, `mark_read` through the accounts process (`control.py`), at most
  once per reference;
* health: how many of the started accounts are online.
"""
from __future__ import annotations

import secrets

from channels.base import Capabilities, Channel, Health, Rejected, Sent, Unavailable
from channels.tgaccount.account import AccountError, OutFile
from channels.tgaccount.control import AccountsControl
from config import Settings
from models.conversations import Conversation
from models.db import Database
from models.outbound import Attachment
from models.tgaccounts import (DESK, ONLINE, RUNNING, AccountHostRepository, AccountRepository,
                               MediaRepository)
from utils.secretbox import SecretBox

TGACCOUNT = "tgaccount"
MAX_TEXT = 4096


class TgAccount(Channel):
    name = TGACCOUNT
    label = "Telegram"
    icon = "✈️"

    @staticmethod
    def configured(settings: Settings) -> bool:
        return settings.planfix_configured

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.box = SecretBox(settings.tg_accounts_key)
        self.control = AccountsControl(AccountHostRepository(db), self.box)
        self.media = MediaRepository(db)
        self.accounts = AccountRepository(db)
        self.capabilities = Capabilities(max_text=MAX_TEXT, attachments=("photo", "document"),
                                         read_receipts=True, delivery_statuses=True)

    def upload(self, conversation: Conversation, attachment: Attachment, data: bytes) -> list[dict]:
        # Kept in MariaDB until sent (a reference, not the bytes, goes into the outbound row).
        media_id = self.media.store(conversation.account, -secrets.randbelow(2**62) - 1,
                                    attachment.name, attachment.mime, data)
        return [{"media_id": media_id, "name": attachment.name, "mime": attachment.mime}]

    def send(self, conversation: Conversation, text: str, files: list[dict]) -> Sent:
        out_files = []
        for item in files:
            stored = self.media.get(int(item["media_id"]))
            if stored is None:
                raise Rejected("the file to send is gone")
            out_files.append(OutFile(stored.name, stored.mime, stored.data))
        try:
            message_id = self.control.send(conversation.account, int(conversation.external_id), text,
                                           out_files, ref=f"desk:{secrets.token_hex(12)}", origin=DESK)
        except AccountError as exc:
            if exc.transient:
                raise Unavailable(str(exc)) from exc
            raise Rejected(getattr(exc, "reason", str(exc))) from exc
        return Sent(str(message_id))

    def mark_read(self, conversation: Conversation) -> None:
        try:
            self.control.mark_read(conversation.account, int(conversation.external_id))
        except AccountError as exc:
            if exc.transient:
                raise Unavailable(str(exc)) from exc
            raise Rejected(str(exc)) from exc

    def health(self) -> Health:
        started = [a for a in self.accounts.all() if a.desired == RUNNING]
        online = [a for a in started if a.status == ONLINE and a.status_generation == a.generation]
        detail = f"{len(online)}/{len(started)} accounts online"
        problems = [f"{a.number}: {a.last_error}" for a in started if a not in online and a.last_error]
        return Health(len(online) == len(started), "; ".join([detail, *problems])[:500])
