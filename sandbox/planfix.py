"""A local emulator of Planfix's chat API side (CHANNELS.md §5), for tests, the demo and the
playground: `url_planfix` = its `url`.

It plays Planfix as its documentation describes it:

* `POST /webchat/api`, **form-encoded** (a JSON body is refused 400), with `cmd`:
  - `newMessage` — requires `providerId` (the channel's), `planfix_token` (the token
    configured for the channel: else 401 `{"error": "Invalid token"}`), `chatId`,
    `contactId`, `contactName` and a `message` or an attachment (else 400
    `{"error": "Invalid parameters"}`); every `attachments[url]` is downloaded at once,
    as Planfix does — a link that does not answer 200 makes the call 400;
  - `messageStatus` — requires `messageId` of a message Planfix sent through this
    channel and `messageStatus` ∈ sent | read | error, with an optional
    `messageStatusText` (the reason Planfix shows beside an error);
  - `getTask` / `getContact` — answer what it knows of a chat / contact;
* it keeps what it received (test control: `received()`, `GET /control/received`), and
  can be set to answer 5xx or to refuse connections for a while;
* it plays the employee answering in Planfix: `send(door_url, …)` posts `newMessage`
  form-encoded to KeepDesk's `/planfix/webhook` with the channel's token, as Planfix
  would (`POST /control/send` does the same over HTTP), and returns KeepDesk's answer.
"""
from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import requests
from flask import Flask, jsonify, request

from sandbox._server import ServerThread

REQUIRED = {"newMessage": ("providerId", "planfix_token", "chatId", "contactId", "contactName"),
            "messageStatus": ("providerId", "planfix_token", "messageId", "messageStatus")}
STATUSES = ("sent", "read", "error")


class PlanfixSandbox:
    def __init__(self, *, provider_id: str = "keepdesk-sandbox", token: str = "planfix-sandbox-token",
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.provider_id = provider_id
        self.token = token
        self.host = host
        self._port = port
        self._lock = threading.RLock()
        self._received: list[dict] = []
        self._sent_ids: dict[str, dict] = {}
        self._ids = itertools.count(1)
        self._down: tuple[int, float] | None = None
        self._files: dict[str, tuple[str, bytes]] = {}
        self._server: ServerThread | None = None
        self.app = self._build_app()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "PlanfixSandbox":
        if self._server is None:
            self._server = ServerThread(self.app, host=self.host, port=self._port).start()
            self._port = self._server.port
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    @property
    def url(self) -> str:
        """`url_planfix` of an account."""
        return f"http://{self.host}:{self._port}"

    def reset(self) -> None:
        with self._lock:
            self._received.clear()
            self._sent_ids.clear()
            self._down = None
        self.set_refuse(False)

    # ------------------------------------------------------------------ test control

    def received(self, cmd: str | None = None) -> list[dict]:
        """What KeepDesk sent, oldest first: each call's fields (lists for repeated ones)
        and, for newMessage, the attachments as downloaded."""
        with self._lock:
            return [dict(r) for r in self._received if cmd is None or r["cmd"] == cmd]

    def add_file(self, name: str, data: bytes, mime: str = "application/octet-stream") -> str:
        """A file in Planfix's storage (an employee's attachment); its download URL."""
        key = f"f{next(self._ids)}"
        with self._lock:
            self._files[key] = (mime, data)
        return f"{self.url}/files/{key}/{name}"

    def set_down(self, status: int = 503, seconds: float = 3600.0) -> None:
        with self._lock:
            self._down = (status, time.monotonic() + seconds)

    def set_up(self) -> None:
        with self._lock:
            self._down = None

    def set_refuse(self, refuse: bool = True) -> None:
        """Stop listening altogether (connection refused), or listen again on the same port."""
        if refuse and self._server is not None:
            self.stop()
        elif not refuse and self._server is None and self._port:
            self.start()

    def send(self, door_url: str, *, token: str, message: str = "", chat_id: str | None = None,
             message_id: str | None = None, channel: str | None = None, user_id: int | None = None,
             username: str | None = None, phone: str | None = None,
             attachments: list[tuple[str, str]] = (), user_name: str = "Olena",
             user_last_name: str = "Manager", extra: dict | None = None) -> requests.Response:
        """The employee answers in Planfix: `newMessage` to KeepDesk's webhook."""
        message_id = message_id or f"pf-{next(self._ids)}"
        fields: list[tuple[str, str]] = [("cmd", "newMessage"), ("providerId", self.provider_id),
                                         ("token", token), ("message", message), ("messageId", message_id),
                                         ("userName", user_name), ("userLastName", user_last_name)]
        for name, value in (("chatId", chat_id), ("channel", channel), ("telegramUserId", user_id),
                            ("telegramUserName", username), ("contactPhone", phone)):
            if value is not None:
                fields.append((name, str(value)))
        for name, url in attachments:
            fields += [("attachments[name]", name), ("attachments[url]", url)]
        fields += list((extra or {}).items())
        with self._lock:
            self._sent_ids[message_id] = {"chat_id": chat_id, "statuses": []}
        return requests.post(f"{door_url.rstrip('/')}/planfix/webhook", data=fields, timeout=30)

    def statuses(self, message_id: str) -> list[str]:
        """The messageStatus values KeepDesk reported for one of Planfix's messages."""
        with self._lock:
            return [r["messageStatus"] for r in self._received
                    if r["cmd"] == "messageStatus" and r.get("messageId") == message_id]

    # ------------------------------------------------------------------ HTTP

    def _build_app(self) -> Flask:
        app = Flask(__name__)
        sandbox = self

        @app.post("/webchat/api")
        def api():
            with sandbox._lock:
                down = sandbox._down
            if down is not None and time.monotonic() < down[1]:
                return jsonify({"error": "Service unavailable"}), down[0]
            if not request.mimetype.startswith("application/x-www-form-urlencoded"):
                return jsonify({"error": "Invalid parameters"}), 400
            form = request.form
            cmd = form.get("cmd")
            fields: dict[str, Any] = {k: (v if len(v) > 1 else v[0]) for k, v in form.lists()}
            if cmd in ("getTask", "getContact"):
                return jsonify({"chatId": form.get("chatId"), "contactId": form.get("contactId")})
            if cmd not in REQUIRED:
                return jsonify({"error": "Invalid parameters"}), 400
            if form.get("planfix_token") != sandbox.token:
                return jsonify({"error": "Invalid token"}), 401
            if form.get("providerId") != sandbox.provider_id or any(not form.get(k) for k in REQUIRED[cmd]):
                return jsonify({"error": "Invalid parameters"}), 400
            if cmd == "newMessage":
                names, urls = form.getlist("attachments[name]"), form.getlist("attachments[url]")
                if not form.get("message") and not urls:
                    return jsonify({"error": "Invalid parameters"}), 400
                downloaded = []
                for name, url in zip(names + [""] * len(urls), urls):
                    try:
                        got = requests.get(url, timeout=10)
                    except requests.RequestException:
                        return jsonify({"error": "Invalid parameters"}), 400
                    if got.status_code != 200:
                        return jsonify({"error": "Invalid parameters"}), 400
                    downloaded.append({"name": name, "url": url, "size": len(got.content),
                                       "mime": got.headers.get("Content-Type", ""), "data": got.content})
                fields["downloaded"] = downloaded
            else:
                if form.get("messageStatus") not in STATUSES:
                    return jsonify({"error": "Invalid parameters"}), 400
                with sandbox._lock:
                    if form.get("messageId") not in sandbox._sent_ids:
                        return jsonify({"error": "Invalid parameters"}), 400
            with sandbox._lock:
                sandbox._received.append(fields)
            return jsonify({})

        @app.get("/files/<key>/<name>")
        def files(key: str, name: str):
            with sandbox._lock:
                stored = sandbox._files.get(key)
            if stored is None:
                return jsonify({"error": "Not found"}), 404
            return app.response_class(stored[1], mimetype=stored[0])

        @app.get("/control/received")
        def control_received():
            cmd = request.args.get("cmd")
            return jsonify({"received": [{k: v for k, v in r.items() if k != "downloaded"}
                                         | {"attachments": [{"name": d["name"], "size": d["size"]}
                                                            for d in r.get("downloaded", [])]}
                                         for r in sandbox.received(cmd)]})

        @app.post("/control/send")
        def control_send():
            body = request.get_json(silent=True) or {}
            answer = sandbox.send(body["door_url"], token=body["token"], message=body.get("message", ""),
                                  chat_id=body.get("chat_id"), message_id=body.get("message_id"),
                                  channel=body.get("channel"), user_id=body.get("user_id"),
                                  username=body.get("username"), phone=body.get("phone"))
            return jsonify({"status": answer.status_code, "answer": answer.json()})

        @app.post("/control/down")
        def control_down():
            body = request.get_json(silent=True) or {}
            sandbox.set_down(int(body.get("status", 503)), float(body.get("seconds", 60)))
            return jsonify({"ok": True})

        @app.post("/control/up")
        def control_up():
            sandbox.set_up()
            return jsonify({"ok": True})

        return app
