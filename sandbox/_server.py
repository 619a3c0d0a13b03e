"""Run a WSGI app on a local port in a background thread (shared by the sandboxes).

Tests, benchmarks and the demo need real HTTP servers (the bot talks to them with
`requests`), but must not depend on gunicorn or on a free, well-known port:
port 0 lets the OS pick one, and `.port` / `.url` say which it picked.
"""

from __future__ import annotations

import threading

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
