"""What the doors share: the app with /healthz and /metrics (the `base` blueprint), JSON
errors, the 503 while MariaDB is away, the client's address behind TRUSTED_PROXIES, the
lazy `app` gunicorn imports, and `serve`: a door's table of blueprints mounted in order.
(HTTP helpers: `utils/http.py`.)

/healthz is public: it says only up or down per part. Its details (which account is
logged out, a session's error, an address it could not reach) go only to a caller that
may read /metrics (METRICS_TOKEN, or loopback without one)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from config import Settings, load_settings
from models.db import Database, is_conflict, is_unavailable
from models.jobs import JobQueue
from utils.logs import configure_logging
from utils.http import bound, error, metrics_allowed, mount, trust_proxies
from utils.metrics import render as render_metrics

log = logging.getLogger(__name__)

# A door's URL map: (name, blueprint, bind) in the order they are mounted; `bind(parts)`
# gives the blueprint's context from the door's parts, or None: not served by this door.
Table = Iterable[tuple[str, Blueprint, Callable[[object], object | None]]]


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


# -- GET /healthz, GET /metrics ----------------------------------------------------------------

blueprint = Blueprint("base", __name__)


@dataclass(frozen=True)
class Base:
    """The base routes' context. `details` adds e.g. each channel's health to /healthz —
    `{group: {part: {"ok": bool, "detail": …}}}` — which informs but never fails the check;
    without the metrics token only each part's "ok" is shown."""
    settings: Settings
    db: Database
    details: Callable[[], dict] | None = None
    queue: JobQueue = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "queue", JobQueue(self.db))


@blueprint.get("/healthz")
def healthz():
    base: Base = bound()
    db_ok = base.db.ping()
    body = {"ok": db_ok, "database": "up" if db_ok else "down"}
    if base.details is not None:
        found = base.details()
        body.update(found if metrics_allowed(request, base.settings.metrics_token) else public_view(found))
    return jsonify(body), 200 if db_ok else 503


@blueprint.get("/metrics")
def metrics():
    base: Base = bound()
    if not metrics_allowed(request, base.settings.metrics_token):
        return error(403, "forbidden")
    body, content_type = render_metrics(base.queue.depth_by_queue)
    return Response(body, content_type=content_type)


# -- the app -----------------------------------------------------------------------------------

def http_error(exc: HTTPException):
    return error(exc.code or 500, exc.description or exc.name)


def unexpected(exc: Exception):
    if is_unavailable(exc) or is_conflict(exc):
        # The sender (Telegram, the CRM) will try again; nothing was acknowledged.
        log.warning("database unavailable, answering 503: %s", exc)
        return error(503, "temporarily unavailable, retry later")
    log.exception("unexpected error in %s", current_app.name)
    return error(500, "internal error")


def door_app(name: str, settings: Settings, db: Database) -> Flask:
    """A door's Flask app without routes: JSON errors, the 503 while MariaDB is away, the
    body limit, TRUSTED_PROXIES."""
    app = Flask(name)
    trust_proxies(app, settings)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["keepdesk.db"] = db
    app.extensions["keepdesk.settings"] = settings
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected)
    return app


def serve(app: Flask, table: Table, parts) -> Flask:
    """Mount each blueprint of a door's table that binds to these parts."""
    for name, door_blueprint, bind in table:
        context = bind(parts)
        if context is not None:
            mount(app, name, door_blueprint, context)
    return app


def base_app(name: str, settings: Settings, db: Database, *,
             details: Callable[[], dict] | None = None) -> Flask:
    """A door's app with only the base routes: /healthz (with `details`, see `Base`) and
    /metrics."""
    return serve(door_app(name, settings, db), (("base", blueprint, lambda _: Base(settings, db, details)),), None)


def public_view(details: dict) -> dict:
    """Only up or down per part: no phone numbers, errors or addresses."""
    return {group: ({part: {"ok": bool(value.get("ok"))} if isinstance(value, dict) else {"ok": bool(value)}
                     for part, value in parts.items()} if isinstance(parts, dict) else bool(parts))
            for group, parts in details.items()}
