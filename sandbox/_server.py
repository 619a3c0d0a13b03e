"""Run a WSGI app on a local port in a background thread (shared by the sandboxes).

Tests, benchmarks and the demo need real HTTP servers (the bot talks to them with
`requests`), but must not depend on gunicorn or on a free, well-known port:
port 0 lets the OS pick one, and `.port` / `.url` say which it picked.
"""

from __future__ import annotations

import itertools
import threading
import time

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class _QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug logs one line per request; a benchmark makes thousands of them."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Errors still go through log_error(); only the access log is dropped.
        return


class ServerThread:
    """A threaded werkzeug server for `app`, served from a daemon thread.

    Daemon thread: a test that forgets stop() must not keep the interpreter alive.
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self._requested_port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ServerThread:
        if self._server is not None:
            return self
        self._server = make_server(
            self.host, self._requested_port, self.app,
            threaded=True, request_handler=_QuietRequestHandler,
        )
        # A short poll interval makes stop() quick: tests start and stop servers often.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"wsgi-{self.host}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server is not started")
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class CallingBackEmulator:
    """An emulator served on a local port that also calls the desk back (webhooks, status
    callbacks) from a thread of its own, as the WhatsApp providers do. A subclass calls
    `_serve(app, host, port)` in its constructor and implements `_pending` (the queue of
    calls, each `(due at, …)`) and `_push` (make those due); setting `_wake` hurries them."""

    thread_name = "emulator-callbacks"
    label = "the sandbox"             # in a wait's timeout message

    def _serve(self, app, host: str, port: int) -> None:
        self._server = ServerThread(app, host, port)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self._generation = 0          # bumped by a reset: what was due before is dropped

    def _pending(self):
        """The deque of (due at, …) calls waiting to be made."""
        raise NotImplementedError

    def _push(self, due: list) -> None:
        """Make the calls that are due (in the order they were queued)."""
        raise NotImplementedError

    def _push_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(0.05)
            self._wake.clear()
            while True:
                with self._lock:
                    pending = self._pending()
                    due = [item for item in pending if item[0] <= time.monotonic()]
                    for item in due:
                        pending.remove(item)
                if not due:
                    break
                self._push(due)

    def start(self):
        self._server.start()
        self._stopping.clear()
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._push_loop, daemon=True, name=self.thread_name)
            self._worker.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        with self._changed:
            self._changed.notify_all()
        self._server.stop()

    @property
    def url(self) -> str:
        return self._server.url

    # -- what the customer's phone saw (each emulator keeps `outgoing` and `_status`) --------

    unread_states = ("sent", "delivered")
    read_state = "read"

    def customer_reads(self, phone: str) -> int:
        """The customer opens the chat: `read` for everything delivered to them."""
        with self._lock:
            unread = [m for m in self.outgoing if m["to"] == phone and m["status"] in self.unread_states]
        for message in unread:
            self._status(message, self.read_state)
        return len(unread)

    def sent(self, phone: str | None = None) -> list[dict]:
        with self._lock:
            return [dict(m) for m in self.outgoing if phone is None or m["to"] == phone]

    def wait_until(self, condition, timeout: float = 10.0):
        """condition()'s first true value, re-checked whenever the emulator changes."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = condition()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"condition not met in {self.label}")
                self._changed.wait(min(left, 0.05))
