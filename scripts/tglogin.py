"""`python -m bot tg-login NUMBER [--file PATH | --store]`: create a Telegram account's
session interactively (Telethon's sign-in: the code Telegram sends to the account, and
its cloud password when one is set).

* `--file PATH` (default `<TG_SESSIONS_DIR>/<NUMBER>`): a Telethon session file at
  PATH.session, 0600 in a 0700 folder — give its folder relative to TG_SESSIONS_DIR as
  `path_session` and its name as `name_session` to /planfix/clients (admin token);
* `--store`: the session is kept encrypted in MariaDB (TG_ACCOUNTS_KEY) for an account
  already started with /planfix/clients, which then restarts with it.

The sign-in itself talks to Telegram and is not run by the tests; what surrounds it
(where the session goes, sealing it, the account's restart) is.
"""
from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from channels.tgaccount.sessions import SUFFIX, e164, secure_folder
from config import ROOT, Settings
from models.db import Database
from models.tgaccounts import AccountRepository
from utils.private_files import private_files
from utils.secretbox import SecretBox


@dataclass(frozen=True)
class Destination:
    number: str
    file: str | None        # the session file's path without ".session"
    store: bool


def destination(number: str, *, file: str | None, store: bool, folder=None) -> Destination:
    digits = "".join(ch for ch in number if ch.isdigit())
    if not 5 <= len(digits) <= 15:
        raise ValueError("NUMBER must be the account's phone number, e.g. +380501234567")
    if store and file:
        raise ValueError("choose --file or --store, not both")
    if store:
        return Destination(digits, None, True)
    path = file or str(Path(folder or ROOT / "sessions") / digits)
    return Destination(digits, path.removesuffix(".session"), False)


def store_session(settings: Settings, db: Database, number: str, session: str) -> bool:
    """Keep the session sealed in the account's row and restart the account with it."""
    accounts = AccountRepository(db)
    row = accounts.get(number)
    if row is None:
        return False
    accounts.update(number, url_planfix=row.url_planfix, token_planfix_enc=row.token_planfix_enc,
                    name_session=row.name_session, path_session=row.path_session,
                    session_enc=SecretBox(settings.tg_accounts_key).seal(session))
    return True


def main(settings: Settings, target: Destination, *, ask: Callable[[str], str] = input) -> int:
    if not settings.telegram_api_id or not settings.telegram_api_hash:
        print("TELEGRAM_API_ID and TELEGRAM_API_HASH must be set (https://my.telegram.org).")
        return 2
    if target.store and not settings.tg_accounts_key:
        print("TG_ACCOUNTS_KEY must be set to keep a session in the database.")
        return 2
    from telethon.sessions import StringSession
    from telethon.sync import TelegramClient
    folder = os.path.dirname(os.path.abspath(target.file)) if target.file else None
    mine = [target.file + SUFFIX, target.file + SUFFIX + "-journal"] if target.file else []
    if folder:
        secure_folder(folder, files=mine)   # 0700, and a session file already there 0600
    with private_files():       # what Telethon writes (the session, its journal): 0600
        client = TelegramClient(StringSession() if target.store else target.file, settings.telegram_api_id,
                                settings.telegram_api_hash)
        try:
            return _signed_in(settings, target, client, folder, ask)
        finally:
            client.disconnect()
            if folder:
                secure_folder(folder, files=mine)


def _signed_in(settings: Settings, target: Destination, client, folder: str | None, ask) -> int:
    from telethon.sessions import StringSession
    client.start(phone=lambda: "+" + target.number, code_callback=lambda: ask("Code from Telegram: "),
                 password=lambda: getpass.getpass("Cloud password (2FA): "))
    me = client.get_me()
    print(f"Signed in as {me.first_name} (id {me.id}).")
    if e164(getattr(me, "phone", None)) != e164(target.number):
        print(f"This is not the account of {e164(target.number)}: the accounts process would refuse"
              " this session for that number. Sign in with the number's own account.")
        return 1
    if target.store:
        db = Database(settings, pool_size=1)
        try:
            if not store_session(settings, db, target.number, StringSession.save(client.session)):
                print(f"No account {target.number} yet: start it with POST /planfix/clients first.")
                return 1
        finally:
            db.close()
        print("The session is kept encrypted in the database; the account restarts with it.")
    else:
        print(f"Session file: {target.file}.session — path_session="
              f"{_relative(folder, settings.tg_sessions_dir)}, name_session={os.path.basename(target.file)}")
    return 0


def _relative(folder: str, sessions_dir) -> str:
    """The folder as /planfix/clients takes it (relative to TG_SESSIONS_DIR)."""
    relative = os.path.relpath(os.path.realpath(folder), os.path.realpath(sessions_dir))
    if relative.startswith(".."):
        return f"{folder} (outside TG_SESSIONS_DIR: move it there first)"
    return relative
