"""The two HTTP doors of SPEC §6: every refusal as specified, every valid request stored once."""
import json

import pytest

import crm_listener
import webhook_server

SECRET = {"X-Telegram-Bot-Api-Secret-Token": "test-secret-token"}
UPDATE = {"update_id": 501, "message": {"message_id": 3, "date": 0, "text": "/start",
                                        "chat": {"id": 77, "type": "private"},
                                        "from": {"id": 77, "is_bot": False, "first_name": "A"}}}


@pytest.fixture
def tg_client(settings, db):
    return webhook_server.create_app(settings.replace(max_body_bytes=4096), db=db).test_client()


@pytest.fixture
def crm_client(settings, db):
    return crm_listener.create_app(settings.replace(max_body_bytes=4096), db=db).test_client()


def jobs_count(db, queue=None):
    if queue:
        return db.scalar("SELECT COUNT(*) FROM jobs WHERE queue = %s", (queue,))
    return db.scalar("SELECT COUNT(*) FROM jobs")


# --- Telegram door --------------------------------------------------------------------

def test_healthz_on_both_doors(tg_client, crm_client):
    answer = tg_client.get("/healthz")
    assert answer.status_code == 200 and answer.json == {"ok": True, "database": "up"}
    # The integrations door adds each channel's health: it informs, it never fails the check
    # (the CRM of these settings is unreachable).
    answer = crm_client.get("/healthz")
    assert answer.status_code == 200 and answer.json["ok"] is True and answer.json["database"] == "up"
    assert answer.json["channels"]["keepingcrm"]["ok"] is False


def test_update_without_the_secret_header_is_403_and_not_stored(tg_client, db):
    path = "/telegram/test-webhook-path"
    assert tg_client.post(path, json=UPDATE).status_code == 403
    wrong = {"X-Telegram-Bot-Api-Secret-Token": "test-secret-tokeN"}
    assert tg_client.post(path, json=UPDATE, headers=wrong).status_code == 403
    assert jobs_count(db) == 0


def test_wrong_secret_path_is_404(tg_client, db):
    assert tg_client.post("/telegram/guess", json=UPDATE, headers=SECRET).status_code == 404
    assert tg_client.post("/telegram/123456:sandbox-token", json=UPDATE,
                          headers=SECRET).status_code == 404
    assert jobs_count(db) == 0


@pytest.mark.parametrize("body,content_type", [
    (b"{not json", "application/json"),
    (b"\xff\xfe\x00garbage", "application/json"),
    (b"[1, 2, 3]", "application/json"),
    (b'{"update_id": "501"}', "application/json"),
    (b'{"update_id": -1}', "application/json"),
    (b'{"message": {}}', "application/json"),
    (b"", "application/json"),
    (b"update_id=1", "application/x-www-form-urlencoded"),
    (b"[" * 100000 + b"]" * 100000, "application/json"),
])
def test_malformed_update_is_400_with_a_json_error(settings, db, body, content_type):
    client = webhook_server.create_app(settings, db=db).test_client()
    answer = client.post("/telegram/test-webhook-path", data=body, headers=SECRET,
                         content_type=content_type)
    assert answer.status_code == 400
    assert answer.json["ok"] is False and answer.json["error"]
    assert jobs_count(db) == 0


def test_oversized_update_is_413(tg_client, db):
    big = dict(UPDATE, message=dict(UPDATE["message"], text="x" * 5000))
    answer = tg_client.post("/telegram/test-webhook-path", json=big, headers=SECRET)
    assert answer.status_code == 413
    assert jobs_count(db) == 0


def test_valid_update_delivered_three_times_is_stored_once(tg_client, db):
    for _ in range(3):
        answer = tg_client.post("/telegram/test-webhook-path", json=UPDATE, headers=SECRET)
        assert answer.status_code == 200 and answer.json == {"ok": True}
    row = db.fetchone("SELECT * FROM jobs")
    assert jobs_count(db) == 1 and json.loads(row["payload"]) == UPDATE
    assert row["status"] == "pending" and row["lane"] == "tg:77"


def test_no_webhook_secret_configured_refuses_everything(settings, db):
    client = webhook_server.create_app(
        settings.replace(webhook_secret_token=None, webhook_secret_path=None), db=db).test_client()
    assert client.post("/telegram/test-webhook-path", json=UPDATE, headers=SECRET).status_code == 404
    assert jobs_count(db) == 0


# --- CRM door -------------------------------------------------------------------------

def test_signal_with_wrong_key_is_404(crm_client, db):
    assert crm_client.post("/messages/wrong-key-123", json={"InvoiceId": 5}).status_code == 404
    assert crm_client.post("/messages/", json={"InvoiceId": 5}).status_code == 404
    assert jobs_count(db) == 0


@pytest.mark.parametrize("body", [
    {}, {"InvoiceId": None}, {"InvoiceId": "abc"}, {"InvoiceId": 1.5}, {"InvoiceId": True},
    {"InvoiceId": -4}, {"InvoiceId": 0}, {"InvoiceId": [5]}, {"invoiceid": 5}, [5],
    {"InvoiceId": 2**64},
])
def test_signal_without_an_integer_invoice_id_is_400_with_a_json_error(crm_client, db, body):
    answer = crm_client.post("/messages/test-link-key", json=body)
    assert answer.status_code == 400
    assert answer.is_json and answer.json["ok"] is False and "InvoiceId" in answer.json["error"]
    assert jobs_count(db) == 0


def test_signal_body_that_is_not_json_is_400(crm_client, db):
    answer = crm_client.post("/messages/test-link-key", data=b"InvoiceId=5",
                             content_type="text/plain")
    assert answer.status_code == 400 and answer.is_json
    assert jobs_count(db) == 0


def test_oversized_signal_is_413(crm_client, db):
    answer = crm_client.post("/messages/test-link-key",
                             json={"InvoiceId": 5, "pad": "x" * 10000})
    assert answer.status_code == 413
    assert jobs_count(db) == 0


def test_valid_signal_is_200_and_a_burst_is_one_sync(crm_client, db):
    for _ in range(5):
        answer = crm_client.post("/messages/test-link-key", json={"InvoiceId": 12345})
        assert answer.status_code == 200 and answer.json == {"ok": True}
    assert crm_client.post("/messages/test-link-key", json={"InvoiceId": "777"}).status_code == 200
    rows = db.fetchall("SELECT dedupe_key, status FROM jobs ORDER BY id")
    assert rows == [{"dedupe_key": "sync:12345", "status": "pending"},
                    {"dedupe_key": "sync:777", "status": "pending"}]


def test_allowed_ips_restrict_the_listener(settings, db):
    client = crm_listener.create_app(settings.replace(crm_allowed_ips=("10.1.0.0/16",)),
                                     db=db).test_client()
    assert client.post("/messages/test-link-key", json={"InvoiceId": 5}).status_code == 403
    assert client.post("/messages/test-link-key", json={"InvoiceId": 5},
                       environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200


# --- database away ----------------------------------------------------------------------

def test_doors_answer_503_while_the_database_is_away(settings, tmp_path):
    away = settings.replace(mysql_socket=str(tmp_path / "no-such.sock"))
    tg = webhook_server.create_app(away).test_client()
    crm = crm_listener.create_app(away).test_client()
    assert tg.post("/telegram/test-webhook-path", json=UPDATE, headers=SECRET).status_code == 503
    assert crm.post("/messages/test-link-key", json={"InvoiceId": 5}).status_code == 503
    assert tg.get("/healthz").status_code == 503


@pytest.mark.parametrize("code, words", [
    (1047, "WSREP has not yet prepared node for application use"),
    (1180, "Got error 6 \"No such device or address\" during COMMIT"),
    (1213, "Deadlock found when trying to get lock; try restarting transaction"),
])
def test_doors_answer_503_while_a_cluster_node_is_out_of_the_primary_component(settings, db, code, words):
    """What a Galera node says while the balancer moves off it (or another node's commit
    won the rows): the sender is told to come back (503), not that KeepDesk broke (500)."""
    import contextlib
    import pymysql

    @contextlib.contextmanager
    def refusing():
        raise pymysql.err.OperationalError(code, words)
        yield  # pragma: no cover

    tg = webhook_server.create_app(settings, db=db).test_client()
    crm = crm_listener.create_app(settings, db=db).test_client()
    db.connection = db.single = refusing          # the doors run; their node steps out
    assert tg.post("/telegram/test-webhook-path", json=UPDATE, headers=SECRET).status_code == 503
    assert crm.post("/messages/test-link-key", json={"InvoiceId": 5}).status_code == 503


def test_importing_the_doors_builds_nothing():
    import importlib
    for module in (webhook_server, crm_listener):
        importlib.reload(module)
        assert "app" not in vars(module)
