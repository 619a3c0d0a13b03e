"""HTTP at the border, for every door and every channel's routes: constant-time secret
comparison, JSON bodies parsed within bounds, JSON errors, user-supplied files served so
that they never run on our origin, the client's address behind a trusted proxy, and how a
blueprint is served bound to what its views need (`mount` / `bound`, doors/__init__.py)."""
from __future__ import annotations

import hmac
import ipaddress
import json
import re
from urllib.parse import quote

from flask import Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge


def mount(app, name: str, blueprint, context, **options) -> None:
    """Serve `blueprint` on `app` under `name`, bound to `context` (the settings, the
    database, the intake… its views need): kept as `app.extensions["keepdesk.<name>"]`,
    read by the views with `bound()`. `options`: Flask's (e.g. `url_prefix`)."""
    app.extensions[f"keepdesk.{name}"] = context
    app.register_blueprint(blueprint, name=name, **options)


def bound():
    """What the blueprint serving this request was mounted with (`mount`)."""
    return current_app.extensions[f"keepdesk.{request.blueprint}"]


def same_secret(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; an unset expected secret matches nothing."""
    if not expected or given is None:
        return False
    try:
        return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate cannot be any secret of ours
        return False


def metrics_allowed(request, token: str | None) -> bool:
    """/metrics (and /healthz's details) tell how busy the shop is and what is wrong: with
    METRICS_TOKEN set, only to a caller who brings it (Authorization: Bearer …); without
    one, only to this machine (loopback — the real client's address behind a trusted
    proxy, see `TrustedProxies`; METRICS_TOKEN is required with a public address)."""
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


# Only raster images may be shown in the browser; everything else (HTML, SVG, PDF, …) a
# customer or a partner sent is downloaded, never rendered on our origin.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")


def file_response(data: bytes, name: str, mime: str | None, *,
                  headers: dict[str, str] | None = None) -> Response:
    """A file somebody outside chose (its name and type included), served safely: as an
    attachment with a plain filename unless it is a raster image, sandboxed
    (`Content-Security-Policy: sandbox` — no script, no same origin even if a browser
    renders it) and never sniffed as something else."""
    kind = (mime or "").split(";")[0].strip().lower()
    if not _MIME.fullmatch(kind):
        kind = "application/octet-stream"
    disposition = "inline" if kind in INLINE_TYPES else "attachment"
    plain = safe_filename(name)
    full = _basename(name) or plain
    response = Response(data, mimetype=kind)
    response.headers["Content-Disposition"] = (
        f'{disposition}; filename="{plain}"; filename*=UTF-8\'\'{quote(full, safe="")}')
    response.headers["Content-Security-Policy"] = "sandbox"
    response.headers["X-Content-Type-Options"] = "nosniff"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def safe_filename(name: str | None) -> str:
    """An ASCII filename with no quote, backslash, path or control character in it."""
    plain = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_"
                    for c in _basename(name))
    plain = plain.strip(" .")[:100]
    return plain or "file"


def _basename(name: str | None) -> str:
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in base if c.isprintable())[:200]


def in_networks(address: str | None, networks) -> bool:
    """`address` (IPv4 on a dual-stack socket counted as IPv4) is in one of `networks`
    (`ipaddress` networks, or strings such as "10.0.0.0/8"); a malformed address — one
    with spaces around it included — is in none."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return any(ip in (ipaddress.ip_network(net, strict=False) if isinstance(net, str) else net)
               for net in networks)


class TrustedProxies:
    """WSGI middleware: behind a reverse proxy the peer is the proxy, so the client's
    address and scheme come from X-Forwarded-For / X-Forwarded-Proto — believed only when
    the peer is one of TRUSTED_PROXIES. The client is the right-most forwarded address that
    is not itself a trusted proxy (a client may write anything at the left), and becomes
    `request.remote_addr` for everything after (CRM_ALLOWED_IPS, /metrics, the panel's
    throttle). From any other peer the headers change nothing."""

    def __init__(self, app, networks) -> None:
        self.app = app
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def trusted(self, address: str | None) -> bool:
        return in_networks(address, self.networks)

    def __call__(self, environ, start_response):
        peer = environ.get("REMOTE_ADDR")
        if self.networks and self.trusted(peer):
            client = peer
            chain = [p.strip() for p in environ.get("HTTP_X_FORWARDED_FOR", "").split(",")]
            for address in reversed(chain):
                try:
                    ipaddress.ip_address(address)
                except ValueError:
                    break            # garbage: the last good hop is the best we know
                client = address
                if not self.trusted(address):
                    break
            environ["keepdesk.proxy_peer"] = peer
            environ["REMOTE_ADDR"] = client
            proto = environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                environ["wsgi.url_scheme"] = proto
        return self.app(environ, start_response)


def trust_proxies(app, settings) -> None:
    """Apply TRUSTED_PROXIES to a Flask app (every door calls it once)."""
    networks = getattr(settings, "trusted_proxies", ())
    if networks:
        app.wsgi_app = TrustedProxies(app.wsgi_app, networks)
