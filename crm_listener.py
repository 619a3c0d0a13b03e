"""The CRM door: `POST /messages/<LINK_KEY>` with `{"InvoiceId": <id_i>}`.

A signal only says "chat id_i has news"; it is stored as a request to sync that chat
(bursts collapse into one sync) and answered 200 `{"ok": true}` once on disk.
`gunicorn crm_listener:app` serves it.
"""
from __future__ import annotations

import ipaddress
import logging

from flask import Flask, jsonify, request

from config import Settings
from models.db import Database
from models.inbox import Inbox
from models.jobs import JobQueue
from utils.bell import BellRinger
from utils.metrics import SIGNALS_RECEIVED
from utils.web import BadBody, base_app, error, lazy_app, read_json, same_secret

log = logging.getLogger(__name__)

MAX_INVOICE_ID = 2**63 - 1


def parse_invoice_id(body: object) -> int:
    """The chat id of a signal. Integers, and strings of digits (some CRMs quote ids)."""
    if not isinstance(body, dict) or "InvoiceId" not in body:
        raise BadBody("InvoiceId is required")
    value = body["InvoiceId"]
    if isinstance(value, str) and value.strip().isdigit() and value.strip().isascii():
        value = int(value.strip())
    if type(value) is not int or not 0 < value <= MAX_INVOICE_ID:
        raise BadBody("InvoiceId must be a positive integer")
    return value


def _allowed(remote: str | None, allowed: tuple[str, ...]) -> bool:
    if not allowed:
        return True
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return False
    if getattr(address, "ipv4_mapped", None) is not None:  # IPv4 on a dual-stack socket
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(net, strict=False) for net in allowed)


def create_app(settings: Settings, *, db: Database | None = None, bell=None) -> Flask:
    """`bell`: what to ring after storing work (default: the worker processes' UDP bells)."""
    db = db or Database(settings)
    bell = bell or BellRinger(db)
    inbox = Inbox(JobQueue(db, lease_seconds=settings.job_lease_seconds))
    app = base_app(__name__, settings, db)

    @app.post("/messages/<path:key>")
    def crm_signal(key: str):
        # The allow-list first: a caller from elsewhere learns nothing about the key.
        if not _allowed(request.remote_addr, settings.crm_allowed_ips):
            return error(403, "forbidden")
        if not same_secret(key, settings.link_key):
            return error(404, "not found")
        try:
            id_i = parse_invoice_id(read_json(request))
        except BadBody as exc:
            return error(400, str(exc))
        outcome = inbox.take_signal(id_i)
        SIGNALS_RECEIVED.labels(outcome).inc()
        if outcome != "pending":  # a waiting sync already has a worker on its way
            bell.ring()
        log.debug("signal for chat %s: %s", id_i, outcome)
        return jsonify({"ok": True})

    return app


# `gunicorn crm_listener:app`: built on first access, never merely on import.
__getattr__ = lazy_app(globals(), create_app)
