"""A local emulator of the KeepingCRM "debates" chat API (SPEC section 5).

Tests, benchmarks and the demo run against it instead of a real shop's CRM, so
they need no credentials and can provoke the failures a real CRM has on a bad
day (expired tokens, 5xx answers, refused connections, slow chats).

    with CrmSandbox() as crm:
        crm.customer_writes(1001, "Hello, is it in stock?")
        # KEEPING_API_URL=crm.api_url, KEEPING_WEB_URL=crm.web_url,
        # KEEPING_SELLER_ID=crm.seller_id, KEEPING_API_KEY=crm.api_key

The sandbox plays two roles: the HTTP API (under /api) that KeepDesk talks to,
and "the world" (customers and shop staff writing in the CRM web page), driven
from Python by the helper methods. Nothing starts at import time.
"""

from __future__ import annotations

import base64
import collections
import dataclasses
import datetime
import hashlib
import hmac
import math
import mimetypes
import secrets
import threading
import time
import urllib.parse
from typing import Any

import requests
from flask import Flask, Response, jsonify, request
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from sandbox._server import ServerThread

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

# The real CRM refuses logins whose timestamp is further than this from its clock.
LOGIN_CLOCK_SKEW_S = 300

DEFAULT_PAGESIZE = 20
MAX_PAGESIZE = 100
DEFAULT_MESSAGE_COUNT = 20

# A long benchmark must not grow the call log without bound; the oldest calls go first.
MAX_RECORDED_CALLS = 100_000

CHATS_KEYS = ("chats", "items")

# The format of snapshot() / restore() (test control).
SNAPSHOT_VERSION = 1

# What a CRM behind a reverse proxy answers while it is being maintained: HTML, not JSON.
MAINTENANCE_PAGE = ("<!doctype html><html><head><title>Maintenance</title></head><body>"
                    "<h1>We are down for maintenance</h1><p>Back soon.</p></body></html>")


def format_date(timestamp: float) -> str:
    """CRM dates are local wall-clock time, to the second."""
    return time.strftime(DATE_FORMAT, time.localtime(timestamp))


def login_sign(api_key: str, timestamp: float) -> str:
    """The signature the CRM expects in /apilogin."""
    return hashlib.sha256((api_key + str(round(timestamp))).encode()).hexdigest()


def _crm_text(text: str) -> str:
    # The CRM stores and returns new lines as HTML line breaks.
    return text.replace("\r\n", "\n").replace("\n", "<br>")


def _guess_mime(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


class ApiError(Exception):
    """An answer other than 200, raised anywhere inside an API handler."""

    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(status, body)
        self.status = status
        self.body = body


def _bad_request(message: str, **extra: Any) -> ApiError:
    return ApiError(400, {"error": message, **extra})


@dataclasses.dataclass
class _StoredFile:
    newid: str
    name: str
    type: str
    data: bytes
    uploaded: bool  # True: came through upload-preview; False: sent by a customer

    @property
    def path(self) -> str:
        return f"/files/{self.newid}/{urllib.parse.quote(self.name)}"

    @property
    def is_img(self) -> bool:
        return self.type.startswith("image/")


@dataclasses.dataclass
class _Message:
    id: int
    id_i: int
    text: str  # already in CRM form (<br> for new lines)
    from_seller: bool
    written: float
    seen: float | None = None
    file: _StoredFile | None = None

    def to_api(self, base_url: str) -> dict[str, Any]:
        stored = self.file
        url = base_url + stored.path if stored else None
        return {
            "id": self.id,
            "message": self.text,
            "seller": int(self.from_seller),
            "buyer": int(not self.from_seller),
            "deleted": 0,
            "date_written": format_date(self.written),
            "date_seen": format_date(self.seen) if self.seen is not None else None,
            # Images are shown inline (is_img + preview); other files are links (is_file).
            "is_file": int(stored is not None and not stored.is_img),
            "filename": stored.name if stored else None,
            "url": url,
            "is_img": int(stored is not None and stored.is_img),
            "preview": url if stored and stored.is_img else None,
        }


@dataclasses.dataclass
class _Chat:
    id_i: int
    email: str
    product: str
    created: float
    messages: list[_Message] = dataclasses.field(default_factory=list)

    @property
    def last_ts(self) -> float:
        return max((m.written for m in self.messages), default=self.created)

    @property
    def cnt_new(self) -> int:
        return sum(1 for m in self.messages if not m.from_seller and m.seen is None)

    def sort_key(self) -> tuple[int, int]:
        # The CRM orders by its second-resolution date column, then by order number.
        return (int(self.last_ts), self.id_i)

    def to_api(self) -> dict[str, Any]:
        return {
            "id_i": self.id_i,
            "email": self.email,
            "product": self.product,
            "last_date": format_date(self.last_ts),
            "cnt_msg": len(self.messages),
            "cnt_new": self.cnt_new,
        }


class CrmSandbox:
    """The emulated CRM: HTTP API, world helpers, call log and fault switches."""

    def __init__(
        self,
        *,
        seller_id: int = 1,
        api_key: str = "sandbox-api-key",
        host: str = "127.0.0.1",
        port: int = 0,
        token_ttl: float = 3600.0,
        max_message_len: int = 4000,
        chats_key: str = "chats",
    ):
        if chats_key not in CHATS_KEYS:
            raise ValueError(f"chats_key must be one of {CHATS_KEYS}")
        self.seller_id = seller_id
        self.api_key = api_key
        self.host = host
        self.token_ttl = token_ttl
        self.max_message_len = max_message_len
        self.chats_key = chats_key

        # One lock guards every piece of state below; handlers run in server threads.
        self._lock = threading.RLock()
        self._chats: dict[int, _Chat] = {}
        self._files: dict[str, _StoredFile] = {}
        self._last_message_id = 0
        self._tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self._calls: collections.deque[dict[str, Any]] = collections.deque(
            maxlen=MAX_RECORDED_CALLS
        )

        # Fault injection switches.
        self._down_status: int | None = None
        self._down_left: int | None = None  # None: until set_up()
        self._login_failures_left = 0
        self._login_down: tuple[int, str, float] | None = None  # status, body, until (monotonic)
        self._delay_all = 0.0
        self._delay_by_chat: dict[int, float] = {}
        # The purchase behind each chat (the invoice the web page shows), by id_i.
        self._orders: dict[int, dict[str, Any]] = {}

        self._port = port
        self._server: ServerThread | None = None
        self._refusing = False
        self.app = self._build_app()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> CrmSandbox:
        with self._lock:
            if self._server is None:
                self._server = ServerThread(self.app, host=self.host, port=self._port)
                self._server.start()
                # Remember the real port so set_refuse(False) comes back on the same one.
                self._port = self._server.port
        return self

    def stop(self) -> None:
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> CrmSandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    @property
    def api_url(self) -> str:
        """KEEPING_API_URL."""
        return self.url + "/api"

    @property
    def web_url(self) -> str:
        """KEEPING_WEB_URL."""
        return self.url + "/web"

    def reset(self) -> None:
        """Forget chats, files, tokens, the call log and faults; keep the server.

        Message ids keep growing across resets, as a database sequence would, so a
        test that kept KeepDesk's own store never sees an id reused.
        """
        with self._lock:
            self._chats.clear()
            self._orders.clear()
            self._files.clear()
            self._tokens.clear()
            self._calls.clear()
            self._down_status, self._down_left = None, None
            self._login_failures_left = 0
            self._login_down = None
            self._delay_all = 0.0
            self._delay_by_chat.clear()
        self.set_refuse(False)

    # ------------------------------------------------------------------ the world

    def add_chat(
        self, id_i: int, *, email: str = "client@example.com", product: str = "Product"
    ) -> dict[str, Any]:
        """Create a chat (or update its email and product if it exists)."""
        with self._lock:
            chat = self._chats.get(id_i)
            if chat is None:
                chat = self._chats[id_i] = _Chat(id_i, email, product, time.time())
            else:
                chat.email, chat.product = email, product
            return chat.to_api()

    def customer_writes(
        self,
        id_i: int,
        text: str = "Hello",
        *,
        email: str | None = None,
        product: str | None = None,
        image: bytes | None = None,
        file: bytes | None = None,
        filename: str | None = None,
        at: datetime.datetime | None = None,
    ) -> dict[str, Any]:
        """A customer writes in chat id_i (created if needed); returns the message."""
        if image is not None and file is not None:
            raise ValueError("a customer message carries an image or a file, not both")
        attachment = None
        if image is not None:
            name = filename or "image.jpg"
            attachment = self._store_file(name, _guess_mime(name), image, uploaded=False)
        elif file is not None:
            name = filename or "file.bin"
            attachment = self._store_file(name, _guess_mime(name), file, uploaded=False)
        with self._lock:
            chat = self._ensure_chat(id_i, email, product)
            message = self._append(chat, text, from_seller=False, at=at, file=attachment)
            return message.to_api(self._base_url())

    def set_order(self, id_i: int, *, product: str = "Product", qty: int = 1,
                  total: str = "100.00", currency: str = "UAH", status: str = "new",
                  status_name: str | None = None, paid: bool = False,
                  delivery: dict[str, Any] | None = None) -> dict[str, Any]:
        """The shop's purchase (invoice) behind chat id_i, as the CRM's web page shows it:
        product, quantity, sum, status, payment and delivery (service, city, branch, the
        carrier's tracking number "ttn", its status). Answered by
        `GET /api/purchases/v2/inv_detail?id_i=` as {"retval": 0, "invoice": {...}}."""
        order = {"id_i": id_i, "product": product, "qty": qty, "sum": total,
                 "currency": currency, "status": status, "status_name": status_name or status,
                 "paid": int(paid), "date_created": format_date(time.time()),
                 "delivery": dict(delivery or {})}
        with self._lock:
            self._orders[id_i] = order
        return dict(order)

    def shop_writes(
        self, id_i: int, text: str, *, at: datetime.datetime | None = None
    ) -> dict[str, Any]:
        """Shop staff answer in the CRM web page, bypassing KeepDesk."""
        with self._lock:
            chat = self._ensure_chat(id_i, None, None)
            return self._append(chat, text, from_seller=True, at=at).to_api(self._base_url())

    def messages(self, id_i: int) -> list[dict[str, Any]]:
        with self._lock:
            chat = self._chats.get(id_i)
            base = self._base_url()
            return [m.to_api(base) for m in chat.messages] if chat else []

    def chat(self, id_i: int) -> dict[str, Any] | None:
        with self._lock:
            chat = self._chats.get(id_i)
            return chat.to_api() if chat else None

    def uploads(self) -> list[dict[str, Any]]:
        """Files received through upload-preview, oldest first, with their bytes."""
        with self._lock:
            return [
                {"newid": f.newid, "name": f.name, "type": f.type,
                 "size": len(f.data), "data": f.data, "url": self._base_url() + f.path}
                for f in self._files.values() if f.uploaded
            ]

    def signal(
        self, listener_url: str, link_key: str, id_i: int, times: int = 1
    ) -> list[int]:
        """Send the CRM's "new message" signal to a listener; returns the statuses."""
        target = f"{listener_url.rstrip('/')}/messages/{link_key}"
        return [
            requests.post(target, json={"InvoiceId": id_i}, timeout=10).status_code
            for _ in range(times)
        ]

    # ------------------------------------------------------------------ call log

    def calls(self, path_contains: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self._calls
                    if path_contains is None or path_contains in c["path"]]

    def count_calls(self, path_contains: str | None = None) -> int:
        return len(self.calls(path_contains))

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # ------------------------------------------------------------------ test control

    def snapshot(self) -> dict[str, Any]:
        """The world as JSON-able data: every chat with its messages (ids, texts as the CRM
        stores them, dates and seen times as epoch seconds, attached files by newid),
        every stored file (bytes in base64) and the message id counter. `restore()` puts
        it back exactly, in this sandbox or another one (an upgrade test restores the
        world a previous release's run left behind). Format version 1:

            {"version": 1, "last_message_id": int,
             "files": [{"newid", "name", "type", "uploaded", "data_b64"}],
             "chats": [{"id_i", "email", "product", "created",
                        "messages": [{"id", "text", "from_seller", "written", "seen",
                                      "file"}]}]}
        """
        with self._lock:
            return {
                "version": SNAPSHOT_VERSION,
                "last_message_id": self._last_message_id,
                "files": [{"newid": f.newid, "name": f.name, "type": f.type,
                           "uploaded": f.uploaded,
                           "data_b64": base64.b64encode(f.data).decode("ascii")}
                          for f in self._files.values()],
                "chats": [{"id_i": c.id_i, "email": c.email, "product": c.product,
                           "created": c.created,
                           "messages": [{"id": m.id, "text": m.text,
                                         "from_seller": m.from_seller, "written": m.written,
                                         "seen": m.seen,
                                         "file": m.file.newid if m.file else None}
                                        for m in c.messages]}
                          for c in self._chats.values()],
            }

    def restore(self, state: dict[str, Any]) -> None:
        """Replace the world (chats, messages, files, the message id counter) by a
        snapshot's; tokens, the call log and faults stay as they are. File URLs are this
        sandbox's (`/files/<newid>/<name>` under its own address)."""
        if state.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unknown CRM snapshot version {state.get('version')!r}")
        files = {f["newid"]: _StoredFile(f["newid"], f["name"], f["type"],
                                         base64.b64decode(f["data_b64"]), bool(f["uploaded"]))
                 for f in state["files"]}
        chats: dict[int, _Chat] = {}
        for saved in state["chats"]:
            chat = _Chat(int(saved["id_i"]), saved["email"], saved["product"],
                         float(saved["created"]))
            for m in saved["messages"]:
                if m["file"] is not None and m["file"] not in files:
                    raise ValueError(f"message {m['id']} names an unknown file {m['file']!r}")
                chat.messages.append(_Message(
                    int(m["id"]), chat.id_i, m["text"], bool(m["from_seller"]),
                    float(m["written"]), None if m["seen"] is None else float(m["seen"]),
                    files[m["file"]] if m["file"] is not None else None))
            chats[chat.id_i] = chat
        highest = max((m.id for c in chats.values() for m in c.messages), default=0)
        if int(state["last_message_id"]) < highest:
            raise ValueError("the snapshot's message id counter is below its messages' ids")
        with self._lock:
            self._chats = chats
            self._files = files
            self._last_message_id = int(state["last_message_id"])

    # ------------------------------------------------------------------ faults

    def expire_tokens(self) -> None:
        """Every token issued so far stops working (new logins still succeed)."""
        with self._lock:
            self._tokens.clear()

    def set_down(self, status: int = 503, times: int | None = None) -> None:
        """The next `times` API calls (all of them if None) answer `status`."""
        with self._lock:
            self._down_status, self._down_left = status, times

    def set_up(self) -> None:
        with self._lock:
            self._down_status, self._down_left = None, None

    def set_refuse(self, refuse: bool = True) -> None:
        """Close the listening socket (clients get connection refused) or reopen it."""
        with self._lock:
            if refuse == self._refusing:
                return
            self._refusing = refuse
        # Outside the lock: stopping waits for the server loop, whose handlers need it.
        if refuse:
            self.stop()
        else:
            self.start()

    def set_delay(self, seconds: float, id_i: int | None = None) -> None:
        """Delay API answers: all of them, or only calls about chat id_i. 0 clears."""
        with self._lock:
            if id_i is None:
                self._delay_all = seconds
            elif seconds:
                self._delay_by_chat[id_i] = seconds
            else:
                self._delay_by_chat.pop(id_i, None)

    def fail_login(self, times: int = 1) -> None:
        """The next `times` logins fail with retval 1 even with a correct sign."""
        with self._lock:
            self._login_failures_left = times

    def set_login_down(self, status: int = 403, seconds: float | None = None,
                       body: str = MAINTENANCE_PAGE) -> None:
        """Logins answer `status` with an HTML page (a maintenance window in front of the
        CRM) for `seconds` from now, or until set_login_up(). Tokens already issued keep
        working; pair it with expire_tokens() for a CRM that restarts."""
        until = math.inf if seconds is None else time.monotonic() + seconds
        with self._lock:
            self._login_down = (status, body, until)

    def set_login_up(self) -> None:
        with self._lock:
            self._login_down = None

    # ------------------------------------------------------------------ internals

    def _base_url(self) -> str:
        # Before start() the port is unknown; URLs then stay relative.
        return self.url if self._port else ""

    def _ensure_chat(self, id_i: int, email: str | None, product: str | None) -> _Chat:
        chat = self._chats.get(id_i)
        if chat is None:
            chat = self._chats[id_i] = _Chat(
                id_i, email or "client@example.com", product or "Product", time.time()
            )
        else:
            chat.email = email or chat.email
            chat.product = product or chat.product
        return chat

    def _append(
        self,
        chat: _Chat,
        text: str,
        *,
        from_seller: bool,
        at: datetime.datetime | None = None,
        file: _StoredFile | None = None,
    ) -> _Message:
        # Message ids are global across chats and only grow, like the CRM's primary key.
        self._last_message_id += 1
        written = at.timestamp() if at is not None else time.time()
        message = _Message(self._last_message_id, chat.id_i, _crm_text(text),
                           from_seller, written, file=file)
        chat.messages.append(message)
        return message

    def _store_file(self, name: str, mime: str, data: bytes, *, uploaded: bool) -> _StoredFile:
        stored = _StoredFile(secrets.token_hex(12), name, mime, data, uploaded)
        with self._lock:
            self._files[stored.newid] = stored
        return stored

    def _check_token(self) -> None:
        token = request.args.get("token", "")
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None or expiry <= time.time():
            raise ApiError(401, {"retval": 2, "error": "invalid token"})

    def _chat_or_404(self, id_i: int) -> _Chat:
        chat = self._chats.get(id_i)
        if chat is None:
            raise ApiError(404, {"error": f"unknown chat {id_i}"})
        return chat

    # ------------------------------------------------------------------ HTTP app

    def _build_app(self) -> Flask:
        app = Flask(__name__)
        app.before_request(self._before_request)
        app.after_request(self._record_call)
        app.register_error_handler(ApiError, self._api_error)
        app.register_error_handler(HTTPException, self._http_error)

        api = "/api"
        app.add_url_rule(f"{api}/apilogin", view_func=self._login, methods=["POST"])
        app.add_url_rule(f"{api}/debates/v2/chats", view_func=self._list_chats)
        # Clients call both /debates/v2 and /debates/v2/; the CRM accepts either.
        for path in (f"{api}/debates/v2", f"{api}/debates/v2/"):
            app.add_url_rule(path, endpoint=path, view_func=self._messages_endpoint,
                             methods=["GET", "POST"], strict_slashes=True)
        app.add_url_rule(f"{api}/debates/v2/upload-preview", view_func=self._upload,
                         methods=["POST"])
        app.add_url_rule(f"{api}/debates/v2/seen", view_func=self._seen, methods=["POST"])
        app.add_url_rule(f"{api}/purchases/v2/inv_detail", view_func=self._order)
        app.add_url_rule("/files/<newid>/<path:name>", view_func=self._serve_file)
        app.add_url_rule("/web/purchases_inv_detail", view_func=self._web_order_page)
        return app

    @staticmethod
    def _is_api() -> bool:
        return request.path.startswith("/api/")

    def _before_request(self) -> Response | tuple[Response, int] | None:
        if not self._is_api():
            return None
        time.sleep(self._delay_for(request.args.get("id_i")))
        with self._lock:
            status = self._down_status
            if status is not None and self._down_left is not None:
                self._down_left -= 1
                if self._down_left <= 0:
                    self._down_status, self._down_left = None, None
        if status is not None:
            return jsonify({"error": "service unavailable (sandbox is down)"}), status
        return None

    def _delay_for(self, raw_id_i: str | None) -> float:
        with self._lock:
            delay = self._delay_all
            if raw_id_i is not None and raw_id_i.isdigit():
                delay = max(delay, self._delay_by_chat.get(int(raw_id_i), 0.0))
        return delay

    def _record_call(self, response: Response) -> Response:
        if self._is_api():
            entry = {
                "method": request.method,
                "path": request.path,
                "params": request.args.to_dict(),
                "json": request.get_json(silent=True) if request.is_json else None,
                "status": response.status_code,
                "time": time.time(),
            }
            with self._lock:
                self._calls.append(entry)
        return response

    @staticmethod
    def _api_error(error: ApiError) -> tuple[Response, int]:
        return jsonify(error.body), error.status

    def _http_error(self, error: HTTPException) -> Any:
        # Routing errors (404, 405) under /api answer JSON like the rest of the API.
        if self._is_api():
            return jsonify({"error": error.description}), error.code
        return error

    # ---- /api/apilogin

    def _login(self) -> Response:
        with self._lock:
            down = self._login_down
        if down is not None and time.monotonic() < down[2]:
            return Response(down[1], status=down[0], mimetype="text/html")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, {"retval": 1, "error": "JSON object expected"})
        error = self._login_error(body)
        if error:
            return jsonify({"retval": 1, "error": error})
        token = secrets.token_hex(16)
        expiry = time.time() + self.token_ttl
        with self._lock:
            self._tokens[token] = expiry
        return jsonify({"retval": 0, "token": token, "valid_thru": format_date(expiry)})

    def _login_error(self, body: dict[str, Any]) -> str | None:
        with self._lock:
            if self._login_failures_left > 0:
                self._login_failures_left -= 1
                return "login refused (sandbox fail_login)"
        if str(body.get("seller_id")) != str(self.seller_id):
            return "unknown seller"
        timestamp = body.get("timestamp")
        if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
            return "timestamp must be a number"
        if abs(time.time() - timestamp) > LOGIN_CLOCK_SKEW_S:
            return "timestamp out of range"
        if not hmac.compare_digest(str(body.get("sign", "")),
                                   login_sign(self.api_key, timestamp)):
            return "wrong sign"
        return None

    # ---- /api/debates/v2/chats

    def _list_chats(self) -> Response:
        self._check_token()
        page = _int_arg("page", default=1, minimum=1)
        pagesize = min(_int_arg("pagesize", default=DEFAULT_PAGESIZE, minimum=1), MAX_PAGESIZE)
        only_new = request.args.get("filter_new") == "1"
        with self._lock:
            chats = [c for c in self._chats.values() if not only_new or c.cnt_new > 0]
            chats.sort(key=_Chat.sort_key, reverse=True)
            start = (page - 1) * pagesize
            page_items = [c.to_api() for c in chats[start:start + pagesize]]
        return jsonify({self.chats_key: page_items,
                        "cnt_pages": math.ceil(len(chats) / pagesize)})

    # ---- /api/debates/v2 (GET: read messages, POST: send)

    def _messages_endpoint(self) -> Response:
        self._check_token()
        if request.method == "POST":
            return self._send()
        return self._read_messages()

    def _read_messages(self) -> Response:
        id_i = _int_arg("id_i", required=True)
        count = _int_arg("count", default=DEFAULT_MESSAGE_COUNT, minimum=1)
        id_from = _int_arg("id_from")
        newer = request.args.get("newer") == "1"
        with self._lock:
            chat = self._chats.get(id_i)
            found = list(chat.messages) if chat else []
            if id_from is not None:
                found = [m for m in found
                         if (m.id > id_from if newer else m.id <= id_from)]
            # The most recent `count`, oldest first.
            found.sort(key=lambda m: m.id)
            base = self._base_url()
            return jsonify([m.to_api(base) for m in found[-count:]])

    def _send(self) -> Response:
        id_i = _int_arg("id_i", required=True)
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise _bad_request("JSON object expected")
        text = body.get("message") or ""
        if not isinstance(text, str):
            raise _bad_request("message must be a string")
        if len(text) > self.max_message_len:
            raise _bad_request("message too long", max=self.max_message_len)
        with self._lock:
            chat = self._chat_or_404(id_i)
            attachments = self._attachments(body.get("files") or [])
            if not text.strip() and not attachments:
                raise _bad_request("empty message")
            # The text, then one message per attached file, as the CRM page shows them.
            sent = []
            if text.strip():
                sent.append(self._append(chat, text, from_seller=True))
            for stored in attachments:
                sent.append(self._append(chat, "", from_seller=True, file=stored))
        return jsonify({"retval": 0, "id": sent[-1].id, "ids": [m.id for m in sent]})

    def _attachments(self, files: Any) -> list[_StoredFile]:
        if not isinstance(files, list):
            raise _bad_request("files must be a list")
        attachments = []
        for item in files:
            newid = item.get("newid") if isinstance(item, dict) else None
            stored = self._files.get(newid) if isinstance(newid, str) else None
            if stored is None or not stored.uploaded:
                raise _bad_request(f"unknown file newid {newid!r}")
            attachments.append(stored)
        return attachments

    # ---- /api/debates/v2/upload-preview

    def _upload(self) -> Response:
        self._check_token()
        parts = request.files.getlist("files[]")
        if not parts:
            raise _bad_request("no files[] in the upload")
        answer = []
        for part in parts:
            name = part.filename or "file.bin"
            mime = part.mimetype
            if not mime or mime == "application/octet-stream":
                mime = _guess_mime(name)
            stored = self._store_file(name, mime, part.read(), uploaded=True)
            answer.append({"newid": stored.newid, "name": stored.name,
                           "type": stored.type, "size": len(stored.data)})
        return jsonify({"retval": 0, "files": answer})

    # ---- /api/debates/v2/seen

    def _seen(self) -> Response:
        self._check_token()
        id_i = _int_arg("id_i", required=True)
        now = time.time()
        with self._lock:
            for message in self._chat_or_404(id_i).messages:
                if not message.from_seller and message.seen is None:
                    message.seen = now
        return jsonify({"retval": 0})

    # ---- /api/purchases/v2/inv_detail

    def _order(self) -> Response:
        self._check_token()
        id_i = _int_arg("id_i", required=True)
        with self._lock:
            order = self._orders.get(id_i)
        if order is None:
            raise ApiError(404, {"retval": 1, "error": f"unknown invoice {id_i}"})
        return jsonify({"retval": 0, "invoice": order})

    # ---- outside the API: file downloads and the order page of the web CRM

    def _serve_file(self, newid: str, name: str) -> Response:
        with self._lock:
            stored = self._files.get(newid)
        if stored is None or stored.name != name:
            return Response("not found", status=404, mimetype="text/plain")
        return Response(stored.data, mimetype=stored.type)

    def _web_order_page(self) -> Response:
        raw_id_i = request.args.get("id_i", "")
        with self._lock:
            chat = self._chats.get(int(raw_id_i)) if raw_id_i.isdigit() else None
            lines = [f"<li>{'shop' if m.from_seller else 'client'} "
                     f"{format_date(m.written)}: {escape(m.text)}</li>"
                     for m in (chat.messages if chat else [])]
        title = f"Order {escape(raw_id_i)}" + (f" — {escape(chat.product)}" if chat else "")
        html = (f"<!doctype html><title>{title}</title><h1>{title}</h1>"
                f"<ul>{''.join(lines)}</ul>")
        return Response(html, status=200 if chat else 404, mimetype="text/html")


def _int_arg(
    name: str, *, default: int | None = None, required: bool = False, minimum: int | None = None
) -> int | None:
    """An integer query parameter; a malformed one is the client's bug, so 400."""
    raw = request.args.get(name, "")
    if raw == "":
        if required:
            raise _bad_request(f"{name} is required")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad_request(f"{name} must be an integer") from None
    if minimum is not None and value < minimum:
        raise _bad_request(f"{name} must be at least {minimum}")
    return value
