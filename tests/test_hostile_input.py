"""Hostile input (SPEC §1, §6; issue 6): garbage at both doors, forged secrets, and
pending or banned people trying their luck through the desk.

Every bad request travels over real HTTP to the doors served on loopback and must get
the documented refusal — 400 bad body, 403 wrong secret header or address, 404 wrong
secret path, 405 wrong method, 413 too big — as a JSON error, never a 500, and must leave
the jobs table exactly as it was. Bodies that are easier to keep as files live in
tests/corpus/. Run with `-s` to see how many bad inputs were tried.
"""
from __future__ import annotations

import http.client
import json
import socket
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import pytest
import requests

import crm_listener
import webhook_server
from bot.callbacks import ACTIONS, CallbackCodec
from bot.texts import TEXTS
from config import load_settings
from conftest import ADMIN_ID, BOT_TOKEN, SHARED_CHAT, base_environment
from harness import wait_for
from models.db import Database
from sandbox._server import ServerThread
from utils.bell import Bell

CORPUS = Path(__file__).parent / "corpus"
TG_PATH = "/telegram/test-webhook-path"
CRM_PATH = "/messages/test-link-key"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SECRET = "test-secret-token"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
DEEP = 100_000

TRIED: Counter = Counter()  # bad inputs sent, by where they went


@pytest.fixture(scope="module", autouse=True)
def _report_count():
    yield
    total = sum(TRIED.values())
    detail = ", ".join(f"{where}: {n}" for where, n in sorted(TRIED.items()))
    print(f"\nbad inputs tried: {total} ({detail})")


# --------------------------------------------------------------------------- the doors

@dataclass
class Doors:
    settings: object
    db: Database
    telegram: ServerThread
    crm: ServerThread

    def jobs(self) -> list[dict]:
        return self.db.fetchall("SELECT id, queue, kind, dedupe_key, status, rerun, attempts,"
                                " payload, run_after FROM jobs ORDER BY id")


@pytest.fixture(scope="module")
def doors(mariadb, schema):
    """Both doors on loopback, as configured by default (MAX_BODY_BYTES = 1 MiB)."""
    settings = load_settings(base_environment(mariadb), env_file=None)
    db = Database(settings)
    db.execute("DELETE FROM jobs")
    bell = Bell()  # nothing listens: a stored job would simply wait
    telegram = ServerThread(webhook_server.create_app(settings, db=db, bell=bell)).start()
    crm = ServerThread(crm_listener.create_app(settings, db=db, bell=bell)).start()
    yield Doors(settings, db, telegram, crm)
    telegram.stop()
    crm.stop()
    db.execute("DELETE FROM jobs")
    db.close()


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes

    def json(self):
        return json.loads(self.body)


def post(url: str, body, headers: dict) -> Answer:
    """An ordinary client (requests): Content-Length, or chunked for a generator body."""
    answer = requests.post(url, data=body, headers=headers, timeout=30)
    return Answer(answer.status_code, answer.headers.get("Content-Type", ""), answer.content)


def raw_request(port: int, method: str, path: str, headers: Iterable[tuple[str, str]],
                body: bytes = b"", *, content_length: bool = True) -> Answer:
    """Exactly these bytes on the wire: no client-side URL normalisation or header checks."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        if content_length:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)
        answer = connection.getresponse()
        return Answer(answer.status, answer.getheader("Content-Type", ""), answer.read())
    finally:
        connection.close()


def raw_socket(port: int, request: bytes) -> Answer:
    """For what http.client will not send (a body without any length, lying lengths)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return Answer(status, headers.get("Content-Type", ""), body)


def assert_refused(doors: Doors, where: str, send: Callable[[], Answer], status: int,
                   what: str) -> Answer:
    """Send one bad input; the refusal must be `status` with a JSON error, nothing stored."""
    before = doors.jobs()
    answer = send()
    TRIED[where] += 1
    assert answer.status == status, f"{what}: {answer.status} {answer.body[:200]!r}"
    assert answer.content_type.startswith(JSON), f"{what}: {answer.content_type}"
    error = answer.json()
    assert error["ok"] is False and isinstance(error["error"], str) and error["error"], what
    assert doors.jobs() == before, f"{what}: the jobs table changed"
    return answer


def update(update_id: int = 501, **extra) -> dict:
    return {"update_id": update_id, "message": {
        "message_id": 3, "date": 0, "text": "/start", "chat": {"id": 77, "type": "private"},
        "from": {"id": 77, "is_bot": False, "first_name": "A"}}, **extra}


def deep_array(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def deep_object(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


# --------------------------------------------------------------------------- 1. bodies

@dataclass(frozen=True)
class BadBody:
    name: str
    body: bytes
    content_type: str | None = JSON


def _json(value) -> bytes:
    return json.dumps(value).encode()


def _corpus_files(door: str) -> list[BadBody]:
    """Files in tests/corpus/<door>/*; the extension names the content type."""
    types = {".json": JSON, ".xml": "text/xml", ".txt": "text/plain", ".form": FORM}
    return [BadBody(f"file:{path.name}", path.read_bytes(), types.get(path.suffix, JSON))
            for path in sorted((CORPUS / door).glob("*"))]


VALID_PREFIX = b'{"update_id": 501, "InvoiceId": 5, "x": '
# Bad for either door: not a JSON object at all, not JSON, not UTF-8, not a body.
COMMON_BODIES = [
    BadBody("empty body", b""),
    BadBody("only white space", b" \r\n\t "),
    BadBody("JSON null", b"null"),
    BadBody("JSON true", b"true"),
    BadBody("JSON number", b"501"),
    BadBody("JSON float", b"5.01"),
    BadBody("JSON string", b'"update_id"'),
    BadBody("empty array", b"[]"),
    BadBody("array of numbers", b"[1, 2, 3]"),
    BadBody("array holding the object", b'[{"update_id": 501, "InvoiceId": 5}]'),
    BadBody("empty object", b"{}"),
    BadBody("truncated object", b'{"update_id": 501, "InvoiceId": 5'),
    BadBody("trailing garbage", b'{"update_id": 501, "InvoiceId": 5} x'),
    BadBody("two objects", b'{"update_id": 501, "InvoiceId": 5}{"update_id": 502}'),
    BadBody("single quotes", b"{'update_id': 501, 'InvoiceId': 5}"),
    BadBody("bare keys", b"{update_id: 501, InvoiceId: 5}"),
    BadBody("a comment", b'{"update_id": 501, "InvoiceId": 5 /* hi */}'),
    BadBody("trailing comma", b'{"update_id": 501, "InvoiceId": 5,}'),
    BadBody("invalid UTF-8", b"\xff\xfe\x00garbage"),
    BadBody("latin-1 byte in a string", b'{"update_id": 501, "InvoiceId": 5, "t": "caf\xe9"}'),
    BadBody("overlong UTF-8 encoding", b'{"update_id": 501, "InvoiceId": 5, "t": "\xc0\xaf"}'),
    BadBody("UTF-8 encoded surrogate", b'{"update_id": 501, "InvoiceId": 5, "t": "\xed\xa0\x80"}'),
    BadBody("UTF-16 with a BOM", '{"update_id": 501, "InvoiceId": 5}'.encode("utf-16")),
    BadBody("UTF-8 BOM", b'\xef\xbb\xbf{"update_id": 501, "InvoiceId": 5}'),
    BadBody("a lone NUL byte", b"\x00"),
    BadBody("NUL after the object", b'{"update_id": 501, "InvoiceId": 5}\x00'),
    BadBody("NUL inside a number", b'{"update_id": 50\x001, "InvoiceId": 5\x00}'),
    BadBody("raw NUL inside a string", b'{"update_id": 501, "InvoiceId": 5, "t": "a\x00b"}'),
    BadBody("raw new line inside a string", b'{"update_id": 501, "InvoiceId": 5, "t": "a\nb"}'),
    BadBody("number too long to parse",
            b'{"update_id": 1' + b"0" * 5000 + b', "InvoiceId": 1' + b"0" * 5000 + b"}"),
    BadBody(f"{DEEP} nested arrays", deep_array(DEEP)),
    BadBody(f"{DEEP} nested objects", deep_object(DEEP)),
    BadBody("deep array inside an update", VALID_PREFIX + deep_array(DEEP) + b"}"),
    BadBody("deep object inside an update", VALID_PREFIX + deep_object(DEEP) + b"}"),
    BadBody("a form", b"update_id=501&InvoiceId=5", FORM),
    BadBody("JSON sent as a form", b'{"update_id": 501, "InvoiceId": 5}', FORM),
    BadBody("multipart holding JSON", b'--xx\r\nContent-Disposition: form-data; name="u"\r\n\r\n'
            b'{"update_id": 501, "InvoiceId": 5}\r\n--xx--\r\n', "multipart/form-data; boundary=xx"),
    BadBody("multipart, no boundary", b'{"update_id": 501, "InvoiceId": 5}', "multipart/form-data"),
    BadBody("XML", b"<update><update_id>501</update_id><InvoiceId>5</InvoiceId></update>", "text/xml"),
    BadBody("XML labelled JSON", b"<?xml version='1.0'?><InvoiceId>5</InvoiceId>", JSON),
    BadBody("plain text", b"InvoiceId: 5, update_id: 501", "text/plain"),
    BadBody("no content type, not JSON", b"update_id=501&InvoiceId=5", None),
]

# Bad only for the Telegram door: not an update with a non-negative integer update_id.
TELEGRAM_BODIES = [
    BadBody("message without update_id", _json({"message": update()["message"]})),
    BadBody("update_id misspelt", _json({"updateId": 501})),
    BadBody("update_id in capitals", _json({"UPDATE_ID": 501})),
    *[BadBody(f"update_id = {raw}", b'{"update_id": ' + raw.encode() + b', "message": {}}') for raw in [
        "null", "true", "false", '"501"', '""', '"abc"', '" 501"', "501.0", "5.01", "1e3", "-1",
        "-0.0", "-9223372036854775808", "[501]", "[]", '{"id": 501}', "{}", "1e309", "-1e309",
        "NaN", "Infinity", "-Infinity", '"18446744073709551616"', '"0x1f5"']],
    BadBody("duplicate update_id, last one bad", b'{"update_id": 501, "update_id": "501"}'),
    BadBody("duplicate update_id, last one negative", b'{"update_id": 501, "update_id": -501}'),
]

# Bad only for the CRM door: no integer InvoiceId (a quoted number of digits is taken).
CRM_BODIES = [
    BadBody("InvoiceId missing", _json({"invoice": 5})),
    BadBody("InvoiceId in lower case", _json({"invoiceid": 5})),
    BadBody("InvoiceID", _json({"InvoiceID": 5})),
    BadBody("InvoiceId with a space", _json({" InvoiceId": 5})),
    BadBody("InvoiceId nested", _json({"data": {"InvoiceId": 5}})),
    *[BadBody(f"InvoiceId = {raw}", b'{"InvoiceId": ' + raw.encode() + b"}") for raw in [
        "null", "true", "false", "0", "-0", "-0.0", "-4", "1.5", "5.0", "1e3", "1e309", "-1e309",
        "NaN", "Infinity", "-Infinity", "18446744073709551616", "9223372036854775808",
        '""', '"  "', '"abc"', '"5a"', '"5.0"', '"-5"', '"+5"', '"0x10"', '"1_000"', '"0"',
        '"\\u0665"', '"\\uff15"', '"99999999999999999999999"', '"5\\u0000"', "[5]", "[]",
        '{"id": 5}', '{"InvoiceId": 5}', "{}"]],
    BadBody("duplicate InvoiceId, last one bad", b'{"InvoiceId": 5, "InvoiceId": null}'),
    BadBody("duplicate InvoiceId, last one zero", b'{"InvoiceId": 5, "InvoiceId": 0}'),
]


def _content_type(body: BadBody) -> dict:
    return {} if body.content_type is None else {"Content-Type": body.content_type}


@pytest.mark.parametrize("body", COMMON_BODIES + TELEGRAM_BODIES + _corpus_files("telegram"),
                         ids=lambda b: b.name)
def test_a_bad_update_body_is_400_and_stores_nothing(doors, body):
    headers = {SECRET_HEADER: SECRET, **_content_type(body)}
    assert_refused(doors, "telegram door",
                   lambda: post(doors.telegram.url + TG_PATH, body.body, headers), 400, body.name)


@pytest.mark.parametrize("body", COMMON_BODIES + CRM_BODIES + _corpus_files("crm"),
                         ids=lambda b: b.name)
def test_a_bad_signal_body_is_400_and_stores_nothing(doors, body):
    answer = assert_refused(doors, "crm door",
                            lambda: post(doors.crm.url + CRM_PATH, body.body, _content_type(body)),
                            400, body.name)
    if body in CRM_BODIES:
        assert "InvoiceId" in answer.json()["error"]  # the sender is told what is wrong


def test_what_is_not_refused_is_read_the_same_way_it_is_stored(doors):
    """Edge cases that are valid on purpose, and stored exactly as they were understood:
    duplicate keys (the last one counts, for the check and for the worker alike), -0,
    a quoted InvoiceId, a JSON body under another content type (CRMs send odd ones)."""
    doors.db.execute("DELETE FROM jobs")
    headers = {SECRET_HEADER: SECRET, "Content-Type": JSON}
    assert post(doors.telegram.url + TG_PATH, b'{"update_id": "x", "update_id": 7001}', headers).status == 200
    assert post(doors.telegram.url + TG_PATH, b'{"update_id": -0}', headers).status == 200
    assert post(doors.telegram.url + TG_PATH, b'{"update_id": 7002}',
                dict(headers, **{"Content-Type": "text/xml"})).status == 200
    for body in (b'{"InvoiceId": null, "InvoiceId": 7003}', b'{"InvoiceId": " 7004 "}'):
        assert post(doors.crm.url + CRM_PATH, body, {"Content-Type": "text/plain"}).status == 200
    stored = {row["dedupe_key"]: json.loads(row["payload"]) for row in doors.jobs()}
    assert stored["tg:7001"] == {"update_id": 7001}
    assert stored["tg:0"] == {"update_id": 0}
    assert stored["tg:7002"] == {"update_id": 7002}
    assert stored["sync:7003"]["id_i"] == 7003 and stored["sync:7004"]["id_i"] == 7004
    doors.db.execute("DELETE FROM jobs")


# --------------------------------------------------------------------------- 2. size

def _over(doors: Doors, prefix: bytes) -> bytes:
    """A valid JSON object just over MAX_BODY_BYTES (padding is white space)."""
    return prefix + b" " * (doors.settings.max_body_bytes + 1 - len(prefix))


def _chunks(data: bytes, size: int = 64 * 1024):
    for start in range(0, len(data), size):
        yield data[start:start + size]


@pytest.mark.parametrize("door", ["telegram", "crm"])
def test_a_body_over_max_body_bytes_is_413(doors, door):
    server, path, prefix = _door(doors, door)
    headers = [("Content-Type", JSON), (SECRET_HEADER, SECRET)]
    pad = {"update_id": 601, "InvoiceId": 601, "pad": "x" * doors.settings.max_body_bytes}
    cases = {
        "JSON over the limit": lambda: post(server.url + path, _json(pad), dict(headers)),
        "white space over the limit": lambda: post(server.url + path, _over(doors, prefix), dict(headers)),
        "4 MiB": lambda: post(server.url + path, _over(doors, prefix) * 4, dict(headers)),
        # The length alone decides: the server does not wait for a body it will refuse.
        "a Content-Length of 1 TB": lambda: raw_socket(server.port, (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"{SECRET_HEADER}: {SECRET}\r\nContent-Length: {10**12}\r\nConnection: close\r\n\r\n"
        ).encode() + prefix),
    }
    for what, send in cases.items():
        assert_refused(doors, f"{door} door", send, 413, what)


@pytest.mark.parametrize("door", ["telegram", "crm"])
def test_a_chunked_body_over_max_body_bytes_is_413(doors, door):
    server, path, prefix = _door(doors, door)
    headers = {"Content-Type": JSON, SECRET_HEADER: SECRET}
    pad = {"update_id": 602, "InvoiceId": 602, "pad": "x" * doors.settings.max_body_bytes}
    cases = {
        "chunked, valid JSON then padding": lambda: post(server.url + path,
                                                         _chunks(_over(doors, prefix)), headers),
        "chunked JSON over the limit": lambda: post(server.url + path, _chunks(_json(pad)), headers),
    }
    try:
        for what, send in cases.items():
            assert_refused(doors, f"{door} door", send, 413, what)
    finally:
        doors.db.execute("DELETE FROM jobs")


def test_a_small_chunked_body_is_read_whole(doors):
    """The other side of the chunked case: chunked transfer itself is fine."""
    headers = {"Content-Type": JSON, SECRET_HEADER: SECRET}
    body = _json(update(603, pad="y" * 100_000))
    assert post(doors.telegram.url + TG_PATH, _chunks(body, 4096), headers).status == 200
    stored = doors.db.fetchone("SELECT payload FROM jobs WHERE dedupe_key = 'tg:603'")
    assert json.loads(stored["payload"]) == json.loads(body)
    doors.db.execute("DELETE FROM jobs")


@pytest.mark.parametrize("door", ["telegram", "crm"])
def test_lying_or_missing_lengths_are_400(doors, door):
    server, path, prefix = _door(doors, door)
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"{SECRET_HEADER}: {SECRET}\r\nConnection: close\r\n")
    cases = {
        # No Content-Length and not chunked: an HTTP/1.1 request has no body.
        "body without any length": head + "\r\n",
        "Content-Length longer than the body": head + "Content-Length: 500\r\n\r\n",
        "negative Content-Length": head + "Content-Length: -5\r\n\r\n",
        "Content-Length: 0 with a body": head + "Content-Length: 0\r\n\r\n",
    }
    for what, request in cases.items():
        assert_refused(doors, f"{door} door", lambda: raw_socket(server.port, request.encode() + prefix),
                       400, what)


def _door(doors: Doors, door: str):
    if door == "telegram":
        return doors.telegram, TG_PATH, b'{"update_id": 604}'
    return doors.crm, CRM_PATH, b'{"InvoiceId": 604}'


# --------------------------------------------------------------------------- 3. secrets

def _valid_update_body(n: int) -> bytes:
    return _json(update(700 + n))


HEADER_FORGERIES = [
    ("no header", None),
    ("empty", ""),
    ("one character short", SECRET[:-1]),
    ("one character more", SECRET + "n"),
    ("last character changed", SECRET[:-1] + "N"),
    ("first character changed", "T" + SECRET[1:]),
    ("upper case", SECRET.upper()),
    ("underscores for dashes", SECRET.replace("-", "_")),
    # Spaces and tabs around a header value are not part of it (RFC 9110 §5.5): only
    # white space that is part of the value can make a forgery.
    ("a near miss with leading spaces", "   " + SECRET[:-1]),
    ("a near miss with trailing spaces", SECRET[:-1] + "   "),
    ("a space inside", SECRET.replace("-", " ", 1)),
    ("a tab inside", SECRET.replace("-", "\t", 1)),
    ("a no-break space after it", SECRET + "\xa0"),
    ("a vertical tab after it", SECRET + "\x0b"),
    ("percent-encoded", SECRET.replace("-", "%2D")),
    ("quoted", f'"{SECRET}"'),
    ("twice", SECRET * 2),
    ("twice, comma-separated", f"{SECRET}, {SECRET}"),
    ("a NUL after it", SECRET + "\x00"),
    ("a prefix of it", SECRET[:4]),
    ("the webhook path", "test-webhook-path"),
    ("the LINK_KEY", "test-link-key"),
    ("the bot token", BOT_TOKEN),
    ("8,000 bytes", "x" * 8000),
    ("the secret then 8,000 bytes", SECRET + "x" * 8000),
    ("latin-1 look-alike", SECRET.replace("e", "\xe9")),
    ("Bearer", f"Bearer {SECRET}"),
]


def test_forged_secret_headers_are_403_and_store_nothing(doors):
    url_path = TG_PATH
    for n, (what, value) in enumerate(HEADER_FORGERIES):
        headers = [("Content-Type", JSON)]
        if value is not None:
            headers.append((SECRET_HEADER, value))
        body = _valid_update_body(n)
        assert_refused(doors, "telegram door",
                       lambda: raw_request(doors.telegram.port, "POST", url_path, headers, body),
                       403, f"secret header: {what}")


def test_the_secret_anywhere_but_its_header_is_403(doors):
    body = _valid_update_body(90)
    elsewhere = {
        "another header name": [("X-Telegram-Bot-Api-Secret", SECRET)],
        "Authorization": [("Authorization", f"Bearer {SECRET}")],
        "a cookie": [("Cookie", f"{SECRET_HEADER}={SECRET}")],
        "the right one after a wrong one": [(SECRET_HEADER, "wrong"), (SECRET_HEADER, SECRET)],
        "a wrong one after the right one": [(SECRET_HEADER, SECRET), (SECRET_HEADER, "wrong")],
    }
    for what, headers in elsewhere.items():
        assert_refused(doors, "telegram door",
                       lambda: raw_request(doors.telegram.port, "POST", TG_PATH,
                                           [("Content-Type", JSON), *headers], body),
                       403, what)
    assert_refused(doors, "telegram door",
                   lambda: raw_request(doors.telegram.port, "POST",
                                       f"{TG_PATH}?secret_token={SECRET}", [("Content-Type", JSON)], body),
                   403, "in the query string")


def test_the_header_name_is_case_insensitive_but_the_value_is_not(doors):
    """HTTP header names are case-insensitive: the right value under `x-telegram-…` is
    Telegram's header. (The value is compared exactly; see the forgeries above.)"""
    doors.db.execute("DELETE FROM jobs")
    answer = raw_request(doors.telegram.port, "POST", TG_PATH,
                         [("Content-Type", JSON), (SECRET_HEADER.lower(), SECRET)], _json(update(801)))
    assert answer.status == 200
    assert doors.db.scalar("SELECT COUNT(*) FROM jobs WHERE dedupe_key = 'tg:801'") == 1
    doors.db.execute("DELETE FROM jobs")


WRONG_TELEGRAM_PATHS = [
    "/telegram/", "/telegram", "/telegram/test-webhook-pat", "/telegram/test-webhook-pathh",
    "/telegram/test-webhook-patH", "/telegram/TEST-WEBHOOK-PATH", "/telegram/test_webhook_path",
    "/telegram/test-webhook-path/", "/telegram/test-webhook-path/x", "/telegram/x/test-webhook-path",
    "/telegram/test-webhook-path%00", "/telegram/%00test-webhook-path",
    "/telegram/test-webhook-path%20", "/telegram/%20test-webhook-path", "/telegram/test-webhook-path%09",
    "/telegram/test-webhook-path%0a", "/telegram/test-webhook-path;x", "/telegram/test-webhook-path%3bx",
    "/telegram/test-webhook-path%2f", "/telegram/test-webhook-path%2f..", "/telegram/..%2ftest-webhook-path",
    "/telegram/x%2f..%2ftest-webhook-path", "/telegram/..%2f..%2ftelegram%2ftest-webhook-path",
    "/telegram/%2e%2e%2ftest-webhook-path", "/telegram/.%2ftest-webhook-path",
    "/telegram/test-webhook-path%2500", "/telegram/test%252Dwebhook-path", "/telegram/%ff",
    "/telegram/test-webhook-path%ff", "/telegram/%e2%80%8btest-webhook-path",
    "/telegram/test%E2%80%90webhook-path", "/telegram/123456:sandbox-token",
    "/telegram/bot123456:sandbox-token", "/bot123456:sandbox-token", "/telegram/test-link-key",
    "/telegram/test-secret-token", "/TELEGRAM/test-webhook-path", "/Telegram/test-webhook-path",
    "/%74elegram/x", "/messages/test-webhook-path", "/", "/telegram/" + "a" * 20_000,
    "/telegram/test-webhook-path" + "a" * 20_000, "/" + "telegram/" * 2000,
]


def test_wrong_telegram_paths_are_404_and_store_nothing(doors):
    headers = [("Content-Type", JSON), (SECRET_HEADER, SECRET)]
    for n, path in enumerate(WRONG_TELEGRAM_PATHS):
        body = _valid_update_body(100 + n)
        assert_refused(doors, "telegram door",
                       lambda: raw_request(doors.telegram.port, "POST", path, headers, body),
                       404, f"path {path[:60]!r}")


WRONG_LINK_KEYS = [
    "", "test-link-ke", "test-link-keyy", "test-link-kez", "Test-link-key", "TEST-LINK-KEY",
    "test_link_key", "test-link-key/", "test-link-key/x", "x/test-link-key",
    "test-link-key%00", "%00test-link-key", "test-link-key%20", "%20test-link-key",
    "test-link-key%0d%0a", "test-link-key%09", "test-link-key;x", "test-link-key%3b",
    "test-link-key%2f", "test-link-key%2f..", "..%2ftest-link-key", "x%2f..%2ftest-link-key",
    "..%2f..%2fmessages%2ftest-link-key", "%2e%2e%2ftest-link-key", ".%2ftest-link-key",
    "test-link-key%2500", "test%252Dlink-key", "%ff", "test-link-key%ff",
    "%e2%80%8btest-link-key", "test%E2%80%90link-key", "test-webhook-path", "test-secret-token",
    "sandbox-api-key", "k" * 20_000, "test-link-key" + "k" * 20_000,
]


def test_wrong_link_keys_are_404_and_store_nothing(doors):
    for n, key in enumerate(WRONG_LINK_KEYS):
        body = _json({"InvoiceId": 900 + n})
        assert_refused(doors, "crm door",
                       lambda: raw_request(doors.crm.port, "POST", f"/messages/{key}",
                                           [("Content-Type", JSON)], body),
                       404, f"LINK_KEY {key[:60]!r}")
    for path in ("/messages", "/Messages/test-link-key", "/MESSAGES/test-link-key",
                 "/message/test-link-key", "/messages/wrong-key-123?key=test-link-key",
                 "/x/..%2fmessages%2ftest-link-key", "/telegram/test-link-key"):
        assert_refused(doors, "crm door",
                       lambda: raw_request(doors.crm.port, "POST", path, [("Content-Type", JSON)],
                                           _json({"InvoiceId": 999})),
                       404, f"path {path!r}")


def test_percent_encoding_is_decoded_not_a_bypass(doors):
    """`%74` is `t`: the same URL, so the same answer (RFC 3986 §6.2.2.2). What decodes to
    anything else, `%2f` included, is another path and is refused above."""
    doors.db.execute("DELETE FROM jobs")
    headers = [("Content-Type", JSON), (SECRET_HEADER, SECRET)]
    assert raw_request(doors.telegram.port, "POST", "/telegram/%74est-webhook-path", headers,
                       _json(update(811))).status == 200
    assert raw_request(doors.crm.port, "POST", "/messages/test%2Dlink%2Dkey",
                       [("Content-Type", JSON)], _json({"InvoiceId": 812})).status == 200
    assert {r["dedupe_key"] for r in doors.jobs()} == {"tg:811", "sync:812"}
    doors.db.execute("DELETE FROM jobs")


def test_a_doubled_slash_is_only_a_redirect_to_the_same_path(doors):
    """Werkzeug merges `//` and answers 308 with the merged URL, before any view runs:
    the answer names only what the client sent, and nothing is stored on the way."""
    headers = [("Content-Type", JSON), (SECRET_HEADER, SECRET)]
    for port, path, merged in ((doors.telegram.port, "/telegram//test-webhook-path", TG_PATH),
                               (doors.telegram.port, "/telegram//guess", "/telegram/guess"),
                               (doors.crm.port, "/messages//test-link-key", CRM_PATH)):
        before = doors.jobs()
        answer = raw_request(port, "POST", path, headers, _json({"update_id": 813, "InvoiceId": 813}))
        TRIED["redirects"] += 1
        assert answer.status == 308 and merged.encode() in answer.body
        assert doors.jobs() == before


def test_other_methods_are_405(doors):
    headers = [("Content-Type", JSON), (SECRET_HEADER, SECRET)]
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        assert_refused(doors, "telegram door",
                       lambda: raw_request(doors.telegram.port, method, TG_PATH, headers,
                                           _json(update(820))), 405, f"{method} update")
        assert_refused(doors, "crm door",
                       lambda: raw_request(doors.crm.port, method, CRM_PATH, headers,
                                           _json({"InvoiceId": 820})), 405, f"{method} signal")


def test_the_secret_is_checked_before_the_body_is_read(doors):
    """A stranger learns nothing from the body checks: without the secrets, garbage and
    huge bodies get the same 404 / 403 as a valid one."""
    big = b"[" * 10 + b"x" * (doors.settings.max_body_bytes + 10)
    for body in (b"\xff", b"", big):
        assert_refused(doors, "telegram door",
                       lambda: raw_request(doors.telegram.port, "POST", "/telegram/guess",
                                           [(SECRET_HEADER, SECRET)], body), 404, "no path, garbage")
        assert_refused(doors, "telegram door",
                       lambda: raw_request(doors.telegram.port, "POST", TG_PATH,
                                           [(SECRET_HEADER, "guess")], body), 403, "no header, garbage")
        assert_refused(doors, "crm door",
                       lambda: raw_request(doors.crm.port, "POST", "/messages/guess-key-1", [], body),
                       404, "no key, garbage")


# --------------------------------------------------------------------------- 4. bugs found here, fixed

def test_an_unpaired_surrogate_in_an_update_is_400(doors):
    for n, text in enumerate(("\\ud800", "a\\udfffb", "\\udc80")):
        body = b'{"update_id": %d, "message": {"text": "%s"}}' % (830 + n, text.encode())
        assert_refused(doors, "telegram door",
                       lambda: post(doors.telegram.url + TG_PATH, body,
                                    {SECRET_HEADER: SECRET, "Content-Type": JSON}),
                       400, f"surrogate {text}")


def test_no_nesting_depth_gives_a_500(doors):
    """Somewhere between 'parses' and 'too deep to parse' the depth must not break the door.
    The window is a few levels wide and moves with the stack depth, so every depth in a
    band around the recursion limit is tried."""
    import sys
    statuses = {}
    for levels in range(sys.getrecursionlimit() - 150, sys.getrecursionlimit() + 10):
        body = b'{"update_id": %d, "x": %s}' % (10_000 + levels, deep_array(levels))
        answer = post(doors.telegram.url + TG_PATH, body, {SECRET_HEADER: SECRET, "Content-Type": JSON})
        TRIED["telegram door"] += 1
        statuses.setdefault(answer.status, []).append(levels)
    doors.db.execute("DELETE FROM jobs")
    assert set(statuses) <= {200, 400}, {s: (v[0], v[-1]) for s, v in statuses.items()}


# --------------------------------------------------------------------------- 5. the desk

PENDING_ID, BANNED_ID, OLENA = 830, 840, 701
LINK_KEY = "test-link-key"
BOT_CALLS = ("sendMessage", "sendPhoto", "sendDocument", "sendMediaGroup", "copyMessage",
             "forwardMessage", "editMessageText", "editMessageCaption", "editMessageReplyMarkup",
             "deleteMessage", "answerCallbackQuery")


def _add_user(db, tg_id, role, username, language="uk"):
    db.execute("REPLACE INTO users (tg_id, username, first_name, language, role)"
               " VALUES (%s, %s, %s, %s, %s)", (tg_id, username, username.title(), language, role))


def _visible(message) -> str:
    from sandbox.telegram import parse_html
    return parse_html(message.get("text") or message.get("caption") or "")[0]


def _client_post(desk, crm, tg, id_i, text, **kwargs):
    crm.customer_writes(id_i, text, email=f"client{id_i}@example.com", **kwargs)
    assert crm.signal(desk.listener_url, LINK_KEY, id_i) == [200]
    post = wait_for(lambda: [m for m in tg.messages(SHARED_CHAT) if f": {id_i} " in _visible(m)])[-1]
    desk.idle()
    return post


def _world(db) -> dict:
    """Everything a pending or banned person must not be able to change. (Answers to the
    person themselves are sends too; what they may receive is checked call by call.)"""
    return {
        "users": db.fetchall("SELECT tg_id, username, first_name, language, role, reachable"
                             " FROM users ORDER BY tg_id"),
        "pins": db.fetchall("SELECT id, conversation_id, manager_id, kind, state, last_reply_at, ended_at"
                            " FROM pins ORDER BY id"),
        "manager_state": db.fetchall("SELECT tg_id, conversation_id, mode, data FROM manager_state"
                                     " ORDER BY tg_id"),
        "tg_send jobs": db.fetchall("SELECT id, payload FROM jobs WHERE kind = 'tg_send'"
                                    " AND lane NOT IN ('send:830', 'send:840', 'send:850')"
                                    " ORDER BY id"),
        "desk": [db.fetchall(f"SELECT * FROM {table}") for table in
                 ("desk_shifts", "chat_notes", "canned_replies", "chat_joins", "album_parts")],
        "other jobs": db.fetchall("SELECT id, kind, dedupe_key FROM jobs"
                                  " WHERE kind NOT IN ('tg_update', 'tg_send') ORDER BY id"),
        "chats": db.fetchall("SELECT id, kind, status FROM conversations ORDER BY id"),
        "message map": db.fetchall("SELECT tg_chat_id, tg_message_id, conversation_id, notes FROM tg_message_map"
                                   " ORDER BY tg_chat_id, tg_message_id"),
    }


def _hostile_texts(ids: dict) -> list[str]:
    """Commands, menu labels and odd text, each of which does something for an admin or a
    manager."""
    id_i, other = ids["pinned"], ids["free"]
    labels = sorted({label for table in TEXTS.values() for label in table.values()
                     if isinstance(label, str) and label[:1] in "🔥⚡📊📁📩✅👤◀"})
    commands = [
        "/start", f"/approve_{PENDING_ID}", f"/admin_{PENDING_ID}", f"/approve_{BANNED_ID}",
        f"/admin_{BANNED_ID}", f"/ban_{OLENA}", f"/ban_{ADMIN_ID}", "/all_users", "/clean",
        f"/get_chat_{id_i}", f"/get_connected_users_{id_i}", f"/connect_to_chat_{other}",
        f"/connect_to_chat_{id_i}", f"/approve_{PENDING_ID}@keepdesk_bot", "/approve_", "/ban_x",
        "/help", "/menu", "/admin", "hello", "' OR 1=1 --", "<b>x</b> & <a href='x'>y</a>",
        "🔥", "x" * 4096,
        # the desk of SPEC §8
        f"/open_chat_{id_i}", "/find 9601", "/find де моє", "/note нотатка", "/shift", "/off_shift",
        "/on_shift", "/replies", "🔎 Пошук чату", "🕘 Моя зміна",
    ]
    return commands + labels


def _hostile_taps(desk, ids: dict) -> list[str]:
    codec = desk.deps.codec
    valid = {
        "reply": [(ids["pinned_message"],), (ids["free_message"],)],
        "connect": [(ids["free_message"],)], "open": [(ids["pinned"],), (ids["free"],)],
        "list": [(n, 0) for n in range(1, 7)], "hist": [(ids["pinned"], 0)],
        "write": [(ids["pinned"],), (ids["free"],)], "read": [(ids["pinned"],)],
        "status": [(ids["pinned"],)], "unpin": [(ids["pinned"],)], "users": [(0,), (1,)],
        "menu": [()], "tpl": [(ids["pinned"], 0)],
        # the desk of SPEC §8
        "openw": [(ids["pinned"],)], "handover": [(ids["pinned"], 0)],
        "handto": [(ids["pinned"], OLENA), (ids["free"], ADMIN_ID)], "offer": [(ids["pinned"],)],
        "join": [(ids["pinned"],)], "leave": [(ids["pinned"],)], "takeover": [(ids["pinned"],)],
        "shift": [(0,), (1,)], "note": [(ids["pinned"],)], "canned": [(ids["pinned"], 0)],
        "cpick": [(1, ids["pinned"])], "csend": [(1, ids["pinned"])], "dsend": [(ids["pinned"],)],
        "cdel": [(1,)], "cadd": [()],
        # what the desk does by itself: a chat marked done, an automatic assignment passed on
        "done": [(ids["pinned"],)], "aapass": [(ids["pinned"],)],
    }
    assert set(valid) == set(ACTIONS)  # every action of the codec is tried
    data = [codec.encode(action, *args) for action, arg_lists in valid.items() for args in arg_lists]
    stranger = CallbackCodec("999:another-bot")
    data += [
        "garbage", "", "~", "reply", f"reply:{ids['free_message']}", f"unpin:{ids['pinned']}",
        f"reply:{ids['free_message']}~AAAAAAAA", stranger.encode("reply", ids["free_message"]),
        stranger.encode("unpin", ids["pinned"]), "x" * 64, "' OR 1=1 --", "ключ:1~абв",
        codec.encode("unpin", ids["pinned"]).replace(str(ids["pinned"]), str(ids["free"])),
    ]
    return data


def test_pending_and_banned_people_change_nothing_through_the_desk(desk, tg, crm, db):
    _add_user(db, ADMIN_ID, "admin", "boss")
    _add_user(db, OLENA, "manager", "olena")
    _add_user(db, BANNED_ID, "banned", "banned_one")
    pinned_post = _client_post(desk, crm, tg, 9601, "Де моє замовлення?")
    free_post = _client_post(desk, crm, tg, 9602, "Чи є в наявності?")
    [olenas_button] = [b for row in pinned_post["reply_markup"]["inline_keyboard"] for b in row]
    tg.user_presses_button(OLENA, SHARED_CHAT, pinned_post["message_id"],
                           olenas_button["callback_data"], username="olena")
    desk.idle()
    tg.user_sends_text(PENDING_ID, "/start", username="pending_one")
    desk.idle()
    assert db.scalar("SELECT COUNT(*) FROM pins WHERE conversation_id = 9601 AND state = 'ACTIVE'") == 1
    waiting = tg.messages(PENDING_ID)[-1]
    ids = {"pinned": 9601, "free": 9602,
           "pinned_message": db.scalar("SELECT MAX(id) FROM messages WHERE conversation_id = 9601"),
           "free_message": db.scalar("SELECT MAX(id) FROM messages WHERE conversation_id = 9602")}

    before = _world(db)
    shared_before = tg.messages(SHARED_CHAT)
    calls_before = len(tg.calls())
    crm_writes_before = [c for c in crm.calls() if c["method"] == "POST" and "apilogin" not in c["path"]]
    texts, taps = _hostile_texts(ids), _hostile_taps(desk, ids)
    sent = 0
    for person, username in ((PENDING_ID, "pending_one"), (BANNED_ID, "banned_one")):
        for text in texts:
            tg.user_sends_text(person, text, username=username)
        tg.user_sends_text(person, "беру цей чат", chat_id=SHARED_CHAT, username=username,
                           reply_to_message_id=free_post["message_id"])
        tg.user_sends_text(person, f"/connect_to_chat_{ids['free']}", chat_id=SHARED_CHAT,
                           username=username)
        tg.user_sends_photo(person, caption="фото клієнту", username=username)
        tg.user_sends_document(person, b"%PDF-1.4 x", caption="файл клієнту", username=username)
        tg.deliver({"edited_message": {"message_id": 1, "date": 0, "edit_date": 1, "text": "/clean",
                                       "chat": {"id": person, "type": "private"},
                                       "from": {"id": person, "is_bot": False, "first_name": "X"}}})
        sent += len(texts) + 5
        targets = [(SHARED_CHAT, free_post["message_id"]), (SHARED_CHAT, pinned_post["message_id"])]
        if person == PENDING_ID:
            targets.append((PENDING_ID, waiting["message_id"]))
        for chat_id, message_id in targets:
            for data in taps:
                try:
                    tg.user_presses_button(person, chat_id, message_id, data, username=username)
                except ValueError:
                    continue  # the sandbox refuses what Telegram refuses (over 64 bytes)
                sent += 1
    desk.idle(timeout=60)
    TRIED["desk updates"] += sent
    # Every update was taken in and worked off (ignored on purpose, not lost or crashed).
    assert {d["status"] for d in tg.deliveries()} == {200}
    statuses = db.fetchall("SELECT status, COUNT(*) AS n FROM jobs WHERE kind = 'tg_update'"
                           " GROUP BY status")
    assert [r["status"] for r in statuses] == ["done"] and statuses[0]["n"] >= sent

    after = _world(db)
    for part in before:
        assert after[part] == before[part], f"{part} changed"
    new_calls = [c for c in tg.calls()[calls_before:] if c["method"] in BOT_CALLS]
    crm_writes = [c for c in crm.calls() if c["method"] == "POST" and "apilogin" not in c["path"]]
    assert crm_writes == crm_writes_before, "the CRM was written to"

    # Banned: nothing at all, not even the end of the spinner.
    assert [c for c in new_calls if c["params"].get("chat_id") == BANNED_ID] == []
    answers = tg.callback_answers()
    assert [a for a in answers if a["user_id"] == BANNED_ID] == []
    # Pending: "waiting for approval" in their chat, "no access" on a tap; nothing else.
    waiting_text = TEXTS["uk"]["waiting_approval"]
    to_pending = [c for c in new_calls if c["method"] != "answerCallbackQuery"]
    elsewhere = [(c["method"], c["params"].get("chat_id")) for c in to_pending
                 if c["params"].get("chat_id") != PENDING_ID]
    assert to_pending and elsewhere == []
    assert {c["method"] for c in to_pending} == {"sendMessage"}
    assert {c["params"]["text"] for c in to_pending} == {waiting_text}
    pending_answers = [a for a in answers if a["user_id"] == PENDING_ID]
    assert pending_answers and {a["text"] for a in pending_answers} <= {TEXTS["uk"]["no_access"], None}
    assert not any(a["show_alert"] for a in pending_answers)
    # The posts in the shared chat (Olena's and the free one) look exactly as before.
    assert tg.messages(SHARED_CHAT) == shared_before


def test_a_stranger_who_never_pressed_start_changes_nothing_either(desk, tg, db, crm):
    _add_user(db, ADMIN_ID, "admin", "boss")
    post = _client_post(desk, crm, tg, 9603, "Привіт")
    before = _world(db)
    stranger = 850
    codec = desk.deps.codec
    message_id = db.scalar("SELECT MAX(id) FROM messages WHERE conversation_id = 9603")
    for data in (codec.encode("reply", message_id), codec.encode("connect", message_id),
                 codec.encode("users", 0), codec.encode("unpin", 9603), "garbage"):
        tg.user_presses_button(stranger, SHARED_CHAT, post["message_id"], data)
    for text in ("/approve_850", "/admin_850", "/all_users", "/clean", "🔥 Мої переписки"):
        tg.user_sends_text(stranger, text)
    desk.idle()
    TRIED["desk updates"] += 10
    assert _world(db) == before
    assert {m["visible_text"] for m in tg.messages(stranger)} == {TEXTS["uk"]["press_start"]}
    answers = {a["text"] for a in tg.callback_answers() if a["user_id"] == stranger}
    assert answers == {TEXTS["uk"]["no_access"]}


def test_a_long_image_message_ending_in_blank_lines_still_gets_its_reply_button(desk, tg, crm, db):
    _add_user(db, ADMIN_ID, "admin", "boss")
    # 3,800 characters, then blank lines that run past the first part's limit.
    text = "Фото пошкодженої коробки. " + "а" * 3774 + "\n" * 100
    crm.customer_writes(9604, text, email="client9604@example.com", image=b"\x89PNG box")
    assert crm.signal(desk.listener_url, LINK_KEY, 9604) == [200]
    wait_for(lambda: [m for m in tg.messages(SHARED_CHAT) if m.get("photo")], timeout=10)
    desk.idle(timeout=20)
    TRIED["desk updates"] += 1
    refused = [c for c in tg.calls("sendMessage") if c["status"] != 200]
    assert refused == [], [(c["status"], c["params"]["text"][:20]) for c in refused]
    buttons = [b for m in tg.messages(SHARED_CHAT)
               for row in (m.get("reply_markup") or {}).get("inline_keyboard", []) for b in row]
    assert [b["text"] for b in buttons] == ["✍ Відповісти"]
