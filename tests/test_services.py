"""The services, called directly against the real MariaDB: one business action each,
with a result that says what happened (issue 10). Claims (racing, transfer, release, take
over), task status, ingest (once per channel message id), writing and delivering an answer
through a channel behind the connector contract."""
from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

import pytest

from bot.outbox import TelegramOut
from channels import Channels
from channels.base import Capabilities, Channel, Incoming, Rejected, Sent, Unavailable
from harness import crm_chat
from models.conversations import ConversationRepository
from models.inbound import ConversationInfo, ConversationKey, InboundMessage
from models.jobs import JobQueue
from models.locks import LockManager
from models.outbound import Attachment, OutboundRepository
from models.users import UserManager, UserRepository
from services.results import Refusal, Refused
from services.claims import ChatClaims, Outcome
from services.ingest import Ingest
from services.tasks import StatusChanged, Tasks
from services.writing import DeliverToCustomer, ManagerMessage, Outcome as Write, WriteToCustomer

NOW = datetime(2026, 11, 2, 12, 0, 0)
ADMIN, OLENA, PETRO, PENDING, BANNED = 100, 101, 102, 103, 104


@pytest.fixture
def people(db):
    users = UserRepository(db)
    for tg_id, role in ((ADMIN, "admin"), (OLENA, "manager"), (PETRO, "manager"),
                        (PENDING, "pending"), (BANNED, "banned")):
        db.execute("INSERT INTO users (tg_id, username, role) VALUES (%s, %s, %s)",
                   (tg_id, f"user{tg_id}", role))
    return {tg_id: users.get(tg_id) for tg_id in (ADMIN, OLENA, PETRO, PENDING, BANNED)}


@pytest.fixture
def claims(db):
    return ChatClaims(db, LockManager.instance(db), pin_ttl_hours=24)


def active_pins(db, conversation_id):
    return [(r["manager_id"], r["kind"]) for r in db.fetchall(
        "SELECT manager_id, kind FROM pins WHERE conversation_id = %s AND state = 'ACTIVE'",
        (conversation_id,))]


def pin_history(db, conversation_id):
    return [(r["manager_id"], r["state"]) for r in db.fetchall(
        "SELECT manager_id, state FROM pins WHERE conversation_id = %s ORDER BY id",
        (conversation_id,))]


# --------------------------------------------------------------------------- claims

def test_twenty_racing_claims_make_exactly_one_pin(db, claims):
    crm_chat(db, 500)
    managers = []
    for n in range(20):
        db.execute("INSERT INTO users (tg_id, username, role) VALUES (%s, %s, 'manager')",
                   (2000 + n, f"m{n}"))
        managers.append(UserRepository(db).get(2000 + n))
    start, results = threading.Barrier(20), [None] * 20

    def tap(n):
        start.wait()
        results[n] = claims.claim(500, managers[n], now=NOW)

    threads = [threading.Thread(target=tap, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    outcomes = [r.outcome for r in results]
    assert outcomes.count(Outcome.CLAIMED) == 1 and outcomes.count(Outcome.TAKEN_BY) == 19
    winner = next(r.holder for r in results if r.outcome is Outcome.CLAIMED)
    assert {r.holder.tg_id for r in results} == {winner.tg_id}   # the 19 are told who
    assert active_pins(db, 500) == [(winner.tg_id, "PIN")]


def test_a_claim_of_an_own_pin_past_its_window_takes_it_again(db, claims, people):
    crm_chat(db, 501)
    assert claims.claim(501, people[OLENA], now=NOW).outcome is Outcome.CLAIMED
    assert claims.claim(501, people[OLENA], now=NOW + timedelta(hours=1)).outcome is Outcome.ALREADY_MINE
    later = claims.claim(501, people[OLENA], now=NOW + timedelta(hours=25))
    assert later.outcome is Outcome.CLAIMED
    assert pin_history(db, 501) == [(OLENA, "UN_PIN"), (OLENA, "ACTIVE")]


def test_transfer_hands_the_chat_to_a_colleague_in_one_step(db, claims, people):
    crm_chat(db, 510)
    claims.claim(510, people[OLENA], now=NOW)
    result = claims.transfer(510, people[OLENA], people[PETRO], now=NOW)
    assert result.outcome is Outcome.TRANSFERRED
    assert (result.previous.tg_id, result.holder.tg_id) == (OLENA, PETRO)
    assert pin_history(db, 510) == [(OLENA, "DELETE_PIN"), (PETRO, "ACTIVE")]
    # Only the holder (or an admin) gives it away; only to someone who can take chats.
    assert claims.transfer(510, people[OLENA], people[OLENA], now=NOW).outcome is Outcome.REFUSED_TARGET
    assert claims.transfer(510, people[OLENA], people[ADMIN], now=NOW).outcome is Outcome.NOT_HOLDER
    for target in (PENDING, BANNED):
        assert claims.transfer(510, people[PETRO], people[target], now=NOW).outcome is Outcome.REFUSED_TARGET
    assert claims.transfer(510, people[ADMIN], people[OLENA], now=NOW).outcome is Outcome.TRANSFERRED
    assert active_pins(db, 510) == [(OLENA, "PIN")]


def test_a_task_stays_a_task_when_transferred(db, claims, people):
    crm_chat(db, 511, kind="task")
    claims.claim(511, people[OLENA], now=NOW, kind="ACTIVATE_KEY")
    claims.transfer(511, people[OLENA], people[PETRO], now=NOW)
    assert active_pins(db, 511) == [(PETRO, "ACTIVATE_KEY")]


def test_nothing_to_transfer_when_the_pin_ran_out(db, claims, people):
    crm_chat(db, 512)
    claims.claim(512, people[OLENA], now=NOW)
    late = claims.transfer(512, people[OLENA], people[PETRO], now=NOW + timedelta(hours=25))
    assert late.outcome is Outcome.NOT_HOLDER and active_pins(db, 512) == [(OLENA, "PIN")]


def test_release_ends_only_the_managers_own_pin(db, claims, people):
    crm_chat(db, 520)
    claims.claim(520, people[OLENA], now=NOW)
    assert claims.release(520, people[PETRO], now=NOW) is None
    assert active_pins(db, 520) == [(OLENA, "PIN")]
    assert claims.release(520, people[OLENA], now=NOW).manager_id == OLENA
    assert pin_history(db, 520) == [(OLENA, "DELETE_PIN")]
    assert claims.release(520, people[OLENA], now=NOW) is None


def test_an_admin_takes_over_and_the_previous_holder_is_named(db, claims, people):
    crm_chat(db, 530)
    claims.claim(530, people[OLENA], now=NOW)
    result = claims.take_over(530, people[ADMIN], now=NOW)
    assert result.outcome is Outcome.CLAIMED and result.previous.tg_id == OLENA
    assert pin_history(db, 530) == [(OLENA, "DELETE_PIN"), (ADMIN, "ACTIVE")]


def test_expiry_ends_only_pins_past_their_window(db, claims, people):
    crm_chat(db, 540)
    crm_chat(db, 541)
    claims.claim(540, people[OLENA], now=NOW)
    claims.claim(541, people[PETRO], now=NOW + timedelta(hours=20))
    expired = claims.expire_due(NOW + timedelta(hours=25))
    assert [p.conversation_id for p in expired] == [540]
    assert pin_history(db, 540) == [(OLENA, "UN_PIN")] and active_pins(db, 541) == [(PETRO, "PIN")]


# --------------------------------------------------------------------------- task status

def test_a_tasks_status_is_changed_by_its_holder_or_an_admin_only(db, claims, people):
    tasks = Tasks(db, claims, UserManager(db), TelegramOut(JobQueue(db)), lambda: NOW)
    crm_chat(db, 550, kind="task")
    crm_chat(db, 551)
    claims.claim(550, people[OLENA], now=NOW, kind="ACTIVATE_KEY")
    assert tasks.toggle(people[PETRO], 550) == Refused(Refusal.NOT_HOLDER, people[OLENA])
    assert tasks.toggle(people[OLENA], 550) == StatusChanged("done")
    assert tasks.toggle(people[ADMIN], 550) == StatusChanged("in_work", people[OLENA])
    assert tasks.toggle(people[OLENA], 551) == Refused(Refusal.NOT_A_TASK)
    assert tasks.toggle(people[OLENA], 999) == Refused(Refusal.UNKNOWN_CHAT)
    assert db.scalar("SELECT status FROM conversations WHERE id = 550") == "in_work"


# --------------------------------------------------------------------------- ingest

class RecordingDesk:
    """The desk port: counts what ingest announces (its transaction is the real one)."""

    def __init__(self, jobs: JobQueue) -> None:
        self.jobs, self.announced = jobs, []

    def announce(self, cur, conversation, messages, holder, signal_at):
        self.announced += [(conversation.id, m.external_id, holder.tg_id if holder else None)
                           for m in messages]
        return [self.jobs.enqueue_id("send", "tg_send", {"m": m.external_id},
                                     dedupe_key=f"post:{m.id}", cur=cur) for m in messages]

    def after_commit(self, committed):
        self.committed = list(committed)


def message(n, *, customer=True, seen=False, at=None):
    return InboundMessage(str(n), from_customer=customer, text=f"message {n}",
                          date_written=at or NOW + timedelta(minutes=n),
                          date_seen=NOW if seen else None)


@pytest.fixture
def ingest(db, claims):
    desk = RecordingDesk(JobQueue(db))
    return Ingest(db, claims, [desk], retention_days=180, task_pattern=r"(?i)ключ",
                  clock=lambda: NOW), desk


def test_ingest_stores_each_channel_message_once_and_announces_it_once(db, ingest):
    service, desk = ingest
    key = ConversationKey("keepingcrm", "", "600")
    batch = Incoming(key, [message(1), message(2)], ConversationInfo(title="Ключ Windows", cnt_msg=2))
    first = service(batch)
    assert (first.stored, first.new, first.announced, len(first.posts)) == (2, 2, 2, 2)
    again = service(batch)                              # a repeated signal, a re-delivery
    assert (again.new, again.announced, again.posts) == (0, 0, ())
    assert db.scalar("SELECT COUNT(*) FROM messages") == 2
    assert [a[1] for a in desk.announced] == ["1", "2"]
    conversation = ConversationRepository(db).find(key)
    assert (conversation.id, conversation.kind, conversation.cnt_msg) == (600, "task", 2)
    third = service(Incoming(key, [message(1), message(2), message(3)]))
    assert (third.new, third.announced) == (1, 1) and desk.announced[-1][1] == "3"


def test_ingest_keeps_conversations_of_different_channels_apart(db, ingest):
    service, _ = ingest
    service(Incoming(ConversationKey("keepingcrm", "", "700"), [message(1)]))
    service(Incoming(ConversationKey("whatsapp", "380501112233", "700"), [message(1)]))
    rows = db.fetchall("SELECT channel, external_id FROM conversations ORDER BY id")
    assert [(r["channel"], r["external_id"]) for r in rows] == [("keepingcrm", "700"), ("whatsapp", "700")]
    assert db.scalar("SELECT COUNT(*) FROM messages") == 2


def test_ingest_announces_nothing_the_shop_answered_and_only_the_newest_unread_at_first_sight(db, ingest):
    service, desk = ingest
    answered = service(Incoming(ConversationKey("keepingcrm", "", "800"),
                                [message(1), message(2, customer=False)], ConversationInfo()))
    assert answered.announced == 0
    history = [message(n) for n in range(1, 16)] + [message(16, seen=True)]
    result = service(Incoming(ConversationKey("keepingcrm", "", "801"), history, ConversationInfo()))
    assert result.announced == 10
    assert [a[1] for a in desk.announced] == [str(n) for n in range(6, 16)]


def test_ingest_of_a_conversation_nobody_knows_stores_nothing(db, ingest):
    service, _ = ingest
    assert service(Incoming(ConversationKey("keepingcrm", "", "900"), [], None)).conversation_id is None
    assert db.scalar("SELECT COUNT(*) FROM conversations") == 0


def test_ingest_goes_to_the_holder_and_expires_a_pin_past_its_window_first(db, ingest, claims, people):
    service, desk = ingest
    key = ConversationKey("keepingcrm", "", "910")
    service(Incoming(key, [message(1)], ConversationInfo()))
    claims.claim(910, people[OLENA], now=NOW - timedelta(hours=1))
    service(Incoming(key, [message(1), message(2)]))
    assert desk.announced[-1] == (910, "2", OLENA)
    claims.claim(910, people[OLENA], now=NOW - timedelta(hours=30))   # nothing: still hers
    db.execute("UPDATE pins SET last_reply_at = %s", (NOW - timedelta(hours=30),))
    service(Incoming(key, [message(1), message(2), message(3)]))
    assert desk.announced[-1] == (910, "3", None)


# --------------------------------------------------------------------------- writing, delivering

class FakeChannel(Channel):
    """A channel behind the contract, scripted by the test (no network)."""
    name, label, icon = "keepingcrm", "Scripted", "🧪"

    def __init__(self) -> None:
        self.capabilities = Capabilities(max_text=100, attachments=("document",))
        self.sends, self.uploads, self.failures, self.present = [], [], [], False

    def upload(self, conversation, attachment, data):
        self.uploads.append((attachment.name, data))
        return [{"newid": "f1", "name": attachment.name, "type": attachment.mime}]

    def send(self, conversation, text, files):
        if self.failures:
            raise self.failures.pop(0)
        self.sends.append((conversation.id, text, files))
        return Sent(f"ext-{len(self.sends)}")

    def arrived(self, conversation, outbound):
        return self.present


@pytest.fixture
def writing(db, claims, people):
    channel = FakeChannel()
    channels = Channels(keepingcrm=channel)
    jobs = JobQueue(db)
    writer = WriteToCustomer(db, jobs, LockManager.instance(db), claims, channels, clock=lambda: NOW)
    deliver = DeliverToCustomer(db, jobs, channels, notices=TelegramOut(jobs), download=lambda a: b"%PDF bytes",
                                clock=lambda: NOW)
    crm_chat(db, 950)
    return writer, deliver, channel, jobs


def run_deliver(deliver, jobs, db):
    """Run the queued `deliver` job once, as a worker would (claim, run, settle)."""
    db.execute("UPDATE jobs SET run_after = NOW(6) WHERE kind = 'deliver' AND status = 'pending'")
    [job] = jobs.claim(["updates"], "test")
    try:
        done = deliver(job)
    except Exception:
        jobs.retry(job, "failed", 0)
        raise
    jobs.complete(job, then=done.then if done else ())
    return done


def the_outbound(db):
    return OutboundRepository(db).get(db.scalar("SELECT id FROM outbound"))


def notices(db):
    return [r["payload"] for r in db.fetchall("SELECT payload FROM jobs WHERE kind = 'tg_send' ORDER BY id")]


def test_an_answer_is_recorded_once_per_telegram_message(db, writing, people):
    writer, _, _, _ = writing
    answer = ManagerMessage(OLENA, 7, "Так, є")
    first = writer.perform(people[OLENA], 950, answer)
    assert first.outcome is Write.QUEUED and first.claimed
    assert writer.perform(people[OLENA], 950, answer).outcome is Write.DUPLICATE
    assert db.scalar("SELECT COUNT(*) FROM outbound") == 1
    assert writer.perform(people[PETRO], 950, ManagerMessage(PETRO, 8, "Я теж")).outcome is Write.TAKEN_BY
    too_long = writer.perform(people[OLENA], 950, ManagerMessage(OLENA, 9, "x" * 101))
    assert (too_long.outcome, too_long.limit) == (Write.TOO_LONG, 100)
    assert writer.perform(people[OLENA], 951, ManagerMessage(OLENA, 10, "?")).outcome is Write.UNKNOWN_CHAT
    assert db.scalar("SELECT COUNT(*) FROM outbound") == 1


def test_delivery_uploads_once_resumes_after_a_failure_and_confirms_once(db, writing, people):
    writer, deliver, channel, jobs = writing
    writer.perform(people[OLENA], 950, ManagerMessage(OLENA, 7, "Рахунок", Attachment("f", "r.pdf", "application/pdf", 9)))
    channel.failures = [Unavailable("down")]
    with pytest.raises(Unavailable):
        run_deliver(deliver, jobs, db)
    assert channel.uploads == [("r.pdf", b"%PDF bytes")] and channel.sends == []
    assert any('"answer_waits_for_crm"' in n for n in notices(db))      # told once that it waits
    channel.present = False
    run_deliver(deliver, jobs, db)
    assert len(channel.uploads) == 1                                     # not uploaded again
    assert channel.sends == [(950, "Рахунок", [{"newid": "f1", "name": "r.pdf", "type": "application/pdf"}])]
    assert sum('"sent_ok"' in n for n in notices(db)) == 1
    out = the_outbound(db)
    assert (out.status, out.external_id) == ("sent", "ext-1")


def test_after_an_unknown_outcome_an_answer_that_arrived_is_not_sent_again(db, writing, people):
    writer, deliver, channel, jobs = writing
    writer.perform(people[OLENA], 950, ManagerMessage(OLENA, 7, "Так"))
    db.execute("UPDATE outbound SET attempted_at = NOW(6)")              # a run died mid-send
    channel.present = True
    run_deliver(deliver, jobs, db)
    assert channel.sends == [] and the_outbound(db).status == "sent"
    assert sum('"sent_ok"' in n for n in notices(db)) == 1


def test_a_refusal_is_told_to_the_manager_not_retried(db, writing, people):
    writer, deliver, channel, jobs = writing
    writer.perform(people[OLENA], 950, ManagerMessage(OLENA, 7, "Так"))
    channel.failures = [Rejected("message too long", max_length=50)]
    run_deliver(deliver, jobs, db)
    assert the_outbound(db).status == "refused"
    [told] = [n for n in notices(db) if '"too_long"' in n]
    assert '"limit":50' in told


def test_a_failure_status_that_overtakes_the_sends_answer_still_reaches_the_manager(db, people):
    """Meta may post "failed" before KeepDesk has stored the message's wamid: the manager
    is told once the wamid is known, and only once."""
    from models.inbound import StatusUpdate
    from services.statuses import DeliveryStatuses
    jobs = JobQueue(db)
    statuses = DeliveryStatuses(db, TelegramOut(jobs))
    key = ConversationKey("whatsapp", "100200300", "380671234567")
    conversation_id = ConversationRepository(db).ensure(key)
    outbound = OutboundRepository(db)
    with db.transaction() as cur:
        out_id = outbound.record(cur, key="tg:501:77", conversation_id=conversation_id, manager_id=501,
                                 tg_chat_id=501, tg_message_id=77, text="Вітаю!", attachment=None,
                                 after_message_id=None)

    def notices():
        payloads = [json.loads(r["payload"]) for r in db.fetchall(
            "SELECT payload FROM jobs WHERE kind = 'tg_send' ORDER BY id")]
        return [p for p in payloads if p.get("notice", "").startswith("wa_failed")]

    statuses(key, [StatusUpdate("wamid.early", "failed", datetime(2026, 12, 2, 9, 0), 131026,
                                "Message undeliverable")])
    assert notices() == []                           # whose message it is, nobody knows yet
    with db.transaction() as cur:
        outbound.settle(cur, out_id, "sent", datetime(2026, 12, 2, 9, 0), None, "wamid.early")
    statuses.caught_up(conversation_id, "wamid.early")
    statuses.caught_up(conversation_id, "wamid.early")
    [notice] = notices()
    assert notice["chat_id"] == 501 and notice["reply_to"] == 77
    assert notice["notice"] == "wa_failed_undeliverable"
