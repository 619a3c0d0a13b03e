"""The Telegram door: `POST /telegram/<WEBHOOK_SECRET_PATH>`.

Telegram's request is checked (secret path → 404, secret header → 403, size → 413, JSON
→ 400), stored durably once per update_id, and answered 200; workers do the rest. The
bot token never appears in the path. `gunicorn webhook_server:app` serves it.
"""
from __future__ import annotations

import logging

from flask import Flask, jsonify, request

from config import Settings
from bot.updates import BadUpdate, take_update
from doors.web import base_app, lazy_app
from models.bells import BellRegistry
from models.db import Database
from models.inbox import Inbox
from models.jobs import JobQueue
from utils.bell import BellRinger
from utils.http import BadBody, error, read_json, same_secret
from utils.metrics import UPDATES_RECEIVED

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def create_app(settings: Settings, *, db: Database | None = None, bell=None) -> Flask:
    """`bell`: what to ring after storing work (default: the worker processes' UDP bells)."""
    db = db or Database(settings)
    bell = bell or BellRinger(BellRegistry(db))
    inbox = Inbox(JobQueue(db, lease_seconds=settings.job_lease_seconds))
    app = base_app(__name__, settings, db)

    @app.post("/telegram/<path:secret_path>")
    def telegram_update(secret_path: str):
        if not same_secret(secret_path, settings.webhook_secret_path):
            return error(404, "not found")
        if not same_secret(request.headers.get(SECRET_HEADER), settings.webhook_secret_token):
            return error(403, "forbidden")
        try:
            update = read_json(request)
            stored = take_update(inbox, update)
        except (BadBody, BadUpdate) as exc:
            return error(400, str(exc))
        UPDATES_RECEIVED.labels("stored" if stored else "duplicate").inc()
        if stored:
            bell.ring(stored)
        else:
            log.info("update %s delivered again; already stored", update["update_id"])
        return jsonify({"ok": True})

    return app


# `gunicorn webhook_server:app`: built on first access, never merely on import.
__getattr__ = lazy_app(globals(), create_app)
