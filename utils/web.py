"""What both HTTP doors share: health check, JSON errors, the 503 while MariaDB is away."""
from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from typing import Callable

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from config import Settings, load_settings
from models.db import Database, is_unavailable
from utils.logs import configure_logging
from utils.metrics import render as render_metrics

log = logging.getLogger(__name__)


def same_secret(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; an unset expected secret matches nothing."""
    if not expected or given is None:
        return False
    try:
        return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate cannot be any secret of ours
        return False


def metrics_allowed(request, token: str | None) -> bool:
    """/metrics tells how busy the shop is: with METRICS_TOKEN set, only to a caller who
    brings it (Authorization: Bearer …); without one, only to this machine (loopback)."""
    if token:
        given = request.headers.get("Authorization", "")
        return given.startswith("Bearer ") and same_secret(given[len("Bearer "):], token)
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def error(status: int, message: str):
    return jsonify({"ok": False, "error": message}), status


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


def base_app(name: str, settings: Settings, db: Database) -> Flask:
    app = Flask(name)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["keepdesk.db"] = db
    app.extensions["keepdesk.settings"] = settings

    @app.get("/healthz")
    def healthz():
        db_ok = db.ping()
        return jsonify({"ok": db_ok, "database": "up" if db_ok else "down"}), 200 if db_ok else 503

    @app.get("/metrics")
    def metrics():
        if not metrics_allowed(request, settings.metrics_token):
            return error(403, "forbidden")
        body, content_type = render_metrics(db)
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


class BadBody(ValueError):
    """The request body is not the JSON we accept."""


def read_json(request) -> object:
    """Parse the body as UTF-8 JSON; BadBody with a reason otherwise.

    The size limit (MAX_CONTENT_LENGTH → 413) applies while reading. A form or multipart
    body is refused: both callers of our doors send JSON.
    """
    mimetype = request.mimetype or ""
    if mimetype.startswith(("multipart/", "application/x-www-form-urlencoded")):
        raise BadBody("body must be JSON, not a form")
    raw = request.get_data(cache=False)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        # A chunked body is cut at the limit by the server, not refused: refuse it here.
        raise RequestEntityTooLarge()
    if not raw:
        raise BadBody("empty body; JSON expected")
    try:
        value = json.loads(raw.decode("utf-8"))
        check_depth(value)
        # Lone surrogates ("\ud800") parse but cannot be stored as UTF-8: refuse them now.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError):
        raise BadBody("body is not valid UTF-8 JSON") from None
    return value


MAX_DEPTH = 64


def check_depth(value: object) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH (checked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError("JSON nested too deeply")
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
