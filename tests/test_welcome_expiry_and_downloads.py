"""Where a person or an operator meets an edge, each as they would meet it:
a new person whose welcome Telegram refuses, a bootstrap admin demoted by a colleague, a
pin expiring while its manager answers, the listener's allow-list and /metrics, and a
Telegram file download that stalls.
"""
from __future__ import annotations

import contextlib
import json
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import crm_listener
import webhook_server
from bot.factory import create_bot
from bot.files import TelegramFiles
from bot.sender import TelegramApi
from conftest import ADMIN_ID, BOT_TOKEN
from harness import Desk, wait_for, crm_chat
from models.jobs import JobQueue, Permanent
from models.locks import LockManager
from models.outbound import Attachment
from models.singleton import ProcessSingleton
from models.users import UserRepository
from scripts.failures import is_transient
from services.claims import ChatClaims, Outcome as ClaimOutcome
from models.state import SEND_MODE
from channels import Channels
from channels.keepingcrm import KeepingCrm
from services.writing import ManagerMessage, Outcome, WriteToCustomer
from utils.clock import utc_now

LINK_KEY = "test-link-key"
NEWCOMER = 720
DEPUTY = 9100          # a second admin, made by an admin (not in ADMIN_IDS)
OLENA, PETRO = 730, 731
WAITING = "Дякуємо! Ваш запит на доступ надіслано адміністраторам. Очікуйте підтвердження."
ERRORS_NONE = "✅ Помилок немає."


def says(tg, chat_id):
    return [m["visible_text"] for m in tg.messages(chat_id) if not m["deleted"]]


def say(desk, tg, user_id, text, **profile):
    tg.user_sends_text(user_id, text, **profile)
    desk.idle()


def add_user(db, tg_id, role, username=None, first_name="User"):
    db.execute("REPLACE INTO users (tg_id, username, first_name, language, role)"
               " VALUES (%s, %s, %s, 'uk', %s)", (tg_id, username, first_name, role))


def role_of(db, tg_id):
    return db.scalar("SELECT role FROM users WHERE tg_id = %s", (tg_id,))


def notices_about(tg, admin_id, tg_id):
    return [t for t in says(tg, admin_id) if f"(id {tg_id})" in t and t.startswith("🆕")]


@contextlib.contextmanager
def restarted(settings, db, tg, crm):
    """A new KeepDesk process: fresh process singletons, start-up chores, new workers."""
    ProcessSingleton.reset_all()
    running = Desk(settings, db, tg, crm).start()
    try:
        yield running
    finally:
        running.stop()


# --------------------------------------------------------------------------- 9. welcome vs admins

@pytest.mark.parametrize("status,times", [(400, 1), (500, 2)], ids=["refused", "telegram-down"])
def test_a_welcome_telegram_refuses_still_tells_the_admins_once(desk, tg, db, status, times):
    add_user(db, ADMIN_ID, "admin", "boss")
    tg.fail_next("sendMessage", status, chat_id=NEWCOMER, times=times)
    say(desk, tg, NEWCOMER, "/start", username="newbie")
    [notice] = wait_for(lambda: notices_about(tg, ADMIN_ID, NEWCOMER))
    assert notice.startswith("🆕 Новий користувач @newbie (id 720) просить доступ.")
    assert "/approve_720" in notice.split()
    if status >= 500:   # Telegram was away: the welcome arrives once it is back
        assert wait_for(lambda: says(tg, NEWCOMER), timeout=20) == [WAITING]
    else:               # refused for good: a dead letter, the person hears nothing now
        assert says(tg, NEWCOMER) == []
        assert db.scalar("SELECT COUNT(*) FROM jobs WHERE status = 'failed' AND kind = 'tg_send'") == 1

    told = len(says(tg, NEWCOMER))
    say(desk, tg, NEWCOMER, "/start", username="newbie")        # tries again
    assert wait_for(lambda: len(says(tg, NEWCOMER)) == told + 1)
    assert says(tg, NEWCOMER)[-1] == WAITING
    time.sleep(0.3)
    desk.idle()
    assert len(notices_about(tg, ADMIN_ID, NEWCOMER)) == 1      # the admins are not told twice
    assert role_of(db, NEWCOMER) == "pending"


# --------------------------------------------------------------------------- 10. bootstrap admins

@pytest.mark.parametrize("command,role", [("approve", "manager"), ("ban", "banned")])
def test_a_bootstrap_admin_demoted_by_another_admin_stays_demoted(
        desk, sandbox_settings, tg, db, crm, command, role):
    assert role_of(db, ADMIN_ID) == "admin"                      # bootstrapped at start-up
    add_user(db, DEPUTY, "admin", "deputy")
    say(desk, tg, ADMIN_ID, "/start", username="boss")
    say(desk, tg, DEPUTY, f"/{command}_{ADMIN_ID}", username="deputy")
    assert role_of(db, ADMIN_ID) == role

    def admin_commands_ignored(running):
        before = len(says(tg, ADMIN_ID))
        say(running, tg, ADMIN_ID, "/errors", username="boss")
        time.sleep(0.3)
        running.idle()
        return len(says(tg, ADMIN_ID)) == before

    before = len(says(tg, ADMIN_ID))
    say(desk, tg, ADMIN_ID, "/start", username="boss")         # their own /start
    assert role_of(db, ADMIN_ID) == role
    if role == "manager":
        assert says(tg, ADMIN_ID)[-1] == "Вітаємо, @boss! Ви підключені до KeepDesk."
    else:
        assert len(says(tg, ADMIN_ID)) == before              # banned: no answer at all
    assert admin_commands_ignored(desk)

    desk.stop()                                                # a restart of the workers
    with restarted(sandbox_settings, db, tg, crm) as again:
        assert role_of(db, ADMIN_ID) == role
        say(again, tg, ADMIN_ID, "/start", username="boss")
        assert role_of(db, ADMIN_ID) == role
        assert admin_commands_ignored(again)
        from scripts.worker_main import schedule_periodic
        schedule_periodic(again.deps)                          # the minutely chores too
        assert role_of(db, ADMIN_ID) == role


def test_a_person_who_asked_for_access_and_is_listed_in_admin_ids_becomes_admin(
        desk, sandbox_settings, tg, db, crm):
    say(desk, tg, NEWCOMER, "/start", username="newbie")
    assert role_of(db, NEWCOMER) == "pending"
    say(desk, tg, NEWCOMER, "/errors", username="newbie")
    assert says(tg, NEWCOMER) == [WAITING, WAITING]
    desk.stop()
    listed = sandbox_settings.replace(admin_ids=(ADMIN_ID, NEWCOMER))
    with restarted(listed, db, tg, crm) as again:
        assert role_of(db, NEWCOMER) == "admin"
        say(again, tg, NEWCOMER, "/errors", username="newbie")
        answer = says(tg, NEWCOMER)[-1]
        assert answer == ERRORS_NONE or answer.startswith("⚠️ Помилки:"), answer


# --------------------------------------------------------------------------- 11. expiry vs reply

T0 = datetime(2024, 5, 17, 10, 0, 0)
DAY = timedelta(hours=24)
CHAT = 8501


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def services(db, settings):
    for tg_id, name in ((OLENA, "olena"), (PETRO, "petro")):
        add_user(db, tg_id, "manager", name)
    crm_chat(db, CHAT, customer_email="c@example.com", title="Телефон")
    locks = LockManager.instance(db)
    jobs = JobQueue(db)
    claims = ChatClaims(db, locks, pin_ttl_hours=24)
    clock = Clock(T0)
    channels = Channels(keepingcrm=KeepingCrm(settings, db))
    writer = WriteToCustomer(db, jobs, locks, claims, channels, clock=clock)
    users = UserRepository(db)
    olena, petro = users.get(OLENA), users.get(PETRO)
    assert claims.claim(CHAT, olena, now=T0).outcome is ClaimOutcome.CLAIMED
    return claims, writer, clock, olena, petro


def answer(n: int) -> ManagerMessage:
    return ManagerMessage(OLENA, 100 + n, f"Відповідь клієнту {n}")


def pins(db):
    return [(r["manager_id"], r["state"], r["last_reply_at"]) for r in
            db.fetchall("SELECT manager_id, state, last_reply_at FROM pins WHERE conversation_id = %s ORDER BY id", (CHAT,))]


def recorded(db):
    return db.scalar("SELECT COUNT(*) FROM outbound WHERE conversation_id = %s", (CHAT,)), \
        db.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'deliver'")


def test_a_reply_recorded_just_before_the_expiry_keeps_the_pin(db, services, monkeypatch):
    claims, writer, clock, olena, _ = services
    results = []
    due = claims.pins.due

    def due_then_the_reply_lands(*args, **kwargs):
        found = due(*args, **kwargs)              # the expiry saw the pin due…
        clock.now = T0 + DAY - timedelta(seconds=1)
        results.append(writer.perform(olena, CHAT, answer(1)))  # …the reply lands meanwhile
        return found

    monkeypatch.setattr(claims.pins, "due", due_then_the_reply_lands)
    expired = claims.expire_due(T0 + DAY + timedelta(seconds=1))
    assert [r.outcome for r in results] == [Outcome.QUEUED] and not results[0].claimed
    assert expired == []                          # the reply won: the pin stays
    assert pins(db) == [(OLENA, "ACTIVE", T0 + DAY - timedelta(seconds=1))]
    assert recorded(db) == (1, 1)


def test_an_expiry_that_ran_first_makes_the_reply_take_the_chat_again(db, services):
    claims, writer, clock, olena, _ = services
    assert len(claims.expire_due(T0 + DAY + timedelta(seconds=1))) == 1
    clock.now = T0 + DAY + timedelta(seconds=2)
    result = writer.perform(olena, CHAT, answer(2))
    assert result.outcome is Outcome.QUEUED and result.claimed   # #CHANGE_PIN is said
    assert pins(db) == [(OLENA, "UN_PIN", T0), (OLENA, "ACTIVE", clock.now)]
    assert recorded(db) == (1, 1)


def test_an_expiry_that_ran_first_and_a_colleague_who_took_the_chat_refuse_the_reply(db, services):
    claims, writer, clock, olena, petro = services
    claims.expire_due(T0 + DAY + timedelta(seconds=1))
    assert claims.claim(CHAT, petro, now=T0 + DAY + timedelta(seconds=2)).outcome is ClaimOutcome.CLAIMED
    clock.now = T0 + DAY + timedelta(seconds=3)
    result = writer.perform(olena, CHAT, answer(3))
    assert result.outcome is Outcome.TAKEN_BY and result.holder.tg_id == PETRO
    assert recorded(db) == (0, 0)
    assert [p[:2] for p in pins(db)] == [(OLENA, "UN_PIN"), (PETRO, "ACTIVE")]


def test_a_reply_after_the_window_before_the_expiry_ran_takes_the_chat_again(db, services):
    """The periodic expiry runs once a minute: a reply in between must not be refused as
    "pinned to ?" nor sent under the expired pin."""
    claims, writer, clock, olena, _ = services
    clock.now = T0 + DAY + timedelta(seconds=30)
    result = writer.perform(olena, CHAT, answer(4))
    assert result.outcome is Outcome.QUEUED, result
    assert result.claimed
    assert pins(db) == [(OLENA, "UN_PIN", T0), (OLENA, "ACTIVE", clock.now)]
    assert recorded(db) == (1, 1)


def test_replies_and_expiries_racing_never_leave_an_answer_under_an_expired_pin(db, services):
    claims, writer, clock, olena, _ = services
    outcomes = []
    for n in range(20):
        # Each round: the window is about to pass; the reply and the expiry race.
        last = db.scalar("SELECT MAX(last_reply_at) FROM pins WHERE conversation_id = %s", (CHAT,))
        clock.now = last + DAY - timedelta(milliseconds=5)
        expiry_at = last + DAY + timedelta(milliseconds=5)
        barrier = threading.Barrier(2)

        def reply():
            barrier.wait()
            outcomes.append(writer.perform(olena, CHAT, answer(10 + n)))

        def expire():
            barrier.wait()
            claims.expire_due(expiry_at)

        threads = [threading.Thread(target=reply), threading.Thread(target=expire)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    refused = [r for r in outcomes if r.outcome is not Outcome.QUEUED]
    assert refused == [], f"{len(refused)} of 20 answers refused, e.g. {refused[0]}"
    assert recorded(db) == (20, 20)
    # Every recorded answer lies inside a live window of an active pin of Olena's.
    rows = db.fetchall("SELECT manager_id, state, created_at, last_reply_at, ended_at FROM pins"
                       " WHERE conversation_id = %s ORDER BY id", (CHAT,))
    assert sum(r["state"] == "ACTIVE" for r in rows) == 1
    assert all(r["manager_id"] == OLENA for r in rows)


def test_a_manager_writing_after_the_window_reaches_the_customer_not_pinned_to_question_mark(
        desk, tg, db, crm):
    """End to end: Olena answers a day and a bit after her last reply, before the minutely
    expiry noticed. The customer gets the answer, Olena her ✅ (not "pinned to ?")."""
    add_user(db, OLENA, "manager", "olena")
    crm.customer_writes(8502, "Ви тут?", email="c8502@example.com", product="Телефон")
    assert crm.signal(desk.listener_url, LINK_KEY, 8502) == [200]
    desk.idle()
    db.execute("INSERT INTO pins (conversation_id, manager_id, kind) VALUES (8502, %s, 'PIN')", (OLENA,))
    db.execute("REPLACE INTO manager_state (tg_id, conversation_id, mode) VALUES (%s, 8502, %s)",
               (OLENA, SEND_MODE))                              # she is writing to 8502
    later = utc_now() + DAY + timedelta(minutes=1)
    desk.deps.clock = lambda: later
    say(desk, tg, OLENA, "Так, ми тут. Відправили вчора.", username="olena")
    wait_for(lambda: says(tg, OLENA))
    desk.idle()
    assert says(tg, OLENA)[-1] == "✅ Надіслано клієнту (ордер #8502)."
    assert [m["message"] for m in crm.messages(8502) if m["seller"]] == ["Так, ми тут. Відправили вчора."]


# --------------------------------------------------------------------------- 12. the doors

ALLOWED = ("10.9.0.0/16",)


def listener(settings, db, **changes):
    return crm_listener.create_app(settings.replace(**changes), db=db).test_client()


def test_a_caller_outside_the_allow_list_gets_the_same_403_with_a_wrong_or_the_right_key(settings, db):
    client = listener(settings, db, crm_allowed_ips=ALLOWED)
    for remote in ("127.0.0.1", "10.1.2.3", "::1"):
        env = {"REMOTE_ADDR": remote}
        wrong = client.post("/messages/not-the-key", json={"InvoiceId": 5}, environ_base=env)
        right = client.post(f"/messages/{LINK_KEY}", json={"InvoiceId": 5}, environ_base=env)
        assert (wrong.status_code, right.status_code) == (403, 403), remote
        assert wrong.get_data() == right.get_data()             # nothing tells the key apart
        assert dict(wrong.headers) == dict(right.headers)
    assert db.scalar("SELECT COUNT(*) FROM jobs") == 0
    inside = {"REMOTE_ADDR": "10.9.4.2"}
    assert client.post("/messages/not-the-key", json={"InvoiceId": 5},
                       environ_base=inside).status_code == 404
    assert client.post(f"/messages/{LINK_KEY}", json={"InvoiceId": 5},
                       environ_base=inside).status_code == 200
    assert db.scalar("SELECT COUNT(*) FROM jobs") == 1


@pytest.mark.parametrize("door", ["listener", "webhook"])
def test_metrics_without_a_token_only_for_this_machine(settings, db, door):
    app = (crm_listener if door == "listener" else webhook_server).create_app(settings, db=db)
    client = app.test_client()
    local = client.get("/metrics")
    assert local.status_code == 200 and b"keepdesk" in local.get_data()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::ffff:127.0.0.1"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 403
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"},
                      headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 403


@pytest.mark.parametrize("door", ["listener", "webhook"])
def test_metrics_with_a_token_need_it_from_everywhere(settings, db, door):
    token = "metrics-Token_0123456789"
    module = crm_listener if door == "listener" else webhook_server
    client = module.create_app(settings.replace(metrics_token=token), db=db).test_client()
    remote = {"REMOTE_ADDR": "10.1.2.3"}
    assert client.get("/metrics").status_code == 403                       # loopback too
    assert client.get("/metrics", environ_base=remote).status_code == 403
    for header in (f"Bearer {token}x", f"Bearer {token[:-1]}", f"Basic {token}", token,
                   f"bearer{token}", "Bearer "):
        assert client.get("/metrics", environ_base=remote,
                          headers={"Authorization": header}).status_code == 403, header
    assert client.get(f"/metrics?token={token}", environ_base=remote).status_code == 403
    good = client.get("/metrics", environ_base=remote, headers={"Authorization": f"Bearer {token}"})
    assert good.status_code == 200 and b"keepdesk" in good.get_data()
    assert client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200


# --------------------------------------------------------------------------- 13. file downloads

class FakeBotApi(BaseHTTPRequestHandler):
    """getFile and file downloads as Telegram serves them; `trickle.bin` dribbles."""

    stop = threading.Event()

    def log_message(self, *args) -> None:
        return

    def do_POST(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if "/getFile" in self.path:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else self.path.split("?", 1)[-1]
            if "gone" in raw:
                self._send(400, b'{"ok":false,"error_code":400,"description":"Bad Request: invalid file_id"}',
                           "application/json")
                return
            file_id = next((name for name in ("trickle", "big", "cut") if name in raw), "small")
            body = json.dumps({"ok": True, "result": {"file_id": file_id, "file_unique_id": file_id,
                                                      "file_path": f"documents/{file_id}.bin"}}).encode()
            self._send(200, body, "application/json")
        elif self.path.endswith("/documents/small.bin"):
            self._send(200, b"%PDF small file", "application/pdf")
        elif self.path.endswith("/documents/big.bin"):
            self._send(200, b"x" * 5000, "application/octet-stream")
        elif self.path.endswith("/documents/cut.bin"):   # the connection drops half-way
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 100)
            self.wfile.flush()
            self.close_connection = True
        elif self.path.endswith("/documents/trickle.bin"):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(10_000_000))
            self.end_headers()
            try:
                while not self.stop.is_set():
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.02)
            except OSError:
                pass
        else:
            self._send(404, b'{"ok":false,"error_code":404,"description":"Not Found"}', "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def bot_api():
    FakeBotApi.stop = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeBotApi)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    FakeBotApi.stop.set()
    server.shutdown()
    server.server_close()


def files_from(settings, url, **bounds) -> TelegramFiles:
    return TelegramFiles(TelegramApi(create_bot(settings.replace(telegram_api_url=url, bot_token=BOT_TOKEN))), **bounds)


def attachment(file_id: str) -> Attachment:
    return Attachment(file_id, f"{file_id}.bin", "application/octet-stream")


def test_a_file_is_downloaded_within_its_bounds(settings, bot_api):
    assert files_from(settings, bot_api).download(attachment("small")) == b"%PDF small file"


def test_a_stalled_download_ends_with_a_transient_error_not_a_hang(settings, bot_api):
    files = files_from(settings, bot_api, deadline=0.5)
    outcome = {}

    def download():
        started = time.monotonic()
        try:
            outcome["data"] = files.download(attachment("trickle"))
        except BaseException as exc:  # noqa: BLE001 — the outcome is the assertion
            outcome["error"] = exc
        outcome["took"] = time.monotonic() - started

    thread = threading.Thread(target=download, daemon=True)
    thread.start()
    thread.join(8)
    FakeBotApi.stop.set()        # in any case, let the server and the thread finish
    assert not thread.is_alive(), "the download still holds its worker 8 s into a 0.5 s deadline"
    thread.join(5)
    assert "error" in outcome, outcome
    assert is_transient(outcome["error"]), repr(outcome["error"])  # tried again later
    assert outcome["took"] < 3.0


def test_a_download_cut_off_half_way_is_tried_again_not_a_dead_letter(settings, bot_api):
    with pytest.raises(Exception) as cut:
        files_from(settings, bot_api).download(attachment("cut"))
    assert is_transient(cut.value), repr(cut.value)


def test_a_file_over_the_cap_is_permanent(settings, bot_api):
    with pytest.raises(Permanent) as refused:
        files_from(settings, bot_api, max_bytes=1000).download(attachment("big"))
    assert "too big" in str(refused.value)


def test_a_file_telegram_no_longer_has_is_permanent(settings, bot_api):
    files = files_from(settings, bot_api)
    with pytest.raises(Permanent):
        files.download(Attachment("gone", "gone.bin", "application/octet-stream"))
