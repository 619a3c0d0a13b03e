"""A local emulator of Meta's WhatsApp Cloud API (the Graph API's WhatsApp part), for
tests, benchmarks, the demo and the playground.

KeepDesk talks HTTP to it exactly as to graph.facebook.com (WHATSAPP_CLOUD_GRAPH_URL),
and it calls KeepDesk's webhook as Meta does. What it models, from Meta's public
documentation (CHANNELS.md §3):

* `POST /{version}/{phone_number_id}/messages` — text, image / document / audio / video
  (by uploaded `id` or by `link`), template, location, contacts, and the read status;
  Bearer token (a wrong one: 401, code 190); answer `{"messaging_product", "contacts",
  "messages": [{"id": "wamid…"}]}`; errors `{"error": {"message", "type", "code",
  "error_data": {"details"}, "fbtrace_id"}}`;
* the templates registry: an unknown name or language is 132001, another number of body
  parameters than registered is 132000;
* the 24-hour customer service window: a free-form message to a customer who has not
  written in 24 hours is accepted, then fails with a `failed` status, code 131047 (as Meta
  reports it, asynchronously); a phone without WhatsApp fails with 131026;
* limits: more than `per_number_per_s` messages a second from one number → HTTP 429 with
  code 130429; two messages to one customer closer than `pair_seconds` → 131056;
* statuses `sent` → `delivered` (→ `read` when the customer reads) by signed webhook;
* media: `POST /{phone_number_id}/media` (multipart), `GET /{media_id}` → a short-lived
  `url`, downloaded with the same Bearer token; inbound media are downloadable the same way;
* webhooks: `GET ?hub.mode=subscribe&hub.verify_token&hub.challenge` when subscribing,
  then signed POSTs (`X-Hub-Signature-256: sha256=` HMAC-SHA256 of the raw body with the
  app secret), re-delivered with backoff until answered 200, as Meta does.

Test control: `customer_writes`, `customer_sends_image` / `_document`,
`customer_presses_button`, `customer_orders`, `customer_changes_number`,
`customer_asks_about_product`, `customer_comes_from_ad`, `customer_reads`, `sent(phone)` (what the shop sent),
`fail_next` (inject 5xx / 429 / any Graph error), `set_down`, `add_template`,
`not_on_whatsapp`, `reset`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import deque

import requests
from werkzeug.wrappers import Request, Response

from sandbox._server import CallingBackEmulator

TOKEN = "sandbox-wa-token"
APP_SECRET = "sandbox-app-secret"
VERIFY_TOKEN = "sandbox-verify-token"
PHONE_NUMBER_ID = "100200300400"
WINDOW = 24 * 3600
MAX_TEXT = 4096
MAX_MEDIA = 100 * 1024 * 1024


class GraphError(Exception):
    def __init__(self, status: int, code: int, message: str, details: str | None = None,
                 kind: str = "OAuthException") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details, self.kind = status, code, message, details, kind

    def body(self) -> dict:
        error = {"message": self.message, "type": self.kind, "code": self.code,
                 "fbtrace_id": secrets.token_hex(8)}
        if self.details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        return {"error": error}


def sign(app_secret: str, raw: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()


class WhatsAppSandbox(CallingBackEmulator):
    thread_name = "wa-webhooks"
    label = "the WhatsApp sandbox"

    def __init__(self, *, token: str = TOKEN, app_secret: str = APP_SECRET,
                 verify_token: str = VERIFY_TOKEN, phone_number_id: str = PHONE_NUMBER_ID,
                 host: str = "127.0.0.1", port: int = 0, per_number_per_s: int = 80,
                 pair_seconds: float = 6.0, status_delay: float = 0.02) -> None:
        self.token = token
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.phone_number_id = phone_number_id
        self.per_number_per_s = per_number_per_s
        self.pair_seconds = pair_seconds
        self.status_delay = status_delay
        self._serve(self._wsgi, host, port)
        self._deliveries: "deque[tuple[float, dict]]" = deque()
        self.webhook_url: str | None = None
        self.templates: dict[tuple[str, str], dict] = {}
        self._clear()

    def _clear(self) -> None:
        with self._lock:
            self.customers: dict[str, dict] = {}
            self.outgoing: list[dict] = []           # what the shop sent, in order
            self.media: dict[str, dict] = {}
            self.calls: list[dict] = []
            self.webhook_log: list[dict] = []        # every webhook POST and its answer
            self.faults: "deque[GraphError]" = deque()
            self.refusals: list[int] = []            # Graph error codes answered, in order
            self.down_status: int | None = None
            self.unreachable: set[str] = set()
            self._number_stamps: "deque[float]" = deque()
            self._pair_last: dict[str, float] = {}
            self._deliveries.clear()

    # -- lifecycle -----------------------------------------------------------------------

    def reset(self) -> None:
        self._clear()
        self.templates.clear()
        self.webhook_url = None

    # -- configuration (what the shop set up at Meta) ------------------------------------

    def add_template(self, name: str, params: int, language: str = "uk",
                     buttons: tuple[str, ...] = ()) -> None:
        self.templates[(name, language)] = {"params": params, "buttons": buttons}

    def subscribe(self, webhook_url: str, verify_token: str | None = None) -> requests.Response:
        """What Meta does when the shop saves the webhook URL: the verification GET."""
        challenge = secrets.token_hex(8)
        answer = requests.get(webhook_url, params={"hub.mode": "subscribe", "hub.challenge": challenge,
                                                   "hub.verify_token": verify_token or self.verify_token},
                              timeout=10)
        if answer.status_code == 200 and answer.text == challenge:
            self.webhook_url = webhook_url
        return answer

    def not_on_whatsapp(self, phone: str) -> None:
        """Messages to this phone fail with 131026 (no WhatsApp, or blocked the shop)."""
        self.unreachable.add(phone)

    def fail_next(self, status: int = 500, code: int = 2, message: str = "Service temporarily unavailable",
                  times: int = 1, details: str | None = None) -> None:
        """The next `times` sends (messages and media calls) fail with this Graph error."""
        with self._lock:
            for _ in range(times):
                self.faults.append(GraphError(status, code, message, details))

    def set_down(self, status: int | None = 503) -> None:
        """Every Graph call answers `status` until set_down(None)."""
        self.down_status = status

    # -- the customers (test control) -----------------------------------------------------

    def customer_writes(self, phone: str, text: str, *, name: str = "Customer",
                        at: float | None = None) -> str:
        return self._inbound(phone, name, {"type": "text", "text": {"body": text}}, at)

    def customer_sends_image(self, phone: str, data: bytes, *, caption: str = "",
                             mime: str = "image/jpeg", name: str = "Customer") -> str:
        media_id = self._store_media(data, mime, None)
        content = {"id": media_id, "mime_type": mime, "sha256": hashlib.sha256(data).hexdigest()}
        if caption:
            content["caption"] = caption
        return self._inbound(phone, name, {"type": "image", "image": content})

    def customer_sends_document(self, phone: str, data: bytes, filename: str, *, caption: str = "",
                                mime: str = "application/pdf", name: str = "Customer") -> str:
        media_id = self._store_media(data, mime, filename)
        content = {"id": media_id, "mime_type": mime, "filename": filename,
                   "sha256": hashlib.sha256(data).hexdigest()}
        if caption:
            content["caption"] = caption
        return self._inbound(phone, name, {"type": "document", "document": content})

    def customer_presses_button(self, phone: str, text: str, payload: str | None = None, *,
                                context_id: str | None = None, name: str = "Customer") -> str:
        """A template's quick-reply button (type "button", with its payload)."""
        message = {"type": "button", "button": {"text": text, "payload": payload or text}}
        if context_id:
            message["context"] = {"from": self.phone_number_id, "id": context_id}
        return self._inbound(phone, name, message)

    def customer_orders(self, phone: str, items: list[dict], *, text: str = "", catalog_id: str = "CATALOG_1",
                        name: str = "Customer") -> str:
        """A cart sent from the shop's catalogue: items of {product_retailer_id, quantity,
        item_price, currency}, as Meta's `order` message carries them."""
        order = {"catalog_id": catalog_id, "product_items": items}
        if text:
            order["text"] = text
        return self._inbound(phone, name, {"type": "order", "order": order})

    def customer_changes_number(self, phone: str, new_phone: str, *, name: str = "Customer") -> str:
        """WhatsApp's `system` message from the old number: the customer moved to `new_phone`
        (later messages come from it)."""
        with self._lock:
            if phone in self.customers:
                self.customers[new_phone] = dict(self.customers[phone])
        body = {"body": f"{name} changed from {phone} to {new_phone}", "wa_id": new_phone,
                "type": "customer_changed_number", "customer": phone}
        return self._inbound(phone, name, {"type": "system", "system": body})

    def customer_asks_about_product(self, phone: str, text: str, product_retailer_id: str, *,
                                    catalog_id: str = "CATALOG_1", name: str = "Customer") -> str:
        """A message written from a product's page: `context.referred_product`."""
        return self._inbound(phone, name, {"type": "text", "text": {"body": text}, "context": {
            "from": "15550001111", "id": "wamid.product",
            "referred_product": {"catalog_id": catalog_id, "product_retailer_id": product_retailer_id}}})

    def customer_comes_from_ad(self, phone: str, text: str, headline: str, source_url: str, *,
                               name: str = "Customer") -> str:
        """A first message after tapping a click-to-WhatsApp ad: `referral`."""
        return self._inbound(phone, name, {"type": "text", "text": {"body": text}, "referral": {
            "source_url": source_url, "source_id": "120200000000", "source_type": "ad",
            "headline": headline, "body": "", "media_type": "image",
            "image_url": "https://scontent.example/ad.jpg", "ctwa_clid": "ARAkLkA8rmlF"}})

    def read_marks(self) -> list[str]:
        with self._lock:
            return [c["body"].get("message_id") for c in self.calls if c["kind"] == "read"]

    def post_webhook(self, body: dict | bytes, *, signature: str | None = None) -> int:
        """One webhook POST now (no retry): its HTTP status (0: no answer)."""
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json",
                   "X-Hub-Signature-256": signature if signature is not None else sign(self.app_secret, raw)}
        try:
            status = requests.post(self.webhook_url, data=raw, headers=headers, timeout=10).status_code
        except requests.RequestException:
            status = 0
        with self._lock:
            self.webhook_log.append({"time": time.time(), "status": status, "size": len(raw)})
        return status

    # -- inbound (customer → shop) --------------------------------------------------------

    def _store_media(self, data: bytes, mime: str, filename: str | None) -> str:
        media_id = str(10**15 + next(self._ids))
        with self._lock:
            self.media[media_id] = {"data": data, "mime": mime, "filename": filename}
        return media_id

    def _inbound(self, phone: str, name: str, message: dict, at: float | None = None) -> str:
        wamid = "wamid." + base64.b64encode(secrets.token_bytes(24)).decode()
        at = time.time() if at is None else at
        with self._lock:
            customer = self.customers.setdefault(phone, {"last_inbound": 0.0, "name": name})
            customer["last_inbound"] = max(customer["last_inbound"], at)
            customer["name"] = name
        message = {"from": phone, "id": wamid, "timestamp": str(int(at)), **message}
        self._webhook({"contacts": [{"profile": {"name": name}, "wa_id": phone}], "messages": [message]},
                      sync=True)
        return wamid

    def _envelope(self, value: dict) -> dict:
        value = {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": "15550001111", "phone_number_id": self.phone_number_id},
                 **value}
        return {"object": "whatsapp_business_account",
                "entry": [{"id": "WABA_ID", "changes": [{"value": value, "field": "messages"}]}]}

    def _webhook(self, value: dict, *, sync: bool = False, delay: float = 0.0) -> None:
        body = self._envelope(value)
        if sync:
            self._deliver(body, deadline=time.monotonic() + 60)
        else:
            with self._lock:
                self._deliveries.append((time.monotonic() + delay, body))
            self._wake.set()

    def _deliver(self, body: dict, deadline: float) -> bool:
        """POST until answered 200, with Meta-like backoff (shortened for tests)."""
        if not self.webhook_url:
            return False
        pause = 0.1
        while True:
            if self.post_webhook(body) == 200:
                return True
            if time.monotonic() >= deadline or self._stopping.is_set():
                return False
            time.sleep(pause)
            pause = min(2.0, pause * 2)

    def _pending(self):
        return self._deliveries

    def _push(self, due: list) -> None:
        for _, body in due:
            self._deliver(body, deadline=time.monotonic() + 60)

    def _status(self, message: dict, status: str, errors: list | None = None) -> None:
        with self._changed:
            message["status"] = status
            message["statuses"].append(status)
            self._changed.notify_all()
        value = {"id": message["id"], "status": status, "timestamp": str(int(time.time())),
                 "recipient_id": message["to"]}
        if errors:
            value["errors"] = errors
        self._webhook({"statuses": [value]}, delay=self.status_delay)

    # -- the Graph API --------------------------------------------------------------------

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        try:
            answer = self._route(request)
            response = answer if isinstance(answer, Response) else Response(
                json.dumps(answer), 200, mimetype="application/json")
        except GraphError as exc:
            with self._lock:
                self.refusals.append(exc.code)
            response = Response(json.dumps(exc.body()), exc.status, mimetype="application/json")
        return response(environ, start_response)

    def _route(self, request: Request):
        parts = [p for p in request.path.split("/") if p]
        if parts and parts[0] == "media-download" and len(parts) == 2:
            return self._download(request, parts[1])
        if parts and parts[0] == "_sandbox":
            return self._control(request, parts[1:])
        if len(parts) < 2 or not parts[0].startswith("v"):
            raise GraphError(400, 100, "Unknown path components")
        self._authorise(request)
        if self.down_status is not None:
            raise GraphError(self.down_status, 2, "Service temporarily unavailable", kind="OAuthException")
        target = parts[1]
        if len(parts) == 3 and parts[2] == "messages" and request.method == "POST":
            return self._messages(request, target)
        if len(parts) == 3 and parts[2] == "media" and request.method == "POST":
            return self._upload(request, target)
        if len(parts) == 2 and request.method == "GET":
            if target == self.phone_number_id:
                return {"verified_name": "Sandbox Shop", "quality_rating": "GREEN", "id": target}
            return self._media_info(target)
        raise GraphError(400, 100, "Unsupported request")

    def _authorise(self, request: Request) -> None:
        header = request.headers.get("Authorization", "")
        if header != f"Bearer {self.token}":
            raise GraphError(401, 190, "Invalid OAuth access token - Cannot parse access token")

    def _fault(self) -> None:
        with self._lock:
            fault = self.faults.popleft() if self.faults else None
        if fault is not None:
            raise fault

    def _messages(self, request: Request, number: str):
        if number != self.phone_number_id:
            raise GraphError(400, 100, f"Unsupported post request. Object with ID '{number}' does not exist")
        try:
            body = json.loads(request.get_data())
        except ValueError:
            raise GraphError(400, 100, "Invalid parameter", "the body is not JSON") from None
        if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
            raise GraphError(400, 100, "Invalid parameter", "messaging_product must be whatsapp")
        if body.get("status") == "read":
            with self._lock:
                self.calls.append({"kind": "read", "body": body, "time": time.time()})
            return {"success": True}
        self._fault()
        to, kind = str(body.get("to") or ""), body.get("type")
        if not to.isdigit():
            raise GraphError(400, 100, "Invalid parameter", "to must be a phone number")
        content = body.get(kind) if kind != "contacts" else body.get("contacts")
        if kind not in ("text", "image", "document", "audio", "video", "template", "location",
                        "contacts", "interactive", "sticker") or content is None:
            raise GraphError(400, 131009, "Parameter value is not valid", f"unsupported type {kind!r}")
        self._validate(kind, content, number)
        now = time.time()
        with self._lock:
            while self._number_stamps and self._number_stamps[0] <= now - 1.0:
                self._number_stamps.popleft()
            if len(self._number_stamps) >= self.per_number_per_s:
                raise GraphError(429, 130429, "Rate limit hit",
                                 "Cloud API message throughput has been reached.")
            last = self._pair_last.get(to)
            if last is not None and now - last < self.pair_seconds:
                raise GraphError(400, 131056, "(Business Account, Consumer Account) pair rate limit hit",
                                 "Message failed to send because there were too many messages sent"
                                 " from this phone number to the same phone number in a short period of time.")
            self._number_stamps.append(now)
            self._pair_last[to] = now
            wamid = "wamid." + base64.b64encode(secrets.token_bytes(24)).decode()
            customer = self.customers.get(to)
            in_window = customer is not None and now - customer["last_inbound"] < WINDOW
            message = {"id": wamid, "to": to, "type": kind, "content": content, "time": now,
                       "status": "accepted", "statuses": []}
            self.outgoing.append(message)
            self.calls.append({"kind": "message", "body": body, "time": now})
            self._changed.notify_all()
        if to in self.unreachable:
            self._status(message, "failed", [{"code": 131026, "title": "Message undeliverable",
                                              "message": "Message undeliverable",
                                              "error_data": {"details": "Message Undeliverable."}}])
        elif kind != "template" and not in_window:
            self._status(message, "failed", [{"code": 131047, "title": "Re-engagement message",
                                              "message": "Re-engagement message",
                                              "error_data": {"details": "Message failed to send because more than"
                                                                        " 24 hours have passed since the customer"
                                                                        " last replied to this number."}}])
        else:
            self._status(message, "sent")
            self._status(message, "delivered")
        return {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": wamid}]}

    def _validate(self, kind: str, content, number: str) -> None:
        if kind == "text":
            text = content.get("body") if isinstance(content, dict) else None
            if not isinstance(text, str) or not text:
                raise GraphError(400, 100, "Invalid parameter", "text['body'] is required")
            if len(text) > MAX_TEXT:
                raise GraphError(400, 100, "Invalid parameter",
                                 f"Param text['body'] must be at most {MAX_TEXT} characters long.")
        elif kind == "template":
            name = content.get("name")
            language = (content.get("language") or {}).get("code")
            registered = self.templates.get((name, language))
            if registered is None:
                raise GraphError(404, 132001, "Template name does not exist in the translation",
                                 f"template name ({name}) does not exist in {language}")
            given = sum(len(c.get("parameters") or []) for c in content.get("components") or []
                        if c.get("type") == "body")
            if given != registered["params"]:
                raise GraphError(400, 132000, "Number of parameters does not match the expected"
                                              " number of params",
                                 f"body: number of localizable_params ({given}) does not match the"
                                 f" expected number of params ({registered['params']})")
        elif kind in ("image", "document", "audio", "video", "sticker"):
            if "id" in content:
                with self._lock:
                    if content["id"] not in self.media:
                        raise GraphError(400, 131053, "Media upload error", "unknown media id")
            elif not str(content.get("link") or "").startswith(("http://", "https://")):
                raise GraphError(400, 100, "Invalid parameter", f"{kind} needs an id or a link")
            if len(str(content.get("caption") or "")) > 1024:
                raise GraphError(400, 100, "Invalid parameter", "caption is at most 1024 characters")

    def _upload(self, request: Request, number: str):
        if number != self.phone_number_id:
            raise GraphError(400, 100, f"Object with ID '{number}' does not exist")
        self._fault()
        upload = request.files.get("file")
        if upload is None or request.form.get("messaging_product") != "whatsapp":
            raise GraphError(400, 100, "Invalid parameter", "file and messaging_product are required")
        data = upload.read(MAX_MEDIA + 1)
        if len(data) > MAX_MEDIA:
            raise GraphError(400, 131053, "Media upload error", "file too large")
        media_id = self._store_media(data, request.form.get("type") or upload.mimetype, upload.filename)
        return {"id": media_id}

    def _media_info(self, media_id: str):
        with self._lock:
            stored = self.media.get(media_id)
        if stored is None:
            raise GraphError(400, 100, f"Unsupported get request. Object with ID '{media_id}' does not exist")
        return {"messaging_product": "whatsapp", "url": f"{self.url}/media-download/{media_id}",
                "mime_type": stored["mime"], "sha256": hashlib.sha256(stored["data"]).hexdigest(),
                "file_size": len(stored["data"]), "id": media_id}

    def _download(self, request: Request, media_id: str):
        if request.headers.get("Authorization", "") != f"Bearer {self.token}":
            return Response("Unauthorized", 401)
        with self._lock:
            stored = self.media.get(media_id)
        if stored is None:
            return Response("Not found", 404)
        return Response(stored["data"], 200, mimetype=stored["mime"])

    def _control(self, request: Request, parts: list[str]):
        """Test control over HTTP, for a harness in another process (docs/whatsapp.md, "The WhatsApp
        sandbox"): subscribe KeepDesk's webhook, make a customer write or press a button,
        read what the shop sent, add a template."""
        body = json.loads(request.get_data() or b"{}") if request.method == "POST" else {}
        action = "/".join(parts)
        if action == "subscribe":
            answer = self.subscribe(body["url"], body.get("verify_token"))
            return {"ok": answer.status_code == 200, "status": answer.status_code}
        if action == "customer/write":
            return {"id": self.customer_writes(str(body["phone"]), str(body["text"]),
                                               name=str(body.get("name") or "Customer"))}
        if action == "customer/button":
            return {"id": self.customer_presses_button(str(body["phone"]), str(body["text"]),
                                                       body.get("payload"))}
        if action == "customer/read":
            return {"read": self.customer_reads(str(body["phone"]))}
        if action == "template":
            self.add_template(str(body["name"]), int(body.get("params") or 0), body.get("language") or "uk")
            return {"ok": True}
        if action == "sent":
            phone = request.args.get("phone")
            return {"messages": [{k: v for k, v in m.items()} for m in self.sent(phone)]}
        raise GraphError(404, 100, "unknown sandbox control")

    # -- snapshots of what happened ---------------------------------------------------------

    def message_texts(self, phone: str) -> list[str]:
        """What the customer sees, one line per message the shop sent and got through."""
        shown = []
        for m in self.sent(phone):
            if m["status"] == "failed":
                continue
            content = m["content"]
            if m["type"] == "text":
                shown.append(content["body"])
            elif m["type"] == "template":
                params = [p.get("text") for c in content.get("components") or [] for p in c.get("parameters") or []]
                shown.append(f"[{content['name']}] " + " | ".join(params))
            elif m["type"] in ("image", "document"):
                name = content.get("filename") or content.get("id") or content.get("link")
                shown.append(f"[{m['type']} {name}] {content.get('caption') or ''}".strip())
            else:
                shown.append(f"[{m['type']}]")
        return shown

    def media_bytes(self, media_id: str) -> bytes | None:
        with self._lock:
            stored = self.media.get(media_id)
        return stored["data"] if stored else None
