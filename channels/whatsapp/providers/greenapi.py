"""Green-API-compatible gateways (CHANNELS.md §4: sdkwa.pro, basis-api, Green-API itself):
a WhatsApp account linked to an "instance" and driven over HTTP, and nothing else here.

    {apiUrl}/waInstance{id}/{method}/{apiToken}              style "path" (Green-API's own)
    {apiUrl}/whatsapp/{id}/{method}  Authorization: Bearer   style "bearer" (sdkwa-like)

    sendMessage · sendFileByUrl · sendFileByUpload (multipart, on the media host) ·
    sendLocation · sendContact → {"idMessage"}; readChat; checkWhatsapp → {"existsWhatsapp"};
    getChatHistory; getStateInstance → {"stateInstance"};
    receiveNotification?receiveTimeout= → {"receiptId", "body"} | null; deleteNotification/{receiptId}

Chats are "79001234567@c.us". The account is a person's WhatsApp: no 24-hour window and
no approved templates — a template is sent as the shop's own text for it
(`channels/whatsapp/templates.py`). Bodies of the webhook and of the notification queue
are the same JSON (`typeWebhook`); group chats, calls and the phone's device state are
not the desk's business and are skipped; any other notification not read here makes its
body a dead letter that names it. Where the public documentation leaves a detail open (the error body's shape,
"empty" receive answers) both plausible forms are accepted, as noted where it happens.

Every call names its method's limit bucket (`LIMITS`): the channel reserves a slot in the
shared limiter before calling, and a 429 holds that bucket back.
"""
from __future__ import annotations

import hmac
import re
import json
import threading
from datetime import datetime

import requests

from channels.base import Health, Media, Rejected, Unavailable
from channels.whatsapp.accounts import Account
from channels.whatsapp.errors import (BadToken, NotAuthorized, OutcomeUnknown, Refused, ShopMustAct,
                                      Throttled)
from channels.whatsapp.providers import fields as f
from channels.whatsapp.providers.base import (Event, HistoryItem, Notification, Provider,
                                              ReceivedMessage, ReceivedStatus)
from channels.whatsapp.providers.wire import CONNECT_TIMEOUT, MEDIA_DEADLINE, SessionPerThread, download
from models.inbound import InboundMessage, StatusUpdate
from utils.clock import utc_now
from utils.fetch import FetchError, Fetcher, Refused as FetchRefused

READ_TIMEOUT = 20.0
MAX_TEXT = 20000          # sendMessage's `message` (Green-API's documented maximum)

# Per-instance limits of the documentation, per second (CHANNELS.md §4), by bucket.
LIMITS = {"send": 50.0, "notifications": 100.0, "read": 10.0, "check": 10.0,
          "history": 1.0, "contacts": 1.0}
BUCKET_OF = {"sendMessage": "send", "sendFileByUrl": "send", "sendFileByUpload": "send",
             "sendLocation": "send", "sendContact": "send", "readChat": "read",
             "checkWhatsapp": "check", "getChatHistory": "history", "getContacts": "contacts",
             "receiveNotification": "notifications", "deleteNotification": "notifications"}

STATES = ("authorized", "notAuthorized", "blocked", "sleepMode", "starting", "yellowCard")
# outgoingMessageStatus → the contract's statuses; a failure's Cloud-API-like code lets the
# desk tell the manager the same words whatever the provider (131026: cannot receive).
STATUS = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed",
          "noAccount": "failed", "notInGroup": "failed", "yellowCard": "failed"}
STATUS_CODE = {"noAccount": 131026}
FILE_KINDS = {"imageMessage": ("image/jpeg", "photo.jpg", True),
              "videoMessage": ("video/mp4", "video.mp4", False),
              "documentMessage": ("application/octet-stream", "file", False),
              "audioMessage": ("audio/ogg", "audio.ogg", False),
              "stickerMessage": ("image/webp", "sticker.webp", True)}
MESSAGE_WEBHOOKS = ("incomingMessageReceived", "outgoingMessageReceived", "outgoingAPIMessageReceived")
# Documented notifications that carry nothing for the desk: the phone's socket and device,
# calls (the desk is not a phone), a contact the account blocked. Skipped, not lost.
NOT_THE_DESKS = ("statusInstanceChanged", "deviceInfo", "incomingCall", "incomingBlock")


def chat_id(phone: str) -> str:
    return f"{phone}@c.us"


class GreenApi(SessionPerThread, Provider):
    name = "greenapi"
    features = frozenset({"text", "file_url", "file_upload", "location", "contact", "template",
                          "read", "check", "history", "contacts"})
    reply_window = None       # a linked personal account: WhatsApp's 24-hour rule is the Business API's
    max_text = MAX_TEXT

    def __init__(self, templates=None, *, read_timeout: float = READ_TIMEOUT,
                 guarded: Fetcher | None = None) -> None:
        # The shop's texts for templates (channels/whatsapp/templates.py): this provider has none.
        self.templates = templates
        self.read_timeout = read_timeout
        # An account added in the panel names a URL someone typed: every call to it goes
        # through the guarded fetcher's connections (public addresses, or exactly the
        # origins the operator trusts), never a plain session.
        self.guarded = guarded or Fetcher()
        self._guarded_sessions = threading.local()

    def _session(self, account: Account) -> requests.Session:
        if account.source != "panel":
            return self._http
        session = getattr(self._guarded_sessions, "session", None)
        if session is None:
            session = self._guarded_sessions.session = self.guarded.session()
        return session

    # -- the wire ----------------------------------------------------------------------

    def url(self, account: Account, method: str, suffix: str = "", *, media: bool = False) -> str:
        base = (account.media_url or account.url) if media else account.url
        if account.style == "bearer":
            return f"{base}/whatsapp/{account.id}/{method}{suffix}"
        return f"{base}/waInstance{account.id}/{method}/{account.token}{suffix}"

    def _call(self, account: Account, http: str, method: str, *, suffix: str = "",
              media: bool = False, read_timeout: float | None = None, **kwargs):
        headers = {"Authorization": f"Bearer {account.token}"} if account.style == "bearer" else {}
        try:
            answer = self._session(account).request(
                http, self.url(account, method, suffix, media=media), headers=headers,
                timeout=(CONNECT_TIMEOUT, read_timeout or self.read_timeout),
                allow_redirects=account.source != "panel", **kwargs)
        except FetchRefused as exc:
            raise ShopMustAct(f"Green-API {method}: the gateway's address is refused ({exc})", 0) from None
        except FetchError as exc:
            raise Unavailable(f"Green-API {method} unreachable: {exc}") from None
        except (requests.ConnectTimeout, requests.exceptions.InvalidURL) as exc:
            raise Unavailable(f"Green-API {method} unreachable: {type(exc).__name__}") from None
        except requests.RequestException as exc:
            # Never the exception's text: in the "path" style the URL carries the token.
            if method.startswith("send") and not _never_left(exc):
                raise OutcomeUnknown(f"Green-API {method}: the answer was lost ({type(exc).__name__})") from None
            raise Unavailable(f"Green-API {method} unreachable: {type(exc).__name__}") from None
        if answer.status_code // 100 != 2:
            raise from_greenapi(method, answer.status_code, answer.text, answer.headers.get("Retry-After"))
        if not answer.content.strip():
            return None
        try:
            return answer.json()
        except ValueError:
            raise Unavailable(f"Green-API {method} answered with a body that is not JSON") from None

    def _sent(self, account: Account, method: str, **kwargs) -> str:
        answer = self._call(account, "POST", method, **kwargs)
        message_id = f.message_id(answer.get("idMessage")) if isinstance(answer, dict) else None
        if message_id is None:
            raise Unavailable(f"Green-API {method} answered without an idMessage")
        return message_id

    # -- outbound ----------------------------------------------------------------------

    def send_text(self, account: Account, to: str, text: str, *, ref: str = "") -> str:
        if len(text) > MAX_TEXT:
            raise Rejected(f"a message is at most {MAX_TEXT} characters", max_length=MAX_TEXT)
        return self._sent(account, "sendMessage", json={"chatId": chat_id(to), "message": text})

    def upload_media(self, account: Account, data: bytes, mime: str, filename: str) -> str:
        raise AssertionError("the channel keeps a Green-API file itself and sends it with send_file")

    def send_file(self, account: Account, to: str, data: bytes, filename: str, mime: str,
                  caption: str = "") -> str:
        """sendFileByUpload: the file and its message in one call, on the media host."""
        form = {"chatId": chat_id(to), "fileName": filename}
        if caption:
            form["caption"] = caption
        return self._sent(account, "sendFileByUpload", media=True, data=form,
                          files={"file": (filename, data, mime)},
                          read_timeout=max(MEDIA_DEADLINE, self.read_timeout))

    def send_media(self, account: Account, to: str, kind: str, media_id: str | None, *,
                   link: str | None = None, caption: str = "", filename: str | None = None,
                   mime: str | None = None, ref: str = "") -> str:
        if not link:
            raise AssertionError("a Green-API file is sent by URL here, by upload with send_file")
        body = {"chatId": chat_id(to), "urlFile": link,
                "fileName": filename or link.rsplit("/", 1)[-1][:100] or "file"}
        if caption:
            body["caption"] = caption
        return self._sent(account, "sendFileByUrl", json=body)

    def send_template(self, account: Account, to: str, name: str, language: str,
                      params: list[str], *, ref: str = "") -> str:
        if self.templates is None:
            raise ShopMustAct(f"no text for the template {name}: see WHATSAPP_TEMPLATE_TEXTS")
        return self.send_text(account, to, self.templates.render(name, language, params))

    def send_location(self, account: Account, to: str, latitude: float, longitude: float,
                      name: str = "", address: str = "", *, ref: str = "") -> str:
        return self._sent(account, "sendLocation", json={
            "chatId": chat_id(to), "nameLocation": name, "address": address,
            "latitude": latitude, "longitude": longitude})

    def send_contact(self, account: Account, to: str, contact: dict, *, ref: str = "") -> str:
        card = {"phoneContact": int(contact["phone"]), "firstName": contact.get("first_name") or "",
                "middleName": contact.get("middle_name") or "", "lastName": contact.get("last_name") or "",
                "company": contact.get("company") or ""}
        return self._sent(account, "sendContact", json={"chatId": chat_id(to), "contact": card})

    def mark_read(self, account: Account, message_id: str, phone: str = "") -> None:
        body = {"chatId": chat_id(phone)}
        if message_id:
            body["idMessage"] = message_id
        self._call(account, "POST", "readChat", json=body)

    # -- inbound -----------------------------------------------------------------------

    def instance_of(self, raw: bytes) -> str | None:
        """Which instance a webhook body is about (instanceData.idInstance), or None."""
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeError, ValueError, RecursionError):
            return None
        instance = f.as_dict(f.as_dict(body).get("instanceData")).get("idInstance")
        value = f.text(instance, 32)
        return value if value.isdigit() else None

    @staticmethod
    def authorised(account: Account, headers) -> bool:
        """The webhook's Authorization header carries the account's webhook token, with or
        without "Bearer " (the documentation shows both). An account without a token
        (a polled one) takes no webhook at all."""
        if not account.webhook_token or account.receive != "webhook":
            return False
        given = (headers.get("Authorization") or "").strip()
        if given.lower().startswith("bearer "):
            given = given[7:].strip()
        try:
            return hmac.compare_digest(given.encode("utf-8"), account.webhook_token.encode("utf-8"))
        except UnicodeEncodeError:
            return False

    def parse(self, raw: bytes, now: datetime, context: dict | None = None) -> Event:
        event = Event()
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeError, ValueError, RecursionError):
            event.not_understood.append("not JSON")
            return event
        if not isinstance(body, dict):
            event.not_understood.append("not an object")
            return event
        kind = f.text(body.get("typeWebhook"), 64)
        account = f.text(f.as_dict(body.get("instanceData")).get("idInstance"), 32)
        if not account.isdigit():
            event.not_understood.append(f"{kind or 'notification'} without an instance")
            return event
        if kind in MESSAGE_WEBHOOKS:
            _message(body, kind, account, now, event)
        elif kind == "outgoingMessageStatus":
            _status(body, account, now, event)
        elif kind == "stateInstanceChanged" and f.text(body.get("stateInstance"), 32):
            event.states.append((account, f.text(body.get("stateInstance"), 32)))
        elif kind in NOT_THE_DESKS:
            event.skipped.append(kind)
        elif kind == "quotaExceeded":
            event.not_understood.append("quotaExceeded: the gateway's quota is used up — upgrade the plan")
        else:
            event.not_understood.append(f"typeWebhook {kind!r}" if kind else "a notification without typeWebhook")
        return event

    def fetch_media(self, account: Account, media_ref: str, max_bytes: int) -> Media:
        """A customer's file: its downloadUrl (the gateway's storage; no credentials)."""
        if not media_ref.startswith(("http://", "https://")):
            raise Rejected("the file's address is not a URL")
        data, mime = download(media_ref, what="Green-API file download", max_bytes=max_bytes,
                              read_timeout=READ_TIMEOUT, trusted=(account.url, account.media_url),
                              refused_hint=" (expired?)")
        return Media(data, mime, "")

    def receive(self, account: Account, timeout: int) -> Notification | None:
        answer = self._call(account, "GET", "receiveNotification", params={"receiveTimeout": timeout},
                            read_timeout=timeout + self.read_timeout)
        # An empty queue answers `null` (or an empty body): nothing waiting.
        if not isinstance(answer, dict) or answer.get("receiptId") is None:
            return None
        receipt = f.text(answer.get("receiptId"), 32)
        if not receipt.isdigit():
            raise Unavailable("Green-API receiveNotification answered without a receiptId")
        body = answer.get("body")
        return Notification(receipt, json.dumps(body, ensure_ascii=False).encode("utf-8"))

    def acknowledge(self, account: Account, receipt: str) -> None:
        # {"result": false} means it was deleted already (a re-run): the same outcome.
        self._call(account, "DELETE", "deleteNotification", suffix=f"/{receipt}")

    # -- other -------------------------------------------------------------------------

    def check_phone(self, account: Account, phone: str) -> bool | None:
        answer = self._call(account, "POST", "checkWhatsapp", json={"phoneNumber": int(phone)})
        exists = answer.get("existsWhatsapp") if isinstance(answer, dict) else None
        return exists if isinstance(exists, bool) else None

    def history(self, account: Account, phone: str, count: int) -> list[HistoryItem]:
        answer = self._call(account, "POST", "getChatHistory", json={"chatId": chat_id(phone), "count": count})
        items = []
        for raw in f.as_list(answer):
            if not isinstance(raw, dict):
                continue
            message_id = f.message_id(raw.get("idMessage"))
            if message_id is None:
                continue
            kind = f.text(raw.get("typeMessage"), 64)
            body = (f.text(raw.get("textMessage"), f.MAX_TEXT) or f.text(raw.get("caption"), f.MAX_TEXT)
                    or (f"📎 {f.text(raw.get('fileName'), f.MAX_FILENAME)}" if raw.get("downloadUrl") else ""))
            items.append(HistoryItem(message_id, raw.get("type") == "incoming", body,
                                     f.when(raw.get("timestamp"), utc_now()),
                                     kind or "text", f.text(raw.get("statusMessage"), 16) or None))
        items.sort(key=lambda item: item.at or datetime.min)
        return items

    def contacts(self, account: Account) -> list[tuple[str, str]]:
        answer = self._call(account, "GET", "getContacts")
        found = []
        for raw in f.as_list(answer)[:10000]:
            raw = f.as_dict(raw)
            phone = f.phone(raw.get("id"))
            if phone is not None and f.text(raw.get("type"), 16) in ("", "user"):
                found.append((phone, f.text(raw.get("name"), f.MAX_NAME) or f.text(raw.get("contactName"), f.MAX_NAME)))
        return found

    def state(self, account: Account) -> str | None:
        answer = self._call(account, "GET", "getStateInstance")
        state = f.text(answer.get("stateInstance") if isinstance(answer, dict) else None, 32)
        if not state:
            raise Unavailable("Green-API getStateInstance answered without a stateInstance")
        return state

    # -- linking the instance (the panel's WhatsApp page) ----------------------------------

    def qr(self, account: Account) -> tuple[str, str]:
        """(type, message) of the `qr` method: ("qrCode", a base64 PNG), ("alreadyLogged", …)
        or ("error", why)."""
        answer = f.as_dict(self._call(account, "GET", "qr"))
        kind = f.text(answer.get("type"), 32)
        if kind not in ("qrCode", "alreadyLogged", "error"):
            raise Unavailable("Green-API qr answered without a type")
        message = answer.get("message") if isinstance(answer.get("message"), str) else ""
        if kind == "qrCode":
            message = message.strip()
            if not message or len(message) > 200_000 or not _BASE64.fullmatch(message):
                raise Unavailable("Green-API qr answered with an image that is not base64")
        else:
            message = f.text(message, 300)
        return kind, message

    def authorization_code(self, account: Account, phone: str) -> str | None:
        """getAuthorizationCode: the code the owner types on the phone, or None (refused)."""
        answer = f.as_dict(self._call(account, "POST", "getAuthorizationCode", json={"phoneNumber": int(phone)}))
        code = f.text(answer.get("code"), 32)
        return code if answer.get("status") is True and code else None

    def set_settings(self, account: Account, values: dict) -> bool:
        answer = f.as_dict(self._call(account, "POST", "setSettings", json=values))
        return answer.get("saveSettings") is True

    def get_settings(self, account: Account) -> dict:
        return f.as_dict(self._call(account, "GET", "getSettings"))

    def logout(self, account: Account) -> bool:
        return f.as_dict(self._call(account, "GET", "logout")).get("isLogout") is True

    def reboot(self, account: Account) -> bool:
        return f.as_dict(self._call(account, "GET", "reboot")).get("isReboot") is True

    def health(self, account: Account) -> Health:
        try:
            state = self.state(account)
        except Exception as exc:  # any failure is "not healthy", with its reason
            return Health(False, str(exc)[:200])
        return Health(state == "authorized", "" if state == "authorized" else f"instance state {state}")


_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def _never_left(exc: requests.RequestException) -> bool:
    """A connection that was never made: the request certainly did not reach the gateway."""
    text = repr(exc)
    return isinstance(exc, requests.ConnectionError) and any(
        mark in text for mark in ("NewConnectionError", "Connection refused", "Name or service not known",
                                  "Failed to resolve"))


def from_greenapi(method: str, status: int, body: str, retry_after: str | None = None) -> Exception:
    """The error a gateway's answer (not 2xx) stands for. The body's shape is not fixed by
    the documentation (JSON with a description, or plain text): its words are read."""
    words = (body or "")[:500]
    try:
        parsed = json.loads(words) if words.strip().startswith("{") else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        words = str(parsed.get("description") or parsed.get("message") or parsed.get("error") or words)[:500]
    reason = f"Green-API {method}: HTTP {status}" + (f" ({words})" if words else "")
    lowered = words.lower()
    if status == 429:
        try:
            wait = min(60.0, max(0.2, float(retry_after))) if retry_after else 1.0
        except ValueError:
            wait = 1.0
        return Throttled(reason, 429, wait)
    if status >= 500 or status == 499:
        return Unavailable(reason)
    if "not authorized" in lowered or "notauthorized" in lowered:
        return NotAuthorized(reason, "notAuthorized")
    if "starting" in lowered:
        return NotAuthorized(reason, "starting", retry_after=5.0)
    if status == 401:
        return BadToken(f"the gateway refused the instance's token ({reason}): check"
                        " WHATSAPP_GREENAPI_TOKEN, then /retry_ the failed jobs", 401)
    if status == 403:
        return BadToken(f"the gateway does not know the instance ({reason}): check WHATSAPP_GREENAPI_ID", 403)
    if status == 466:
        return ShopMustAct(f"the gateway's quota is used up ({reason}): upgrade the plan, then /retry_", 466)
    return Refused(reason, status)


# -- parsing notifications (bounded values only) ----------------------------------------------

def _message(body: dict, kind: str, account: str, now: datetime, event: Event) -> None:
    sender = f.as_dict(body.get("senderData"))
    chat = f.text(sender.get("chatId"), 64)
    if chat.endswith("@g.us"):
        event.skipped.append(f"{kind} of a group chat")
        return
    phone = f.phone(chat)
    message_id = f.message_id(body.get("idMessage"))
    if phone is None or message_id is None:
        event.not_understood.append(f"{kind} without a customer's chatId or an idMessage")
        return
    data = f.as_dict(body.get("messageData"))
    from_customer = kind == "incomingMessageReceived"
    name = (f.text(sender.get("senderName"), f.MAX_NAME) or f.text(sender.get("chatName"), f.MAX_NAME)
            or None) if from_customer else None
    written = f.when(body.get("timestamp"), now)
    event.messages.append(ReceivedMessage(account, phone, name,
                                          _content(data, message_id, from_customer, written)))


def _content(data: dict, message_id: str, from_customer: bool, written: datetime) -> InboundMessage:
    kind = f.text(data.get("typeMessage"), 64)
    common = dict(external_id=message_id, from_customer=from_customer, date_written=written)
    if kind == "textMessage":
        return InboundMessage(text=f.text(f.as_dict(data.get("textMessageData")).get("textMessage"),
                                          f.MAX_TEXT), **common)
    if kind in ("extendedTextMessage", "quotedMessage"):
        return InboundMessage(text=f.text(f.as_dict(data.get("extendedTextMessageData")).get("text"),
                                          f.MAX_TEXT), **common)
    if kind in FILE_KINDS:
        file = f.as_dict(data.get("fileMessageData"))
        mime, default_name, is_img = FILE_KINDS[kind]
        link = f.url(file.get("downloadUrl"))
        return InboundMessage(text=f.text(file.get("caption"), f.MAX_TEXT), is_img=is_img,
                              is_file=not is_img,
                              filename=f.text(file.get("fileName"), f.MAX_FILENAME) or default_name,
                              media_ref=link, **common)
    if kind == "locationMessage":
        place = f.as_dict(data.get("locationMessageData"))
        return InboundMessage(text=f.location_text(place.get("latitude"), place.get("longitude"),
                                                   place.get("nameLocation"), place.get("address")), **common)
    if kind in ("contactMessage", "contactsArrayMessage"):
        cards = [f.as_dict(data.get("contactMessageData"))] if kind == "contactMessage" \
            else [f.as_dict(c) for c in f.as_list(data.get("contacts"))[:10]]
        return InboundMessage(text="\n".join(_card(card) for card in cards), **common)
    if kind in ("pollMessage", "pollUpdateMessage"):
        poll = f.as_dict(data.get("pollMessageData"))
        lines = [f"📊 {f.text(poll.get('name'), 500)}"]
        for option in f.as_list(poll.get("options") or poll.get("votes"))[:12]:
            option = f.as_dict(option)
            voters = len(f.as_list(option.get("optionVoters")))
            lines.append(f"• {f.text(option.get('optionName'), 200)}" + (f" — {voters}" if voters else ""))
        return InboundMessage(text="\n".join(lines), **common)
    if kind == "groupInviteMessage":
        invite = f.as_dict(data.get("groupInviteMessageData"))
        return InboundMessage(text=" ".join(p for p in ("👥", f.text(invite.get("groupName"), 255),
                                                        f.text(invite.get("caption"), 1000)) if p), **common)
    if kind in ("buttonsResponseMessage", "templateButtonsReplyMessage", "templateButtonReplyMessage",
                "listResponseMessage", "interactiveButtonsResponse"):
        # A button the customer pressed: its text, and its id for the dialogues.
        reply = {}
        for key in ("buttonsResponseMessage", "templateButtonReplyMessage", "listResponseMessage",
                    "interactiveButtonsResponse"):
            if isinstance(data.get(key), dict):
                reply = data[key]
        text = (f.text(reply.get("selectedButtonText"), f.MAX_TEXT) or f.text(reply.get("selectedDisplayText"), f.MAX_TEXT)
                or f.text(reply.get("title"), f.MAX_TEXT))
        payload = (f.text(reply.get("selectedButtonId"), 256) or f.text(reply.get("selectedId"), 256)
                   or f.text(reply.get("selectedRowId"), 256)) or None
        return InboundMessage(text=text, payload=payload, **common)
    if kind == "reactionMessage":
        return InboundMessage(text=f.text(f.as_dict(data.get("extendedTextMessageData")).get("text"), 16),
                              **common)
    return InboundMessage(text=f"[{kind or 'message'}]", **common)


def _card(card: dict) -> str:
    """A shared contact: its name, and the phones and e-mails of its vCard."""
    return f.contact_text(card.get("displayName"), _vcard(card.get("vcard"), "TEL"), _vcard(card.get("vcard"), "EMAIL"))


def _vcard(vcard, name: str) -> list[str]:
    """The values of one vCard property ("item1.TEL;waid=…:+7 900 …" is a TEL)."""
    found = []
    for line in f.text(vcard, 4000).splitlines():
        prop, _, value = line.partition(":")
        if prop.split(";")[0].split(".")[-1].upper() == name and value.strip():
            found.append(value.strip())
    return found[:5]


def _status(body: dict, account: str, now: datetime, event: Event) -> None:
    phone = f.phone(body.get("chatId"))
    message_id = f.message_id(body.get("idMessage"))
    raw = f.text(body.get("status"), 32)
    status = STATUS.get(raw)
    if phone is None or message_id is None or status is None:
        event.not_understood.append(f"outgoingMessageStatus {raw or '?'}")
        return
    reason = None
    if status == "failed":
        reason = f.text(body.get("description"), 500) or {"noAccount": "the phone has no WhatsApp",
                                                            "yellowCard": "the account is restricted for spam"
                                                            }.get(raw, raw)
    event.statuses.append(ReceivedStatus(account, phone, StatusUpdate(
        message_id, status, f.when(body.get("timestamp"), now), STATUS_CODE.get(raw), reason)))
