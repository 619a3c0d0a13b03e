"""Devino's WhatsApp HTTP API (CHANNELS.md §4), and nothing else here.

    POST {DEVINO_URL}/whatsapp/messages   Authorization: Key <credentials>
         {"messages": [{"from", "to", "text" | "contentUrl", "contentType", "contentName" |
                        "templateId", "templateParams": {"1": …}, "languageCode";
                        "callbackUrl", "callbackData"}, …]}
         → {"result": [{"code": "OK", "messageId"} |
                       {"code": "REJECTED", "reasons": [{"key", "ref"}], "description"}, …]}
           one result per message, in the same order.
    status callbacks → callbackUrl: [{"messageId", "ts", "status", "errorCode", "options"}]
    incoming webhook: {"incomingMessageId", "to", "from", "ts", "text", "contentUrl",
                       "contentType", "contentName", "profileName",
                       "whatsAppGeoLocation": {"latitude", "longitude", "address", "addressName"},
                       "whatsAppContacts": [{names, phones, emails, company}]}
    A message to a `to` that is none of our senders is the account's when only one Devino
    account shares its callback address (noted once), else a dead letter naming it.

Batching is the point: many queued messages go in one call (`send_batch`); a single send
is a batch of one. Devino signs nothing, so its callbacks come to paths with a secret
(`/whatsapp/devino/<secret>/status|incoming`), and every message carries `callbackData`
= "<account>|<phone>|<our reference>": a status callback names its conversation, and the
message it is about even when the answer to its batch was lost.

Files go by URL only (`contentUrl`): a file KeepDesk sends is kept by the channel and
offered to Devino behind a short-lived signed link on the integrations door. There is no
read receipt, number check, history, nor sending a location or contact in this API: those
are "not supported by this provider" (a customer's location and contacts do come in). Where the documentation we read leaves a detail open
(the status names of callbacks, a callback as one object or a list, `ts` as epoch or
ISO time) both plausible forms are accepted. An UNDELIVERED callback (the customer could not
be reached) reads to the manager as Meta's 131026 does; other failures keep Devino's code.
"""
from __future__ import annotations

import json
from datetime import datetime

import requests

from channels.base import Health, Media, Rejected, Unavailable
from channels.whatsapp.accounts import Account
from channels.whatsapp.errors import BadToken, OutcomeUnknown, Refused, ShopMustAct, Throttled
from channels.whatsapp.providers import fields as f
from channels.whatsapp.providers.base import (BatchItem, BatchResult, Event, Provider,
                                              ReceivedMessage, ReceivedStatus)
from channels.whatsapp.providers.wire import CONNECT_TIMEOUT, SessionPerThread, download
from models.inbound import InboundMessage, StatusUpdate

READ_TIMEOUT = 30.0
MAX_TEXT = 1000           # Devino's `text`: up to 1000 UTF-8 characters
MAX_CONTENT_NAME = 100

# Callback statuses (upper or lower case) → the contract's statuses.
STATUS = {"sent": "sent", "enroute": "sent", "accepted": "sent", "submitted": "sent",
          "delivered": "delivered", "read": "read", "seen": "read",
          "undelivered": "failed", "undeliverable": "failed", "failed": "failed",
          "rejected": "failed", "expired": "failed", "deleted": "failed", "error": "failed"}
# A callback status saying the customer could not be reached (not the shop's problem).
UNREACHABLE = ("undelivered", "undeliverable")
# Reason keys of a REJECTED result.
SHOP_MUST_ACT = ("billing.error", "forbidden")
LATER = ("too.many.messages",)


def callback_data(account: str, phone: str, ref: str) -> str:
    return f"{account}|{phone}|{ref}"[:256]


def read_callback_data(value) -> tuple[str, str, str] | None:
    parts = f.text(value, 256).split("|")
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], parts[1], parts[2]


class Devino(SessionPerThread, Provider):
    name = "devino"
    features = frozenset({"text", "file_url", "file_upload", "template", "batch"})
    max_text = MAX_TEXT

    def __init__(self, public_url: str | None, *, read_timeout: float = READ_TIMEOUT) -> None:
        self.public_url = (public_url or "").rstrip("/")
        self.read_timeout = read_timeout

    def callback_url(self, account: Account) -> str:
        return f"{self.public_url}/whatsapp/devino/{account.callback_secret}/status"

    # -- the batch: the one call everything goes through -------------------------------------

    def send_batch(self, account: Account, items: list[BatchItem]) -> list[BatchResult]:
        answer = post_messages(self._http, f"{account.url}/whatsapp/messages", account.token,
                               [self._message(account, item) for item in items], self.read_timeout)
        if answer.status_code // 100 != 2:
            raise from_devino(answer.status_code, answer.text, answer.headers.get("Retry-After"))
        return batch_results(answer)

    def _message(self, account: Account, item: BatchItem) -> dict:
        message = {"from": account.id, "to": item.to}
        body = item.body
        if item.kind == "text":
            message["text"] = body["text"]
        elif item.kind in ("image", "document"):
            message.update({"contentUrl": body["link"], "contentType": body.get("mime")
                            or ("image/jpeg" if item.kind == "image" else "application/octet-stream"),
                            "contentName": (body.get("filename") or "file")[:MAX_CONTENT_NAME]})
            if body.get("caption"):
                message["text"] = body["caption"]
        elif item.kind == "template":
            message.update({"templateId": body["name"], "languageCode": body.get("language") or "en",
                            "templateParams": {str(n): str(value)
                                               for n, value in enumerate(body.get("params") or [], 1)}})
        else:
            raise Rejected(f"{item.kind} is not supported by the devino provider")
        if self.public_url and account.callback_secret:
            message["callbackUrl"] = self.callback_url(account)
        message["callbackData"] = item.ref
        return message

    def _one(self, account: Account, item: BatchItem) -> str:
        results = self.send_batch(account, [item])
        if len(results) != 1:
            raise OutcomeUnknown(f"Devino answered {len(results)} results for 1 message")
        return accepted(results[0])

    # -- outbound, one at a time (a batch of one) --------------------------------------------

    def send_text(self, account: Account, to: str, text: str, *, ref: str = "") -> str:
        if len(text) > MAX_TEXT:
            raise Rejected(f"Devino takes at most {MAX_TEXT} characters", max_length=MAX_TEXT)
        return self._one(account, BatchItem(to, "text", {"text": text}, callback_data(account.id, to, ref)))

    def upload_media(self, account: Account, data: bytes, mime: str, filename: str) -> str:
        raise AssertionError("the channel keeps a Devino file itself and offers it by URL")

    def send_media(self, account: Account, to: str, kind: str, media_id: str | None, *,
                   link: str | None = None, caption: str = "", filename: str | None = None,
                   mime: str | None = None, ref: str = "") -> str:
        if not link:
            raise AssertionError("Devino takes files by URL only")
        return self._one(account, BatchItem(to, kind, {"link": link, "caption": caption, "filename": filename,
                                                        "mime": mime}, callback_data(account.id, to, ref)))

    def send_template(self, account: Account, to: str, name: str, language: str,
                      params: list[str], *, ref: str = "") -> str:
        return self._one(account, BatchItem(to, "template", {"name": name, "language": language,
                                                              "params": params},
                                            callback_data(account.id, to, ref)))

    def send_location(self, account: Account, to: str, latitude: float, longitude: float,
                      name: str = "", address: str = "", *, ref: str = "") -> str:
        self.require("location")
        raise AssertionError("unreachable")

    def send_contact(self, account: Account, to: str, contact: dict, *, ref: str = "") -> str:
        self.require("contact")
        raise AssertionError("unreachable")

    def mark_read(self, account: Account, message_id: str, phone: str = "") -> None:
        self.require("read")

    # -- inbound -----------------------------------------------------------------------

    def parse(self, raw: bytes, now: datetime, context: dict | None = None) -> Event:
        context = context or {}
        event = Event()
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeError, ValueError, RecursionError):
            event.not_understood.append("not JSON")
            return event
        items = body if isinstance(body, list) else [body]
        accounts = [a for a in context.get("accounts") or [] if isinstance(a, str)]
        for item in items[:1000]:
            if not isinstance(item, dict):
                event.not_understood.append("not an object")
            elif context.get("route") == "status":
                _status(item, accounts, now, event)
            else:
                _incoming(item, accounts, now, event)
        return event

    def fetch_media(self, account: Account, media_ref: str, max_bytes: int) -> Media:
        if not media_ref.startswith(("http://", "https://")):
            raise Rejected("the file's address is not a URL")
        # Devino's own storage wants the key; a link elsewhere — another host, port or scheme,
        # however much its text looks like Devino's — gets no credentials.
        data, mime = download(media_ref, what="Devino file download", max_bytes=max_bytes,
                              read_timeout=READ_TIMEOUT, trusted=(account.url,),
                              headers={"Authorization": f"Key {account.token}"}, credentials_for=account.url)
        return Media(data, mime, "")

    def health(self, account: Account) -> Health:
        # Devino offers no state call: the account is as healthy as its last answers, which
        # the failure policy reports; here, only what can be told without a call.
        if not self.public_url:
            return Health(False, "PUBLIC_URL is not set: Devino cannot call back")
        return Health(True)


def accepted(result: BatchResult) -> str:
    """A single message's result as the contract's outcome: its id, or the error."""
    if result.message_id:
        return result.message_id
    raise rejection(result)


def rejection(result: BatchResult) -> Exception:
    keys = ", ".join(result.reasons) or "no reason given"
    reason = f"Devino REJECTED ({keys})" + (f": {result.description}" if result.description else "")
    if any(k in SHOP_MUST_ACT for k in result.reasons):
        return ShopMustAct(reason + " — the shop's Devino account must be fixed, then /retry_")
    if any(k in LATER for k in result.reasons):
        return Throttled(reason, None, 1.0)
    if "length.too.long" in result.reasons:
        error = Rejected(reason, max_length=MAX_TEXT)
        return error
    return Refused(reason)


def from_devino(status: int, body: str, retry_after: str | None = None) -> Exception:
    """A call refused as a whole (not 2xx): nothing of the batch was taken."""
    words = (body or "")[:300]
    reason = f"Devino: HTTP {status}" + (f" ({words})" if words else "")
    if status == 429:
        try:
            wait = min(60.0, max(0.2, float(retry_after))) if retry_after else 1.0
        except ValueError:
            wait = 1.0
        return Throttled(reason, 429, wait)
    if status >= 500:
        return Unavailable(reason)
    if status in (401, 403):
        return BadToken(f"Devino refused the key ({reason}): check WHATSAPP_DEVINO_KEY, then /retry_", status)
    if status == 402:
        return ShopMustAct(f"Devino: billing ({reason}): top the account up, then /retry_", status)
    return Refused(reason, status)


def post_messages(http, url: str, key: str, messages: list[dict], read_timeout: float, *,
                  what: str = "Devino") -> requests.Response:
    """One call of Devino's batch API (WhatsApp's or SMS's: the same shape and key): its
    answer, whatever its status. Raises Unavailable when the call certainly did not reach
    Devino, OutcomeUnknown when it may have (the answer was lost)."""
    try:
        return http.post(url, json={"messages": messages}, headers={"Authorization": f"Key {key}"},
                         timeout=(CONNECT_TIMEOUT, read_timeout))
    except (requests.ConnectTimeout, requests.exceptions.InvalidURL) as exc:
        raise Unavailable(f"{what} unreachable: {type(exc).__name__}") from None
    except requests.ConnectionError as exc:
        if _never_left(exc):
            raise Unavailable(f"{what} unreachable: {type(exc).__name__}") from None
        raise OutcomeUnknown(f"{what}'s answer was lost ({type(exc).__name__})") from None
    except requests.RequestException as exc:
        raise OutcomeUnknown(f"{what}'s answer was lost ({type(exc).__name__})") from None


def batch_results(answer: requests.Response, *, what: str = "Devino") -> list[BatchResult]:
    """A 2xx answer's results, one per message in its place; OutcomeUnknown when it cannot
    be read (the messages may have been taken)."""
    try:
        body = answer.json()
    except ValueError:
        raise OutcomeUnknown(f"{what} answered 2xx with a body that is not JSON") from None
    results = body.get("result") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise OutcomeUnknown(f"{what} answered 2xx without a result list")
    return [_result(raw) for raw in results]


def _never_left(exc: requests.ConnectionError) -> bool:
    """A connection that was never made: the request certainly did not reach Devino."""
    text = repr(exc)
    return any(mark in text for mark in ("NewConnectionError", "Connection refused",
                                         "Name or service not known", "Failed to resolve"))


def _result(raw) -> BatchResult:
    raw = f.as_dict(raw)
    code = f.text(raw.get("code"), 32).upper()
    if code == "OK":
        message_id = f.message_id(raw.get("messageId"))
        if message_id:
            return BatchResult(message_id)
        return BatchResult(None, ("no.message.id",), "OK without a messageId")
    reasons = tuple(f.text(f.as_dict(r).get("key"), 64) for r in f.as_list(raw.get("reasons"))[:10]
                    if f.text(f.as_dict(r).get("key"), 64))
    return BatchResult(None, reasons or (code.lower() or "unknown",), f.text(raw.get("description"), 500))


def _status(item: dict, accounts: list[str], now: datetime, event: Event) -> None:
    message_id = f.message_id(item.get("messageId"))
    raw = f.text(item.get("status"), 32)
    status = STATUS.get(raw.lower())
    if message_id is None or status is None:
        event.not_understood.append(f"status {raw or '?'}")
        return
    account, phone, ref = read_callback_data(item.get("options")) or ("", "", None)
    if account and account not in accounts:
        event.not_understood.append("status for another account")
        return
    account = account or (accounts[0] if len(accounts) == 1 else "")
    code = item.get("errorCode")
    code = code if isinstance(code, int) and not isinstance(code, bool) else (
        int(code) if isinstance(code, str) and code.isdigit() and len(code) < 10 else None)
    reason = None
    if status == "failed":
        reason = f"Devino: {raw.upper()}" + (f", error {code}" if code is not None else "")
        if raw.lower() in UNREACHABLE:
            # The customer's phone could not be reached: the same words for the manager as
            # Meta's 131026 (no WhatsApp, an old app, the shop blocked), no #ERROR.
            code = 131026
    event.statuses.append(ReceivedStatus(account, phone, StatusUpdate(
        message_id, status, f.when(item.get("ts"), now), code, reason), ref))


def _incoming(item: dict, accounts: list[str], now: datetime, event: Event) -> None:
    message_id = f.message_id(item.get("incomingMessageId"))
    phone = f.phone(item.get("from"))
    if message_id is None or phone is None:
        event.not_understood.append("an incoming message without an incomingMessageId or a sender's phone")
        return
    to = f.text(item.get("to"), 64).strip()
    account = to.lstrip("+") if to.lstrip("+") in accounts else None
    if account is None and len(accounts) == 1:
        # One Devino account behind this address: the message is its own, whatever `to`
        # says (WHATSAPP_DEVINO_FROM is often the sender's name, `to` its number).
        account = accounts[0]
        if to:
            event.notes.append(f"Devino message to {to!r} placed on the sender {account!r}: "
                               f"set WHATSAPP_DEVINO_FROM to what Devino sends as `to`")
    if account is None:
        event.not_understood.append(f"an incoming message to {to or 'no address'!r}, which is none of our "
                                    f"Devino senders ({', '.join(accounts) or 'none'})")
        return
    event.messages.append(ReceivedMessage(account, phone, f.text(item.get("profileName"), f.MAX_NAME) or None,
                                          _content(item, message_id, f.when(item.get("ts"), now))))


def _content(item: dict, message_id: str, written: datetime) -> InboundMessage:
    common = dict(external_id=message_id, from_customer=True, date_written=written)
    text = f.text(item.get("text"), f.MAX_TEXT)
    link = f.url(item.get("contentUrl"))
    place = f.as_dict(item.get("whatsAppGeoLocation"))
    contacts = item.get("whatsAppContacts")
    if link:
        mime = f.text(item.get("contentType"), 100) or "application/octet-stream"
        is_img = mime.startswith("image/")
        return InboundMessage(text=text, is_img=is_img, is_file=not is_img,
                              filename=f.text(item.get("contentName"), f.MAX_FILENAME)
                              or ("photo.jpg" if is_img else "file"), media_ref=link, **common)
    lines = [text] if text else []
    if place:
        lines.append(f.location_text(place.get("latitude"), place.get("longitude"),
                                     place.get("addressName"), place.get("address")))
    for contact in (contacts if isinstance(contacts, list) else [contacts] if isinstance(contacts, dict) else [])[:10]:
        if isinstance(contact, dict):
            lines.append(_contact(contact))
    return InboundMessage(text="\n".join(lines), **common)


def _contact(card: dict) -> str:
    """One of `whatsAppContacts`: its names, phones, e-mails and company. The documentation
    lists the fields without their inner shape, so a value may be a string, an object
    (formattedName / firstName / lastName, phone, email) or a list of either."""
    names = card.get("names", card.get("name"))
    name = ""
    for value in (names if isinstance(names, list) else [names]):
        if isinstance(value, dict):
            value = value.get("formattedName") or " ".join(
                f.text(value.get(k), f.MAX_NAME) for k in ("firstName", "middleName", "lastName") if value.get(k))
        name = name or f.text(value, f.MAX_NAME)

    def values(key: str, inner: str) -> list[str]:
        raw = card.get(key)
        found = []
        for value in (raw if isinstance(raw, list) else [raw])[:5]:
            value = f.as_dict(value).get(inner) if isinstance(value, dict) else value
            if f.text(value, 254):
                found.append(f.text(value, 254))
        return found

    company = card.get("company")
    company = f.as_dict(company).get("name") if isinstance(company, dict) else company
    return f.contact_text(name, values("phones", "phone"), values("emails", "email"),
                          company or f.as_dict(card.get("org")).get("company"))
