"""What only the WhatsApp gateways need on the integrations door and in the worker
(CHANNELS.md §4):

* `POST /whatsapp/greenapi` — a Green-API-compatible gateway's webhook. The body names its
  instance (`instanceData.idInstance`): an instance that is not ours is 404; `Authorization`
  must carry the account's webhook token (with or without "Bearer "; an account receiving
  by webhook always has one, a polled one takes no webhook), else 401 — in both cases
  nothing is stored. The body is stored as a `wa_webhook` job
  keyed by its message id (a re-delivery is the same job) before the 200.
* `wa_poll` — for an account with `receive = poll` (no public URL): the periodic job
  long-polls `receiveNotification` (`receiveTimeout` seconds: the gateway holds the
  request, no busy loop), stores each body exactly as the webhook would, and only then
  `deleteNotification`s it. A crash between the two gives the same notification again:
  the same job key, the same message ids — stored once.
* `POST /whatsapp/devino/<secret>/incoming|status` — Devino signs nothing, so the secret
  path part says which accounts the body may be about; a wrong secret is 404 and nothing
  is stored.
* `GET /whatsapp/files/<id>?e=<expiry>&s=<signature>` — a file a manager sent, offered to
  Devino (which takes files by URL only) behind a link signed with the file links' own key
  (`utils/keys.py`, never LINK_KEY) that expires FILE_LINK_TTL after it was made (each
  send attempt makes a fresh one); served as an attachment, never rendered.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass

from flask import Blueprint, Response, request

from channels.base import Intake
from channels.whatsapp.providers import fields as f
from config import Settings
from models.jobs import Done
from utils import keys, signed
from utils.http import bound, error, file_response

log = logging.getLogger(__name__)

GREENAPI_PATH = "/whatsapp/greenapi"
DEVINO_PATH = "/whatsapp/devino/<secret>/<route>"
FILES_PATH = "/whatsapp/files/<int:file_id>"
FILE_LINK_TTL = 24 * 3600   # Devino fetches a file when it sends; a queued batch may wait
MAX_BODY = 1024 * 1024
IDLE_POLL_SECONDS = 5.0   # wa_poll with no polled account left
POLL_BATCH = 100          # notifications taken in one run of wa_poll before it yields


def greenapi_key(account: str, raw: bytes) -> str:
    """A notification's job key: by its message id (and status), so the webhook's and the
    queue's re-deliveries are one job; other bodies by their digest."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeError, ValueError, RecursionError):
        body = None
    body = f.as_dict(body)
    kind = f.text(body.get("typeWebhook"), 64)
    message_id = f.message_id(body.get("idMessage"))
    if message_id and kind:
        suffix = f":{f.text(body.get('status'), 32)}" if kind == "outgoingMessageStatus" else ""
        return f"wa:ga:{account}:{message_id}{suffix}"[:190]
    return f"wa:ga:{account}:{hashlib.sha256(raw).hexdigest()}"


def file_link(settings: Settings, file_id: int, *, now: float | None = None) -> str:
    """The link Devino downloads the kept file from, until FILE_LINK_TTL from `now`."""
    return signed.signed_url(settings.public_url or "", f"/whatsapp/files/{file_id}",
                             keys.derive(settings, keys.FILE_LINKS), ttl=FILE_LINK_TTL, now=now)


# Each gateway's routes are served only when one of the shop's accounts uses it.
greenapi_blueprint = Blueprint("whatsapp_greenapi", __name__)
devino_blueprint = Blueprint("whatsapp_devino", __name__)


@dataclass(frozen=True)
class Gateways:
    """What the gateways' routes need (their blueprints' context)."""
    channel: object
    intake: Intake


def bind_greenapi(channel, intake: Intake) -> Gateways | None:
    """`POST /whatsapp/greenapi`'s context whenever the channel is there: an owner may add
    a gateway account in the panel while the door runs (an instance not ours is 404)."""
    if channel is None:
        return None
    return Gateways(channel, intake)


def bind_devino(channel, intake: Intake) -> Gateways | None:
    """Devino's callbacks' and kept files' context, or None without a Devino account."""
    return _bind(channel, intake, "devino")


def _bind(channel, intake: Intake, provider: str) -> Gateways | None:
    if channel is None or not any(a.provider == provider for a in channel.accounts.values()):
        return None
    return Gateways(channel, intake)


@greenapi_blueprint.post(GREENAPI_PATH)
def greenapi():
    gateways: Gateways = bound()
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY:
        return error(413, "body too large")
    provider = gateways.channel.providers["greenapi"]
    instance = provider.instance_of(raw)
    account = gateways.channel.accounts.get(instance or "")
    if account is None or not provider.authorised(account, request.headers):
        # An account added (or switched to its webhook) in the panel a moment ago: the
        # panel's accounts are read afresh once (at most twice a second) before refusing.
        account = gateways.channel.account_afresh(instance or "")
    if account is None or account.provider != "greenapi":
        log.warning("Green-API webhook for an instance that is not ours refused")
        return error(404, "unknown instance")
    if not provider.authorised(account, request.headers):
        log.warning("Green-API webhook without the right token refused (instance %s)", account.id)
        return error(401, "wrong or missing token")
    gateways.intake.request("wa_webhook", greenapi_key(account.id, raw),
                            {"body": raw.decode("utf-8", "replace"), "provider": "greenapi",
                             "signal_at": time.time()})
    return Response("OK", mimetype="text/plain")


@devino_blueprint.post(DEVINO_PATH)
def devino(secret: str, route: str):
    gateways: Gateways = bound()
    mine = [a.id for a in gateways.channel.accounts.values() if a.provider == "devino" and a.callback_secret
            and hmac.compare_digest(a.callback_secret.encode(), secret.encode())]
    if not mine or route not in ("incoming", "status"):
        return error(404, "not found")
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY:
        return error(413, "body too large")
    try:
        text = raw.decode("utf-8")
    except UnicodeError:
        return error(400, "body is not UTF-8")
    digest = hashlib.sha256(raw).hexdigest()
    gateways.intake.request("wa_webhook", f"wa:dv:{route}:{digest}",
                            {"body": text, "provider": "devino", "context": {"route": route, "accounts": mine},
                             "signal_at": time.time()})
    return Response("OK", mimetype="text/plain")


@devino_blueprint.get(FILES_PATH)
def kept_file(file_id: int):
    channel = bound().channel
    if not signed.verify(f"/whatsapp/files/{file_id}", request.args.get("e"),
                         request.args.get("s"), keys.derive(channel.settings, keys.FILE_LINKS)):
        return error(403, "forbidden")
    kept = channel.files.get(file_id)
    if kept is None:
        return error(404, "not found")
    return file_response(kept.data, kept.name, kept.mime)


class PollNotifications:
    """The `wa_poll` periodic job: every polled Green-API account's notification queue."""

    def __init__(self, channel, intake: Intake) -> None:
        self.channel = channel
        self.intake = intake

    def __call__(self, job) -> Done:
        polled = [a for a in self.channel.accounts.values() if a.provider == "greenapi" and a.receive == "poll"]
        if not polled:
            # The last polled account was removed in the panel: look again in a while.
            return Done(again_in=IDLE_POLL_SECONDS)
        provider = self.channel.providers["greenapi"]
        timeout = self.channel.settings.whatsapp_greenapi_receive_timeout
        # With several polled accounts, each waits the least Green-API allows.
        wait = timeout if len(polled) == 1 else 5
        for account in polled:
            for _ in range(POLL_BATCH):
                self.channel.reserve(account.id, "", "notifications")
                notification = provider.receive(account, wait)
                if notification is None:
                    break
                self.intake.request("wa_webhook", greenapi_key(account.id, notification.body),
                                    {"body": notification.body.decode("utf-8", "replace"),
                                     "provider": "greenapi", "signal_at": time.time()})
                # Stored (committed) above: only now may the gateway forget it.
                self.channel.reserve(account.id, "", "notifications")
                provider.acknowledge(account, notification.receipt)
        # The long poll itself is the wait: the next run starts at once.
        return Done(again_in=0.0)
