"""Meta's WhatsApp Cloud API (CHANNELS.md §3): the Graph API's wire format, and nothing else.

    POST {graph}/{version}/{phone_number_id}/messages   text · image|document · template ·
                                                         location · contacts · read status
    POST {graph}/{version}/{phone_number_id}/media      multipart upload → {"id"}
    GET  {graph}/{version}/{media_id}                    → short-lived "url", downloaded
                                                           with the same Bearer token
    webhook  GET  ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…
             POST signed: X-Hub-Signature-256: sha256=HMAC-SHA256(app secret, raw body)

Where Meta's documentation leaves a detail open, both plausible forms are accepted
(noted where it happens).
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from datetime import datetime, timezone

import requests

from channels.base import Health, Media, Rejected, Unavailable
from channels.whatsapp.accounts import Account
from channels.whatsapp.errors import from_graph
from channels.whatsapp.providers import fields as f
from channels.whatsapp.providers.base import Event, Provider, ReceivedMessage, ReceivedStatus
from channels.whatsapp.providers.wire import CONNECT_TIMEOUT, SessionPerThread, download
from models.inbound import InboundMessage, StatusUpdate

READ_TIMEOUT = 20.0
SIGNATURE_HEADER = "X-Hub-Signature-256"

MAX_TEXT = 20000          # a customer's text (WhatsApp allows 4096): bounded at the border
MAX_ID = 128              # message ids (wamid… is about 60 characters)
MAX_NAME = 255
MAX_FILENAME = 255
STATUSES = ("sent", "delivered", "read", "failed")
MEDIA_KINDS = {"image": ("image/jpeg", "photo.jpg"), "document": ("application/octet-stream", "file"),
               "audio": ("audio/ogg", "audio.ogg"), "video": ("video/mp4", "video.mp4"),
               "sticker": ("image/webp", "sticker.webp")}


class CloudApi(SessionPerThread, Provider):
    name = "cloud"
    # The Cloud API cannot tell whether a phone has WhatsApp, nor give a chat's history.
    features = frozenset({"text", "file_url", "file_upload", "location", "contact", "template", "read"})

    def __init__(self, graph_url: str, version: str, *, retries: int = 0) -> None:
        self.base = f"{graph_url.rstrip('/')}/{version}"

    # -- the wire ----------------------------------------------------------------------

    def _call(self, account: Account, method: str, path: str, **kwargs) -> dict:
        headers = {"Authorization": f"Bearer {account.token}"}
        try:
            answer = self._http.request(method, f"{self.base}/{path}", headers=headers,
                                        timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), **kwargs)
        except requests.RequestException as exc:
            # The exception's text may quote the URL (no secret in it: the token is a header).
            raise Unavailable(f"WhatsApp Cloud API unreachable: {type(exc).__name__}") from None
        try:
            body = answer.json()
        except ValueError:
            body = None
        if answer.status_code // 100 != 2 or not isinstance(body, dict):
            raise from_graph(answer.status_code, body)
        return body

    def _send(self, account: Account, to: str, kind: str, content: dict) -> str:
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                "type": kind, kind: content}
        answer = self._call(account, "POST", f"{account.phone_number_id}/messages", json=body)
        messages = answer.get("messages")
        if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict) \
                or not isinstance(messages[0].get("id"), str):
            raise Unavailable("WhatsApp Cloud API answered without a message id")
        return messages[0]["id"][:MAX_ID]

    # -- outbound ----------------------------------------------------------------------

    def send_text(self, account: Account, to: str, text: str, *, ref: str = "") -> str:
        return self._send(account, to, "text", {"body": text, "preview_url": False})

    def upload_media(self, account: Account, data: bytes, mime: str, filename: str) -> str:
        answer = self._call(account, "POST", f"{account.phone_number_id}/media",
                            data={"messaging_product": "whatsapp", "type": mime},
                            files={"file": (filename, data, mime)})
        if not isinstance(answer.get("id"), str):
            raise Unavailable("WhatsApp Cloud API answered an upload without an id")
        return answer["id"]

    def send_media(self, account: Account, to: str, kind: str, media_id: str | None, *,
                   link: str | None = None, caption: str = "", filename: str | None = None,
                   mime: str | None = None, ref: str = "") -> str:
        content: dict = {"id": media_id} if media_id else {"link": link}
        if caption and kind in ("image", "document", "video"):
            content["caption"] = caption
        if filename and kind == "document":
            content["filename"] = filename
        return self._send(account, to, kind, content)

    def send_template(self, account: Account, to: str, name: str, language: str,
                      params: list[str], *, ref: str = "") -> str:
        template: dict = {"name": name, "language": {"code": language}}
        if params:
            template["components"] = [{"type": "body", "parameters": [
                {"type": "text", "text": value} for value in params]}]
        return self._send(account, to, "template", template)

    def send_location(self, account: Account, to: str, latitude: float, longitude: float,
                      name: str = "", address: str = "", *, ref: str = "") -> str:
        content = {"latitude": latitude, "longitude": longitude}
        content.update({k: v for k, v in (("name", name), ("address", address)) if v})
        return self._send(account, to, "location", content)

    def send_contact(self, account: Account, to: str, contact: dict, *, ref: str = "") -> str:
        first, last = contact.get("first_name") or "", contact.get("last_name") or ""
        formatted = " ".join(p for p in (first, contact.get("middle_name") or "", last) if p)
        card = {"name": {"formatted_name": formatted or contact["phone"], "first_name": first or contact["phone"]},
                "phones": [{"phone": "+" + contact["phone"], "type": "CELL", "wa_id": contact["phone"]}]}
        if last:
            card["name"]["last_name"] = last
        if contact.get("company"):
            card["org"] = {"company": contact["company"]}
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                "type": "contacts", "contacts": [card]}
        answer = self._call(account, "POST", f"{account.phone_number_id}/messages", json=body)
        return str(answer.get("messages", [{}])[0].get("id", ""))[:MAX_ID]

    def mark_read(self, account: Account, message_id: str, phone: str = "") -> None:
        self._call(account, "POST", f"{account.phone_number_id}/messages",
                   json={"messaging_product": "whatsapp", "status": "read", "message_id": message_id})

    # -- inbound -----------------------------------------------------------------------

    def verify_subscription(self, accounts: list[Account], args: dict) -> str | None:
        if args.get("hub.mode") != "subscribe":
            return None
        given = args.get("hub.verify_token") or ""
        challenge = args.get("hub.challenge") or ""
        matches = [hmac.compare_digest(given.encode(), a.verify_token.encode())
                   for a in accounts if a.verify_token]
        if not any(matches) or not challenge or len(challenge) > 256:
            return None
        return challenge

    def authentic(self, accounts: list[Account], raw: bytes, headers) -> bool:
        header = headers.get(SIGNATURE_HEADER) or ""
        if not header.startswith("sha256=") or len(header) > 200:
            return False
        given = header[len("sha256="):].strip().lower().encode()
        # Every configured app secret is tried (numbers of several Meta apps), each in
        # constant time; no early exit that would tell which one came close.
        results = [hmac.compare_digest(given, hmac.new(secret.encode(), raw, hashlib.sha256)
                                       .hexdigest().encode())
                   for secret in {a.app_secret for a in accounts if a.app_secret}]
        return any(results)

    def parse(self, raw: bytes, now: datetime, context: dict | None = None) -> Event:
        event = Event()
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeError, ValueError, RecursionError):
            event.not_understood.append("not JSON")
            return event
        if not isinstance(body, dict) or body.get("object") != "whatsapp_business_account":
            event.not_understood.append("not a WhatsApp Business Account body")
            return event
        for entry in _list(body.get("entry")):
            for change in _list(entry.get("changes") if isinstance(entry, dict) else None):
                field = _text(change.get("field"), 64) if isinstance(change, dict) else ""
                if field != "messages" or not isinstance(change.get("value"), dict):
                    # KeepDesk subscribes to `messages` only: another field is a setting to fix
                    # in Meta's app, or news KeepDesk does not read yet.
                    event.not_understood.append(f"field {field!r}" if field else "a change without a field")
                    continue
                _parse_value(change["value"], now, event)
        return event

    def fetch_media(self, account: Account, media_ref: str, max_bytes: int) -> Media:
        info = self._call(account, "GET", media_ref)
        url, mime = info.get("url"), str(info.get("mime_type") or "application/octet-stream")[:100]
        size = info.get("file_size")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise Rejected("WhatsApp gave no download address for the file")
        if isinstance(size, int) and size > max_bytes:
            raise Rejected(f"the file is {size} bytes, over {max_bytes}")
        # The address comes from the Graph API's own (authenticated) answer and wants the
        # token; it is still only fetched from a public address or the configured Graph URL.
        data, _ = download(url, what="WhatsApp media download", max_bytes=max_bytes,
                           read_timeout=READ_TIMEOUT, trusted=(self.base,),
                           headers={"Authorization": f"Bearer {account.token}"}, credentials_for=url)
        return Media(data, mime, "")

    def health(self, account: Account) -> Health:
        try:
            self._call(account, "GET", account.phone_number_id,
                       params={"fields": "verified_name,quality_rating"})
            return Health(True)
        except Exception as exc:  # any failure is "not healthy", with its reason
            return Health(False, str(exc)[:200])


# -- parsing the webhook's value (bounded values only) ------------------------------------------

def _list(value) -> list:
    return value if isinstance(value, list) else []


def _text(value, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _phone(value) -> str | None:
    text = str(value) if isinstance(value, (str, int)) else ""
    return text if text.isdigit() and 5 <= len(text) <= 20 else None


def _when(value, now: datetime) -> datetime:
    """Meta sends epoch seconds as a string (the documentation shows both string and number)."""
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        return now
    if not 1_000_000_000 <= seconds <= 10_000_000_000:
        return now
    return datetime.fromtimestamp(seconds, timezone.utc).replace(tzinfo=None)


def _parse_value(value: dict, now: datetime, event: Event) -> None:
    metadata = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    account = _text(str(metadata.get("phone_number_id") or ""), 32)
    if not account.isdigit():
        event.not_understood.append("a change without metadata.phone_number_id")
        return
    names = {}
    for contact in _list(value.get("contacts")):
        if isinstance(contact, dict) and _phone(contact.get("wa_id")):
            profile = contact.get("profile") if isinstance(contact.get("profile"), dict) else {}
            names[_phone(contact.get("wa_id"))] = _text(profile.get("name"), MAX_NAME) or None
    for raw in _list(value.get("messages")):
        if not isinstance(raw, dict):
            continue
        phone, message_id = _phone(raw.get("from")), _text(raw.get("id"), MAX_ID + 1)
        if phone is None or not message_id or len(message_id) > MAX_ID:
            event.not_understood.append(f"a {_text(raw.get('type'), 32) or 'message'} without a sender or an id")
            continue
        event.messages.append(ReceivedMessage(account, phone, names.get(phone),
                                              _message(raw, message_id, _when(raw.get("timestamp"), now))))
        system = raw.get("system") if raw.get("type") == "system" and isinstance(raw.get("system"), dict) else {}
        new_phone = _phone(system.get("wa_id") or system.get("new_wa_id"))
        if system.get("type") in ("customer_changed_number", "user_changed_number") and new_phone \
                and new_phone != phone:
            event.moves.append((account, phone, new_phone))
    for raw in _list(value.get("statuses")):
        if not isinstance(raw, dict):
            continue
        phone, message_id = _phone(raw.get("recipient_id")), _text(raw.get("id"), MAX_ID + 1)
        status = raw.get("status")
        if phone is None or not message_id or len(message_id) > MAX_ID or status not in STATUSES:
            event.not_understood.append(f"a status {_text(status, 32) or '?'} without a recipient or an id"
                                        if status in STATUSES else f"status {_text(status, 32) or '?'}")
            continue
        code, reason = None, None
        errors = [e for e in _list(raw.get("errors")) if isinstance(e, dict)]
        if errors:
            code = errors[0].get("code") if isinstance(errors[0].get("code"), int) else None
            data = errors[0].get("error_data") if isinstance(errors[0].get("error_data"), dict) else {}
            reason = _text(data.get("details") or errors[0].get("message") or errors[0].get("title"), 500) or None
        event.statuses.append(ReceivedStatus(account, phone, StatusUpdate(
            message_id, status, _when(raw.get("timestamp"), now), code, reason)))


def _message(raw: dict, message_id: str, written: datetime) -> InboundMessage:
    message = _content(raw, message_id, written)
    # What the customer came from: the product they ask about, the ad they tapped.
    context = raw.get("context") if isinstance(raw.get("context"), dict) else {}
    product = context.get("referred_product") if isinstance(context.get("referred_product"), dict) else {}
    referral = raw.get("referral") if isinstance(raw.get("referral"), dict) else {}
    lines = []
    if product.get("product_retailer_id"):
        lines.append(f"🛍 {_text(product.get('product_retailer_id'), 100)}"
                     + (f" (catalog {_text(product.get('catalog_id'), 64)})" if product.get("catalog_id") else ""))
    if referral:
        source = "ad" if referral.get("source_type") == "ad" else _text(referral.get("source_type"), 16) or "ad"
        title = _text(referral.get("headline"), 300) or _text(referral.get("body"), 300)
        link = f.url(referral.get("source_url"))
        lines.append(" ".join(p for p in (f"📣 {source}:", title, link or "") if p))
    if not lines:
        return message
    return dataclasses.replace(message, text="\n".join([message.text, *lines] if message.text else lines))


def _content(raw: dict, message_id: str, written: datetime) -> InboundMessage:
    kind = raw.get("type")
    common = dict(external_id=message_id, from_customer=True, date_written=written)
    content = raw.get(kind) if isinstance(kind, str) and isinstance(raw.get(kind), dict) else {}
    if kind == "text":
        return InboundMessage(text=_text(content.get("body"), MAX_TEXT), **common)
    if kind in MEDIA_KINDS:
        mime, default_name = MEDIA_KINDS[kind]
        media_id = _text(content.get("id"), 255) or None
        name = _text(content.get("filename"), MAX_FILENAME) or default_name
        return InboundMessage(text=_text(content.get("caption"), MAX_TEXT), is_img=kind in ("image", "sticker"),
                              is_file=kind not in ("image", "sticker"), filename=name,
                              media_ref=media_id, **common)
    if kind == "button":
        # A template's quick-reply button: its text, and its payload for the dialogues.
        return InboundMessage(text=_text(content.get("text"), MAX_TEXT),
                              payload=_text(content.get("payload"), 256) or None, **common)
    if kind == "interactive":
        reply = content.get("button_reply") or content.get("list_reply") or content.get("nfm_reply") or {}
        reply = reply if isinstance(reply, dict) else {}
        return InboundMessage(text=_text(reply.get("title"), MAX_TEXT) or _text(reply.get("body"), MAX_TEXT),
                              payload=_text(reply.get("id"), 256) or None, **common)
    if kind == "location":
        return InboundMessage(text=f.location_text(content.get("latitude"), content.get("longitude"),
                                                   content.get("name"), content.get("address")), **common)
    if kind == "contacts":
        cards = []
        for card in _list(raw.get("contacts"))[:10]:
            if isinstance(card, dict):
                name = card.get("name") if isinstance(card.get("name"), dict) else {}
                org = card.get("org") if isinstance(card.get("org"), dict) else {}
                cards.append(f.contact_text(
                    name.get("formatted_name"),
                    [p.get("phone") for p in _list(card.get("phones")) if isinstance(p, dict)],
                    [e.get("email") for e in _list(card.get("emails")) if isinstance(e, dict)],
                    org.get("company")))
        return InboundMessage(text="\n".join(cards), **common)
    if kind == "reaction":
        return InboundMessage(text=_text(content.get("emoji"), 16), **common)
    if kind == "order":
        return InboundMessage(text=_order(content), **common)
    if kind == "system":
        return InboundMessage(text=_system(content), **common)
    if kind == "unsupported":
        return InboundMessage(text="[повідомлення, яке WhatsApp не передає в Cloud API]", **common)
    return InboundMessage(text=f"[{_text(str(kind), 32)}]", **common)


def _order(order: dict) -> str:
    """A cart sent from the catalogue: each item, its quantity and price, the total."""
    lines, total, currencies = ["🛒"], 0.0, set()
    for item in _list(order.get("product_items"))[:50]:
        if not isinstance(item, dict):
            continue
        quantity, price = f.amount(item.get("quantity")), f.amount(item.get("item_price"))
        currency = _text(item.get("currency"), 8)
        line = f"• {_text(item.get('product_retailer_id'), 100) or '?'} × {quantity:g}" if quantity is not None \
            else f"• {_text(item.get('product_retailer_id'), 100) or '?'}"
        if price is not None:
            line += f" · {f.money(price, currency)}"
            if quantity is not None:
                total += price * quantity
                currencies.add(currency)
        lines.append(line)
    if len(currencies) == 1 and len(lines) > 1:
        lines.append(f"Σ {f.money(total, currencies.pop())}")
    if _text(order.get("text"), MAX_TEXT):
        lines.append(_text(order.get("text"), MAX_TEXT))
    return "\n".join(lines)


def _system(system: dict) -> str:
    """WhatsApp's own notice in a chat: the customer changed number (the conversation then
    follows the new one) or their security identity."""
    new_phone = _phone(system.get("wa_id") or system.get("new_wa_id"))
    if system.get("type") in ("customer_changed_number", "user_changed_number") and new_phone:
        return f"🔁 клієнт змінив номер на +{new_phone}"
    if system.get("type") == "customer_identity_changed":
        return "🔐 клієнт перевстановив WhatsApp або змінив телефон (новий код безпеки)"
    return "ℹ️ " + (_text(system.get("body"), 500) or "WhatsApp: системне повідомлення")
