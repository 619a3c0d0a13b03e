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

from flask import Response, request

from channels.base import Intake
from utils.http import error

log = logging.getLogger(__name__)

PATH = "/whatsapp/cloud"


def register(app, channel, intake: Intake) -> None:
    accounts = [a for a in channel.accounts.values() if a.provider == "cloud"]
    provider = channel.providers["cloud"]

    def verify():
        challenge = provider.verify_subscription(accounts, request.args)
        if challenge is None:
            log.warning("WhatsApp webhook verification refused (wrong verify token or mode)")
            return error(403, "forbidden")
        return Response(challenge, mimetype="text/plain")

    def receive():
        raw = request.get_data(cache=False)
        if not provider.authentic(accounts, raw, request.headers):
            log.warning("WhatsApp webhook with a wrong or missing signature refused")
            return error(401, "bad signature")
        try:
            text = raw.decode("utf-8")
        except UnicodeError:
            return error(400, "body is not UTF-8")
        digest = hashlib.sha256(raw).hexdigest()
        intake.request("wa_webhook", f"wa:{digest}", {"body": text, "signal_at": time.time()})
        return Response("OK", mimetype="text/plain")

    app.add_url_rule(PATH, "whatsapp_verify", verify, methods=["GET"])
    app.add_url_rule(PATH, "whatsapp_receive", receive, methods=["POST"])
