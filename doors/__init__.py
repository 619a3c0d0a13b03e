"""The doors: what outside systems reach over HTTP. Each checks a request at the border,
stores it durably (the intake: `models/inbox.py`) and only then answers.

* `webhook_server.py` — the Telegram door (`POST /telegram/<secret path>`);
* `crm_listener.py` — the integrations door: every channel's webhooks (KeepingCRM's
  signal, WhatsApp and its gateways), the Planfix desk and the business APIs (1C);
* `doors/panel/` — the admin panel;
* `doors/web.py` — what they share: health, metrics, JSON errors, the lazy `app`.

Every route lives in a Flask `Blueprint` of module-level views, next to what it serves
(`channels/keepingcrm/listener.py`, `channels/whatsapp/webhook.py` and `gateways.py`,
`desks/planfix/clients.py` and `webhook.py`, `apis/onec/compat.py` and `v1.py`,
`doors/media.py`, `doors/web.py`'s base routes, `doors/panel/pages.py`). A door's whole
URL map is its `BLUEPRINTS` table: rows of `(name, blueprint, bind)`, mounted in order by
`doors.web.serve`; `bind(parts)` makes the blueprint's context from the door's parts (its
settings, database, intake, channels…), or gives None: not served with these settings.

How a view reaches what it needs — one way for all of them: `utils.http.mount(app, name,
blueprint, context)` registers the blueprint under `name` and keeps its context as
`app.extensions["keepdesk.<name>"]`; a view reads it with `utils.http.bound()` (the
context of the blueprint serving this request). Nothing is a closure over a door's
objects, so the same module-level blueprint serves every app a test or a process builds.
"""
