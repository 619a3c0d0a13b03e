"""SMS for notices WhatsApp could not deliver (docs/sms.md): Devino's SMS HTTP API, and
its status callbacks on the integrations door. Not a conversation channel (customers do
not write by it): what goes out is shown in the customer's WhatsApp conversation.

    POST {SMS_DEVINO_URL}/sms/messages   Authorization: Key <credentials>
         {"messages": [{"from", "to", "text", "validity", "priority", "callbackUrl",
                        "options": {"ref": "o<outbox id>"}}, …]}
         → {"result": [{"code": "OK", "messageId"} |
                       {"code": "REJECTED", "reasons": [{"key", "ref"}], "description"}, …]}
           one result per message, in the same order.
    status callbacks → callbackUrl = {PUBLIC_URL}/sms/devino/<SMS_DEVINO_CALLBACK_SECRET>/status

Devino signs nothing: the secret path part is what makes a callback ours (a wrong one is
404, nothing stored). A callback body is stored as an `sms_status` job keyed by its digest
(a re-delivery is the same job) before the 200. Where the documentation leaves the
callback's shape open, both plausible forms are read: one object or a list of them; the
status in upper or lower case; `ts` as epoch seconds or ISO time; our reference in
`options` as the object we sent or as a JSON string of it.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, Response, request

from channels.base import Intake
from channels.whatsapp.errors import BadToken, ShopMustAct
from channels.whatsapp.providers import fields as f
from channels.whatsapp.providers.base import BatchResult
from channels.whatsapp.providers.devino import (STATUS, UNREACHABLE, batch_results, from_devino,
                                                post_messages)
from channels.whatsapp.providers.wire import SessionPerThread
from config import Settings
from utils.http import bound, error

PATH = "/sms/devino/<secret>/status"
MAX_BODY = 1024 * 1024
MAX_TEXT = 1000          # what KeepDesk sends in one notice (Devino takes far more; segments cost)
READ_TIMEOUT = 20.0


@dataclass(frozen=True)
class SmsItem:
    to: str          # E.164 digits
    text: str
    ref: str         # ours, echoed in status callbacks (`options.ref`)


@dataclass(frozen=True)
class SmsStatus:
    message_id: str
    status: str             # sent | delivered | failed
    at: datetime
    ref: str | None
    error_code: int | None
    error: str | None


class DevinoSms(SessionPerThread):
    """Devino's SMS API: one call carries a batch."""
    name = "devino-sms"

    def __init__(self, settings: Settings, *, read_timeout: float | None = None) -> None:
        self.url = settings.sms_devino_url.rstrip("/")
        self.key = settings.sms_devino_key or ""
        self.sender = settings.sms_devino_from or ""
        self.validity = settings.sms_validity_seconds
        priority = settings.sms_devino_priority
        self.priority = int(priority) if priority.isdigit() else priority
        public = (settings.public_url or "").rstrip("/")
        secret = settings.sms_devino_callback_secret
        self.callback_url = f"{public}/sms/devino/{secret}/status" if public and secret else None
        # A call outliving its job's lease could be made twice: at most half of it.
        self.read_timeout = read_timeout or min(READ_TIMEOUT, settings.whatsapp_gateway_timeout_seconds,
                                                settings.job_lease_seconds / 2)

    def __repr__(self) -> str:
        return f"DevinoSms(url={self.url!r}, sender={self.sender!r})"

    def message(self, item: SmsItem) -> dict:
        message = {"from": self.sender, "to": item.to, "text": item.text[:MAX_TEXT],
                   "validity": self.validity, "priority": self.priority, "options": {"ref": item.ref}}
        if self.callback_url:
            message["callbackUrl"] = self.callback_url
        return message

    def send_batch(self, items: list[SmsItem]) -> list[BatchResult]:
        """Each message's result in its place. Raises Unavailable (nothing taken: 5xx, no
        connection), Throttled (429), BadToken / ShopMustAct / Refused (refused as a whole),
        OutcomeUnknown (it may have been taken: the answer was lost or unreadable)."""
        answer = post_messages(self._http, f"{self.url}/sms/messages", self.key,
                               [self.message(i) for i in items], self.read_timeout, what="Devino SMS")
        if answer.status_code // 100 != 2:
            if answer.status_code in (401, 403):
                raise BadToken(f"Devino refused the SMS key (HTTP {answer.status_code}): check SMS_DEVINO_KEY,"
                               " then /retry_", answer.status_code)
            if answer.status_code == 402:
                raise ShopMustAct("Devino SMS: billing (HTTP 402): top the account up, then /retry_", 402)
            raise from_devino(answer.status_code, answer.text, answer.headers.get("Retry-After"))
        return batch_results(answer, what="Devino SMS")


def parse_statuses(raw: bytes, now: datetime) -> tuple[list[SmsStatus], list[str]]:
    """A status callback's statuses, and what in it was not understood."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeError, ValueError, RecursionError):
        return [], ["not JSON"]
    items = body if isinstance(body, list) else [body]
    found: list[SmsStatus] = []
    unclear: list[str] = []
    for item in items[:1000]:
        item = f.as_dict(item)
        message_id = f.message_id(item.get("messageId"))
        raw_status = f.text(item.get("status"), 32)
        status = STATUS.get(raw_status.lower())
        if message_id is None or status is None:
            unclear.append(f"status {raw_status or '?'}")
            continue
        options = item.get("options")
        if isinstance(options, str):
            try:
                options = json.loads(options)
            except (ValueError, RecursionError):
                options = {"ref": options}
        ref = f.text(f.as_dict(options).get("ref"), 64) or None
        code = item.get("errorCode")
        code = code if isinstance(code, int) and not isinstance(code, bool) else (
            int(code) if isinstance(code, str) and code.isdigit() and len(code) < 10 else None)
        reason = None
        if status == "failed":
            reason = f"Devino SMS: {raw_status.upper()}" + (f", error {code}" if code is not None else "")
            if raw_status.lower() in UNREACHABLE and code is None:
                reason += " (the phone could not be reached)"
        found.append(SmsStatus(message_id, status, f.when(item.get("ts"), now), ref, code, reason))
    return found, unclear


# -- the status callbacks' route ----------------------------------------------------------------

blueprint = Blueprint("sms_devino", __name__)


@dataclass(frozen=True)
class SmsCallbacks:
    secret: str
    intake: Intake


def bind(settings: Settings, intake: Intake) -> SmsCallbacks | None:
    """Served only with an SMS provider and its callback secret."""
    if not settings.sms_configured or not settings.sms_devino_callback_secret:
        return None
    return SmsCallbacks(settings.sms_devino_callback_secret, intake)


@blueprint.post(PATH)
def status(secret: str):
    hook: SmsCallbacks = bound()
    if not hmac.compare_digest(hook.secret.encode(), secret.encode()):
        return error(404, "not found")
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY:
        return error(413, "body too large")
    try:
        text = raw.decode("utf-8")
    except UnicodeError:
        return error(400, "body is not UTF-8")
    hook.intake.request("sms_status", f"sms:st:{hashlib.sha256(raw).hexdigest()}",
                        {"body": text, "signal_at": time.time()})
    return Response("OK", mimetype="text/plain")

