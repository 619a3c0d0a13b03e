"""What the doors share: the app with /healthz and /metrics, JSON errors, the 503 while
MariaDB is away, the client's address behind TRUSTED_PROXIES, and the lazy `app` gunicorn
imports. (HTTP helpers: `utils/http.py`.)

/healthz is public: it says only up or down per part. Its details (which account is
logged out, a session's error, an address it could not reach) go only to a caller that
may read /metrics (METRICS_TOKEN, or loopback without one)."""
from __future__ import annotations

import logging
from typing import Callable

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from config import Settings, load_settings
from models.db import Database, is_unavailable
from models.jobs import JobQueue
from utils.logs import configure_logging
from utils.http import BadBody, error, metrics_allowed, read_json, same_secret, trust_proxies  # noqa: F401
from utils.metrics import render as render_metrics

log = logging.getLogger(__name__)


def lazy_app(module_globals: dict, create_app) -> Callable[[str], Flask]:
    """A module `__getattr__` that builds `app` from the environment on first access:
    `gunicorn webhook_server:app` works, and a mere import builds nothing."""
    def module_getattr(name: str) -> Flask:
        if name != "app":
            raise AttributeError(name)
        settings = load_settings()
        configure_logging(settings.log_level, settings.secrets)
        module_globals["app"] = create_app(settings)
        return module_globals["app"]
    return module_getattr


def base_app(name: str, settings: Settings, db: Database, *,
             details: Callable[[], dict] | None = None) -> Flask:
    """A door's Flask app: /healthz (the database; `details` adds e.g. each channel's
    health — `{group: {part: {"ok": bool, "detail": …}}}` — which informs but never fails
    the check; without the metrics token only each part's "ok" is shown), /metrics, JSON
    errors, the 503 while MariaDB is away."""
    app = Flask(name)
    trust_proxies(app, settings)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["keepdesk.db"] = db
    app.extensions["keepdesk.settings"] = settings
    queue = JobQueue(db)

    @app.get("/healthz")
    def healthz():
        db_ok = db.ping()
        body = {"ok": db_ok, "database": "up" if db_ok else "down"}
        if details is not None:
            found = details()
            body.update(found if metrics_allowed(request, settings.metrics_token) else public_view(found))
        return jsonify(body), 200 if db_ok else 503

    @app.get("/metrics")
    def metrics():
        if not metrics_allowed(request, settings.metrics_token):
            return error(403, "forbidden")
        body, content_type = render_metrics(queue.depth_by_queue)
        return Response(body, content_type=content_type)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if is_unavailable(exc):
            # The sender (Telegram, the CRM) will try again; nothing was acknowledged.
            log.warning("database unavailable, answering 503: %s", exc)
            return error(503, "temporarily unavailable, retry later")
        log.exception("unexpected error in %s", name)
        return error(500, "internal error")

    return app


def public_view(details: dict) -> dict:
    """Only up or down per part: no phone numbers, errors or addresses."""
    return {group: ({part: {"ok": bool(value.get("ok"))} if isinstance(value, dict) else {"ok": bool(value)}
                     for part, value in parts.items()} if isinstance(parts, dict) else bool(parts))
            for group, parts in details.items()}
