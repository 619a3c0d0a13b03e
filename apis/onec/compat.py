"""The compatible 1C routes, exactly as 1C configurations call them (CHANNELS.md §2).

GET or POST; parameters in the query string, a form, or a JSON object. Answers are plain
strings with HTTP 200 (what those configurations read): `OK`; `ERROR TOKEN` (wrong
token); `WEB DASHBOARD OFF` (ONEC_API_ENABLED=off); `ERROR PHONE` (not a valid phone
number); `ERROR PARAMS` (a parameter missing, malformed or over-long); `ERROR TEMPLATE`
(no template configured for the route, or a listed template given another number of
parameters); `SERVER ERROR` (anything unexpected: details to the log and #ERROR); and
JSON for `get_all_data` / `get_data`. The switch is checked first, then the token, so a
caller without a token learns nothing else.

A notice to an unsubscribed phone, a repeated request (1C retrying) and a second birthday
greeting within ONEC_BIRTHDAY_DAYS are answered `OK` — the request was understood and
handled, and a 1C configuration treats anything else as a failure to retry — while
nothing is sent and the log (and the API's record) says why.
"""
from __future__ import annotations

import json
import logging
from datetime import timedelta
from functools import wraps

from flask import Blueprint, Response, jsonify, request

from services.notifications import TemplateMismatch
from utils.clock import utc_now
from utils.http import bound
from utils.phones import InvalidPhone, normalise

log = logging.getLogger(__name__)

MAX_PARAM = 1024          # a template's body parameter (Meta's limit)
MAX_PARAMS = 20


class BadParams(ValueError):
    pass


def plain(text: str) -> Response:
    return Response(text, mimetype="text/plain")


def values() -> dict:
    """Query string, form and (for convenience) a JSON object, the latter winning."""
    merged = {k: v for k, v in request.values.items()}
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            merged.update({k: v for k, v in body.items() if isinstance(v, (str, int, float, list))})
    return merged


def param(given: dict, name: str, *, required: bool = True) -> str | None:
    value = given.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise BadParams(f"{name} is required")
        return None
    value = str(value).strip()
    if len(value) > MAX_PARAM or "\x00" in value:
        raise BadParams(f"{name} is longer than {MAX_PARAM} characters")
    return value


def json_params(raw: object) -> list[str]:
    """`params`: a JSON array of strings, e.g. ["hello","world"] (a list in a JSON body)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise BadParams("params must be a JSON array of strings") from None
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_PARAMS or not all(
            isinstance(v, (str, int, float)) for v in raw):
        raise BadParams("params must be a JSON array of strings")
    texts = [str(v) for v in raw]
    if any(len(v) > MAX_PARAM or not v.strip() for v in texts):
        raise BadParams(f"every parameter is 1–{MAX_PARAM} characters")
    return texts


blueprint = Blueprint("onec", __name__)


def route(path: str):
    """A compatible route: GET or POST, the switch, the token, and every refusal as the
    plain string 1C knows. The handler gets the API (`OnecApi`) and the parameters."""
    def wrap(handler):
        @wraps(handler)
        def view():
            api = bound()
            if not api.settings.onec_api_enabled:
                return plain("WEB DASHBOARD OFF")
            given = values()
            if not api.tokens.valid(given.get("token")):
                log.warning("1C %s refused: wrong token (from %s)", path, request.remote_addr)
                return plain("ERROR TOKEN")
            try:
                return handler(api, given)
            except InvalidPhone:
                log.info("1C %s refused: invalid phone %r", path, str(given.get("phone"))[:40])
                return plain("ERROR PHONE")
            except BadParams as exc:
                log.info("1C %s refused: %s", path, exc)
                return plain("ERROR PARAMS")
            except TemplateMismatch as exc:
                log.warning("1C %s refused: %s", path, exc)
                return plain("ERROR TEMPLATE")
            except Exception as exc:  # never a 500: the string 1C knows, details to #ERROR
                log.exception("1C %s failed", path)
                try:
                    api.reporter.report(f"1C API {path} failed", f"{type(exc).__name__}: {exc}")
                except Exception:
                    log.warning("could not report the 1C API's failure")
                return plain("SERVER ERROR")
        blueprint.add_url_rule(path, view_func=view, methods=["GET", "POST"])
        return view
    return wrap


def phone_of(api, given: dict) -> str:
    return normalise(given.get("phone"), api.settings.phone_default_region)


@route("/custom_request")
def custom_request(api, given):
    phone = phone_of(api, given)
    api.notifications.custom(phone, param(given, "sample"), json_params(given.get("params")),
                             request_id=param(given, "request_id", required=False))
    return plain("OK")


@route("/review")
def review(api, given):
    phone = phone_of(api, given)
    api.notifications.review(phone, param(given, "name"), param(given, "date", required=False),
                             request_id=param(given, "request_id", required=False))
    return plain("OK")


@route("/appointment")
def appointment(api, given):
    phone = phone_of(api, given)
    api.notifications.appointment(phone, param(given, "doctor"), param(given, "date"),
                                  param(given, "time"),
                                  request_id=param(given, "request_id", required=False))
    return plain("OK")


@route("/happy_birthday_client")
def happy_birthday_client(api, given):
    phone = phone_of(api, given)
    api.notifications.birthday(phone, param(given, "name"), param(given, "date"),
                               request_id=param(given, "request_id", required=False))
    return plain("OK")


@route("/get_all_data")
def get_all_data(api, given):
    kind = param(given, "type")
    if kind == "confirm":
        phones = api.onec.confirmed_phones()
    elif kind == "unsubscribe":
        phones = api.onec.unsubscribed_phones()
    else:
        raise BadParams("type is confirm or unsubscribe")
    return jsonify({"phones": phones or None})


@route("/get_data")
def get_data(api, given):
    return jsonify(phone_state(api, phone_of(api, given)))


def phone_state(api, phone: str) -> dict:
    """{"appointment": null (none, or forgotten) | false (waiting) | true (confirmed),
    "unsubscribe": null | true}."""
    appointment = api.onec.latest_appointment(phone)
    state = None
    if appointment is not None:
        if appointment["state"] == "confirmed":
            state = True
        elif appointment["created_at"] >= utc_now() - timedelta(hours=api.settings.onec_expiry_hours):
            state = False
    return {"appointment": state, "unsubscribe": True if api.onec.is_unsubscribed(phone) else None}
