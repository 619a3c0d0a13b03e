"""A local emulator of Devino's SMS HTTP API, for tests, the demo and the playground.
KeepDesk talks HTTP to it exactly as to Devino (SMS_DEVINO_URL). A file of its own beside
sandbox/devino.py (Devino's WhatsApp API): the two APIs share only the key style and the
batch shape, and keeping them apart keeps each one's test controls plain.

What it models, from Devino's public documentation (docs.devino.online, HTTP API → SMS):

* `POST /sms/messages` with `Authorization: Key <credentials>` (a wrong or missing key:
  401): `{"messages": [{"from", "to", "text", "validity", "priority", "callbackUrl",
  "options"}]}` — many in one call — answered `{"result": [{"code": "OK", "messageId"} |
  {"code": "REJECTED", "reasons": [{"key", "ref"}], "description"}]}` in the same order.
  Reason keys: `invalid` (a `from` that is not the account's approved sender name, a `to`
  that is not E.164 digits, a `validity` outside 0…259200 s, a `priority` that is none of
  LOW, MEDIUM, HIGH, REALTIME — the older documentation's 0…3 is accepted too),
  `must.be.not.null` (no text), `length.too.long` (over 17085 characters),
  `too.many.messages` (over `per_second`), `billing.error` (test control: the balance is
  spent), or a key set for a recipient (`reject(phone, key)`).
* status callbacks to each message's `callbackUrl`: a JSON array `[{"messageId", "ts",
  "status", "errorCode", "options"}]` (`options` echoed as sent) — ENROUTE (with the
  operator), then DELIVERED, or UNDELIVERED with an error code for a phone that cannot be
  reached (`unreachable(phone)`); re-sent until answered 2xx. (The documentation we read
  does not spell the callback out; this is the WhatsApp API's shape, which KeepDesk reads
  in either form.)

Test control: `fail_next(status, times)` (the whole call refused with an HTTP status),
`set_down(status)`, `go_offline()` / `come_back()` (connection refused), `lose_next_answer`
(the batch is taken, the connection drops without an answer), `hold_next_answer(seconds)`
(the batch is taken and its answer held — a worker can be killed meanwhile), `reject`,
`unreachable`, `spend_balance`, `sent(phone)`, `calls` (each call's size), `reset`; over
HTTP under `/_sandbox/` (sent, fail, down).
"""
from __future__ import annotations

import json
import time
from collections import deque

import requests
from werkzeug.wrappers import Request, Response

from sandbox._server import CallingBackEmulator

KEY = "c2FuZGJveDpkZXZpbm8tc21z"        # base64("sandbox:devino-sms")
SENDER = "KeepDesk"
MAX_TEXT = 17085
MAX_VALIDITY = 259200
PRIORITIES = ("LOW", "MEDIUM", "HIGH", "REALTIME")


class Dropped(Exception):
    """The request was taken; its answer is never sent."""


class DevinoSmsSandbox(CallingBackEmulator):
    thread_name = "devino-sms-callbacks"
    label = "the Devino SMS sandbox"
    unread_states = ("ENROUTE", "DELIVERED")

    def __init__(self, *, key: str = KEY, sender: str = SENDER, host: str = "127.0.0.1", port: int = 0,
                 per_second: int = 500, status_delay: float = 0.02) -> None:
        self.key = key
        self.sender = sender
        self.per_second = per_second
        self.status_delay = status_delay
        self._serve(self._wsgi, host, port)
        self._clear()

    def _clear(self) -> None:
        with self._lock:
            self.outgoing: list[dict] = []
            self.calls: list[int] = []
            self.callbacks: "deque[tuple[float, str, list]]" = deque()
            self.callback_log: list[dict] = []
            self.rejected: dict[str, str] = {}
            self.unreachable_phones: set[str] = set()
            self.faults: "deque[int]" = deque()
            self.lose: "deque[float]" = deque()
            self.hold: "deque[float]" = deque()
            self.down_status: int | None = None
            self.billing_spent = False
            self.unauthorized = 0
            self.stamps: "deque[float]" = deque()

    def reset(self) -> None:
        self._generation += 1
        self._clear()

    # -- test control --------------------------------------------------------------------------

    def reject(self, phone: str, key: str = "invalid") -> None:
        self.rejected[phone] = key

    def unreachable(self, phone: str) -> None:
        """SMS to this phone are taken, then UNDELIVERED (the phone off, the number dead)."""
        self.unreachable_phones.add(phone)

    def spend_balance(self, spent: bool = True) -> None:
        self.billing_spent = spent

    def fail_next(self, status: int = 500, times: int = 1) -> None:
        with self._lock:
            self.faults.extend([status] * times)

    def set_down(self, status: int | None = 503) -> None:
        self.down_status = status

    def lose_next_answer(self, seconds: float = 0.3) -> None:
        with self._lock:
            self.lose.append(seconds)

    def hold_next_answer(self, seconds: float) -> None:
        """The next batch is taken (its messages go out) and its answer comes `seconds` later."""
        with self._lock:
            self.hold.append(seconds)

    def go_offline(self) -> None:
        """Nothing listens on the port any more: connections are refused."""
        self._server._requested_port = self._server.port
        self._server.stop()

    def come_back(self) -> None:
        self._server.start()

    # -- callbacks -----------------------------------------------------------------------------

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
                "status": status, "errorCode": error, "options": message.get("options")}
        with self._lock:
            self.callbacks.append((time.monotonic() + self.status_delay, message["callbackUrl"], [item]))
        self._wake.set()

    def _pending(self):
        return self.callbacks

    def _push(self, due: list) -> None:
        grouped: dict[str, list] = {}
        for _, url, items in due:
            grouped.setdefault(url, []).extend(items)
        for url, items in grouped.items():
            self._post(url, items, deadline=time.monotonic() + 60)

    # -- the HTTP API ----------------------------------------------------------------------------

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        try:
            response = self._route(request)
        except Dropped:
            response = Response(b"", 200, headers={"Content-Length": "64"})
        return response(environ, start_response)

    def _error(self, status: int, message: str) -> Response:
        return Response(json.dumps({"code": "ERROR", "description": message}), status,
                        mimetype="application/json")

    def _control(self, request: Request, parts: list[str]) -> Response:
        body = json.loads(request.get_data() or b"{}") if request.method == "POST" else {}
        action = "/".join(parts)
        if action == "sent":
            answer = {"messages": self.sent(request.args.get("phone"))}
        elif action == "fail":
            self.fail_next(int(body.get("status") or 500), int(body.get("times") or 1))
            answer = {"ok": True}
        elif action == "down":
            self.set_down(body.get("status"))
            answer = {"ok": True}
        else:
            return self._error(404, "unknown sandbox control")
        return Response(json.dumps(answer), 200, mimetype="application/json")

    def _route(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if parts and parts[0] == "_sandbox":
            return self._control(request, parts[1:])
        if parts != ["sms", "messages"] or request.method != "POST":
            return self._error(404, "not found")
        if request.headers.get("Authorization") != f"Key {self.key}":
            with self._lock:
                self.unauthorized += 1
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
        if len(messages) > 32000:
            return self._error(400, "at most 32000 messages in one call")
        with self._lock:
            self.calls.append(len(messages))
        results = [self._one(m, n) for n, m in enumerate(messages)]
        with self._lock:
            lose = self.lose.popleft() if self.lose else None
            hold = self.hold.popleft() if self.hold else None
        if lose is not None:
            time.sleep(lose)
            raise Dropped()
        if hold is not None:
            time.sleep(hold)
        return Response(json.dumps({"result": results}), 200, mimetype="application/json")

    @staticmethod
    def _rejected(key: str, ref: str, description: str) -> dict:
        return {"code": "REJECTED", "reasons": [{"key": key, "ref": ref}], "description": description}

    def _one(self, message, n: int) -> dict:
        ref = f"messages[{n}]"
        if not isinstance(message, dict):
            return self._rejected("invalid", ref, "a message is an object")
        to, text = str(message.get("to") or ""), message.get("text")
        if str(message.get("from") or "") != self.sender:
            return self._rejected("invalid", f"{ref}.from", "not an approved sender name of this account")
        if not to.isdigit() or not 7 <= len(to) <= 15:
            return self._rejected("invalid", f"{ref}.to", "not a phone number in E.164")
        if not isinstance(text, str) or not text:
            return self._rejected("must.be.not.null", f"{ref}.text", "text is required")
        if len(text) > MAX_TEXT:
            return self._rejected("length.too.long", f"{ref}.text", f"at most {MAX_TEXT} characters")
        validity = message.get("validity", 0)
        if not isinstance(validity, int) or isinstance(validity, bool) or not 0 <= validity <= MAX_VALIDITY:
            return self._rejected("invalid", f"{ref}.validity", f"0 to {MAX_VALIDITY} seconds")
        priority = message.get("priority")
        if priority is not None and priority not in PRIORITIES and priority not in (0, 1, 2, 3):
            return self._rejected("invalid", f"{ref}.priority", "LOW, MEDIUM, HIGH or REALTIME")
        if self.billing_spent:
            return self._rejected("billing.error", ref, "insufficient funds")
        if to in self.rejected:
            return self._rejected(self.rejected[to], ref, "refused for this recipient")
        now = time.time()
        with self._lock:
            while self.stamps and self.stamps[0] <= now - 1.0:
                self.stamps.popleft()
            if len(self.stamps) >= self.per_second:
                return self._rejected("too.many.messages", ref, "too many messages, try later")
            self.stamps.append(now)
        message_id = str(3 * 10**18 + next(self._ids))
        record = {"id": message_id, "from": self.sender, "to": to, "text": text, "time": now,
                  "priority": priority, "validity": validity, "status": "ACCEPTED", "statuses": [],
                  "callbackUrl": message.get("callbackUrl"), "options": message.get("options")}
        with self._changed:
            self.outgoing.append(record)
            self._changed.notify_all()
        if to in self.unreachable_phones:
            self._status(record, "UNDELIVERED", 2305)
        else:
            self._status(record, "ENROUTE")
            self._status(record, "DELIVERED")
        return {"code": "OK", "messageId": message_id}
