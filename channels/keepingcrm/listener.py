"""KeepingCRM's signal on the integrations door: `POST /messages/<LINK_KEY>` with
`{"InvoiceId": <id_i>}` (SPEC §5–6).

A signal only says "chat id_i has news"; it is stored as a request to sync that chat
(bursts collapse into one sync) and answered 200 `{"ok": true}` once on disk. The
allow-list (CRM_ALLOWED_IPS) is checked before the key, so a caller from elsewhere
learns nothing about the key; a wrong key is 404; a body without an integer InvoiceId
is 400 with a JSON error.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import Blueprint, jsonify, request

from channels.base import Intake
from config import Settings
from utils.http import BadBody, bound, error, in_networks, read_json, same_secret
from utils.metrics import SIGNALS_RECEIVED

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


def allowed(remote: str | None, networks: tuple[str, ...]) -> bool:
    """CRM_ALLOWED_IPS: unset, anyone with the key; set, only callers from those networks."""
    return not networks or in_networks(remote, networks)


def request_sync(intake: Intake, id_i: int) -> str:
    """Ask for a sync of CRM chat `id_i`; a burst of requests is one sync."""
    # signal_at travels to the posts: the signal→post latency is measured from it.
    return intake.request("crm_sync", f"sync:{id_i}", {"id_i": id_i, "signal_at": time.time()})


blueprint = Blueprint("keepingcrm", __name__)


@dataclass(frozen=True)
class Listener:
    """What the signal route needs (its blueprint's context)."""
    settings: Settings
    intake: Intake


def bind(settings: Settings, intake: Intake) -> Listener:
    return Listener(settings, intake)


@blueprint.post("/messages/<path:key>")
def crm_signal(key: str):
    listener: Listener = bound()
    if not allowed(request.remote_addr, listener.settings.crm_allowed_ips):
        return error(403, "forbidden")
    if not same_secret(key, listener.settings.link_key):
        return error(404, "not found")
    try:
        id_i = parse_invoice_id(read_json(request))
    except BadBody as exc:
        return error(400, str(exc))
    outcome = request_sync(listener.intake, id_i)
    SIGNALS_RECEIVED.labels(outcome).inc()
    log.debug("signal for chat %s: %s", id_i, outcome)
    return jsonify({"ok": True})

