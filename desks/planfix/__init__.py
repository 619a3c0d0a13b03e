"""Planfix as an external desk (CHANNELS.md §5): the conversations of the shop's Telegram
accounts relayed to Planfix's chat API and back.

* `clients.py` — the accounts management endpoint `/planfix/clients`;
* `webhook.py` — Planfix's calls to us, `POST /planfix/webhook`;
* `relay.py` — the durable steps: `newMessage` / `messageStatus` to Planfix, and the
  delivery of Planfix's messages through an account;
* `wire.py` — Planfix's wire format.
The account side is the `tgaccount` channel (`channels/tgaccount/`); which desk a
conversation goes to is `services/tgrelay.py`'s routing.
"""
from __future__ import annotations

from config import Settings
from desks.planfix import clients, webhook


def register(app, settings: Settings, db, bell) -> None:
    """The Planfix routes on the integrations door (only with the relay configured)."""
    clients.register(app, settings, db)
    webhook.register(app, settings, db, bell)
