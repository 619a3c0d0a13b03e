"""HTTP at the border, for every door and every channel's routes: constant-time secret
comparison, JSON bodies parsed within bounds, JSON errors."""
from __future__ import annotations

import hmac
import ipaddress
import json

from flask import jsonify
from werkzeug.exceptions import RequestEntityTooLarge


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
