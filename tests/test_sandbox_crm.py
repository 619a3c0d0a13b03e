"""The CRM sandbox must behave like the KeepingCRM debates API of SPEC section 5.

Everything goes over real HTTP on loopback, the way KeepDesk's CRM client will
talk to it, so a wrong status code or key name shows up here first.
"""

import datetime
import hashlib
import json
import re
import threading
import time

import pytest
import requests
from flask import Flask, jsonify, request

from sandbox._server import ServerThread
from sandbox.crm import CrmSandbox

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


@pytest.fixture(scope="module")
def shared_crm():
    # Stopping a server costs a poll interval, so the module shares one sandbox.
    with CrmSandbox(seller_id=7, api_key="secret-key") as sandbox:
        yield sandbox


@pytest.fixture
def crm(shared_crm):
    shared_crm.reset()
    return shared_crm


def sign(api_key: str, timestamp: float) -> str:
    # Written out here rather than imported, so the test pins the SPEC's formula.
    return hashlib.sha256((api_key + str(round(timestamp))).encode()).hexdigest()


def login(crm: CrmSandbox, **overrides) -> requests.Response:
    now = time.time()
    body = {"seller_id": crm.seller_id, "timestamp": now, "sign": sign(crm.api_key, now)}
    body.update(overrides)
    return requests.post(f"{crm.api_url}/apilogin", json=body, timeout=5)


def token_of(crm: CrmSandbox) -> str:
    return login(crm).json()["token"]


def get(crm, path, token, **params):
    return requests.get(f"{crm.api_url}{path}", params={"token": token, **params}, timeout=5)


def post(crm, path, token, params=None, **kwargs):
    return requests.post(f"{crm.api_url}{path}", params={"token": token, **(params or {})},
                         timeout=5, **kwargs)


# ---------------------------------------------------------------- login and tokens


def test_login_with_correct_sign_gives_token_and_valid_thru(crm):
    answer = login(crm)
    assert answer.status_code == 200
    body = answer.json()
    assert body["retval"] == 0
    assert re.fullmatch(r"[0-9a-f]{16,}", body["token"])
    assert DATE_RE.match(body["valid_thru"])
    valid_thru = datetime.datetime.strptime(body["valid_thru"], "%Y-%m-%d %H:%M:%S")
    expected = datetime.datetime.now() + datetime.timedelta(seconds=crm.token_ttl)
    assert abs((valid_thru - expected).total_seconds()) < 5


@pytest.mark.parametrize("overrides", [
    {"sign": "0" * 64},
    {"seller_id": 8},
    {"timestamp": time.time() - 3600},
])
def test_login_with_wrong_credentials_fails_with_retval(crm, overrides):
    if "timestamp" in overrides:
        # A stale request signed correctly: only the clock check may refuse it.
        overrides["sign"] = sign(crm.api_key, overrides["timestamp"])
    answer = login(crm, **overrides)
    assert answer.status_code == 200
    assert answer.json()["retval"] != 0
    assert "token" not in answer.json()


def test_fail_login_refuses_the_next_logins_only(crm):
    crm.fail_login(2)
    assert [login(crm).json()["retval"] for _ in range(3)] == [1, 1, 0]


def test_set_login_down_answers_an_html_page_for_a_while(crm):
    token = token_of(crm)
    crm.set_login_down(403, seconds=0.5)
    answer = login(crm)
    assert answer.status_code == 403
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "maintenance" in answer.text
    assert get(crm, "/debates/v2/chats", token).status_code == 200  # tokens live on
    time.sleep(0.6)
    assert login(crm).json()["retval"] == 0
    crm.set_login_down(503, body="<html>later</html>")  # until set_login_up()
    time.sleep(0.1)
    answer = login(crm)
    assert (answer.status_code, answer.text) == (503, "<html>later</html>")
    crm.set_login_up()
    assert login(crm).status_code == 200
    assert [c["status"] for c in crm.calls("/apilogin")] == [200, 403, 200, 503, 200]


def test_expired_token_answers_401(crm):
    token = token_of(crm)
    assert get(crm, "/debates/v2/chats", token).status_code == 200
    crm.expire_tokens()
    answer = get(crm, "/debates/v2/chats", token)
    assert answer.status_code == 401
    assert answer.json() == {"retval": 2, "error": "invalid token"}
    assert get(crm, "/debates/v2/chats", token_of(crm)).status_code == 200


def test_token_expires_after_ttl(crm, monkeypatch):
    monkeypatch.setattr(crm, "token_ttl", 0.2)
    token = token_of(crm)
    time.sleep(0.3)
    assert get(crm, "/debates/v2/chats", token).status_code == 401


def test_missing_token_answers_401(crm):
    answer = requests.get(f"{crm.api_url}/debates/v2", params={"id_i": 1}, timeout=5)
    assert answer.status_code == 401


# ---------------------------------------------------------------- chats


def write_chats_over_time(crm, count):
    """Chat 100 + k gets its last message k minutes ago, so 100 is the newest."""
    now = datetime.datetime.now()
    for k in range(count):
        crm.customer_writes(100 + k, f"msg {k}", at=now - datetime.timedelta(minutes=k))


@pytest.mark.parametrize("key", ["chats", "items"])
def test_chats_are_paged_newest_first(crm, monkeypatch, key):
    monkeypatch.setattr(crm, "chats_key", key)
    # Written oldest first, so insertion order cannot pass for date order.
    now = datetime.datetime.now()
    for k in reversed(range(5)):
        crm.customer_writes(100 + k, f"msg {k}", at=now - datetime.timedelta(minutes=k))
    token = token_of(crm)

    first = get(crm, "/debates/v2/chats", token, page=1, pagesize=2).json()
    third = get(crm, "/debates/v2/chats", token, page=3, pagesize=2).json()

    assert first["cnt_pages"] == 3
    assert [c["id_i"] for c in first[key]] == [100, 101]
    assert [c["id_i"] for c in third[key]] == [104]
    chat = first[key][0]
    assert set(chat) == {"id_i", "email", "product", "last_date", "cnt_msg", "cnt_new"}
    assert chat["cnt_msg"] == 1 and chat["cnt_new"] == 1
    assert DATE_RE.match(chat["last_date"])


def test_chats_in_the_same_second_order_by_id_i_desc(crm):
    at = datetime.datetime.now().replace(microsecond=0)
    for id_i in (5, 9, 7):
        crm.customer_writes(id_i, at=at)
    chats = get(crm, "/debates/v2/chats", token_of(crm)).json()["chats"]
    assert [c["id_i"] for c in chats] == [9, 7, 5]


def test_chats_filter_new_keeps_only_unread(crm):
    write_chats_over_time(crm, 3)
    token = token_of(crm)
    assert post(crm, "/debates/v2/seen", token, {"id_i": 101}).status_code == 200

    answer = get(crm, "/debates/v2/chats", token, filter_new=1).json()
    assert [c["id_i"] for c in answer["chats"]] == [100, 102]
    assert answer["cnt_pages"] == 1


def test_chats_pagesize_is_capped_at_100(crm):
    for id_i in range(1, 131):
        crm.add_chat(id_i)
    answer = get(crm, "/debates/v2/chats", token_of(crm), pagesize=500).json()
    assert len(answer["chats"]) == 100
    assert answer["cnt_pages"] == 2


# ---------------------------------------------------------------- messages


def test_messages_count_id_from_and_newer(crm):
    ids = [crm.customer_writes(1, f"m{n}")["id"] for n in range(6)]
    crm.customer_writes(2, "another chat")  # ids are global: this must not leak into chat 1
    token = token_of(crm)

    def fetch(**params):
        answer = get(crm, "/debates/v2", token, id_i=1, hidden=0, **params)
        assert answer.status_code == 200
        return [m["id"] for m in answer.json()]

    assert fetch() == ids
    assert fetch(count=2) == ids[-2:]
    assert fetch(count=2, id_from=ids[3]) == ids[2:4]
    assert fetch(id_from=ids[3], newer=1) == ids[4:]
    assert fetch(count=1, id_from=ids[1], newer=1) == ids[-1:]
    assert get(crm, "/debates/v2", token, id_i=999).json() == []


def test_message_fields_and_line_breaks(crm):
    crm.customer_writes(1, "line one\nline two", email="c@shop.test", product="Key")
    crm.shop_writes(1, "thanks")
    client, shop = get(crm, "/debates/v2", token_of(crm), id_i=1).json()

    assert client["message"] == "line one<br>line two"
    assert (client["buyer"], client["seller"]) == (1, 0)
    assert (shop["buyer"], shop["seller"]) == (0, 1)
    assert client["deleted"] == 0 and client["is_file"] == 0 and client["is_img"] == 0
    assert client["date_seen"] is None
    assert DATE_RE.match(client["date_written"])
    assert shop["id"] > client["id"]
    assert crm.chat(1)["email"] == "c@shop.test"
    assert crm.chat(1)["cnt_msg"] == 2 and crm.chat(1)["cnt_new"] == 1


def test_customer_image_and_file_are_served(crm):
    image = crm.customer_writes(1, "look", image=b"\xff\xd8jpeg", filename="p.jpg")
    document = crm.customer_writes(1, "", file=b"%PDF", filename="invoice.pdf")

    assert image["is_img"] == 1 and image["preview"] == image["url"]
    assert document["is_file"] == 1 and document["filename"] == "invoice.pdf"
    assert requests.get(image["url"], timeout=5).content == b"\xff\xd8jpeg"
    served = requests.get(document["url"], timeout=5)
    assert served.content == b"%PDF"
    assert served.headers["Content-Type"] == "application/pdf"


# ---------------------------------------------------------------- send, upload, seen


def test_send_with_an_uploaded_file(crm):
    crm.add_chat(1)
    token = token_of(crm)
    upload = post(crm, "/debates/v2/upload-preview", token, {"lang": "uk"},
                  files=[("files[]", ("photo.png", b"PNGDATA", "image/png")),
                         ("files[]", ("notes.txt", b"hello", "text/plain"))])
    assert upload.status_code == 200
    uploaded = upload.json()["files"]
    assert [(f["name"], f["type"], f["size"]) for f in uploaded] == [
        ("photo.png", "image/png", 7), ("notes.txt", "text/plain", 5)]

    sent = post(crm, "/debates/v2/", token, {"id_i": 1}, json={
        "message": "here you go",
        "files": [{"newid": f["newid"], "name": f["name"], "type": f["type"]}
                  for f in uploaded]})
    assert sent.status_code == 200
    assert sent.json()["retval"] == 0

    text, photo, notes = crm.messages(1)
    assert sent.json()["id"] == notes["id"]
    assert text["message"] == "here you go" and text["seller"] == 1
    assert photo["is_img"] == 1
    assert notes["is_file"] == 1 and notes["filename"] == "notes.txt"
    assert requests.get(notes["url"], timeout=5).content == b"hello"
    assert [u["data"] for u in crm.uploads()] == [b"PNGDATA", b"hello"]


def test_send_too_long_names_the_limit(crm, monkeypatch):
    monkeypatch.setattr(crm, "max_message_len", 10)
    crm.add_chat(1)
    token = token_of(crm)
    too_long = post(crm, "/debates/v2/", token, {"id_i": 1}, json={"message": "x" * 11})
    just_fits = post(crm, "/debates/v2/", token, {"id_i": 1}, json={"message": "x" * 10})
    assert too_long.status_code == 400
    assert too_long.json() == {"error": "message too long", "max": 10}
    assert just_fits.status_code == 200


@pytest.mark.parametrize("body", [
    {"message": ""},
    {"message": "   ", "files": []},
    {"message": "hi", "files": [{"newid": "nope", "name": "a", "type": "text/plain"}]},
])
def test_send_refuses_empty_messages_and_unknown_files(crm, body):
    crm.add_chat(1)
    answer = post(crm, "/debates/v2/", token_of(crm), {"id_i": 1}, json=body)
    assert answer.status_code == 400
    assert "error" in answer.json()
    assert crm.messages(1) == []


def test_seen_marks_client_messages_and_resets_cnt_new(crm):
    crm.customer_writes(1, "a")
    crm.customer_writes(1, "b")
    crm.shop_writes(1, "c")
    assert crm.chat(1)["cnt_new"] == 2

    answer = post(crm, "/debates/v2/seen", token_of(crm), {"id_i": 1})
    assert answer.status_code == 200 and answer.json() == {"retval": 0}
    assert crm.chat(1)["cnt_new"] == 0
    seen = [m["date_seen"] for m in crm.messages(1)]
    assert DATE_RE.match(seen[0]) and DATE_RE.match(seen[1]) and seen[2] is None


# ---------------------------------------------------------------- recording


def test_calls_are_recorded(crm):
    token = token_of(crm)
    get(crm, "/debates/v2/chats", token, page=2)
    crm.expire_tokens()
    get(crm, "/debates/v2/chats", token)

    chats_calls = crm.calls("/chats")
    assert [c["status"] for c in chats_calls] == [200, 401]
    assert chats_calls[0]["method"] == "GET"
    assert chats_calls[0]["path"] == "/api/debates/v2/chats"
    assert chats_calls[0]["params"] == {"token": token, "page": "2"}
    assert crm.calls("/apilogin")[0]["json"]["seller_id"] == crm.seller_id
    assert crm.count_calls() == 3
    crm.reset_calls()
    assert crm.count_calls() == 0


# ---------------------------------------------------------------- faults


def test_set_down_answers_503_until_set_up(crm):
    token = token_of(crm)
    crm.set_down()
    assert get(crm, "/debates/v2/chats", token).status_code == 503
    assert get(crm, "/debates/v2/chats", token).status_code == 503
    crm.set_up()
    assert get(crm, "/debates/v2/chats", token).status_code == 200


def test_set_down_for_a_number_of_calls(crm):
    token = token_of(crm)
    crm.set_down(502, times=2)
    statuses = [get(crm, "/debates/v2/chats", token).status_code for _ in range(3)]
    assert statuses == [502, 502, 200]


def test_set_refuse_refuses_connections_then_recovers_on_the_same_port(crm):
    token = token_of(crm)
    port = crm.port
    crm.set_refuse(True)
    with pytest.raises(requests.ConnectionError):
        get(crm, "/debates/v2/chats", token)
    crm.set_refuse(False)
    assert crm.port == port
    assert get(crm, "/debates/v2/chats", token).status_code == 200


def test_set_delay_slows_only_the_chosen_chat(crm):
    crm.add_chat(1)
    crm.add_chat(2)
    token = token_of(crm)
    crm.set_delay(0.3, id_i=1)

    def timed(id_i):
        started = time.monotonic()
        get(crm, "/debates/v2", token, id_i=id_i)
        return time.monotonic() - started

    assert timed(1) >= 0.3
    assert timed(2) < 0.3
    crm.set_delay(0, id_i=1)
    assert timed(1) < 0.3


# ---------------------------------------------------------------- signal and web page


def test_signal_posts_invoice_id_to_the_listener(crm):
    received = []
    lock = threading.Lock()
    listener = Flask("listener")

    @listener.post("/messages/<link_key>")
    def on_signal(link_key):
        with lock:
            received.append((link_key, request.get_json()))
        return jsonify({"ok": True})

    server = ServerThread(listener)
    server.start()
    try:
        statuses = crm.signal(server.url, "link-key", 4242, times=2)
    finally:
        server.stop()

    assert statuses == [200, 200]
    assert received == [("link-key", {"InvoiceId": 4242})] * 2


def test_web_order_page(crm):
    crm.customer_writes(77, "<b>hi</b>", product="Windows key")
    page = requests.get(f"{crm.web_url}/purchases_inv_detail",
                        params={"id_i": 77, "view": "debate"}, timeout=5)
    assert page.status_code == 200
    assert "Windows key" in page.text
    assert "&lt;b&gt;hi&lt;/b&gt;" in page.text


def test_reset_forgets_the_world_but_never_reuses_message_ids(crm):
    first = crm.customer_writes(1, "before")
    crm.set_down()
    crm.reset()
    assert crm.chat(1) is None and crm.count_calls() == 0
    assert crm.customer_writes(1, "after")["id"] > first["id"]
    assert login(crm).status_code == 200


def test_send_accepts_the_path_without_trailing_slash(crm):
    crm.add_chat(1)
    answer = post(crm, "/debates/v2", token_of(crm), {"id_i": 1}, json={"message": "hi"})
    assert answer.status_code == 200
    assert crm.messages(1)[-1]["message"] == "hi"


def test_concurrent_sends_get_unique_increasing_ids(crm):
    crm.add_chat(1)
    token = token_of(crm)

    def send(n):
        return post(crm, "/debates/v2/", token, {"id_i": 1}, json={"message": f"m{n}"})

    threads_answers = []
    threads = [threading.Thread(target=lambda n=n: threads_answers.append(send(n)))
               for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(a.status_code == 200 for a in threads_answers)
    ids = [m["id"] for m in crm.messages(1)]
    assert len(ids) == 20 and ids == sorted(set(ids))
    assert crm.chat(1)["cnt_msg"] == 20


# ---------------------------------------------------------------- snapshot and restore


def test_snapshot_and_restore_put_the_world_back_exactly_in_another_sandbox(crm):
    at = datetime.datetime(2024, 5, 17, 10, 0, 0)
    crm.customer_writes(5, "Є в наявності?\nКолір чорний", email="a@shop.test",
                        product="Ноутбук", at=at)
    crm.customer_writes(5, "фото", image=b"\xff\xd8jpeg", filename="p.jpg")
    crm.customer_writes(6, "", file=b"%PDF", filename="рахунок.pdf", product="Ключ")
    token = token_of(crm)
    post(crm, "/debates/v2/seen", token, {"id_i": 5})
    uploaded = post(crm, "/debates/v2/upload-preview", token,
                    files=[("files[]", ("notes.txt", b"hello", "text/plain"))]).json()["files"]
    post(crm, "/debates/v2/", token, {"id_i": 5}, json={"message": "ось", "files": uploaded})
    post(crm, "/debates/v2/upload-preview", token,  # uploaded, never sent
         files=[("files[]", ("draft.txt", b"draft", "text/plain"))])
    state = crm.snapshot()
    assert json.loads(json.dumps(state)) == state  # JSON as it is
    before = {id_i: (crm.chat(id_i), crm.messages(id_i)) for id_i in (5, 6)}

    with CrmSandbox(seller_id=7, api_key="secret-key") as other:
        other.customer_writes(99, "a world that is replaced")
        other.restore(state)
        assert other.chat(99) is None
        for id_i, (chat, messages) in before.items():
            assert other.chat(id_i) == chat  # dates, counters, unread: as they were
            restored = other.messages(id_i)
            # Everything but the address of this sandbox is the same; files are served.
            assert [{**m, "url": None, "preview": None} for m in restored] == \
                   [{**m, "url": None, "preview": None} for m in messages]
            for old, new in zip(messages, restored):
                if old["url"]:
                    assert new["url"] == old["url"].replace(crm.url, other.url)
                    assert requests.get(new["url"], timeout=5).content == \
                        requests.get(old["url"], timeout=5).content
        assert other.snapshot() == state
        # The id counter goes on where it was, and restored uploads can be attached.
        assert other.customer_writes(5, "далі")["id"] == state["last_message_id"] + 1
        other_token = token_of(other)
        draft = [f for f in other.uploads() if f["name"] == "draft.txt"]
        assert post(other, "/debates/v2/", other_token, {"id_i": 6}, json={
            "message": "", "files": [{"newid": draft[0]["newid"], "name": "draft.txt",
                                      "type": "text/plain"}]}).status_code == 200


def test_restore_refuses_a_snapshot_it_cannot_read(crm):
    crm.customer_writes(1, "kept")
    with pytest.raises(ValueError):
        crm.restore({"version": 99, "chats": [], "files": [], "last_message_id": 0})
    state = crm.snapshot()
    state["last_message_id"] = 0
    with pytest.raises(ValueError):
        crm.restore(state)
    assert [m["message"] for m in crm.messages(1)] == ["kept"]
