"""crm.client: unit tests against mocked HTTP (responses), one test against the emulator."""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from crm import client as client_module
from crm.client import (CrmAuthError, CrmBadAnswer, CrmChat, CrmClient, CrmError,
                        CrmRejected, CrmUnavailable, UploadedFile)

BASE = "http://crm.test/api"
LOGIN = BASE + "/apilogin"
CHATS = BASE + "/debates/v2/chats"
MESSAGES = BASE + "/debates/v2"
SEND = BASE + "/debates/v2/"
UPLOAD = BASE + "/debates/v2/upload-preview"
SEEN = BASE + "/debates/v2/seen"

API_KEY = "api-key-very-secret-42"
TOKEN = "token-0123456789abcdef"
T0 = datetime(2030, 1, 1, 12, 0, 0).timestamp()


class FakeClock:
    def __init__(self, now: float = T0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(clock, sleeps):
    return CrmClient(BASE, "7", API_KEY, clock=clock, sleep=sleeps.append)


def add_login(mock, token=TOKEN, valid_thru="2030-01-01 13:00:00", **extra):
    body = {"retval": 0, "token": token, **extra}
    if valid_thru is not None:
        body["valid_thru"] = valid_thru
    mock.post(LOGIN, json=body)


def add_chats(mock, chats=(), pages=1, key="chats"):
    mock.get(CHATS, json={key: list(chats), "cnt_pages": pages})


def requests_to(mock, url):
    return [c.request for c in mock.calls if c.request.url.split("?")[0] == url]


def param(request, name):
    values = parse_qs(urlsplit(request.url).query).get(name)
    return values[0] if values else None


def message(id_, **fields):
    return {"id": id_, "message": "hi", "seller": 0, "buyer": 1, "deleted": 0,
            "date_written": "2030-01-01 11:00:00", "date_seen": None, "is_file": 0,
            "filename": None, "url": None, "is_img": 0, "preview": None, **fields}


def refused_connection() -> requests.ConnectionError:
    """What requests raises when the TCP connection could not even be opened."""
    reason = NewConnectionError(None, "Failed to establish a new connection: refused")
    return requests.ConnectionError(MaxRetryError(None, SEND, reason))


# ---------------------------------------------------------------------- login and token

def test_login_sign_is_sha256_of_api_key_and_rounded_timestamp(mock, sleeps):
    add_login(mock)
    client = CrmClient(BASE, "7", API_KEY, clock=lambda: 1_700_000_000.6, sleep=sleeps.append)

    assert client.login() == TOKEN

    body = json.loads(requests_to(mock, LOGIN)[0].body)
    assert body == {"seller_id": 7, "timestamp": 1_700_000_001,
                    "sign": hashlib.sha256(f"{API_KEY}1700000001".encode()).hexdigest()}


def test_token_is_cached_across_calls(mock, client):
    add_login(mock)
    add_chats(mock)
    mock.get(MESSAGES, json=[])
    mock.post(SEEN, json={"retval": 0})

    client.chats()
    client.messages(5)
    client.seen(5)

    assert len(requests_to(mock, LOGIN)) == 1
    api_calls = [c.request for c in mock.calls if c.request.url.split("?")[0] != LOGIN]
    assert [param(r, "token") for r in api_calls] == [TOKEN] * 3
    assert client.calls == 4


def test_token_is_refreshed_shortly_before_valid_thru(mock, client, clock):
    add_login(mock, token="first-token-1")
    add_login(mock, token="second-token-2", valid_thru="2030-01-01 14:00:00")
    add_chats(mock)

    client.chats()
    clock.now = T0 + 3600 - 120 - 1  # just outside the refresh margin: keep the token
    client.chats()
    clock.now = T0 + 3600 - 120 + 1  # inside the margin: log in before the call
    client.chats()

    assert len(requests_to(mock, LOGIN)) == 2
    assert [param(r, "token") for r in requests_to(mock, CHATS)] == [
        "first-token-1", "first-token-1", "second-token-2"]


def test_without_valid_thru_the_token_lives_token_ttl(mock, clock, sleeps):
    add_login(mock, valid_thru=None)
    add_chats(mock)
    client = CrmClient(BASE, 7, API_KEY, clock=clock, sleep=sleeps.append, token_ttl=600,
                       refresh_margin=60)

    client.chats()
    clock.now = T0 + 539
    client.chats()
    assert len(requests_to(mock, LOGIN)) == 1
    clock.now = T0 + 541
    client.chats()
    assert len(requests_to(mock, LOGIN)) == 2


def test_valid_thru_already_past_here_does_not_cause_a_login_per_call(mock, client):
    # The CRM's time zone can lag ours; its valid_thru then looks expired on arrival.
    add_login(mock, valid_thru="2030-01-01 11:30:00")
    add_chats(mock)

    for _ in range(3):
        client.chats()

    assert len(requests_to(mock, LOGIN)) == 1


def test_relogin_once_on_401_then_success(mock, client):
    add_login(mock, token="old-token-1")
    add_login(mock, token="new-token-2")
    mock.get(MESSAGES, status=401, json={"retval": 2, "error": "invalid token"})
    mock.get(MESSAGES, json=[message(1)])

    assert [m.id for m in client.messages(5)] == [1]
    assert [param(r, "token") for r in requests_to(mock, MESSAGES)] == [
        "old-token-1", "new-token-2"]


def test_retval_error_about_the_token_in_a_200_counts_as_auth_failure(mock, client):
    add_login(mock)
    mock.get(CHATS, json={"retval": 3, "error": "Token expired"})
    add_chats(mock, [{"id_i": 1}])

    chats, _ = client.chats()

    assert [c.id_i for c in chats] == [1]
    assert len(requests_to(mock, LOGIN)) == 2


def test_still_401_after_relogin_is_auth_error(mock, client):
    add_login(mock)
    mock.get(MESSAGES, status=401, json={"error": "invalid token"})

    with pytest.raises(CrmAuthError) as caught:
        client.messages(5)

    assert caught.value.transient is False
    assert "messages" in str(caught.value) and "id_i=5" in str(caught.value)
    assert len(requests_to(mock, LOGIN)) == 2
    assert len(requests_to(mock, MESSAGES)) == 2


def test_login_with_retval_not_zero_is_auth_error(mock, client):
    mock.post(LOGIN, json={"retval": 1, "error": "wrong sign"})

    with pytest.raises(CrmAuthError) as caught:
        client.chats()

    assert caught.value.transient is False
    assert "wrong sign" in str(caught.value)


def test_concurrent_calls_share_one_login(mock, client):
    add_login(mock)
    add_chats(mock)
    errors = []

    def work():
        try:
            client.chats()
        except CrmError as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(requests_to(mock, LOGIN)) == 1
    assert client.calls == 9


# ---------------------------------------------------------------------- retries

def test_503_twice_then_200_succeeds_after_two_backoff_sleeps(mock, client, sleeps):
    add_login(mock)
    mock.get(CHATS, status=503)
    mock.get(CHATS, status=503)
    add_chats(mock, [{"id_i": 1}])

    chats, _ = client.chats()

    assert [c.id_i for c in chats] == [1]
    assert sleeps == [0.5, 1.0]


def test_503_forever_is_transient_unavailable_after_the_retries(mock, client, sleeps):
    add_login(mock)
    mock.get(CHATS, status=503)

    with pytest.raises(CrmUnavailable) as caught:
        client.chats()

    assert caught.value.transient is True
    assert "503" in str(caught.value) and "chats" in str(caught.value)
    assert sleeps == [0.5, 1.0, 2.0]
    assert len(requests_to(mock, CHATS)) == 4


def test_connection_error_is_retried(mock, client, sleeps):
    add_login(mock)
    mock.get(MESSAGES, body=requests.ConnectionError("connection reset"))
    mock.get(MESSAGES, json=[message(1)])

    assert len(client.messages(5)) == 1
    assert sleeps == [0.5]


def test_429_honours_retry_after(mock, client, sleeps):
    add_login(mock)
    mock.get(CHATS, status=429, headers={"Retry-After": "3"})
    add_chats(mock)

    client.chats()

    assert sleeps == [3.0]


@pytest.mark.parametrize("failure", [
    {"status": 500},
    {"status": 502},
    {"body": requests.ReadTimeout("read timed out")},
    # A connection dropped after the request went out: the CRM may have the message.
    {"body": requests.ConnectionError(ProtocolError("Connection aborted."))},
], ids=["500", "502", "read-timeout", "connection-aborted"])
def test_send_is_not_repeated_when_the_crm_may_have_processed_it(mock, client, sleeps, failure):
    add_login(mock)
    mock.post(SEND, **failure)
    mock.post(SEND, json={"retval": 0})

    with pytest.raises(CrmUnavailable) as caught:
        client.send(5, "Hello")

    assert caught.value.transient is True
    assert len(requests_to(mock, SEND)) == 1
    assert sleeps == []


def test_send_is_repeated_when_the_connection_was_never_opened(mock, client, sleeps):
    add_login(mock)
    mock.post(SEND, body=refused_connection())
    mock.post(SEND, json={"retval": 0, "id": 9})

    client.send(5, "Hello<br>there",
                [UploadedFile(newid="abc", name="a.png", type="image/png")])

    sent = requests_to(mock, SEND)
    assert len(sent) == 2 and sleeps == [0.5]
    assert param(sent[1], "id_i") == "5"
    assert json.loads(sent[1].body) == {
        "message": "Hello<br>there",
        "files": [{"newid": "abc", "name": "a.png", "type": "image/png"}]}


def test_send_too_long_is_rejected_with_the_limit(mock, client):
    add_login(mock)
    mock.post(SEND, status=400, json={"error": "message too long", "max": 4000})

    with pytest.raises(CrmRejected) as caught:
        client.send(5, "x" * 5000)

    error = caught.value
    assert (error.status, error.max_length, error.transient) == (400, 4000, False)
    assert "message too long" in str(error) and "send id_i=5" in str(error)
    assert len(requests_to(mock, SEND)) == 1


# ---------------------------------------------------------------------- answers

def test_chats_under_items_key_with_string_numbers(mock, client):
    add_login(mock)
    mock.get(CHATS, json={"items": [
        {"id_i": "12", "email": "a@b.c", "product": "Phone", "last_date": "2030-01-01 10:00:00",
         "cnt_msg": "4", "cnt_new": "1"},
        {"id_i": 11, "email": "", "product": None, "last_date": "0000-00-00 00:00:00",
         "cnt_msg": 0, "cnt_new": 0},
    ], "cnt_pages": "3"})

    chats, pages = client.chats(page=2, pagesize=2, filter_new=True)

    assert pages == 3
    assert chats == [
        CrmChat(12, "a@b.c", "Phone", datetime(2030, 1, 1, 10, 0, 0), 4, 1),
        CrmChat(11, None, None, None, 0, 0),
    ]
    sent = requests_to(mock, CHATS)[0]
    assert (param(sent, "page"), param(sent, "pagesize"), param(sent, "filter_new")) == (
        "2", "2", "1")


def test_malformed_chat_entries_are_skipped_with_a_warning(mock, client, caplog):
    add_login(mock)
    add_chats(mock, [{"email": "no id"}, "junk", {"id_i": 3}])

    with caplog.at_level(logging.WARNING, logger="crm.client"):
        chats, _ = client.chats()

    assert [c.id_i for c in chats] == [3]
    assert caplog.text.count("malformed chat") == 2


@pytest.mark.parametrize("wrap", [None, "messages", "items", "data"])
def test_messages_are_parsed_leniently_and_sorted(mock, client, wrap):
    entries = [
        message(31, message="line one<br>line two", seller="1", buyer="0", deleted=True,
                date_seen="2030-01-01 11:05:00", is_img="1", url="http://f/x.png",
                preview="http://f/x.png", filename="x.png"),
        message(30, date_seen="0000-00-00 00:00:00", date_written=""),
        {"message": "no id"},
    ]
    add_login(mock)
    mock.get(MESSAGES, json=entries if wrap is None else {wrap: entries})

    first, second = client.messages(5, count=20, id_from=40, newer=True)

    assert first.id == 30 and first.date_written is None and first.date_seen is None
    assert first.from_client and not first.from_shop and first.id_i == 5
    assert second.text == "line one<br>line two"
    assert (second.from_client, second.from_shop, second.deleted) == (False, True, True)
    assert (second.is_img, second.is_file, second.filename) == (True, False, "x.png")
    assert second.date_seen == datetime(2030, 1, 1, 11, 5, 0)
    sent = requests_to(mock, MESSAGES)[0]
    assert {k: param(sent, k) for k in ("id_i", "count", "hidden", "id_from", "newer")} == {
        "id_i": "5", "count": "20", "hidden": "0", "id_from": "40", "newer": "1"}


# ---------------------------------------------------------------------- the border

def test_chat_metadata_is_bounded_to_what_its_columns_hold(mock, client, caplog):
    add_login(mock)
    add_chats(mock, [
        {"id_i": 1, "email": "x" * 400 + "@example.com", "product": "Ключ " * 500,
         "cnt_msg": 10**12, "cnt_new": -3, "last_date": "0999-01-01 00:00:00"},
        {"id_i": 2**63, "email": "too big an id"},
        {"id_i": -2**63 - 1}, {"id_i": 1e30},
        {"id_i": 2, "email": "a@b.c\r\n<script>", "product": "\ud83d Phone\tcase"},
    ])

    with caplog.at_level(logging.WARNING, logger="crm.client"):
        chats, _ = client.chats()

    assert [c.id_i for c in chats] == [1, 2] and caplog.text.count("malformed chat") == 3
    long, odd = chats
    assert len(long.email) == client_module.EMAIL_MAX and long.email.endswith("x…")
    assert len(long.product) == client_module.PRODUCT_MAX and long.product.endswith("…")
    assert (long.cnt_msg, long.cnt_new, long.last_date) == (2**31 - 1, 0, None)
    assert (odd.email, odd.product) == ("a@b.c <script>", "\ufffd Phone case")


def test_message_fields_are_bounded_urls_kept_whole_or_dropped(mock, client):
    cyrillic_url = "https://crm.test/files/1/" + "%D0%A0%D0%B0%D1%85" * 400 + ".pdf"   # 7 KB
    entries = [
        message(1, message="слово " * 20_000, is_file=1, filename="Д" * 700 + ".pdf",
                url=cyrillic_url),
        message(2, is_img=1, url="https://crm.test/" + "a" * 70_000, preview="https://crm.test/p.jpg",
                filename="photo.jpg"),
        message(2**63), message("9223372036854775808"), message(-2**63 - 1),
        message(3, message="\ud83d lone", date_written="2030-02-30 10:00:00",
                date_seen="9999-12-31T23:59:59-05:00", id_i=2**64),
    ]
    add_login(mock)
    mock.get(MESSAGES, json=entries)

    file_message, image, odd = client.messages(5)

    assert len(file_message.text) == client_module.TEXT_MAX
    assert file_message.text.endswith("слово… (truncated)")
    assert file_message.url == cyrillic_url                       # several KB, kept whole
    assert len(file_message.filename) == client_module.FILENAME_MAX
    assert file_message.filename.endswith("Д….pdf")
    assert image.url is None and image.preview == "https://crm.test/p.jpg"   # never cut
    assert odd.text == "\ufffd lone" and odd.date_written is None and odd.date_seen is None
    assert odd.id_i == 5                                          # its own id_i was no id


@pytest.mark.parametrize("body", ["<html>502 Bad Gateway</html>", '{"chats": '])
def test_an_answer_that_is_not_json_is_a_bad_answer(mock, client, body):
    add_login(mock)
    mock.get(CHATS, body=body, content_type="text/html")

    with pytest.raises(CrmBadAnswer) as caught:
        client.chats()

    assert caught.value.transient is True


def test_messages_answer_of_the_wrong_shape_is_a_bad_answer(mock, client):
    add_login(mock)
    mock.get(MESSAGES, json={"something": "else"})

    with pytest.raises(CrmBadAnswer, match="messages id_i=5"):
        client.messages(5)


@pytest.mark.parametrize("wrapped", [True, False])
def test_upload_sends_files_as_files_brackets_and_reads_newids(mock, client, wrapped):
    answer = [{"newid": 123, "name": "a.png", "type": "image/png"}, {"newid": "xyz"}]
    add_login(mock)
    mock.post(UPLOAD, json={"retval": 0, "files": answer} if wrapped else answer)

    uploaded = client.upload([("a.png", b"\x89PNG...", "image/png"),
                              ("doc.pdf", b"%PDF-1.4", "application/pdf")], lang="en")

    assert uploaded == [UploadedFile("123", "a.png", "image/png"),
                        UploadedFile("xyz", "doc.pdf", "application/pdf")]
    sent = requests_to(mock, UPLOAD)[0]
    assert param(sent, "lang") == "en"
    assert sent.body.count(b'name="files[]"') == 2
    assert b'filename="doc.pdf"' in sent.body and b"%PDF-1.4" in sent.body


def test_find_chat_stops_at_the_page_where_it_is_found(mock, client):
    add_login(mock)
    add_chats(mock, [{"id_i": 1}, {"id_i": 2}], pages=5)
    add_chats(mock, [{"id_i": 3}, {"id_i": 4, "product": "Lamp"}], pages=5)

    found = client.find_chat(4, max_pages=3, pagesize=2)

    assert found is not None and found.product == "Lamp"
    assert [param(r, "page") for r in requests_to(mock, CHATS)] == ["1", "2"]


def test_find_chat_gives_up_after_max_pages(mock, client):
    add_login(mock)
    add_chats(mock, [{"id_i": 1}], pages=10)

    assert client.find_chat(99, max_pages=3) is None
    assert len(requests_to(mock, CHATS)) == 3


# ---------------------------------------------------------------------- secrets

@pytest.mark.parametrize("scenario", ["auth", "refused", "network", "echo", "login"])
def test_errors_and_logs_never_contain_the_token_or_api_key(mock, client, caplog, scenario):
    add_login(mock)
    if scenario == "auth":
        mock.get(MESSAGES, status=401)
    elif scenario == "refused":
        mock.get(MESSAGES, status=400, json={"error": f"bad token={TOKEN} key {API_KEY}"})
    elif scenario == "network":
        mock.get(MESSAGES, body=requests.ConnectionError(
            f"Max retries exceeded with url: /api/debates/v2?token={TOKEN}&id_i=5"))
    elif scenario == "echo":
        mock.get(MESSAGES, status=503, body=f"upstream failed for token {TOKEN}")
    else:
        mock.replace(responses.POST, LOGIN, json={"retval": 1, "error": f"bad key {API_KEY}"})

    with caplog.at_level(logging.DEBUG, logger="crm.client"), pytest.raises(CrmError) as caught:
        client.messages(5)

    sign = hashlib.sha256(f"{API_KEY}{round(T0)}".encode()).hexdigest()
    text = f"{caught.value!s} {caught.value!r} {caplog.text}"
    for secret in (TOKEN, API_KEY, sign):
        assert secret not in text
    assert "messages" in str(caught.value) and "id_i=5" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


# ---------------------------------------------------------------------- the emulator

def test_against_the_crm_emulator():
    from sandbox.crm import CrmSandbox

    crm = CrmSandbox(port=0, seller_id=3, api_key="emulator-key").start()
    try:
        client = CrmClient(crm.api_url, str(crm.seller_id), crm.api_key, retries=1,
                           backoff=0.01)
        crm.customer_writes(1001, "Is it in stock?\nSize M", product="Jacket")
        crm.customer_writes(1002, "Another chat")

        written = client.messages(1001)
        assert [(m.text, m.from_client) for m in written] == [
            ("Is it in stock?<br>Size M", True)]

        chat = client.find_chat(1001)
        assert chat is not None and (chat.product, chat.cnt_new) == ("Jacket", 1)

        uploaded = client.upload([("photo.jpg", b"\xff\xd8jpeg-bytes", "image/jpeg")])
        client.send(1001, "Yes, here it is", uploaded)
        last = crm.messages(1001)[-1]
        assert (last["seller"], last["is_img"], last["filename"]) == (1, 1, "photo.jpg")
        assert crm.uploads()[0]["data"] == b"\xff\xd8jpeg-bytes"

        client.seen(1001)
        assert crm.chat(1001)["cnt_new"] == 0

        crm.expire_tokens()
        assert len(client.messages(1001)) == 3
        assert crm.count_calls("/apilogin") == 2
        assert client.calls == crm.count_calls()
    finally:
        crm.stop()
