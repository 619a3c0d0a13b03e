"""WhatsApp's webhook on the integrations door: `GET|POST /whatsapp/cloud` (CHANNELS.md §3).

GET is Meta's subscription handshake: the challenge is echoed when the verify token is
one of ours, else 403. POST is checked on the raw bytes before anything is parsed (the
X-Hub-Signature-256 HMAC with an app secret, in constant time): a wrong or missing
signature is 401 and changes nothing. A signed body is stored durably as a `wa_webhook`
job — keyed by its digest, so Meta's re-delivery of the same body is the same job — and
only then answered 200; parsing, de-duplication by message id and the fan-out happen in
the job.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from flask import Blueprint, Response, request

from channels.base import Intake
from utils.http import bound, error

log = logging.getLogger(__name__)

PATH = "/whatsapp/cloud"


blueprint = Blueprint("whatsapp_cloud", __name__)


@dataclass(frozen=True)
class CloudWebhook:
    """What the webhook needs (its blueprint's context): the Cloud API numbers, their
    provider, the intake."""
    accounts: list
    provider: object
    intake: Intake


def bind(channel, intake: Intake) -> CloudWebhook | None:
    """The webhook's context, or None (not served) without a Cloud API number."""
    accounts = [a for a in channel.accounts.values() if a.provider == "cloud"] if channel else []
    if not accounts:
        return None
    return CloudWebhook(accounts, channel.providers["cloud"], intake)


@blueprint.get(PATH)
def verify():
    hook: CloudWebhook = bound()
    challenge = hook.provider.verify_subscription(hook.accounts, request.args)
    if challenge is None:
        log.warning("WhatsApp webhook verification refused (wrong verify token or mode)")
        return error(403, "forbidden")
    return Response(challenge, mimetype="text/plain")


@blueprint.post(PATH)
def receive():
    hook: CloudWebhook = bound()
    raw = request.get_data(cache=False)
    if not hook.provider.authentic(hook.accounts, raw, request.headers):
        log.warning("WhatsApp webhook with a wrong or missing signature refused")
        return error(401, "bad signature")
    try:
        text = raw.decode("utf-8")
    except UnicodeError:
        return error(400, "body is not UTF-8")
    digest = hashlib.sha256(raw).hexdigest()
    hook.intake.request("wa_webhook", f"wa:{digest}", {"body": text, "signal_at": time.time()})
    return Response("OK", mimetype="text/plain")

