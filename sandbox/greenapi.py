"""A local emulator of a Green-API-compatible WhatsApp gateway (Green-API, sdkwa.pro,
basis-api), for tests, benchmarks, the demo and the playground.

KeepDesk talks HTTP to it exactly as to a gateway (WHATSAPP_GREENAPI_URL). What it
models, from the gateways' public documentation (CHANNELS.md §4):

* both URL styles: `/waInstance{id}/{method}/{apiToken}` and `/whatsapp/{id}/{method}`
  with `Authorization: Bearer {apiToken}`; a wrong token is 401, another instance 403;
* sendMessage, sendFileByUrl, sendFileByUpload (multipart), sendLocation, sendContact →
  `{"idMessage"}`; readChat; checkWhatsapp → `{"existsWhatsapp"}`; getChatHistory;
  getContacts; getStateInstance → `{"stateInstance"}`;
* the instance's state (authorized, notAuthorized, blocked, sleepMode, starting,
  yellowCard), changed by test control with a `stateInstanceChanged` notification;
  while it is not authorized every send answers 400 "Instance not authorized"
  (the documentation does not fix this answer; KeepDesk also asks getStateInstance);
* notifications — incomingMessageReceived (text, extended text, image / document with
  `fileMessageData.downloadUrl`, location, contact), outgoingMessageReceived (typed on
  the shop's phone), outgoingAPIMessageReceived, outgoingMessageStatus (sent →
  delivered → read; noAccount for a phone without WhatsApp), stateInstanceChanged — go to
  the webhook URL when one is set (with the webhook token in `Authorization`, re-sent
  until answered 200), else wait in the queue: `receiveNotification?receiveTimeout=`
  holds the request until one comes → `{"receiptId", "body"}` or `null`; the same
  notification is given again until `deleteNotification/{receiptId}`;
* limits per instance and method: sending 50/s, notifications 100/s, readChat and
  checkWhatsapp 10/s, history and contacts 1/s; over the limit HTTP 429;
* linking the instance: `qr` → `{"type": "qrCode", "message": <base64 PNG>}` while it is
  notAuthorized — a new image every `qr_seconds` (the documentation: every 20 s) —,
  `{"type": "alreadyLogged"}` when authorized, `{"type": "error"}` in another state;
  `getAuthorizationCode` {phoneNumber} → `{"status": true, "code"}` (valid about 2.5
  minutes); the phone "scans" the image shown (`scan`) or "types" the code
  (`enter_code`): the instance becomes authorized with a `stateInstanceChanged`;
  `logout` → `{"isLogout": true}` (notAuthorized), `reboot` → `{"isReboot": true}`
  (starting, then the state it had);
* `setSettings` (any of its documented fields, at least one) → `{"saveSettings": true}`;
  `getSettings` answers them (every notification off on an instance never set up, as the
  documentation says). Once setSettings was called, notifications follow its fields:
  webhookUrl (empty: the queue) with webhookUrlToken in `Authorization`, and only the
  kinds turned on (incomingWebhook, outgoingWebhook, outgoingMessageWebhook,
  outgoingAPIMessageWebhook, stateWebhook). Before that the test harness plays the
  shop's console (`use_webhook` / `use_queue`, every kind on).

Test control: `customer_writes`, `customer_sends_image` / `_document`, `customer_reads`,
`shop_types` (a message typed on the shop's phone), `set_state`, `not_on_whatsapp`,
`fail_next`, `set_down`, `slow_next`, `sent(phone)`, `read_marks`, `media_bytes`, `queue_size`,
`use_webhook` / `use_queue`, `scan`, `current_qr`, `enter_code`, `reset`.
"""
from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
import threading
import time
import zlib
from collections import deque

import requests
from werkzeug.wrappers import Request, Response

from sandbox._server import CallingBackEmulator

INSTANCE = "1101000001"
TOKEN = "sandbox-greenapi-token"
WEBHOOK_TOKEN = "sandbox-greenapi-webhook-token"
STATES = ("authorized", "notAuthorized", "blocked", "sleepMode", "starting", "yellowCard")
LIMITS = {"send": 50, "notifications": 100, "read": 10, "check": 10, "history": 1, "contacts": 1}
BUCKET_OF = {"sendMessage": "send", "sendFileByUrl": "send", "sendFileByUpload": "send",
             "sendLocation": "send", "sendContact": "send", "readChat": "read",
             "checkWhatsapp": "check", "getChatHistory": "history", "getContacts": "contacts",
             "receiveNotification": "notifications", "deleteNotification": "notifications"}
MAX_TEXT = 20000
QR_SECONDS = 20.0         # the documentation: the QR code is updated every 20 seconds
CODE_SECONDS = 150.0      # an authorization code is valid for about 2.5 minutes
YES_NO = ("markIncomingMessagesReaded", "markIncomingMessagesReadedOnReply", "outgoingWebhook",
          "outgoingMessageWebhook", "outgoingAPIMessageWebhook", "incomingWebhook", "deviceWebhook",
          "stateWebhook", "keepOnlineStatus", "pollMessageWebhook", "incomingCallWebhook",
          "editedMessageWebhook", "deletedMessageWebhook")
# Which setting lets a notification kind out, once the instance was set up by setSettings.
KIND_SETTING = {"incomingMessageReceived": "incomingWebhook", "outgoingMessageStatus": "outgoingWebhook",
                "outgoingMessageReceived": "outgoingMessageWebhook",
                "outgoingAPIMessageReceived": "outgoingAPIMessageWebhook",
                "stateInstanceChanged": "stateWebhook"}


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class GreenApiSandbox(CallingBackEmulator):
    thread_name = "greenapi-webhooks"
    label = "the Green-API sandbox"

    def __init__(self, *, instance: str = INSTANCE, token: str = TOKEN, host: str = "127.0.0.1",
                 port: int = 0, limits: dict[str, int] | None = None, status_delay: float = 0.02,
                 own_phone: str = "380440000001", call_latency: float = 0.0,
                 qr_seconds: float = QR_SECONDS) -> None:
        self.call_latency = call_latency      # a real API's round trip, for benchmarks
        self.qr_seconds = qr_seconds
        self.instance = instance
        self.token = token
        self.own_phone = own_phone
        self._limits = dict(LIMITS, **(limits or {}))
        self.status_delay = status_delay
        self._serve(self._wsgi, host, port)
        self._clear()

    def _clear(self) -> None:
        with self._lock:
            self.state = "authorized"
            self.limits = dict(self._limits)
            self.webhook_url: str | None = None
            self.webhook_token: str | None = None
            self.queue: "deque[dict]" = deque()        # {"receiptId", "body"} waiting for the poller
            self.outbox: "deque[tuple[float, dict]]" = deque()   # notifications due to the webhook
            self.outgoing: list[dict] = []
            self.history: dict[str, list[dict]] = {}
            self.files: dict[str, dict] = {}
            self.calls: list[dict] = []
            self.webhook_log: list[dict] = []
            self.faults: "deque[tuple[int, str]]" = deque()
            self.slow: "deque[float]" = deque()
            self.down_status: int | None = None
            self.unreachable: set[str] = set()
            self.stamps: dict[str, deque] = {b: deque() for b in self.limits}
            self.throttled: dict[str, int] = {b: 0 for b in self.limits}
            self.deleted: list[int] = []
            self.settings: dict | None = None           # None: never set up by setSettings
            self.qr_epoch = time.monotonic()
            self.codes: dict[str, tuple[str, float]] = {}   # authorization code → (phone, valid until)
            self.reboots = 0

    # -- lifecycle -----------------------------------------------------------------------

    def reset(self) -> None:
        self._generation += 1      # what was due to the previous desk is dropped
        self._clear()

    # -- configuration (what the shop set up in the gateway's console) --------------------

    def use_webhook(self, url: str, token: str | None = None) -> None:
        """Notifications go to `url` (with `Authorization: Bearer <token>` when given)."""
        with self._lock:
            self.webhook_url, self.webhook_token = url, token

    def use_queue(self) -> None:
        """No webhook URL: notifications wait in the queue for receiveNotification."""
        with self._lock:
            self.webhook_url = None

    def set_state(self, state: str) -> None:
        """The instance's state changes (logged out on the phone, back again …)."""
        assert state in STATES
        with self._lock:
            self.state = state
        self._notify({"typeWebhook": "stateInstanceChanged", "stateInstance": state})

    def not_on_whatsapp(self, phone: str) -> None:
        self.unreachable.add(phone)

    def fail_next(self, status: int = 500, message: str = "Internal Server Error", times: int = 1) -> None:
        with self._lock:
            for _ in range(times):
                self.faults.append((status, message))

    def slow_next(self, seconds: float, times: int = 1) -> None:
        """The next sends are carried out, but answered only after `seconds` (a timeout)."""
        with self._lock:
            for _ in range(times):
                self.slow.append(seconds)

    def set_down(self, status: int | None = 502) -> None:
        self.down_status = status

    # -- the customers and the shop's phone (test control) ----------------------------------

    def customer_writes(self, phone: str, text: str, *, name: str = "Customer", at: float | None = None) -> str:
        return self._incoming(phone, name, {"typeMessage": "textMessage",
                                            "textMessageData": {"textMessage": text}}, at)

    def customer_sends_image(self, phone: str, data: bytes, *, caption: str = "", mime: str = "image/jpeg",
                             name: str = "Customer") -> str:
        return self._incoming(phone, name, {"typeMessage": "imageMessage",
                                            "fileMessageData": self._file(data, mime, "photo.jpg", caption)})

    def customer_sends_document(self, phone: str, data: bytes, filename: str, *, caption: str = "",
                                mime: str = "application/pdf", name: str = "Customer") -> str:
        return self._incoming(phone, name, {"typeMessage": "documentMessage",
                                            "fileMessageData": self._file(data, mime, filename, caption)})

    def customer_presses_button(self, phone: str, text: str, payload: str | None = None, *,
                                name: str = "Customer", **_: object) -> str:
        """A personal account has no template buttons: the customer types the word."""
        return self.customer_writes(phone, text, name=name)

    def shop_types(self, phone: str, text: str) -> str:
        """Someone types on the shop's phone itself: outgoingMessageReceived."""
        message_id = self._id()
        body = {"typeWebhook": "outgoingMessageReceived", "idMessage": message_id,
                "timestamp": int(time.time()), "senderData": self._sender(phone, "Shop"),
                "messageData": {"typeMessage": "textMessage", "textMessageData": {"textMessage": text}}}
        self._remember(phone, {"type": "outgoing", "idMessage": message_id, "timestamp": int(time.time()),
                               "typeMessage": "textMessage", "textMessage": text, "statusMessage": "sent"})
        self._notify(body)
        return message_id

    # -- snapshots --------------------------------------------------------------------------

    def read_marks(self) -> list[str]:
        with self._lock:
            return [c["body"].get("idMessage") for c in self.calls if c["method"] == "readChat"]

    def media_bytes(self, file_id: str) -> bytes | None:
        with self._lock:
            stored = self.files.get(file_id)
        return stored["data"] if stored else None

    def queue_size(self) -> int:
        with self._lock:
            return len(self.queue)

    # -- notifications ----------------------------------------------------------------------

    def _id(self) -> str:
        return secrets.token_hex(10).upper()

    def _sender(self, phone: str, name: str) -> dict:
        return {"chatId": f"{phone}@c.us", "chatName": name, "sender": f"{phone}@c.us", "senderName": name}

    def _file(self, data: bytes, mime: str, filename: str, caption: str) -> dict:
        file_id = secrets.token_hex(8)
        with self._lock:
            self.files[file_id] = {"data": data, "mime": mime, "filename": filename}
        return {"downloadUrl": f"{self.url}/download/{file_id}", "caption": caption, "fileName": filename,
                "mimeType": mime}

    def _remember(self, phone: str, item: dict) -> None:
        with self._lock:
            self.history.setdefault(phone, []).append(item)

    def _incoming(self, phone: str, name: str, data: dict, at: float | None = None) -> str:
        message_id = self._id()
        stamp = int(time.time() if at is None else at)
        body = {"typeWebhook": "incomingMessageReceived", "idMessage": message_id, "timestamp": stamp,
                "senderData": self._sender(phone, name), "messageData": data}
        text = (data.get("textMessageData") or {}).get("textMessage") or (data.get("fileMessageData") or {}).get(
            "caption", "")
        self._remember(phone, {"type": "incoming", "idMessage": message_id, "timestamp": stamp,
                               "typeMessage": data["typeMessage"], "textMessage": text})
        self._notify(body, sync=True)
        return message_id

    def _notify(self, body: dict, *, sync: bool = False, delay: float = 0.0) -> None:
        body = {"instanceData": {"idInstance": int(self.instance), "wid": f"{self.own_phone}@c.us",
                                 "typeInstance": "whatsapp"}, **body}
        if body.get("typeWebhook") == "stateInstanceChanged":
            body.setdefault("timestamp", int(time.time()))
        with self._lock:
            setting = KIND_SETTING.get(body.get("typeWebhook"))
            if self.settings is not None and setting and self.settings.get(setting) != "yes":
                return    # that kind of notification is turned off on this instance
        with self._changed:
            if self.webhook_url is None:
                self.queue.append({"receiptId": next(self._ids), "body": body})
                self._changed.notify_all()
                return
        if sync:
            self._deliver(body, time.monotonic() + 60)
        else:
            with self._lock:
                self.outbox.append((time.monotonic() + delay, body))
            self._wake.set()

    def post_webhook(self, body: dict | bytes, *, token: str | None = None) -> int:
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        token = self.webhook_token if token is None else token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            status = requests.post(self.webhook_url, data=raw, headers=headers, timeout=10).status_code
        except requests.RequestException:
            status = 0
        with self._lock:
            self.webhook_log.append({"time": time.time(), "status": status})
        return status

    def _deliver(self, body: dict, deadline: float) -> bool:
        generation = self._generation
        pause = 0.1
        while self.webhook_url:
            if self.post_webhook(body) == 200:
                return True
            if time.monotonic() >= deadline or self._stopping.is_set() or generation != self._generation:
                return False
            time.sleep(pause)
            pause = min(2.0, pause * 2)
        return False

    def _pending(self):
        return self.outbox

    def _push(self, due: list) -> None:
        for _, body in due:
            self._deliver(body, time.monotonic() + 60)

    def _status(self, message: dict, status: str, description: str | None = None) -> None:
        with self._changed:
            message["status"] = status
            message["statuses"].append(status)
            self._changed.notify_all()
        body = {"typeWebhook": "outgoingMessageStatus", "chatId": f"{message['to']}@c.us",
                "idMessage": message["id"], "status": status, "timestamp": int(time.time()),
                "sendByApi": True}
        if description:
            body["description"] = description
        self._notify(body, delay=self.status_delay)

    # -- the HTTP API -------------------------------------------------------------------------

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        try:
            answer = self._route(request)
            if isinstance(answer, Response):
                response = answer
            else:
                response = Response(json.dumps(answer), 200, mimetype="application/json")
        except ApiError as exc:
            response = Response(json.dumps({"statusCode": exc.status, "description": exc.message}),
                                exc.status, mimetype="application/json")
        return response(environ, start_response)

    def _route(self, request: Request):
        parts = [p for p in request.path.split("/") if p]
        if len(parts) == 2 and parts[0] == "download":
            return self._download(parts[1])
        if parts and parts[0] == "_sandbox":
            return self._control(request, parts[1:])
        if len(parts) >= 3 and parts[0].startswith("waInstance"):
            instance, method, token, rest = parts[0][len("waInstance"):], parts[1], parts[2], parts[3:]
        elif len(parts) >= 3 and parts[0] == "whatsapp":
            header = request.headers.get("Authorization", "")
            instance, method, rest = parts[1], parts[2], parts[3:]
            token = header[7:] if header.startswith("Bearer ") else ""
        else:
            raise ApiError(404, "Not Found")
        if instance != self.instance:
            raise ApiError(403, "Forbidden")
        if token != self.token:
            raise ApiError(401, "Unauthorized")
        if self.down_status is not None:
            raise ApiError(self.down_status, "Bad Gateway")
        bucket = BUCKET_OF.get(method)
        if bucket is not None:
            self._limit(bucket)
        handler = getattr(self, f"_m_{method}", None)
        if self.call_latency and method.startswith("send"):
            time.sleep(self.call_latency)
        if handler is None:
            raise ApiError(404, f"method {method} not found")
        if method.startswith("send"):
            with self._lock:
                fault = self.faults.popleft() if self.faults else None
            if fault is not None:
                raise ApiError(*fault)
            if self.state != "authorized":
                raise ApiError(400, "Instance not authorized")
        answer = handler(request, rest)
        if method.startswith("send"):
            with self._lock:
                delay = self.slow.popleft() if self.slow else 0.0
            if delay:
                time.sleep(delay)
        return answer

    def _limit(self, bucket: str) -> None:
        now = time.time()
        with self._lock:
            stamps = self.stamps[bucket]
            while stamps and stamps[0] <= now - 1.0:
                stamps.popleft()
            if len(stamps) >= self.limits[bucket]:
                self.throttled[bucket] += 1
                raise ApiError(429, "Too Many Requests")
            stamps.append(now)

    def _json(self, request: Request) -> dict:
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError:
            raise ApiError(400, "Bad Request: body is not JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request")
        return body

    @staticmethod
    def _chat(body: dict) -> str:
        chat = str(body.get("chatId") or "")
        phone, _, domain = chat.partition("@")
        if domain not in ("c.us", "g.us") or not phone.isdigit():
            raise ApiError(400, "Validation failed. Details: 'chatId' must be a valid chat id")
        return phone

    def _accept(self, phone: str, kind: str, content: dict) -> dict:
        message_id = self._id()
        with self._changed:
            message = {"id": message_id, "to": phone, "type": kind, "content": content, "time": time.time(),
                       "status": "pending", "statuses": []}
            self.outgoing.append(message)
            self._changed.notify_all()
        self._remember(phone, {"type": "outgoing", "idMessage": message_id, "timestamp": int(time.time()),
                               "typeMessage": kind, "textMessage": content.get("message") or content.get("caption")
                               or "", "statusMessage": "sent"})
        if phone in self.unreachable:
            self._status(message, "noAccount", "the phone has no WhatsApp account")
        else:
            self._status(message, "sent")
            self._status(message, "delivered")
        return {"idMessage": message_id}

    def _m_sendMessage(self, request: Request, rest):
        body = self._json(request)
        phone = self._chat(body)
        text = body.get("message")
        if not isinstance(text, str) or not text:
            raise ApiError(400, "Validation failed. Details: 'message' is required")
        if len(text) > MAX_TEXT:
            raise ApiError(400, f"Validation failed. Details: 'message' must be at most {MAX_TEXT} characters")
        return self._accept(phone, "text", {"message": text})

    def _m_sendFileByUrl(self, request: Request, rest):
        body = self._json(request)
        phone = self._chat(body)
        link, name = body.get("urlFile"), body.get("fileName")
        if not isinstance(link, str) or not link.startswith(("http://", "https://")) or not name:
            raise ApiError(400, "Validation failed. Details: 'urlFile' and 'fileName' are required")
        try:
            fetched = requests.get(link, timeout=10)
        except requests.RequestException:
            raise ApiError(400, "File download failed") from None
        if fetched.status_code != 200:
            raise ApiError(400, "File download failed")
        file_id = secrets.token_hex(8)
        with self._lock:
            self.files[file_id] = {"data": fetched.content, "mime": fetched.headers.get("Content-Type"),
                                   "filename": name}
        return self._accept(phone, "file", {"file": file_id, "fileName": name, "caption": body.get("caption") or "",
                                            "urlFile": link})

    def _m_sendFileByUpload(self, request: Request, rest):
        phone = self._chat(dict(request.form))
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(400, "Validation failed. Details: 'file' is required")
        name = request.form.get("fileName") or upload.filename or "file"
        file_id = secrets.token_hex(8)
        with self._lock:
            self.files[file_id] = {"data": upload.read(), "mime": upload.mimetype, "filename": name}
        answer = self._accept(phone, "file", {"file": file_id, "fileName": name,
                                              "caption": request.form.get("caption") or ""})
        answer["urlFile"] = f"{self.url}/download/{file_id}"
        return answer

    def _m_sendLocation(self, request: Request, rest):
        body = self._json(request)
        phone = self._chat(body)
        if not isinstance(body.get("latitude"), (int, float)) or not isinstance(body.get("longitude"), (int, float)):
            raise ApiError(400, "Validation failed. Details: 'latitude' and 'longitude' are required")
        return self._accept(phone, "location", {k: body.get(k) for k in ("nameLocation", "address", "latitude",
                                                                         "longitude")})

    def _m_sendContact(self, request: Request, rest):
        body = self._json(request)
        phone = self._chat(body)
        contact = body.get("contact")
        if not isinstance(contact, dict) or not isinstance(contact.get("phoneContact"), int):
            raise ApiError(400, "Validation failed. Details: 'contact.phoneContact' is required")
        return self._accept(phone, "contact", {"contact": contact})

    def _m_readChat(self, request: Request, rest):
        body = self._json(request)
        self._chat(body)
        with self._lock:
            self.calls.append({"method": "readChat", "body": body, "time": time.time()})
        return {"setRead": True}

    def _m_checkWhatsapp(self, request: Request, rest):
        body = self._json(request)
        number = body.get("phoneNumber")
        if not isinstance(number, int):
            raise ApiError(400, "Validation failed. Details: 'phoneNumber' must be a number")
        return {"existsWhatsapp": str(number) not in self.unreachable}

    def _m_getChatHistory(self, request: Request, rest):
        body = self._json(request)
        phone = self._chat(body)
        count = body.get("count") if isinstance(body.get("count"), int) else 100
        with self._lock:
            items = list(self.history.get(phone, []))
        # Newest first, as the gateway answers.
        return [dict(item, chatId=f"{phone}@c.us") for item in reversed(items)][:count]

    def _m_getContacts(self, request: Request, rest):
        with self._lock:
            return [{"id": f"{p}@c.us", "name": "", "type": "user"} for p in self.history]

    def _m_getStateInstance(self, request: Request, rest):
        return {"stateInstance": self.state}

    def _m_receiveNotification(self, request: Request, rest):
        try:
            timeout = min(60.0, max(1.0, float(request.args.get("receiveTimeout", "5"))))
        except ValueError:
            raise ApiError(400, "Validation failed. Details: 'receiveTimeout' must be a number") from None
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self.queue:
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping.is_set():
                    return Response("null", 200, mimetype="application/json")
                self._changed.wait(min(left, 0.2))
            return dict(self.queue[0])

    def _m_deleteNotification(self, request: Request, rest):
        if request.method != "DELETE" or len(rest) != 1 or not rest[0].isdigit():
            raise ApiError(400, "Validation failed. Details: DELETE deleteNotification/{receiptId}")
        receipt = int(rest[0])
        with self._changed:
            before = len(self.queue)
            self.queue = deque(n for n in self.queue if n["receiptId"] != receipt)
            removed = len(self.queue) != before
            if removed:
                self.deleted.append(receipt)
            self._changed.notify_all()
        return {"result": removed}

    # -- linking the instance ---------------------------------------------------------------

    def current_qr(self) -> bytes:
        """The PNG the `qr` method serves now (it changes every `qr_seconds`)."""
        return _qr_png(f"{self.instance}:{self.qr_epoch}:{self._qr_serial()}")

    def _qr_serial(self) -> int:
        return int((time.monotonic() - self.qr_epoch) // self.qr_seconds)

    def scan(self, image: bytes) -> bool:
        """The shop's phone scans `image`: the code shown now (or the one just before —
        the phone was pointed at it a moment ago) links the instance."""
        serial = self._qr_serial()
        shown = {_qr_png(f"{self.instance}:{self.qr_epoch}:{n}") for n in (serial, serial - 1)}
        if self.state != "notAuthorized" or image not in shown:
            return False
        self.set_state("authorized")
        return True

    def enter_code(self, code: str) -> bool:
        """The code typed on the shop's phone (Linked devices → Link with phone number)."""
        with self._lock:
            phone, until = self.codes.pop(code, ("", 0.0))
        if self.state != "notAuthorized" or time.monotonic() > until:
            return False
        self.own_phone = phone
        self.set_state("authorized")
        return True

    def _m_qr(self, request: Request, rest):
        if self.state == "authorized":
            return {"type": "alreadyLogged", "message": "instance account already authorized"}
        if self.state != "notAuthorized":
            return {"type": "error", "message": f"instance is {self.state}: wait, or call reboot"}
        return {"type": "qrCode", "message": base64.b64encode(self.current_qr()).decode("ascii")}

    def _m_getAuthorizationCode(self, request: Request, rest):
        body = self._json(request)
        number = body.get("phoneNumber")
        if not isinstance(number, int) or not 10 ** 7 <= number < 10 ** 15:
            raise ApiError(400, "Validation failed. Details: 'phoneNumber' must be a number")
        if self.state != "notAuthorized":
            return {"status": False, "code": ""}
        code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTVWXYZ23456789") for _ in range(8))
        with self._lock:
            self.codes[code] = (str(number), time.monotonic() + CODE_SECONDS)
        return {"status": True, "code": code}

    def _m_logout(self, request: Request, rest):
        if self.state != "notAuthorized":
            self.set_state("notAuthorized")
            with self._lock:
                self.qr_epoch = time.monotonic()
        return {"isLogout": True}

    def _m_reboot(self, request: Request, rest):
        before = self.state
        self.reboots += 1
        self.set_state("starting")
        timer = threading.Timer(0.3, lambda: self.state == "starting" and self.set_state(before))
        timer.daemon = True
        timer.start()
        return {"isReboot": True}

    def _m_setSettings(self, request: Request, rest):
        if request.method != "POST":
            raise ApiError(405, "Method Not Allowed")
        body = self._json(request)
        known = {"webhookUrl", "webhookUrlToken", "delaySendMessagesMilliseconds", *YES_NO}
        if not body or not set(body) <= known:
            raise ApiError(400, "Validation failed. Details: at least one known setting is required")
        for name in set(body) & set(YES_NO):
            if body[name] not in ("yes", "no"):
                raise ApiError(400, f"Validation failed. Details: '{name}' must be yes or no")
        for name in {"webhookUrl", "webhookUrlToken"} & set(body):
            if not isinstance(body[name], str):
                raise ApiError(400, f"Validation failed. Details: '{name}' must be a string")
        url = body.get("webhookUrl")
        if url and not url.startswith(("http://", "https://")):
            raise ApiError(400, "Validation failed. Details: 'webhookUrl' must be a URL")
        with self._lock:
            self.settings = {**(self.settings or self._default_settings()), **body}
            settings = dict(self.settings)
        if settings["webhookUrl"]:
            self.use_webhook(settings["webhookUrl"], settings["webhookUrlToken"] or None)
        else:
            self.use_queue()
        return {"saveSettings": True}

    def _default_settings(self) -> dict:
        return {"webhookUrl": "", "webhookUrlToken": "", "delaySendMessagesMilliseconds": 5000,
                **{name: "no" for name in YES_NO}}

    def _m_getSettings(self, request: Request, rest):
        with self._lock:
            settings = dict(self.settings or self._default_settings())
        return {"wid": f"{self.own_phone}@c.us", **settings}

    def _download(self, file_id: str):
        with self._lock:
            stored = self.files.get(file_id)
        if stored is None:
            return Response("Not found", 404)
        return Response(stored["data"], 200, mimetype=stored["mime"] or "application/octet-stream")

    def _control(self, request: Request, parts: list[str]):
        """Test control over HTTP, for a harness in another process."""
        body = json.loads(request.get_data() or b"{}") if request.method == "POST" else {}
        action = "/".join(parts)
        if action == "webhook":
            self.use_webhook(body["url"], body.get("token")) if body.get("url") else self.use_queue()
            return {"ok": True}
        if action == "customer/write":
            return {"id": self.customer_writes(str(body["phone"]), str(body["text"]),
                                               name=str(body.get("name") or "Customer"))}
        if action == "customer/read":
            return {"read": self.customer_reads(str(body["phone"]))}
        if action == "shop/type":
            return {"id": self.shop_types(str(body["phone"]), str(body["text"]))}
        if action == "state":
            self.set_state(str(body["state"]))
            return {"ok": True}
        if action == "sent":
            return {"messages": self.sent(request.args.get("phone"))}
        if action == "qr/scan":
            return {"linked": self.scan(self.current_qr())}
        if action == "code/enter":
            return {"linked": self.enter_code(str(body.get("code") or ""))}
        raise ApiError(404, "unknown sandbox control")


def _qr_png(seed: str, modules: int = 29, scale: int = 8) -> bytes:
    """A QR-code-like black-and-white PNG (`modules` squares a side, `scale` pixels each),
    the same for the same seed: what the gateway's `qr` serves in base64."""
    bits = []
    counter = 0
    while len(bits) < modules * modules:
        digest = hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        bits.extend((byte >> k) & 1 for byte in digest for k in range(8))
        counter += 1

    def dark(x: int, y: int) -> bool:
        for fx, fy in ((0, 0), (modules - 7, 0), (0, modules - 7)):   # the three finder squares
            if fx <= x < fx + 7 and fy <= y < fy + 7:
                dx, dy = x - fx, y - fy
                return dx in (0, 6) or dy in (0, 6) or (2 <= dx <= 4 and 2 <= dy <= 4)
        return bool(bits[y * modules + x])

    size = modules * scale
    rows = b"".join(b"\x00" + bytes(0 if dark(x // scale, y // scale) else 255 for x in range(size))
                    for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))
