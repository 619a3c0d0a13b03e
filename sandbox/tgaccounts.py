"""A local emulator of "Telegram users writing to the shop's Telegram accounts"
(CHANNELS.md §5), used by tests, the demo and the playground instead of Telegram's
servers. KeepDesk selects it with `TG_ACCOUNTS_BACKEND=sandbox` and
`TG_ACCOUNTS_SANDBOX_URL=<its url>`; its accounts process then talks to it over loopback
HTTP through `channels/tgaccount/emulated.py`.

It behaves like Telegram does for a user account, as far as the relay can tell:

* an account exists with a session string, and the session alone says which account a
  client is (as Telegram's auth key does: the number a client names changes nothing;
  `connect` answers the session's own user, phone included); a session revoked (logged out on another
  device) is refused with 401 `AUTH_KEY_UNREGISTERED` at connect and at every call;
* updates come like MTProto's: every new message of every chat of the account —
  incoming, and outgoing (typed by the owner on the phone, *and* sent through the API:
  Telegram tells a client about its own sends too) — and "read" when a customer reads
  the account's messages; they are kept until the client confirms them (the next poll's
  `offset`), so a client that died re-reads what it had not confirmed;
* an account may send to a user by id only once it "met" them (they wrote, or were
  found by username or by phone — importing a contact); a user whose privacy settings
  refuse strangers is refused with 403 `USER_PRIVACY_RESTRICTED`; over the flood limit,
  420 `FLOOD_WAIT_<seconds>`;
* files: what a customer sends is downloadable by the account; what the account sends
  is kept for the customer to read.

Test control (HTTP under `/control`, mirrored by Python methods), for any harness:

| call | does |
|---|---|
| `POST /control/users {"id"?, "username"?, "phone"?, "first_name", "last_name"?, "privacy"?}` | a Telegram user exists → `{"user"}` |
| `POST /control/accounts {"number"}` | an account exists → `{"session"}` (its session string) |
| `POST /control/accounts/<number>/revoke` | the session is logged out elsewhere |
| `POST /control/accounts/<number>/write {"from", "text", "file"?: {"name","mime","data"(base64)}, "group"?}` | a customer writes to the account (in a group with `"group": <chat id>`) → `{"message_id"}` |
| `POST /control/accounts/<number>/owner_writes {"to", "text"}` | the owner types on their phone → `{"message_id"}` |
| `GET /control/accounts/<number>/sent?to=<user>` | what the account sent (via `api` or `phone`), oldest first |
| `POST /control/accounts/<number>/read {"user"}` | the customer reads the account's messages |
| `POST /control/accounts/<number>/flood {"seconds"}` | the next sends are refused with FLOOD_WAIT |
| `POST /control/accounts/<number>/password {"password", "hint"?}` | the account has a cloud password (2FA) |
| `POST /control/accounts/<number>/scan {"url"}` | the owner scans a login QR code (`tg://login?token=…`) in Telegram → Settings → Devices (`auth.acceptLoginToken`) |
| `GET /control/accounts/<number>/login_code` | the login code Telegram sent to the account's app (`auth.sendCode`) |
| `GET /control/login_tokens` | the QR login tokens not yet expired, as `tg://login?token=…` |
| `POST /control/reset` | forget everything |

Logging in (QR, or phone code and cloud password) is Telegram's flow as documented, at
this same seam: `sandbox/tglogin_auth.py`.
"""
from __future__ import annotations

import base64
import itertools
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request

from sandbox._server import ServerThread
from sandbox.tglogin_auth import (CODE_TTL, G, P, QR_TTL, AuthError, CloudPassword, LoginSession,
                                  srp_round, srp_verify)


@dataclass
class _User:
    id: int
    first_name: str
    username: str | None = None
    phone: str | None = None
    last_name: str | None = None
    privacy: bool = False       # refuses messages from accounts that are not their contacts
    bot: bool = False

    def api(self) -> dict:
        return {"id": self.id, "first_name": self.first_name, "last_name": self.last_name,
                "username": self.username, "phone": self.phone, "bot": self.bot}


@dataclass
class _Message:
    id: int
    peer_id: int
    out: bool
    text: str
    via: str                     # customer | phone | api
    private: bool = True
    file: dict | None = None     # name, mime, data (bytes)
    date: float = field(default_factory=time.time)
    read: bool = False


@dataclass
class _Account:
    number: str
    session: str
    me: _User
    revoked: bool = False
    flood_until: float = 0.0
    next_id: itertools.count = field(default_factory=lambda: itertools.count(1))
    next_update: itertools.count = field(default_factory=lambda: itertools.count(1))
    updates: list[tuple[int, dict]] = field(default_factory=list)
    messages: dict[int, _Message] = field(default_factory=dict)
    met: set[int] = field(default_factory=set)
    contacts: set[int] = field(default_factory=set)
    logged_in: set[str] = field(default_factory=set)     # sessions made by a login
    password: CloudPassword | None = None
    last_code: str | None = None
    cond: threading.Condition = field(default_factory=threading.Condition)


class TgAccountsSandbox:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._port = port
        self._lock = threading.RLock()
        self._users: dict[int, _User] = {}
        self._accounts: dict[str, _Account] = {}
        self._user_ids = itertools.count(5_000_001)
        self._calls: list[dict] = []
        self._logins: dict[str, LoginSession] = {}
        self.qr_ttl = QR_TTL
        self._server: ServerThread | None = None
        self.app = self._build_app()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "TgAccountsSandbox":
        if self._server is None:
            self._server = ServerThread(self.app, host=self.host, port=self._port).start()
            self._port = self._server.port
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            self._wake_all()
            server.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._port}"

    def reset(self) -> None:
        with self._lock:
            self._wake_all()
            self._users.clear()
            self._accounts.clear()
            self._calls.clear()
            self._logins.clear()
            self.qr_ttl = QR_TTL

    def _wake_all(self) -> None:
        for account in list(self._accounts.values()):
            with account.cond:
                account.cond.notify_all()

    # ------------------------------------------------------------------ the world

    def add_user(self, first_name: str = "Customer", *, id: int | None = None,
                 username: str | None = None, phone: str | None = None,
                 last_name: str | None = None, privacy: bool = False, bot: bool = False) -> dict:
        with self._lock:
            user = _User(id or next(self._user_ids), first_name, username, _phone(phone),
                         last_name, privacy, bot)
            self._users[user.id] = user
            return user.api()

    def add_account(self, number: str, *, first_name: str = "Shop") -> str:
        """An account with a fresh session; its session string."""
        with self._lock:
            me = _User(next(self._user_ids), first_name, phone=_phone(number))
            self._users[me.id] = me
            account = _Account(_digits(number), "emu-" + secrets.token_urlsafe(24), me)
            self._accounts[account.number] = account
            return account.session

    def new_session(self, number: str) -> str:
        """The owner logs in again (e.g. after a revoke): a fresh session string."""
        account = self._account(number)
        account.session = "emu-" + secrets.token_urlsafe(24)
        account.logged_in.clear()
        account.revoked = False
        return account.session

    def revoke(self, number: str) -> None:
        account = self._account(number)
        account.revoked = True
        with account.cond:
            account.cond.notify_all()

    def customer_writes(self, number: str, user_id: int, text: str = "", *,
                        file: dict | None = None, group: int | None = None) -> int:
        """`file`: {"name", "mime", "data": bytes}. In a group with `group` = its chat id."""
        account = self._account(number)
        if user_id not in self._users:
            raise KeyError(f"no user {user_id}")
        with account.cond:
            message = _Message(next(account.next_id), group or user_id, False, text, "customer",
                               private=group is None, file=file)
            account.messages[message.id] = message
            if group is None:
                account.met.add(user_id)
            self._push(account, {"type": "message", "message": self._message_api(account, message, user_id)})
            return message.id

    def owner_writes(self, number: str, user_id: int, text: str) -> int:
        """The account's owner types a message on their phone."""
        account = self._account(number)
        with account.cond:
            return self._send(account, user_id, text, [], via="phone")

    def customer_reads(self, number: str, user_id: int) -> int:
        """The customer opens the chat: every message the account sent them is read."""
        account = self._account(number)
        with account.cond:
            unread = [m for m in account.messages.values() if m.out and m.peer_id == user_id and not m.read]
            for message in unread:
                message.read = True
            max_id = max((m.id for m in account.messages.values() if m.out and m.peer_id == user_id),
                         default=0)
            if unread:
                self._push(account, {"type": "read", "peer_id": user_id, "max_id": max_id})
            return max_id

    # -- logging in (sandbox/tglogin_auth.py) ----------------------------------------------

    def set_password(self, number: str, password: str, hint: str | None = None) -> None:
        """The account's cloud password (two-step verification); only its verifier is kept."""
        self._account(number).password = CloudPassword.of(password, hint)

    def login_code(self, number: str) -> str | None:
        """The last login code Telegram sent to the account's app."""
        return self._account(number).last_code

    def login_sessions(self, number: str) -> list[str]:
        """The sessions logins made for the account (what a client holding one could do)."""
        with self._lock:
            return sorted(self._account(number).logged_in)

    def login_tokens(self) -> list[str]:
        with self._lock:
            now = time.time()
            return [_token_url(s.token) for s in self._logins.values()
                    if s.token and not s.token_accepted and s.token_expires > now]

    def scan(self, number: str, url: str) -> dict:
        """The account's phone accepts a login QR code (`auth.acceptLoginToken`) → the
        authorization; AuthError as Telegram refuses it."""
        account = self._account(number)
        raw = url.split("token=", 1)[1] if url.startswith("tg://login?token=") else ""
        try:
            token = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)) if raw else b""
        except ValueError:
            token = b""
        with self._lock:
            login = next((s for s in self._logins.values() if token and s.token == token), None)
            if login is None:
                raise AuthError(400, "AUTH_TOKEN_INVALID")
            if login.token_accepted:
                raise AuthError(400, "AUTH_TOKEN_ALREADY_ACCEPTED")
            if login.token_expires <= time.time():
                raise AuthError(400, "AUTH_TOKEN_EXPIRED")
            login.token_accepted = True
            login.number = account.number
            self._calls.append({"kind": "accept_login", "number": account.number})
            return {"device": "KeepDesk", "number": account.number}

    def _login(self) -> LoginSession:
        key = request.headers.get("X-Session") or ""
        with self._lock:
            login = self._logins.get(key)
        if login is None:
            raise AuthError(401, "AUTH_KEY_UNREGISTERED")
        return login

    def _authorise(self, login: LoginSession) -> dict:
        account = self._account(login.number)
        with self._lock:
            login.authorised = True
            account.logged_in.add(login.key)
            self._calls.append({"kind": "login", "number": account.number})
        return {"me": account.me.api()}

    def _signed_in_or_password(self, login: LoginSession) -> dict:
        if self._account(login.number).password is not None:
            login.needs_password = True
            raise AuthError(401, "SESSION_PASSWORD_NEEDED")
        return self._authorise(login)

    def flood(self, number: str, seconds: float) -> None:
        self._account(number).flood_until = time.time() + seconds

    def sent(self, number: str, to: int | None = None) -> list[dict]:
        """What the account sent (through the API, or typed by its owner), oldest first."""
        account = self._account(number)
        with account.cond:
            return [{"id": m.id, "to": m.peer_id, "text": m.text, "via": m.via, "read": m.read,
                     "file": ({"name": m.file["name"], "mime": m.file["mime"], "size": len(m.file["data"])}
                              if m.file else None)}
                    for m in sorted(account.messages.values(), key=lambda m: m.id)
                    if m.out and (to is None or m.peer_id == to)]

    def pending_updates(self, number: str) -> int:
        account = self._account(number)
        with account.cond:
            return len(account.updates)

    def calls(self, kind: str | None = None) -> list[dict]:
        with self._lock:
            return [c for c in self._calls if kind is None or c["kind"] == kind]

    # ------------------------------------------------------------------ internals

    def _account(self, number: str) -> _Account:
        with self._lock:
            account = self._accounts.get(_digits(number))
            if account is None:
                raise KeyError(f"no account {number}")
            return account

    def _push(self, account: _Account, update: dict) -> None:
        account.updates.append((next(account.next_update), update))
        account.cond.notify_all()

    def _message_api(self, account: _Account, message: _Message, sender_id: int | None) -> dict:
        peer = self._users.get(message.peer_id)
        return {"id": message.id, "peer_id": message.peer_id, "private": message.private,
                "out": message.out, "text": message.text, "date": message.date,
                "user": (peer.api() if peer else None) if message.private else
                        (self._users[sender_id].api() if sender_id in self._users else None),
                "media": ({"kind": _kind(message.file["mime"]), "name": message.file["name"],
                           "mime": message.file["mime"], "size": len(message.file["data"])}
                          if message.file else None)}

    def _send(self, account: _Account, peer_id: int, text: str, files: list[dict], *, via: str) -> int:
        last = 0
        for number, item in enumerate(files or [None]):
            caption = text if number == len(files or [None]) - 1 else ""
            message = _Message(next(account.next_id), peer_id, True, caption, via, file=item)
            account.messages[message.id] = message
            self._push(account, {"type": "message", "message": self._message_api(account, message, None)})
            last = message.id
        return last

    def _session_ok(self, number: str) -> _Account | tuple[Response, int]:
        """The account the request's session is — as with Telegram, the session alone
        says whose account it is; the number in the path is only the client's label."""
        session = request.headers.get("X-Session")
        with self._lock:
            account = next((a for a in self._accounts.values()
                            if session and (a.session == session or session in a.logged_in)), None)
        if account is None:
            return jsonify({"error": "AUTH_KEY_UNREGISTERED"}), 401
        if account.revoked:
            return jsonify({"error": "SESSION_REVOKED"}), 401
        return account

    # ------------------------------------------------------------------ HTTP

    def _build_app(self) -> Flask:
        app = Flask(__name__)
        sandbox = self

        def record(kind: str, number: str, **details: Any) -> None:
            with sandbox._lock:
                sandbox._calls.append({"kind": kind, "number": number, **details})

        @app.post("/api/<number>/connect")
        def connect(number: str):
            account = sandbox._session_ok(number)
            if not isinstance(account, _Account):
                return account
            record("connect", number)
            return jsonify({"me": account.me.api()})

        @app.get("/api/<number>/updates")
        def updates(number: str):
            account = sandbox._session_ok(number)
            if not isinstance(account, _Account):
                return account
            offset = request.args.get("offset", type=int) or 0
            timeout = min(request.args.get("timeout", type=float) or 0.0, 10.0)
            deadline = time.monotonic() + timeout
            with account.cond:
                account.updates = [(uid, u) for uid, u in account.updates if uid >= offset]
                while not account.updates and not account.revoked and sandbox._server is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    account.cond.wait(min(left, 0.5))
                if account.revoked:
                    return jsonify({"error": "SESSION_REVOKED"}), 401
                batch = [dict(u, update_id=uid) for uid, u in account.updates[:100]]
            return jsonify({"updates": batch})

        @app.post("/api/<number>/send")
        def send(number: str):
            account = sandbox._session_ok(number)
            if not isinstance(account, _Account):
                return account
            body = request.get_json(silent=True) or {}
            peer_id, text = body.get("peer_id"), body.get("text") or ""
            files = [{"name": f["name"], "mime": f["mime"], "data": base64.b64decode(f["data"])}
                     for f in body.get("files") or []]
            with account.cond:
                if account.flood_until > time.time():
                    seconds = int(account.flood_until - time.time()) + 1
                    return jsonify({"error": f"FLOOD_WAIT_{seconds}", "seconds": seconds}), 420
                user = sandbox._users.get(peer_id) if isinstance(peer_id, int) else None
                if user is None or peer_id not in account.met:
                    return jsonify({"error": "PEER_ID_INVALID"}), 400
                if user.privacy and peer_id not in account.contacts:
                    return jsonify({"error": "USER_PRIVACY_RESTRICTED"}), 403
                if not text and not files:
                    return jsonify({"error": "MESSAGE_EMPTY"}), 400
                message_id = sandbox._send(account, peer_id, text, files, via="api")
            record("send", number, peer_id=peer_id, text=text)
            return jsonify({"id": message_id})

        @app.post("/api/<number>/resolve")
        def resolve(number: str):
            account = sandbox._session_ok(number)
            if not isinstance(account, _Account):
                return account
            body = request.get_json(silent=True) or {}
            with account.cond:
                found = None
                if isinstance(body.get("user_id"), int) and body["user_id"] in account.met:
                    found = sandbox._users.get(body["user_id"])
                if found is None and body.get("username"):
                    wanted = str(body["username"]).lstrip("@").lower()
                    found = next((u for u in sandbox._users.values()
                                  if u.username and u.username.lower() == wanted), None)
                if found is None and body.get("phone"):
                    wanted = _phone(str(body["phone"]))
                    found = next((u for u in sandbox._users.values() if u.phone == wanted), None)
                    if found is not None:
                        account.contacts.add(found.id)   # importing a contact
                if found is None:
                    record("resolve", number, found=False)
                    return jsonify({"error": "USER_NOT_FOUND"}), 404
                account.met.add(found.id)
            record("resolve", number, found=True, by=[k for k in ("user_id", "username", "phone") if body.get(k)])
            return jsonify({"user": found.api()})

        @app.post("/api/<number>/read")
        def read(number: str):
            account = sandbox._session_ok(number)
            if not isinstance(account, _Account):
                return account
            body = request.get_json(silent=True) or {}
            with account.cond:
                for message in account.messages.values():
                    if (not message.out and message.peer_id == body.get("peer_id")
                            and (body.get("max_id") is None or message.id <= body["max_id"])):
                        message.read = True
            record("read", number, peer_id=body.get("peer_id"))
            return jsonify({"ok": True})

        @app.get("/api/<number>/media/<int:message_id>")
        def media(number: str, message_id: int):
            account = sandbox._session_ok(number)
            if not isinstance(account, _Account):
                return account
            message = account.messages.get(message_id)
            if message is None or message.file is None:
                return jsonify({"error": "MEDIA_EMPTY"}), 404
            return Response(message.file["data"], mimetype=message.file["mime"])

        # -- logging in ------------------------------------------------------------------

        @app.errorhandler(AuthError)
        def auth_error(exc: AuthError):
            return jsonify({"error": exc.name}), exc.code

        @app.post("/auth/session")
        def auth_session():
            """A new MTProto auth key, not yet any account's."""
            login = LoginSession("emu-" + secrets.token_urlsafe(24))
            with sandbox._lock:
                sandbox._logins[login.key] = login
            return jsonify({"session": login.key})

        @app.post("/auth/exportLoginToken")
        def export_login_token():
            login = sandbox._login()
            if login.authorised:
                return jsonify({"success": {"me": sandbox._account(login.number).me.api()}})
            if login.token_accepted:
                if login.needs_password:
                    raise AuthError(401, "SESSION_PASSWORD_NEEDED")
                return jsonify({"success": sandbox._signed_in_or_password(login)})
            with sandbox._lock:
                login.token = secrets.token_bytes(32)
                login.token_expires = time.time() + sandbox.qr_ttl
            return jsonify({"token": base64.b64encode(login.token).decode(),
                            "expires": int(login.token_expires)})

        @app.post("/auth/waitUpdates")
        def wait_updates():
            """What Telegram pushes to an unauthorised session: `updateLoginToken` once its
            token was accepted (the client then calls exportLoginToken again)."""
            login = sandbox._login()
            deadline = time.monotonic() + min(float(body().get("timeout") or 0), 10.0)
            while not login.token_accepted and time.monotonic() < deadline and sandbox._server is not None:
                time.sleep(0.1)
            return jsonify({"updates": ["updateLoginToken"] if login.token_accepted else []})

        @app.post("/auth/sendCode")
        def send_code():
            login = sandbox._login()
            phone = _digits(str(body().get("phone_number") or ""))
            with sandbox._lock:
                account = sandbox._accounts.get(phone)
            if not phone or account is None:
                raise AuthError(400, "PHONE_NUMBER_INVALID")
            login.number = account.number
            login.code = "".join(secrets.choice("0123456789") for _ in range(5))
            login.code_hash = secrets.token_hex(9)
            login.code_expires = time.time() + CODE_TTL
            account.last_code = login.code            # in the account's app, from 777000
            record("send_code", account.number)
            return jsonify({"phone_code_hash": login.code_hash, "type": "app", "length": 5})

        @app.post("/auth/signIn")
        def sign_in():
            login = sandbox._login()
            data = body()
            if login.code_hash is None or data.get("phone_code_hash") != login.code_hash \
                    or _digits(str(data.get("phone_number") or "")) != login.number:
                raise AuthError(400, "PHONE_CODE_HASH_EMPTY")
            if login.code_expires <= time.time():
                raise AuthError(400, "PHONE_CODE_EXPIRED")
            if not secrets.compare_digest(str(data.get("phone_code") or ""), login.code or ""):
                raise AuthError(400, "PHONE_CODE_INVALID")
            login.code_hash = None
            return jsonify(sandbox._signed_in_or_password(login))

        @app.post("/account/getPassword")
        def get_password():
            login = sandbox._login()
            password = sandbox._account(login.number).password if login.number else None
            if password is None:
                return jsonify({"has_password": False})
            login.srp = srp_round(password)
            return jsonify({"has_password": True, "hint": password.hint,
                            "current_algo": {"salt1": password.salt1.hex(), "salt2": password.salt2.hex(),
                                             "g": G, "p": f"{P:0512x}"},
                            "srp_B": f"{login.srp.B:0512x}", "srp_id": login.srp.srp_id})

        @app.post("/auth/checkPassword")
        def check_password():
            login = sandbox._login()
            data = body()
            password = sandbox._account(login.number).password if login.number else None
            if not login.needs_password or password is None:
                raise AuthError(400, "PASSWORD_EMPTY")
            srp, login.srp = login.srp, None          # one proof per getPassword
            if srp is None or data.get("srp_id") != srp.srp_id:
                raise AuthError(400, "SRP_ID_INVALID")
            try:
                A, M1 = bytes.fromhex(str(data.get("A"))), bytes.fromhex(str(data.get("M1")))
            except ValueError:
                raise AuthError(400, "SRP_PASSWORD_CHANGED") from None
            if not srp_verify(password, srp, A, M1):
                raise AuthError(400, "PASSWORD_HASH_INVALID")
            login.needs_password = False
            return jsonify(sandbox._authorise(login))

        # -- test control --------------------------------------------------------------

        def body() -> dict:
            return request.get_json(silent=True) or {}

        @app.post("/control/reset")
        def control_reset():
            sandbox.reset()
            return jsonify({"ok": True})

        @app.post("/control/users")
        def control_users():
            data = body()
            return jsonify({"user": sandbox.add_user(
                data.get("first_name") or "Customer", id=data.get("id"), username=data.get("username"),
                phone=data.get("phone"), last_name=data.get("last_name"),
                privacy=bool(data.get("privacy")))})

        @app.post("/control/accounts")
        def control_accounts():
            return jsonify({"session": sandbox.add_account(str(body().get("number")))})

        @app.post("/control/accounts/<number>/revoke")
        def control_revoke(number: str):
            sandbox.revoke(number)
            return jsonify({"ok": True})

        @app.post("/control/accounts/<number>/write")
        def control_write(number: str):
            data = body()
            file = data.get("file")
            if file:
                file = {"name": file["name"], "mime": file["mime"], "data": base64.b64decode(file["data"])}
            return jsonify({"message_id": sandbox.customer_writes(
                number, int(data["from"]), data.get("text") or "", file=file, group=data.get("group"))})

        @app.post("/control/accounts/<number>/owner_writes")
        def control_owner(number: str):
            data = body()
            return jsonify({"message_id": sandbox.owner_writes(number, int(data["to"]), data.get("text") or "")})

        @app.get("/control/accounts/<number>/sent")
        def control_sent(number: str):
            return jsonify({"messages": sandbox.sent(number, request.args.get("to", type=int))})

        @app.post("/control/accounts/<number>/read")
        def control_read(number: str):
            return jsonify({"max_id": sandbox.customer_reads(number, int(body()["user"]))})

        @app.post("/control/accounts/<number>/password")
        def control_password(number: str):
            data = body()
            sandbox.set_password(number, str(data["password"]), data.get("hint"))
            return jsonify({"ok": True})

        @app.post("/control/accounts/<number>/scan")
        def control_scan(number: str):
            return jsonify(sandbox.scan(number, str(body().get("url") or "")))

        @app.get("/control/accounts/<number>/login_code")
        def control_login_code(number: str):
            return jsonify({"code": sandbox.login_code(number)})

        @app.get("/control/login_tokens")
        def control_login_tokens():
            return jsonify({"urls": sandbox.login_tokens()})

        @app.post("/control/accounts/<number>/flood")
        def control_flood(number: str):
            sandbox.flood(number, float(body().get("seconds", 30)))
            return jsonify({"ok": True})

        return app


def _token_url(token: bytes) -> str:
    return "tg://login?token=" + base64.urlsafe_b64encode(token).decode().rstrip("=")


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def _phone(phone: str | None) -> str | None:
    if not phone:
        return None
    return "+" + _digits(phone)


def _kind(mime: str) -> str:
    if mime.startswith("image/"):
        return "photo"
    if mime in ("audio/ogg", "audio/opus"):
        return "voice"
    if mime.startswith("audio/"):
        return "audio"
    if mime.startswith("video/"):
        return "video"
    return "document"
