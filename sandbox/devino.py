"""A local emulator of Devino's WhatsApp HTTP API, for tests, benchmarks, the demo and
the playground. KeepDesk talks HTTP to it exactly as to Devino (WHATSAPP_DEVINO_URL).

What it models, from Devino's public documentation (CHANNELS.md §4):

* `POST /whatsapp/messages` with `Authorization: Key <credentials>` (a wrong key: 401):
  `{"messages": [...]}` — many messages in one call — answered
  `{"result": [{"code": "OK", "messageId"} | {"code": "REJECTED", "reasons": [{"key",
  "ref"}], "description"}]}` in the same order. Reason keys: `invalid` (a field is wrong:
  a `from` that is not the shop's sender, a `to` that is not a phone, an unknown
  template), `length.too.long` (a text over 1000 characters), `must.be.not.null` (no
  text, content or template), `too.many.messages` (over the account's rate: `per_second`
  messages a second), `billing.error` (test control: the balance is spent),
  `forbidden` (test control: a recipient the account may not write to);
* files by URL (`contentUrl`, `contentType`, `contentName`): fetched when accepted;
* status callbacks to each message's `callbackUrl`: a JSON array `[{"messageId", "ts",
  "status", "errorCode", "options"}]` (`options` = the message's `callbackData`),
  SENT then DELIVERED (READ when the customer reads; UNDELIVERED with an error code for a
  phone without WhatsApp), re-sent until answered 2xx;
* incoming messages to the shop's incoming URL: `{"incomingMessageId", "to", "from",
  "ts", "text", "contentUrl", "contentType", "contentName", "profileName"}`, a location as
  `whatsAppGeoLocation` {latitude, longitude, address, addressName}, contacts as
  `whatsAppContacts` [{names, phones, emails, company}]; `to` is the sender, or the
  account's number when `number` is set.

Test control: `customer_writes`, `customer_sends_image` / `_document`,
`customer_sends_location`, `customer_sends_contacts`, `number`, `customer_reads`,
`reject(phone, key)`, `not_on_whatsapp`, `add_template`, `fail_next` (the whole call
refused with an HTTP status), `lose_next_answer` (the batch is taken, the answer never
comes: the connection is dropped after `seconds`), `drop_next_request` (the call is lost
before Devino takes it: nothing sent, no callbacks), `short_answer_next` (fewer results
than messages), `set_down`, `sent(phone)`, `calls` (every call's size), `media_bytes`,
`reset`; over HTTP under `/_sandbox/` (incoming, customer/write, customer/read, sent).
"""
from __future__ import annotations

import json
import secrets
import time
import uuid
from collections import deque

import requests
from werkzeug.wrappers import Request, Response

from sandbox._server import CallingBackEmulator

KEY = "c2FuZGJveDpkZXZpbm8="          # base64("sandbox:devino")
SENDER = "380441234567"
MAX_TEXT = 1000
MAX_MESSAGES = 1000                    # messages in one call


class Dropped(Exception):
    """The request was taken, its answer is never sent."""


class DevinoSandbox(CallingBackEmulator):
    thread_name = "devino-callbacks"
    label = "the Devino sandbox"
    unread_states = ("SENT", "DELIVERED")     # Devino's status names
    read_state = "READ"

    def __init__(self, *, key: str = KEY, sender: str = SENDER, host: str = "127.0.0.1", port: int = 0,
                 per_second: int = 500, status_delay: float = 0.02, call_latency: float = 0.0) -> None:
        self.key = key
        self.call_latency = call_latency      # a real API's round trip, for benchmarks
        self.sender = sender
        self.per_second = per_second
        self.status_delay = status_delay
        self._serve(self._wsgi, host, port)
        self._clear()

    def _clear(self) -> None:
        with self._lock:
            self.incoming_url: str | None = None
            # What incoming messages carry as `to`: the sender, unless the account's number
            # is set (Devino names the shop's number there while messages go out from its name).
            self.number: str | None = None
            self.outgoing: list[dict] = []
            self.calls: list[int] = []                 # messages per call, in order
            self.callbacks: "deque[tuple[float, str, list]]" = deque()
            self.callback_log: list[dict] = []
            self.files: dict[str, dict] = {}
            self.templates: dict[str, int] = {}
            self.rejected: dict[str, str] = {}
            self.unreachable: set[str] = set()
            self.faults: "deque[int]" = deque()
            self.lose: "deque[float]" = deque()
            self.drop: "deque[float]" = deque()
            self.short: int = 0
            self.down_status: int | None = None
            self.billing_spent = False
            self.stamps: "deque[float]" = deque()

    # -- lifecycle -----------------------------------------------------------------------

    def reset(self) -> None:
        self._generation += 1      # what was due to the previous desk is dropped
        self._clear()

    # -- configuration and faults (test control) ---------------------------------------------

    def use_incoming(self, url: str) -> None:
        self.incoming_url = url

    def add_template(self, name: str, params: int, language: str = "uk", buttons: tuple = ()) -> None:
        self.templates[name] = params

    def reject(self, phone: str, key: str = "forbidden") -> None:
        """Every message to `phone` is REJECTED with this reason key."""
        self.rejected[phone] = key

    def not_on_whatsapp(self, phone: str) -> None:
        self.unreachable.add(phone)

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        with self._lock:
            self.faults.extend([status] * times)

    def lose_next_answer(self, seconds: float = 0.5) -> None:
        with self._lock:
            self.lose.append(seconds)

    def drop_next_request(self, seconds: float = 0.3) -> None:
        """The next call never reaches Devino's processing (lost on the way): no messages,
        no callbacks, and the caller hears nothing back."""
        with self._lock:
            self.drop.append(seconds)

    def short_answer_next(self) -> None:
        with self._lock:
            self.short += 1

    def set_down(self, status: int | None = 503) -> None:
        self.down_status = status

    # -- the customers ----------------------------------------------------------------------

    def customer_writes(self, phone: str, text: str, *, name: str = "Customer", at: float | None = None) -> str:
        return self._incoming(phone, name, {"text": text}, at)

    def customer_sends_image(self, phone: str, data: bytes, *, caption: str = "", mime: str = "image/jpeg",
                             name: str = "Customer") -> str:
        return self._incoming(phone, name, {"text": caption, **self._file(data, mime, "photo.jpg")})

    def customer_sends_document(self, phone: str, data: bytes, filename: str, *, caption: str = "",
                                mime: str = "application/pdf", name: str = "Customer") -> str:
        return self._incoming(phone, name, {"text": caption, **self._file(data, mime, filename)})

    def customer_presses_button(self, phone: str, text: str, payload: str | None = None, *,
                                name: str = "Customer", **_: object) -> str:
        """A quick-reply button comes as its text."""
        return self.customer_writes(phone, text, name=name)

    # -- snapshots --------------------------------------------------------------------------

    def media_bytes(self, file_id: str) -> bytes | None:
        with self._lock:
            stored = self.files.get(file_id)
        return stored["data"] if stored else None

    # -- inbound and callbacks --------------------------------------------------------------

    def _file(self, data: bytes, mime: str, name: str) -> dict:
        file_id = secrets.token_hex(8)
        with self._lock:
            self.files[file_id] = {"data": data, "mime": mime, "filename": name}
        return {"contentUrl": f"{self.url}/files/{file_id}", "contentType": mime, "contentName": name}

    def customer_sends_location(self, phone: str, latitude: float, longitude: float, *, address: str = "",
                                address_name: str = "", name: str = "Customer") -> str:
        return self._incoming(phone, name, {"whatsAppGeoLocation": {
            "latitude": latitude, "longitude": longitude, "address": address, "addressName": address_name}})

    def customer_sends_contacts(self, phone: str, contacts: list[dict], *, name: str = "Customer") -> str:
        """Contact cards, each {names, phones, emails, company} as Devino lists them."""
        return self._incoming(phone, name, {"whatsAppContacts": contacts})

    def _incoming(self, phone: str, name: str, content: dict, at: float | None = None) -> str:
        message_id = str(uuid.uuid4())
        body = {"incomingMessageId": message_id, "to": self.number or self.sender, "from": phone,
                "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if at is None else at)),
                "profileName": name, **{k: v for k, v in content.items() if v}}
        if self.incoming_url:
            self._post(self.incoming_url, body, deadline=time.monotonic() + 60)
        return message_id

    def _post(self, url: str, body, deadline: float) -> bool:
        generation = self._generation
        pause = 0.1
        while True:
            try:
                status = requests.post(url, json=body, timeout=10).status_code
            except requests.RequestException:
                status = 0
            with self._lock:
                self.callback_log.append({"time": time.time(), "url": url, "status": status})
            if 200 <= status < 300:
                return True
            if time.monotonic() >= deadline or self._stopping.is_set() or generation != self._generation:
                return False
            time.sleep(pause)
            pause = min(2.0, pause * 2)

    def _status(self, message: dict, status: str, error: int | None = None) -> None:
        with self._changed:
            message["status"] = status
            message["statuses"].append(status)
            self._changed.notify_all()
        if not message.get("callbackUrl"):
            return
        item = {"messageId": message["id"], "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "status": status, "errorCode": error, "options": message.get("callbackData")}
        with self._lock:
            self.callbacks.append((time.monotonic() + self.status_delay, message["callbackUrl"], [item]))
        self._wake.set()

    def _pending(self):
        return self.callbacks

    def _push(self, due: list) -> None:
        # One callback per URL carrying every status due (Devino sends arrays).
        grouped: dict[str, list] = {}
        for _, url, items in due:
            grouped.setdefault(url, []).extend(items)
        for url, items in grouped.items():
            self._post(url, items, deadline=time.monotonic() + 60)

    # -- the HTTP API -------------------------------------------------------------------------

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        try:
            response = self._route(request)
        except Dropped:
            # The batch was taken; the answer is lost: the connection closes with nothing.
            response = Response(b"", 200, headers={"Content-Length": "64"})
        return response(environ, start_response)

    def _error(self, status: int, message: str) -> Response:
        return Response(json.dumps({"code": "ERROR", "description": message}), status,
                        mimetype="application/json")

    def _control(self, request: Request, parts: list[str]) -> Response:
        """Test control over HTTP, for a harness in another process."""
        body = json.loads(request.get_data() or b"{}") if request.method == "POST" else {}
        action = "/".join(parts)
        if action == "incoming":
            self.use_incoming(str(body["url"]))
            answer = {"ok": True}
        elif action == "customer/write":
            answer = {"id": self.customer_writes(str(body["phone"]), str(body["text"]),
                                                 name=str(body.get("name") or "Customer"))}
        elif action == "customer/read":
            answer = {"read": self.customer_reads(str(body["phone"]))}
        elif action == "sent":
            answer = {"messages": self.sent(request.args.get("phone"))}
        else:
            return self._error(404, "unknown sandbox control")
        return Response(json.dumps(answer), 200, mimetype="application/json")

    def _route(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if parts and parts[0] == "_sandbox":
            return self._control(request, parts[1:])
        if len(parts) == 2 and parts[0] == "files":
            with self._lock:
                stored = self.files.get(parts[1])
            if request.headers.get("Authorization") != f"Key {self.key}":
                return self._error(401, "unauthorized")
            if stored is None:
                return Response("Not found", 404)
            return Response(stored["data"], 200, mimetype=stored["mime"])
        if parts != ["whatsapp", "messages"] or request.method != "POST":
            return self._error(404, "not found")
        if request.headers.get("Authorization") != f"Key {self.key}":
            return self._error(401, "unauthorized")
        if self.down_status is not None:
            return self._error(self.down_status, "service unavailable")
        with self._lock:
            fault = self.faults.popleft() if self.faults else None
        if fault is not None:
            return self._error(fault, "error")
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError:
            return self._error(400, "body is not JSON")
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages:
            return self._error(400, "messages must be a non-empty list")
        if len(messages) > MAX_MESSAGES:
            return self._error(400, f"at most {MAX_MESSAGES} messages in one call")
        with self._lock:
            dropped = self.drop.popleft() if self.drop else None
        if dropped is not None:
            time.sleep(dropped)
            raise Dropped()
        with self._lock:
            self.calls.append(len(messages))
        if self.call_latency:
            time.sleep(self.call_latency)
        results = [self._one(m, n) for n, m in enumerate(messages)]
        with self._lock:
            lose = self.lose.popleft() if self.lose else None
            short = self.short > 0
            if short:
                self.short -= 1
        if lose is not None:
            time.sleep(lose)
            raise Dropped()
        if short:
            results = results[:-1]
        return Response(json.dumps({"result": results}), 200, mimetype="application/json")

    def _rejected(self, key: str, ref: str, description: str) -> dict:
        return {"code": "REJECTED", "reasons": [{"key": key, "ref": ref}], "description": description}

    def _one(self, message, n: int) -> dict:
        ref = f"messages[{n}]"
        if not isinstance(message, dict):
            return self._rejected("invalid", ref, "a message is an object")
        to = str(message.get("to") or "")
        text, url, template = message.get("text"), message.get("contentUrl"), message.get("templateId")
        if str(message.get("from") or "") != self.sender:
            return self._rejected("invalid", f"{ref}.from", "not a sender of this account")
        if not to.isdigit() or not 7 <= len(to) <= 15:
            return self._rejected("invalid", f"{ref}.to", "not a phone number")
        if not text and not url and not template:
            return self._rejected("must.be.not.null", f"{ref}.text", "text, contentUrl or templateId is required")
        if isinstance(text, str) and len(text) > MAX_TEXT:
            return self._rejected("length.too.long", f"{ref}.text", f"at most {MAX_TEXT} characters")
        if self.billing_spent:
            return self._rejected("billing.error", ref, "insufficient funds")
        if to in self.rejected:
            return self._rejected(self.rejected[to], ref, "refused for this recipient")
        params = message.get("templateParams") or {}
        if template and (template not in self.templates or len(params) != self.templates[template]):
            return self._rejected("invalid", f"{ref}.templateId", "unknown template or wrong parameters")
        now = time.time()
        with self._lock:
            while self.stamps and self.stamps[0] <= now - 1.0:
                self.stamps.popleft()
            if len(self.stamps) >= self.per_second:
                return self._rejected("too.many.messages", ref, "too many messages, try later")
            self.stamps.append(now)
        content: dict = {}
        if url:
            try:
                fetched = requests.get(url, timeout=10)
            except requests.RequestException:
                return self._rejected("invalid", f"{ref}.contentUrl", "the file cannot be downloaded")
            if fetched.status_code != 200:
                return self._rejected("invalid", f"{ref}.contentUrl", "the file cannot be downloaded")
            file_id = secrets.token_hex(8)
            with self._lock:
                self.files[file_id] = {"data": fetched.content, "mime": message.get("contentType"),
                                       "filename": message.get("contentName")}
            content = {"file": file_id, "contentType": message.get("contentType"),
                       "contentName": message.get("contentName"), "text": text or ""}
        elif template:
            content = {"templateId": template, "templateParams": params, "languageCode": message.get("languageCode")}
        else:
            content = {"text": text}
        kind = "template" if template else ("file" if url else "text")
        message_id = str(10**17 + next(self._ids))
        record = {"id": message_id, "to": to, "type": kind, "content": content, "time": now, "status": "ACCEPTED",
                  "statuses": [], "callbackUrl": message.get("callbackUrl"), "callbackData": message.get("callbackData")}
        with self._changed:
            self.outgoing.append(record)
            self._changed.notify_all()
        if to in self.unreachable:
            self._status(record, "UNDELIVERED", 1003)
        else:
            self._status(record, "SENT")
            self._status(record, "DELIVERED")
        return {"code": "OK", "messageId": message_id}
