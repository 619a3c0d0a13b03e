"""The accounts management endpoint `/planfix/clients` (CHANNELS.md §5) on the
integrations door. It only writes the desired state to MariaDB and wakes the accounts
process; sessions never run inside a web request.

| call | body (JSON; GET also takes the query string) | answer |
|---|---|---|
| `POST` | `name, number, url_planfix, token_planfix, name_session, path_session` (+ optional `session`: a session string kept encrypted instead of a file) | `{"token": …}` |
| `GET` | `name, number` | `{"status": "online" \\| "offline"}` |
| `DELETE` | `name, number` | `{"status": "offline"}` — that number only |
| `PUT` | the full POST body | `{"status": …}` — stopped, updated, restarted |

Tokens ride in the `Token` header (`Authorization: Bearer …` accepted too): the POST
needs PLANFIX_ADMIN_TOKEN; the other calls the client token the POST returned (stored
hashed; any number's token of a client works for all of that client's numbers) or the
admin token. No or wrong token: 401; unknown client or number: 404; a malformed body:
400; a number that already runs (POST): 409; a client token changing where the session
file is: 403 — all JSON `{"ok": false, "error": …}`.

A session file is where only the admin says: `path_session` is relative to the one
sessions folder (TG_SESSIONS_DIR; no absolute path, no `..`), and only the admin token
may set or change it (with `name_session`) — a client token's PUT repeats the one it
has. Whatever session an account gets, the accounts process uses it only when the
session's own account is the number (channels/tgaccount/sessions.py).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from urllib.parse import urlparse

from flask import Blueprint, jsonify, request

from channels.tgaccount.control import STALE_AFTER, AccountsControl
from channels.tgaccount.sessions import door_path
from config import Settings
from models.tgaccounts import ONLINE, RUNNING, AccountHostRepository, AccountRepository, AccountRow
from utils.http import BadBody, bound, error, read_json, same_secret
from utils.secretbox import SecretBox, new_token, same_hash, token_hash

_NAME = re.compile(r"^[\w .@-]{1,128}$", re.UNICODE)
_SESSION_NAME = re.compile(r"^[A-Za-z0-9_.+-]{1,128}$")


def normalise_number(raw: object) -> str | None:
    """An account number as digits (+380 50 123-45-67 → 380501234567); None if not one."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if not isinstance(raw, str) or len(raw) > 32:
        return None
    digits = "".join(ch for ch in raw if ch.isdigit())
    if not digits.isascii() or not 5 <= len(digits) <= 15 or re.sub(r"[\d\s+()-]", "", raw):
        return None
    return digits


def token_of(req) -> str | None:
    token = req.headers.get("Token")
    if token:
        return token.strip()
    auth = req.headers.get("Authorization", "")
    return auth[7:].strip() if auth.startswith("Bearer ") else None


@dataclass(frozen=True)
class ClientBody:
    name: str
    number: str
    url_planfix: str = ""
    token_planfix: str = ""
    name_session: str = ""
    path_session: str | None = None
    session: str | None = None

    def __repr__(self) -> str:
        return f"ClientBody({self.name!r}, {self.number!r})"


def _text(body: dict, key: str, limit: int, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise BadBody(f"{key} is required")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise BadBody(f"{key} must be a string of at most {limit} characters")
    return value.strip()


def parse_body(body: object, *, full: bool) -> ClientBody:
    if not isinstance(body, dict):
        raise BadBody("a JSON object is required")
    name = _text(body, "name", 128)
    if not _NAME.fullmatch(name):
        raise BadBody("name: 1-128 letters, digits, spaces, . @ _ -")
    number = normalise_number(body.get("number"))
    if number is None:
        raise BadBody("number must be a phone number (5-15 digits)")
    if not full:
        return ClientBody(name, number)
    url = _text(body, "url_planfix", 512)
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise BadBody("url_planfix must be an http(s) URL")
    name_session = _text(body, "name_session", 128)
    if not _SESSION_NAME.fullmatch(name_session):
        raise BadBody("name_session: 1-128 of A-Z a-z 0-9 _ . + -")
    path = _text(body, "path_session", 1024, required=False)
    session = _text(body, "session", 4096, required=False)
    if path is None and session is None:
        raise BadBody("path_session (or session) is required")
    return ClientBody(name, number, url.rstrip("/"), _text(body, "token_planfix", 256), name_session,
                      path, session)


def confined(client: ClientBody) -> ClientBody:
    """The body with its path_session as the admin may set it (inside the sessions folder)."""
    if client.path_session is None:
        return client
    try:
        path = door_path(client.path_session)
    except ValueError as exc:
        raise BadBody(str(exc)) from exc
    if ".." in client.name_session.split("/") or client.name_session in (".", ".."):
        raise BadBody("name_session must name a file")
    return dataclasses.replace(client, path_session=path)


def _body() -> object:
    if request.method == "GET" and not request.get_data(cache=True):
        return request.args.to_dict()
    return read_json(request)


class Clients:
    def __init__(self, settings: Settings, db) -> None:
        self.settings = settings
        self.box = SecretBox(settings.tg_accounts_key)
        self.accounts = AccountRepository(db)
        self.hosts = AccountHostRepository(db)
        self.control = AccountsControl(self.hosts, self.box, timeout=2.0)

    def status_of(self, row: AccountRow) -> str:
        """Online only as the accounts process reports it, for the generation asked for,
        while that process is alive."""
        if (row.desired == RUNNING and row.status == ONLINE and row.status_generation == row.generation
                and self.hosts.live(STALE_AFTER)):
            return "online"
        return "offline"

    def is_admin(self) -> bool:
        return same_secret(token_of(request), self.settings.planfix_admin_token)

    def authorise(self, client: ClientBody) -> tuple[AccountRow | None, tuple | None]:
        """The client's row for this number, or the error answer (the admin token opens
        every client's)."""
        token = token_of(request)
        if not token:
            return None, error(401, "a token is required (header Token or Authorization: Bearer)")
        rows = self.accounts.of_client(client.name)
        if not rows:
            return None, error(404, "unknown client")
        if not self.is_admin() and not any(same_hash(token, r.token_hash) for r in rows):
            return None, error(401, "invalid token")
        row = next((r for r in rows if r.number == client.number), None)
        if row is None:
            return None, error(404, "unknown number for this client")
        return row, None

    def post(self):
        if not self.is_admin():
            return error(401, "the admin token is required (header Token or Authorization: Bearer)")
        try:
            client = confined(parse_body(read_json(request), full=True))
        except BadBody as exc:
            return error(400, str(exc))
        token = new_token()
        created = self.accounts.create(
            client_name=client.name, number=client.number, url_planfix=client.url_planfix,
            token_planfix_enc=self.box.seal(client.token_planfix), name_session=client.name_session,
            path_session=client.path_session,
            session_enc=self.box.seal(client.session) if client.session else None,
            token_hash=token_hash(token))
        if not created:
            return error(409, "this number is started already; use PUT to change it")
        self.control.wake()
        return jsonify({"token": token})

    def get(self):
        try:
            client = parse_body(_body(), full=False)
        except BadBody as exc:
            return error(400, str(exc))
        row, refusal = self.authorise(client)
        if refusal:
            return refusal
        return jsonify({"status": self.status_of(row)})

    def delete(self):
        try:
            client = parse_body(read_json(request), full=False)
        except BadBody as exc:
            return error(400, str(exc))
        row, refusal = self.authorise(client)
        if refusal:
            return refusal
        self.accounts.stop(row.number)
        self.control.wake()
        return jsonify({"status": "offline"})

    def put(self):
        try:
            client = parse_body(read_json(request), full=True)
        except BadBody as exc:
            return error(400, str(exc))
        row, refusal = self.authorise(client)
        if refusal:
            return refusal
        if self.is_admin():
            try:
                client = confined(client)
            except BadBody as exc:
                return error(400, str(exc))
        elif client.path_session is not None and (client.path_session, client.name_session) != (
                row.path_session, row.name_session):
            return error(403, "only the admin token may set path_session / name_session")
        self.accounts.update(row.number, url_planfix=client.url_planfix,
                             token_planfix_enc=self.box.seal(client.token_planfix),
                             name_session=client.name_session, path_session=client.path_session,
                             session_enc=self.box.seal(client.session) if client.session else None)
        self.control.wake()
        return jsonify({"status": "offline"})


blueprint = Blueprint("planfix_clients", __name__)


def bind(settings: Settings, db) -> Clients:
    return Clients(settings, db)


@blueprint.post("/planfix/clients")
def post():
    return bound().post()


@blueprint.get("/planfix/clients")
def get():
    return bound().get()


@blueprint.delete("/planfix/clients")
def delete():
    return bound().delete()


@blueprint.put("/planfix/clients")
def put():
    return bound().put()
