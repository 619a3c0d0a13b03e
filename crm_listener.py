"""The integrations door: every channel's webhooks and signals, and the business APIs.

Each channel registers its routes here (`channels/<name>/`): KeepingCRM's signal
`POST /messages/<LINK_KEY>`, WhatsApp's `GET|POST /whatsapp/cloud`; and the business
APIs (`apis/`): the 1C routes and `/api/v1/`. Whatever arrives is checked at the border, stored
durably as work (the intake), and only then answered. `GET /healthz` adds each channel's
health. `gunicorn crm_listener:app` serves it (the name is kept from when it served the
CRM alone).
"""
from __future__ import annotations

import logging

from flask import Flask

from apis import onec
from channels import build_channels
from config import Settings
from desks.planfix import register as register_planfix
from doors.media import register as register_media
from doors.web import base_app, lazy_app
from models.bells import BellRegistry
from models.db import Database
from models.inbox import Inbox
from models.jobs import SYNC, JobQueue
from models.tgaccounts import MediaRepository
from utils import keys
from utils.bell import BellRinger

log = logging.getLogger(__name__)


class DoorIntake:
    """A channel's way in: store the work, then wake a worker (unless one is already on
    its way to the same work)."""

    def __init__(self, inbox: Inbox, bell) -> None:
        self.inbox = inbox
        self.bell = bell

    def request(self, kind: str, key: str, payload: dict, *, queue: str = SYNC) -> str:
        outcome, job_id = self.inbox.request_id(kind, key, payload, queue=queue)
        if outcome != "pending":  # a waiting run already has a worker on its way
            self.bell.ring(job_id)
        return outcome


def create_app(settings: Settings, *, db: Database | None = None, bell=None) -> Flask:
    """`bell`: what to ring after storing work (default: the worker processes' UDP bells)."""
    db = db or Database(settings)
    bell = bell or BellRinger(BellRegistry(db))
    intake = DoorIntake(Inbox(JobQueue(db, lease_seconds=settings.job_lease_seconds)), bell)
    channels = build_channels(settings, db)

    def channel_health() -> dict:
        return {"channels": {name: {"ok": health.ok, **({"detail": health.detail}
                                                         if health.detail else {})}
                             for name, health in ((n, c.health()) for n, c in channels.items())}}

    app = base_app(__name__, settings, db, details=channel_health if channels else None)
    for channel in channels.values():
        channel.routes(app, intake)
    onec.register(app, settings, db, bell.ring, channel=channels.get("whatsapp"))
    if settings.planfix_configured:  # Telegram accounts ↔ Planfix (CHANNELS.md §5)
        register_planfix(app, settings, db, bell)
        register_media(app, keys.derive(settings, keys.MEDIA_LINKS), MediaRepository(db))
    return app


# `gunicorn crm_listener:app`: built on first access, never merely on import.
__getattr__ = lazy_app(globals(), create_app)
