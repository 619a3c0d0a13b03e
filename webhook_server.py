"""The Telegram door: `POST /telegram/<WEBHOOK_SECRET_PATH>`.

Telegram's request is checked (secret path → 404, secret header → 403, size → 413, JSON
→ 400), stored durably once per update_id, and answered 200; workers do the rest. The
bot token never appears in the path. `gunicorn webhook_server:app` serves it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Blueprint, Flask, jsonify, request

from config import Settings
from bot.updates import BadUpdate, take_update
from doors import web
from doors.web import door_app, lazy_app, serve
from models.bells import BellRegistry
from models.db import Database
from models.inbox import Inbox
from models.jobs import JobQueue
from utils.bell import BellRinger
from utils.http import BadBody, bound, error, read_json, same_secret
from utils.metrics import UPDATES_RECEIVED

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

blueprint = Blueprint("telegram", __name__)


@dataclass(frozen=True)
class Parts:
    """What this door's blueprints are bound to. `bell`: what to ring after storing work."""
    settings: Settings
    db: Database
    inbox: Inbox
    bell: object


@blueprint.post("/telegram/<path:secret_path>")
def telegram_update(secret_path: str):
    door: Parts = bound()
    if not same_secret(secret_path, door.settings.webhook_secret_path):
        return error(404, "not found")
    if not same_secret(request.headers.get(SECRET_HEADER), door.settings.webhook_secret_token):
        return error(403, "forbidden")
    try:
        update = read_json(request)
        stored = take_update(door.inbox, update)
    except (BadBody, BadUpdate) as exc:
        return error(400, str(exc))
    UPDATES_RECEIVED.labels("stored" if stored else "duplicate").inc()
    if stored:
        door.bell.ring(stored)
    else:
        log.info("update %s delivered again; already stored", update["update_id"])
    return jsonify({"ok": True})


# The Telegram door's whole URL map (name: its blueprint's name and endpoints' prefix).
BLUEPRINTS: web.Table = (
    ("base", web.blueprint, lambda p: web.Base(p.settings, p.db)),  # GET /healthz, GET /metrics
    ("telegram", blueprint, lambda p: p),                            # POST /telegram/<WEBHOOK_SECRET_PATH>
)


def create_app(settings: Settings, *, db: Database | None = None, bell=None) -> Flask:
    """`bell`: what to ring after storing work (default: the worker processes' UDP bells)."""
    db = db or Database(settings)
    bell = bell or BellRinger(BellRegistry(db))
    inbox = Inbox(JobQueue(db, lease_seconds=settings.job_lease_seconds))
    return serve(door_app(__name__, settings, db), BLUEPRINTS, Parts(settings, db, inbox, bell))


# `gunicorn webhook_server:app`: built on first access, never merely on import.
__getattr__ = lazy_app(globals(), create_app)
