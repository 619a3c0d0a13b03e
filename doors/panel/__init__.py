"""The admin panel's door (WEB.md §1): a Flask app with server-rendered pages on its own
port (WEB_PORT, bound to WEB_BIND — 127.0.0.1 unless told otherwise).

Security, all in one place:
* every page but /login needs a session (Flask-Login), and sessions live on the server
  (`services/panel_auth.py`): the cookie carries a random session id whose hash MariaDB
  keeps; every request looks the session up, with the user's Telegram person still an
  admin — logout, a new password, a ban or a demotion end it at once;
* cookies and CSRF tokens are signed with WEB_SECRET_KEY (or a key KeepDesk makes once
  and keeps in var/web_secret_key, readable by its user only);
* every form carries a CSRF token (Flask-WTF); a forged or missing one gets a clear page
  and changes nothing;
* headers: a Content-Security-Policy with no inline script or style, X-Frame-Options DENY,
  nosniff, no referrer, no caching of pages;
* no secret in a page: the settings page masks them (`utils/redact.py` registers them for
  the logs too).

Routes are thin (pages.py, the `panel` blueprint — `BLUEPRINTS` below is the panel's
whole URL map): they read the form, call a service, render a template.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from config import Settings
from doors.panel import pages, texts, tgaccounts, whatsapp
from doors.panel.texts import text
from doors.web import Table
from models.db import Database, is_conflict, is_unavailable
from utils.http import mount, trust_proxies
from utils.private_files import private_folder, read_secret

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class _Sessions(SecureCookieSessionInterface):
    """Signed cookie sessions, marked Secure whenever the panel is reached over HTTPS."""

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or reached_over_https()


class SessionUser(UserMixin):
    """The logged-in panel user; `get_id` is the server-side session's random id."""

    def __init__(self, user, session_id: str) -> None:
        self.user = user
        self.session_id = session_id

    def get_id(self) -> str:
        return self.session_id

    @property
    def login(self) -> str:
        return self.user.login


def reached_over_https() -> bool:
    """HTTPS to us, or to a proxy named in TRUSTED_PROXIES that says it was reached over
    HTTPS (utils/http.py::TrustedProxies sets the scheme; from anyone else the header is
    ignored)."""
    return request.is_secure


def secret_key(settings: Settings) -> str:
    """WEB_SECRET_KEY, else a key made once under var/ (shared by every worker)."""
    if settings.web_secret_key:
        return settings.web_secret_key
    path = Path(settings.var_dir) / "web_secret_key"
    if not path.parent.exists():
        private_folder(path.parent)
    return read_secret(path, lambda: secrets.token_urlsafe(48))


def load_user(session_id: str):
    user = current_app.extensions["keepdesk.panel"].auth.session_user(session_id)
    return SessionUser(user, session_id) if user else None


def headers(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    if reached_over_https():   # behind the TLS proxy: browsers stay on HTTPS
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


def csrf_error(exc: CSRFError):
    return render_template("message.html", title=text("error.csrf_title"),
                           message=text("error.csrf")), 400


def http_error(exc: HTTPException):
    """An error page in the reader's language: an abort() of the panel's own names a
    catalogue key; Werkzeug's own answers get the panel's words for their code."""
    described = exc.description or ""
    if exc.code in (404, 405, 413):
        title = text(f"error.{exc.code}")
        described = text(described) if described in texts.TEXTS[texts.DEFAULT_LANGUAGE] \
            else text(f"error.desc_{exc.code}")
    else:
        title = text("error.other")
    return render_template("message.html", title=title,
                           message=f"{exc.code}: {described}"), exc.code or 500


def unexpected(exc: Exception):
    if is_unavailable(exc) or is_conflict(exc):
        log.warning("database unavailable: %s", exc)
        return render_template("message.html", title=text("error.unavailable_title"),
                               message=text("error.unavailable")), 503
    log.exception("unexpected error in the panel at %s", request.path)
    return render_template("message.html", title=text("error.unexpected_title"),
                           message=text("error.unexpected")), 500


@dataclass(frozen=True)
class Parts:
    """What the panel's blueprints are bound to."""
    settings: Settings
    db: Database
    deps: object
    auth: object


# The panel's whole URL map (name: the blueprint's name and its endpoints' prefix), under
# `prefix`; besides it only Flask's static files, `<prefix>/static/…`.
BLUEPRINTS: Table = (
    # /, /login, /setup, /account, /language, /logout, /errors, /conversations, /team, /reports,
    # /settings and their forms; /healthz (pages.py)
    ("panel", pages.blueprint, lambda p: pages.Panel(p.settings, p.db, p.deps, p.auth)),
    # /settings/whatsapp and an account's linking page (whatsapp.py)
    ("panel_whatsapp", whatsapp.blueprint, whatsapp.bind),
    # /settings/telegram: the Telegram accounts, their logins (tgaccounts.py)
    ("panel_tg", tgaccounts.blueprint, lambda p: tgaccounts.bind(p.settings, p.db)),
)


def create_app(settings: Settings, db: Database | None = None, *, deps=None,
               prefix: str = "") -> Flask:
    """The panel. `deps`: a ready Container (the playground shares its own); `prefix`: where
    the panel's pages live (the playground keeps "/" for itself)."""
    from container import Container
    from services.panel_auth import PanelAuth

    db = db or Database(settings)
    deps = deps or Container.build(settings, db)
    app = Flask(__name__, template_folder=str(HERE / "templates"),
                static_folder=str(HERE / "static"), static_url_path=f"{prefix}/static")
    app.config.update(
        SECRET_KEY=secret_key(settings), MAX_CONTENT_LENGTH=1_048_576,
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="keepdesk_panel", REMEMBER_COOKIE_DURATION=0,
        WTF_CSRF_TIME_LIMIT=8 * 3600, WTF_CSRF_SSL_STRICT=False)
    app.session_interface = _Sessions()
    trust_proxies(app, settings)
    CSRFProtect(app)
    parts = Parts(settings, db, deps, PanelAuth.for_settings(db, deps.clock, settings))

    manager = LoginManager(app)
    manager.login_view = "panel.login"
    manager.login_message = "login.needed"          # a catalogue key, in the reader's language
    manager.localize_callback = text
    manager.login_message_category = "warning"
    manager.session_protection = "basic"
    manager.user_loader(load_user)

    for name, blueprint, bind in BLUEPRINTS:
        mount(app, name, blueprint, bind(parts), url_prefix=prefix or None)
    app.context_processor(texts.template_globals)
    app.after_request(headers)
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected)
    return app


def __getattr__(name: str):
    """`gunicorn doors.panel:app` (the settings from the environment)."""
    if name != "app":
        raise AttributeError(name)
    from config import load_settings
    from utils.logs import configure_logging
    settings = load_settings()
    configure_logging(settings.log_level, settings.secrets)
    globals()["app"] = create_app(settings)
    return globals()["app"]
