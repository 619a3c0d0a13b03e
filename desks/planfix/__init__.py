"""Planfix as an external desk (CHANNELS.md §5): the conversations of the shop's Telegram
accounts relayed to Planfix's chat API and back.

* `clients.py` — the accounts management endpoint `/planfix/clients` (its blueprint
  `planfix_clients`);
* `webhook.py` — Planfix's calls to us, `POST /planfix/webhook` (`planfix_webhook`);
* `relay.py` — the durable steps: `newMessage` / `messageStatus` to Planfix, and the
  delivery of Planfix's messages through an account;
* `wire.py` — Planfix's wire format.
The account side is the `tgaccount` channel (`channels/tgaccount/`); which desk a
conversation goes to is `services/tgrelay.py`'s routing. The integrations door
(crm_listener.py) serves the two blueprints, and the signed media links (doors/media.py),
when the relay is configured.
"""
