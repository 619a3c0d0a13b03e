"""The doors: what outside systems reach over HTTP. Each checks a request at the border,
stores it durably (the intake: `models/inbox.py`) and only then answers.

* `webhook_server.py` — the Telegram door (`POST /telegram/<secret path>`);
* `crm_listener.py` — the integrations door: every channel's webhooks (KeepingCRM's
  signal, and later WhatsApp, Planfix) and the business APIs (1C);
* `doors/web.py` — what they share: health, metrics, JSON errors, body parsing.
"""
