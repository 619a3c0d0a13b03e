"""`/api/v1/`: the 1C API as JSON, with proper status codes, described by
`GET /api/v1/openapi.json` (CHANNELS.md §2).

Authentication: `Authorization: Bearer <token>` (a 1C API token). Errors are
`{"ok": false, "error": "…"}` with 400 (malformed), 401 (token), 404, 409 (refused by a
rule: unsubscribed phone, 24-hour window closed, greeted already), 413, 422 (a template
with the wrong number of parameters; a feature the account's provider does not have:
"not supported by this provider"), 503 (the API is switched off; a gateway's instance
not authorized, with Retry-After). Sends are answered 202 with the message's id once
recorded; its delivery is read back with `GET /api/v1/messages/{id}`.

Whatever the provider behind the shop's account (the Cloud API, a Green-API-compatible
gateway, Devino), the gateway part is the same: text, file by URL or by upload
(`POST /messages/file`, multipart), location, contact, presence (`GET /phones/{phone}`),
the conversation's history (`GET /phones/{phone}/messages`; `?source=provider` reads the
gateway's own chat history where it keeps one), contacts (`GET /contacts`) and delivery
statuses. With several
accounts, `account` (an account's id) chooses one; the first is the default.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import wraps

from flask import Blueprint, jsonify, request

from apis.onec.compat import MAX_PARAM, BadParams, json_params, phone_state
from channels.whatsapp.errors import Unsupported
from models.inbound import ConversationKey
from models.jobs import RetryLater
from services.notifications import Outcome, TemplateMismatch
from utils import fetch
from utils.clock import utc_now
from utils.http import BadBody, bound, error, read_json
from utils.phones import InvalidPhone, display, normalise

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
MAX_TEXT = 4096


def _str(body: dict, name: str, *, required: bool = True, limit: int = MAX_PARAM) -> str | None:
    value = body.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise BadParams(f"{name} is required")
        return None
    if not isinstance(value, (str, int, float)) or len(str(value)) > limit:
        raise BadParams(f"{name} must be text of at most {limit} characters")
    return str(value).strip()


def _number(body: dict, name: str, low: float, high: float) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise BadParams(f"{name} must be a number between {low} and {high}")
    return float(value)


def _answer(queued) -> tuple:
    if queued.outcome is Outcome.QUEUED:
        return jsonify({"ok": True, "id": queued.outbox_id, "status": "queued"}), 202
    if queued.outcome is Outcome.REPEATED:
        return jsonify({"ok": True, "id": None, "status": "repeated",
                        "detail": "the same request was accepted within the repeat window"}), 200
    detail = {Outcome.UNSUBSCRIBED: "the phone unsubscribed from notifications",
              Outcome.GREETED: "this phone was greeted within the last days"}[queued.outcome]
    return jsonify({"ok": False, "error": detail, "status": queued.outcome.value}), 409


blueprint = Blueprint("onec_v1", __name__, url_prefix=PREFIX)


def endpoint(rule: str, methods=("GET",)):
    """A route under /api/v1: the switch, the token, the JSON body, and every refusal as
    its status. The handler gets the API (`OnecApi`), the body and the path's values."""
    def wrap(handler):
        @wraps(handler)
        def view(**kwargs):
            api = bound()
            if not api.settings.onec_api_enabled:
                return error(503, "the 1C API is switched off (ONEC_API_ENABLED)")
            header = request.headers.get("Authorization", "")
            if not header.startswith("Bearer ") or not api.tokens.valid(header[7:].strip()):
                return error(401, "a valid API token is required: Authorization: Bearer <token>")
            try:
                multipart = request.mimetype == "multipart/form-data"
                body = read_json(request) if request.method == "POST" and not multipart else {}
                if not isinstance(body, dict):
                    raise BadBody("a JSON object is expected")
                return handler(api, body, **kwargs)
            except InvalidPhone:
                return error(400, "phone: not a valid phone number")
            except (BadParams, BadBody) as exc:
                return error(400, str(exc))
            except (TemplateMismatch, Unsupported) as exc:
                return error(422, str(exc))
            except RetryLater as exc:
                answer = error(503, f"try again later: {exc}")
                answer[0].headers["Retry-After"] = str(max(1, int(exc.delay + 0.999)))
                return answer
            except Exception as exc:  # never a bare 500 page: the reason goes to #ERROR
                log.exception("API %s failed", rule)
                try:
                    api.reporter.report(f"1C API {rule} failed", f"{type(exc).__name__}: {exc}")
                except Exception:
                    log.warning("could not report the API's failure")
                return error(500, "server error; the shop's admins were told")
        blueprint.add_url_rule(rule, view_func=view, methods=list(methods))
        return view
    return wrap


def phone(api, raw) -> str:
    return normalise(raw, api.settings.phone_default_region)


def account_of(api, body) -> str:
    """The account a request names (`account`, in the body or the query), or the default."""
    wanted = body.get("account") or request.args.get("account")
    if wanted is None:
        return api.account
    wanted = str(wanted)[:64]
    if api.channel is None or wanted not in api.channel.accounts:
        raise BadParams("account: not one of the shop's WhatsApp accounts")
    return wanted


def require(api, account: str, feature: str) -> None:
    if api.channel is not None:
        api.channel.provider_for(account).require(feature)


def window_closed(api, account: str, to: str) -> bool:
    if api.channel is None or api.channel.provider_for(account).reply_window is None:
        return False
    conversation = api.conversations.find(ConversationKey("whatsapp", account, to))
    return conversation is None or api.channel.window_closed(conversation, utc_now())


def queued(api, account: str, to: str, kind: str, content: dict, body: dict):
    if window_closed(api, account, to):
        return error(409, "outside WhatsApp's 24-hour window: the customer has not written in the"
                          " last 24 hours, so only a template notification can be sent")
    return _answer(api.notifications.message(
        to, kind, content, request_id=_str(body, "request_id", required=False, limit=128), account=account))


@endpoint("/notifications/appointment", ("POST",))
def appointment(api, body):
    return _answer(api.notifications.appointment(
        phone(api, body.get("phone")), _str(body, "doctor"), _str(body, "date"), _str(body, "time"),
        request_id=_str(body, "request_id", required=False, limit=128)))


@endpoint("/notifications/review", ("POST",))
def review(api, body):
    return _answer(api.notifications.review(
        phone(api, body.get("phone")), _str(body, "name"), _str(body, "date", required=False),
        request_id=_str(body, "request_id", required=False, limit=128)))


@endpoint("/notifications/birthday", ("POST",))
def birthday(api, body):
    return _answer(api.notifications.birthday(
        phone(api, body.get("phone")), _str(body, "name"), _str(body, "date"),
        request_id=_str(body, "request_id", required=False, limit=128)))


@endpoint("/notifications/custom", ("POST",))
def custom(api, body):
    return _answer(api.notifications.custom(
        phone(api, body.get("phone")), _str(body, "template", limit=512), json_params(body.get("params")),
        request_id=_str(body, "request_id", required=False, limit=128)))


@endpoint("/messages", ("POST",))
def send_message(api, body):
    to = phone(api, body.get("phone"))
    kind = body.get("type", "text")
    if kind == "text":
        content = {"text": _str(body, "text", limit=MAX_TEXT)}
    elif kind in ("image", "document"):
        link = _str(body, "url", limit=2048)
        if not link.startswith("https://"):
            raise BadParams("url must be an https address WhatsApp can download")
        try:   # the gateway downloads it: never an address on this machine or the LAN
            fetch.for_settings(api.settings).policy.check(link)
        except fetch.Refused as exc:
            raise BadParams(f"url: {exc}") from None
        except fetch.Unreachable:
            raise BadParams("url: its host does not resolve") from None
        content = {"link": link, "caption": _str(body, "caption", required=False),
                   "filename": _str(body, "filename", required=False, limit=255)}
    elif kind == "location":
        content = {"latitude": _number(body, "latitude", -90, 90),
                   "longitude": _number(body, "longitude", -180, 180),
                   "name": _str(body, "name", required=False),
                   "address": _str(body, "address", required=False)}
    elif kind == "contact":
        contact = body.get("contact") if isinstance(body.get("contact"), dict) else {}
        content = {"phone": phone(api, contact.get("phone")),
                   **{k: _str(contact, k, required=k == "first_name", limit=255)
                      for k in ("first_name", "middle_name", "last_name", "company")}}
    else:
        raise BadParams("type is text, image, document, location or contact")
    account = account_of(api, body)
    require(api, account, {"image": "file_url", "document": "file_url"}.get(kind, kind))
    return queued(api, account, to, kind, content, body)


@endpoint("/messages/file", ("POST",))
def send_file(api, body):
    """A file uploaded with the request (multipart: phone, file, caption?, account?)."""
    form = request.form
    to = phone(api, form.get("phone"))
    account = account_of(api, dict(form))
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise BadParams("file: a multipart file is required")
    data = upload.read(api.settings.whatsapp_media_max_bytes + 1)
    if len(data) > api.settings.whatsapp_media_max_bytes:
        return error(413, "the file is too large")
    require(api, account, "file_upload")
    if api.channel is None:
        return error(503, "WhatsApp is not configured")
    mime = (upload.mimetype or "application/octet-stream")[:100]
    name = upload.filename[:255]
    kind = "image" if mime.startswith("image/") and mime != "image/webp" else "document"
    file_id = api.channel.keep_file(account, name, mime, data)
    content = {"file_id": file_id, "filename": name, "mime": mime,
               "caption": _str(dict(form), "caption", required=False)}
    return queued(api, account, to, kind, content, dict(form))


@endpoint("/messages/<int:message_id>")
def message_status(api, body, message_id: int):
    message = api.outbox.get(message_id)
    if message is None:
        return error(404, "no such message")
    delivery = None
    if message.external_id and message.conversation_id is None:
        found = api.conversations.find(ConversationKey("whatsapp", message.account, message.phone))
        conversation_id = found.id if found else None
    else:
        conversation_id = message.conversation_id
    if message.external_id and conversation_id is not None:
        delivery = api.statuses.get(conversation_id, message.external_id)
    extra = {}
    if message.channel == "sms":
        # WhatsApp could not deliver it: it went (or goes) by SMS; status and delivery are the SMS's.
        extra["whatsapp"] = {"error_code": message.wa_error_code, "error": message.wa_error}
    return jsonify({"ok": True, "id": message.id, "phone": message.phone, "purpose": message.purpose,
                    "type": message.kind, "channel": message.channel, **extra, "status": message.status,
                    "delivery": delivery["status"] if delivery else None,
                    "error": message.error or (delivery["error"] if delivery else None),
                    "error_code": message.error_code or (delivery["error_code"] if delivery else None),
                    "created_at": _iso(message.created_at), "sent_at": _iso(message.sent_at)})


@endpoint("/phones/<raw>")
def phone_info(api, body, raw: str):
    digits = phone(api, raw)
    account = account_of(api, body)
    conversation = api.conversations.find(ConversationKey("whatsapp", account, digits))
    known = conversation is not None and conversation.last_customer_at is not None
    checked = None
    if not known and api.channel is not None:
        checked = api.channel.check_phone(account, digits)
    return jsonify({"ok": True, "phone": digits, "display": display(digits),
                    "whatsapp": True if known else checked, **phone_state(api, digits)})


@endpoint("/phones/<raw>/messages")
def history(api, body, raw: str):
    digits = phone(api, raw)
    limit = request.args.get("limit", "50")
    limit = int(limit) if limit.isdigit() and 0 < int(limit) <= 200 else 50
    account = account_of(api, body)
    if request.args.get("source") == "provider":
        require(api, account, "history")
        items = api.channel.provider_history(account, digits, limit)
        return jsonify({"ok": True, "phone": digits, "source": "provider", "messages": [
            {"id": i.id, "from": "customer" if i.from_customer else "shop", "text": i.text,
             "type": i.kind, "at": _iso(i.at), "delivery": i.status} for i in items]})
    conversation = api.conversations.find(ConversationKey("whatsapp", account, digits))
    rows = api.messages.recent(conversation.id, limit) if conversation else []
    return jsonify({"ok": True, "phone": digits, "messages": [
        {"id": m.external_id, "from": "customer" if m.from_client else "shop", "text": m.text,
         "file": m.filename if (m.is_file or m.is_img) else None, "at": _iso(m.date_written),
         "delivery": m.delivery_status} for m in rows]})


@endpoint("/contacts")
def contacts(api, body):
    """The account's WhatsApp contacts, where its provider keeps them (Green-API)."""
    account = account_of(api, body)
    require(api, account, "contacts")
    return jsonify({"ok": True, "contacts": [{"phone": phone, "name": name or None}
                                             for phone, name in api.channel.provider_contacts(account)]})


@endpoint("/reviews")
def reviews(api, body):
    since = request.args.get("since")
    try:
        since_at = datetime.fromisoformat(since) if since else utc_now() - timedelta(days=30)
    except ValueError:
        raise BadParams("since must be an ISO date-time") from None
    rows = api.onec.finished_reviews(since_at.replace(tzinfo=None), 500)
    return jsonify({"ok": True, "reviews": [
        {"id": r["id"], "phone": r["phone"], "name": r["name"], "date": r["date"],
         "score": r["score"], "text": r["text"], "finished_at": _iso(r["finished_at"])}
        for r in rows]})


@blueprint.get("/openapi.json")
def openapi():
    return jsonify(OPENAPI)


def _iso(value) -> str | None:
    return value.isoformat() + "Z" if value else None


def _schema(**props) -> dict:
    required = [k for k, v in props.items() if v.pop("required", False)]
    return {"type": "object", "properties": props, **({"required": required} if required else {})}


_S = {"type": "string"}
_PHONE = {"type": "string", "description": "the customer's phone; without a country code it is"
                                            " read in PHONE_DEFAULT_REGION", "example": "0671234567"}
_RID = {"type": "string", "description": "optional: a request repeated with the same id is sent once"}
_SENT = {"202": {"description": "recorded; sent by KeepDesk within Meta's limits",
                 "content": {"application/json": {"schema": _schema(ok={"type": "boolean"},
                                                                     id={"type": "integer"},
                                                                     status=dict(_S))}}},
         "200": {"description": "the same request was accepted within the repeat window: nothing new"},
         "400": {"description": "malformed request or invalid phone"},
         "401": {"description": "missing or wrong token"},
         "409": {"description": "refused by a rule (unsubscribed phone, 24-hour window, greeted already)"},
         "422": {"description": "a template listed in WHATSAPP_TEMPLATES given another number of parameters,"
                                " or a feature the account's provider does not have (not supported by this provider)"},
         "503": {"description": "the API is switched off, or the gateway's instance is not authorized (Retry-After)"}}
_ACCOUNT = {"type": "string", "description": "optional: which of the shop's WhatsApp accounts sends"
                                             " (Cloud phone_number_id, Green-API idInstance, Devino sender)"}


def _post(summary: str, **props) -> dict:
    return {"post": {"summary": summary, "responses": _SENT, "requestBody": {
        "required": True, "content": {"application/json": {"schema": _schema(**props)}}}}}


OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "KeepDesk 1C API", "version": "1",
             "description": "WhatsApp notifications and messages for 1C, with the desk, the "
                            "delivery statuses and the log. Authorization: Bearer <token> "
                            "(python -m bot api-token create NAME)."},
    "servers": [{"url": "/api/v1"}],
    "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
    "security": [{"token": []}],
    "paths": {
        "/notifications/appointment": _post(
            "Appointment notice with Confirm / Unsubscribe buttons (WHATSAPP_TEMPLATE_APPOINTMENT)",
            phone=dict(_PHONE, required=True), doctor=dict(_S, required=True),
            date=dict(_S, required=True), time=dict(_S, required=True), request_id=dict(_RID)),
        "/notifications/review": _post(
            "Review request; the customer answers a score 0–5, then a text",
            phone=dict(_PHONE, required=True), name=dict(_S, required=True), date=dict(_S),
            request_id=dict(_RID)),
        "/notifications/birthday": _post(
            "Birthday greeting (once per ONEC_BIRTHDAY_DAYS per phone)",
            phone=dict(_PHONE, required=True), name=dict(_S, required=True),
            date=dict(_S, required=True, description="dd.mm"), request_id=dict(_RID)),
        "/notifications/custom": _post(
            "Any approved template with its body parameters",
            phone=dict(_PHONE, required=True), template=dict(_S, required=True),
            params={"type": "array", "items": dict(_S)}, request_id=dict(_RID)),
        "/messages": _post(
            "A free-form message (only within 24 hours of the customer's last message)",
            phone=dict(_PHONE, required=True),
            type={"type": "string", "enum": ["text", "image", "document", "location", "contact"]},
            text=dict(_S), url=dict(_S, description="https URL of the file"), caption=dict(_S),
            filename=dict(_S), latitude={"type": "number"}, longitude={"type": "number"},
            name=dict(_S), address=dict(_S),
            contact={"type": "object", "properties": {k: dict(_S) for k in (
                "phone", "first_name", "middle_name", "last_name", "company")}},
            account=dict(_ACCOUNT), request_id=dict(_RID)),
        "/messages/file": {"post": {
            "summary": "A file uploaded with the request (sent as an image or a document)",
            "responses": _SENT, "requestBody": {"required": True, "content": {"multipart/form-data": {
                "schema": _schema(phone=dict(_PHONE, required=True),
                                  file={"type": "string", "format": "binary", "required": True},
                                  caption=dict(_S), account=dict(_ACCOUNT), request_id=dict(_RID))}}}}},
        "/messages/{id}": {"get": {
            "summary": "A sent message: the channel it went by (whatsapp, or sms when WhatsApp could not deliver"
                       " a notice — then `whatsapp` says why), status (queued, sent, failed, skipped) and"
                       " delivery (sent, delivered, read, failed) on that channel",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": {"200": {"description": "the message"}, "404": {"description": "unknown id"}}}},
        "/phones/{phone}": {"get": {
            "summary": "Whether the phone has WhatsApp (true when it wrote to the shop; else the provider's"
                       " check where it has one — checkWhatsapp —; null: unknown),"
                       " its appointment (null, false waiting, true confirmed) and unsubscribe state",
            "parameters": [{"name": "phone", "in": "path", "required": True, "schema": dict(_S)}],
            "responses": {"200": {"description": "the phone's state"}, "400": {"description": "invalid phone"}}}},
        "/phones/{phone}/messages": {"get": {
            "summary": "The conversation's history, newest last, with delivery statuses",
            "parameters": [{"name": "phone", "in": "path", "required": True, "schema": dict(_S)},
                           {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 200}},
                           {"name": "source", "in": "query", "schema": {"type": "string", "enum": ["provider"]},
                            "description": "provider: the gateway's own chat history (Green-API), with what"
                                           " was written outside KeepDesk"},
                           {"name": "account", "in": "query", "schema": dict(_ACCOUNT)}],
            "responses": {"200": {"description": "the messages"},
                          "422": {"description": "the provider keeps no history"}}}},
        "/contacts": {"get": {
            "summary": "The WhatsApp account's contacts (where the provider keeps them: Green-API's getContacts)",
            "parameters": [{"name": "account", "in": "query", "schema": dict(_ACCOUNT)}],
            "responses": {"200": {"description": "the contacts"},
                          "422": {"description": "not supported by this provider"}}}},
        "/reviews": {"get": {
            "summary": "Finished reviews (score and text) since a moment (default: 30 days)",
            "parameters": [{"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}}],
            "responses": {"200": {"description": "the reviews"}}}},
    },
}
