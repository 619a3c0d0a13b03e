"""The integrations door: every channel's webhooks and signals, and the business APIs.

Its whole URL map is `BLUEPRINTS` below: each channel's routes (`channels/<name>/`):
KeepingCRM's signal `POST /messages/<LINK_KEY>`, WhatsApp's `GET|POST /whatsapp/cloud` and
its gateways'; the business APIs (`apis/`): the 1C routes and `/api/v1/`; the Planfix desk
and its signed media links. Whatever arrives is checked at the border, stored durably as
work (the intake), and only then answered. `GET /healthz` adds each channel's health.
`gunicorn crm_listener:app` serves it (the name is kept from when it served the CRM alone).
"""
from __future__ import annotations

import logging
from functools import cached_property

from flask import Flask

from apis import onec
from apis.onec import compat, v1
from channels import build_channels
from channels import sms
from channels.keepingcrm import listener
from channels.whatsapp import WHATSAPP, gateways
from channels.whatsapp import webhook as whatsapp_webhook
from config import Settings
from desks.planfix import clients as planfix_clients
from desks.planfix import webhook as planfix_webhook
from doors import media, web
from doors.web import door_app, lazy_app, serve
from models.bells import BellRegistry
from models.conversations import KEEPINGCRM
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


class Parts:
    """What this door's blueprints are bound to, each part made once, on first need.
    `bell`: what to ring after storing work."""

    def __init__(self, settings: Settings, db: Database, bell) -> None:
        self.settings = settings
        self.db = db
        self.bell = bell
        self.intake = DoorIntake(Inbox(JobQueue(db, lease_seconds=settings.job_lease_seconds)), bell)
        self.channels = build_channels(settings, db)

    def channel_health(self) -> dict:
        return {"channels": {name: {"ok": health.ok, **({"detail": health.detail}
                                                         if health.detail else {})}
                             for name, health in ((n, c.health()) for n, c in self.channels.items())}}

    @cached_property
    def onec(self) -> onec.OnecApi | None:
        """Both 1C blueprints' API (None without a WhatsApp number: neither is served)."""
        return onec.bind(self.settings, self.db, self.bell.ring, channel=self.channels.get(WHATSAPP))

    @property
    def planfix(self) -> bool:
        """Telegram accounts ↔ Planfix (CHANNELS.md §5) configured."""
        return self.settings.planfix_configured


# The integrations door's whole URL map, in the order it is mounted (name: the blueprint's
# name and its endpoints' prefix; a bind giving None: not served with these settings).
BLUEPRINTS: web.Table = (
    # GET /healthz (with each channel's health), GET /metrics
    ("base", web.blueprint, lambda p: web.Base(p.settings, p.db, p.channel_health if p.channels else None)),
    # POST /messages/<LINK_KEY>: the CRM's signal
    ("keepingcrm", listener.blueprint,
     lambda p: listener.bind(p.settings, p.intake) if KEEPINGCRM in p.channels else None),
    # GET|POST /whatsapp/cloud: Meta's handshake and webhook (with a Cloud API number)
    ("whatsapp_cloud", whatsapp_webhook.blueprint,
     lambda p: whatsapp_webhook.bind(p.channels.get(WHATSAPP), p.intake)),
    # POST /whatsapp/greenapi (with a Green-API account)
    ("whatsapp_greenapi", gateways.greenapi_blueprint,
     lambda p: gateways.bind_greenapi(p.channels.get(WHATSAPP), p.intake)),
    # POST /whatsapp/devino/<secret>/<incoming|status>, GET /whatsapp/files/<id> (with a Devino account)
    ("whatsapp_devino", gateways.devino_blueprint,
     lambda p: gateways.bind_devino(p.channels.get(WHATSAPP), p.intake)),
    # POST /sms/devino/<secret>/status: the SMS provider's status callbacks (with one configured)
    ("sms_devino", sms.blueprint, lambda p: sms.bind(p.settings, p.intake)),
    # GET|POST /custom_request, /review, /appointment, /happy_birthday_client, /get_all_data, /get_data
    ("onec", compat.blueprint, lambda p: p.onec),
    # /api/v1/…: notifications, messages, phones, contacts, reviews, openapi.json
    ("onec_v1", v1.blueprint, lambda p: p.onec),
    # POST|GET|DELETE|PUT /planfix/clients
    ("planfix_clients", planfix_clients.blueprint,
     lambda p: planfix_clients.bind(p.settings, p.db) if p.planfix else None),
    # POST /planfix/webhook
    ("planfix_webhook", planfix_webhook.blueprint,
     lambda p: planfix_webhook.bind(p.settings, p.db, p.bell) if p.planfix else None),
    # GET /media/<id>?e=…&s=…: stored files behind signed links
    ("media", media.blueprint,
     lambda p: media.Media(keys.derive(p.settings, keys.MEDIA_LINKS), MediaRepository(p.db)) if p.planfix else None),
)


def create_app(settings: Settings, *, db: Database | None = None, bell=None) -> Flask:
    """`bell`: what to ring after storing work (default: the worker processes' UDP bells)."""
    db = db or Database(settings)
    bell = bell or BellRinger(BellRegistry(db))
    return serve(door_app(__name__, settings, db), BLUEPRINTS, Parts(settings, db, bell))


# `gunicorn crm_listener:app`: built on first access, never merely on import.
__getattr__ = lazy_app(globals(), create_app)
