"""Planfix's chat API, our side of the wire (CHANNELS.md §5): form-encoded requests to
`{url_planfix}/webchat/api`, JSON answers.

200 is accepted; 400 `{"error":"Invalid parameters"}` and 401 `{"error":"Invalid token"}`
are refusals that no retry can fix (a dead letter, reported); 5xx, 429, timeouts and a
refused connection mean Planfix is away: retried by the failure policy, never lost.
"""
from __future__ import annotations

import requests

TIMEOUT = (5.0, 20.0)


class PlanfixError(Exception):
    transient = False


class PlanfixUnavailable(PlanfixError):
    transient = True


class PlanfixRejected(PlanfixError):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(f"Planfix answered {status}: {error}")
        self.status = status
        self.error = error


def endpoint(url_planfix: str) -> str:
    return f"{url_planfix.rstrip('/')}/webchat/api"


def call(url_planfix: str, fields: list[tuple[str, str]], *, session: requests.Session | None = None) -> dict:
    """POST one command; the JSON answer ({} when the body is not JSON)."""
    try:
        response = (session or requests).post(endpoint(url_planfix), data=fields, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise PlanfixUnavailable(f"Planfix unreachable: {type(exc).__name__}") from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code == 200:
        return body if isinstance(body, dict) else {}
    error = str(body.get("error") if isinstance(body, dict) else "") or f"HTTP {response.status_code}"
    if response.status_code >= 500 or response.status_code == 429:
        raise PlanfixUnavailable(f"Planfix answered {response.status_code}: {error[:200]}")
    raise PlanfixRejected(response.status_code, error[:200])
