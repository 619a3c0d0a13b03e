"""Upgrade in place (issue 10, point 4): a shop's database written by KeepDesk 2 (commit
0faaf30, the release before versioned migrations) is migrated by the current code, and
the shop keeps working.

The fixture (tests/fixtures/release2, made by its generate.py with release 2's own code)
is a first month of a shop: an owner (ADMIN_IDS), managers with and without a username
and in English, a pending and a banned person, customers writing text, a file, a photo
and a long text, claims, answers, a take-over, a task done, pins active and expired, a
post waiting in the shared chat, a manager left writing to a chat, and work still queued
when the old release stopped (a post Telegram refused, a manager's answer, a customer's
signal). It holds the database (mysqldump), the CRM sandbox's world and what Telegram
keeps (old posts and their buttons, Telegram's id counters).

Each test loads the dump into an EMPTY database (tables as release 2 created them), puts
the CRM's and Telegram's worlds back, runs `migrate`, and starts the current desk with
its clock at the moment of the dump — the upgrade happens right after the old release
stopped. What is asserted is what people would notice.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pymysql
import pytest
import requests

from harness import Desk, wait_for
from models.db import Database, connect_kwargs, migrate
from models.singleton import ProcessSingleton
from utils.clock import utc_now

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "release2"
STORY = json.loads((FIXTURE / "story.json").read_text(encoding="utf-8"))
DUMP_TIME = datetime.fromisoformat(STORY["now"])
UPGRADE_DB = "keepdesk_upgrade"
LINK_KEY = STORY["settings"]["LINK_KEY"]
SHARED_CHAT = STORY["settings"]["CHAT_NEW_MESSAGE"]
LOG_CHAT = STORY["settings"]["CHANNEL_LOG"]

# The cast of the story (see generate.py).
ADMIN, OLENA, TARAS, JOHN, IVAN, PETRO = 9001, 701, 702, 703, 704, 705
PEOPLE = {int(k): v for k, v in STORY["people"].items()}

RELEASE_2_TABLES = ("users", "manager_state", "chats", "messages", "tg_message_map", "pins",
                    "jobs", "schema_meta", "tg_rate", "worker_bells")


# --------------------------------------------------------------------------- loading

def load_dump(settings, path: Path) -> None:
    """Run a mysqldump file statement by statement, on one connection (its SET lines are
    session state). The dump writes one statement per line, except CREATE TABLE, which
    ends with a line ending in ";"; values never hold a raw line break."""
    connection = pymysql.connect(**connect_kwargs(settings))
    statement: list[str] = []
    try:
        with connection.cursor() as cur:
            for line in path.read_text(encoding="utf-8").splitlines():
                if not statement and (not line.strip() or line.startswith(("--", "/*M!999999"))):
                    continue  # blank, a comment, or the mariadb client's sandbox-mode marker
                statement.append(line)
                if line.rstrip().endswith(";"):
                    cur.execute("\n".join(statement))
                    statement = []
    finally:
        connection.close()
    assert not statement, "the dump ended in the middle of a statement"


def tables(db: Database) -> set[str]:
    return {r["TABLE_NAME"] for r in db.fetchall(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")}


def rows(db: Database, table: str, key: str) -> dict:
    return {tuple(r[k] for k in key.split(",")) if "," in key else r[key]: r
            for r in db.fetchall(f"SELECT * FROM {table}")}


def shape_and_content(db: Database) -> dict:
    """Every table's definition and a checksum of its rows (as test_schema does)."""
    names = sorted(tables(db))
    return {"shape": {t: db.fetchone(f"SHOW CREATE TABLE `{t}`")["Create Table"] for t in names},
            "rows": {t: db.fetchall(f"CHECKSUM TABLE `{t}`")[0]["Checksum"] for t in names}}


@pytest.fixture
def release2(mariadb, settings):
    """An empty database of its own, the test's process singletons fresh."""
    mariadb.create_database(UPGRADE_DB, drop=True)
    ProcessSingleton.reset_all()
    database = Database(settings.replace(mysql_db=UPGRADE_DB))
    assert tables(database) == set()
    yield database
    database.close()
    ProcessSingleton.reset_all()
    mariadb.create_database(UPGRADE_DB, drop=True)


@pytest.fixture
def old_world(release2, tg, crm):
    """The database as release 2 left it (not migrated yet), and the sandboxes' worlds."""
    load_dump(release2.settings, FIXTURE / "database.sql")
    crm.restore(json.loads((FIXTURE / "crm.json").read_text(encoding="utf-8")))
    tg.restore(json.loads((FIXTURE / "telegram.json").read_text(encoding="utf-8")))
    return release2


class Upgraded:
    """The upgraded desk and the people around it, as the tests drive them."""

    def __init__(self, desk, db: Database, tg, crm) -> None:
        self.desk, self.db, self.tg, self.crm = desk, db, tg, crm

    def clock(self) -> datetime:
        return self.desk.deps.clock()

    def say(self, user_id: int, text: str, **kwargs) -> dict:
        person = PEOPLE[user_id]
        update = self.tg.user_sends_text(user_id, text, username=person["username"],
                                         first_name=person["first_name"],
                                         language_code=person["language"], **kwargs)
        idle(self.desk)
        return update

    def press(self, user_id: int, chat_id: int, message_id: int, data: str) -> dict:
        """A tap; the answer the person sees (every tap is answered exactly once)."""
        person = PEOPLE[user_id]
        update = self.tg.user_presses_button(user_id, chat_id, message_id, data,
                                             username=person["username"],
                                             first_name=person["first_name"],
                                             language_code=person["language"])
        idle(self.desk)
        query = update["callback_query"]["id"]
        answers = [a for a in self.tg.callback_answers() if a["callback_query_id"] == query]
        assert len(answers) == 1, answers
        return answers[0]

    def press_label(self, user_id: int, message: dict, label: str) -> dict:
        current = self.tg.message(message["chat_id"], message["message_id"])
        data = [b["callback_data"] for b in buttons(current) if b["text"] == label]
        assert data, f"no button {label!r} in {labels(current)}"
        return self.press(user_id, current["chat_id"], current["message_id"], data[0])

    def customer_writes(self, id_i: int, text: str, **kwargs) -> dict:
        """A customer writes in the CRM (dated by the desk's clock) and the CRM signals."""
        written = self.crm.customer_writes(id_i, text, at=self.clock(), **kwargs)
        assert self.crm.signal(self.desk.listener_url, LINK_KEY, id_i) == [200]
        idle(self.desk)
        return written

    def bot_messages(self, chat_id: int) -> list[dict]:
        return [m for m in self.tg.messages(chat_id) if not m["deleted"]]

    def last(self, chat_id: int) -> dict:
        return self.bot_messages(chat_id)[-1]

    def new_messages(self, chat_id: int, before: int) -> list[dict]:
        """The bot's messages in a chat with ids above `before`."""
        return [m for m in self.bot_messages(chat_id) if m["message_id"] > before]

    def highest_id(self, chat_id: int) -> int:
        return max((m["message_id"] for m in self.tg.messages(chat_id, include_user=True)),
                   default=0)


@pytest.fixture
def upgraded(old_world, sandbox_settings, tg, crm):
    """Release 2's shop, migrated, served by the current desk from the moment of the dump."""
    from models.db import migration_ids
    assert migrate(old_world) == migration_ids()
    desk = Desk(sandbox_settings.replace(mysql_db=UPGRADE_DB), old_world, tg, crm)
    desk.start(workers=False)
    offset = DUMP_TIME - utc_now()
    desk.deps.clock = lambda: utc_now() + offset  # the upgrade follows the dump at once
    desk.start_workers()
    try:
        idle(desk, timeout=20)  # what release 2 left queued is done before anyone acts
        yield Upgraded(desk, old_world, tg, crm)
    finally:
        desk.stop()


# --------------------------------------------------------------------------- helpers

def idle(desk, timeout: float = 10.0) -> None:
    """The desk's queue is empty; if it does not get there, say which jobs are stuck."""
    try:
        desk.idle(timeout)
    except AssertionError:
        stuck = desk.db.fetchall(
            "SELECT id, kind, status, attempts, run_after, last_error, LEFT(payload, 300) AS payload"
            " FROM jobs WHERE status IN ('pending', 'running')"
            " AND (dedupe_key IS NULL OR dedupe_key NOT LIKE 'periodic:%%') ORDER BY id")
        raise AssertionError(f"the queue did not empty within {timeout}s: {stuck}") from None


def visible(message: dict) -> str:
    return message.get("visible_text") or ""


def buttons(message: dict) -> list[dict]:
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def labels(message: dict) -> list[str]:
    return [b["text"] for b in buttons(message)]


def links(message: dict) -> list[str]:
    return [e["url"] for e in message.get("entities") or [] if e["type"] == "text_link"]


def about(message: dict, id_i: int) -> bool:
    return any(f"id_i={id_i}&" in url for url in links(message))


def old_message(where: str) -> dict:
    """A Telegram message as release 2 left it (from the fixture)."""
    fact = STORY[where]
    state = json.loads((FIXTURE / "telegram.json").read_text(encoding="utf-8"))
    [found] = [m for m in state["messages"]
               if (m["chat_id"], m["message_id"]) == (fact["chat_id"], fact["message_id"])]
    return found


def pins_of(db: Database, conversation_id: int) -> list[tuple]:
    return [(r["manager_id"], r["kind"], r["state"]) for r in db.fetchall(
        "SELECT manager_id, kind, state FROM pins WHERE conversation_id = %s ORDER BY id",
        (conversation_id,))]


# --------------------------------------------------------------------------- the data

def test_every_row_release_2_wrote_is_there_after_the_upgrade(old_world):
    db = old_world
    assert tables(db) == set(RELEASE_2_TABLES)
    assert db.scalar("SELECT value FROM schema_meta WHERE name = 'version'") == "2"
    before = {t: db.fetchall(f"SELECT * FROM {t}") for t in RELEASE_2_TABLES}
    counts = STORY["counts"]["tables"]
    assert {t: len(r) for t, r in before.items()} == counts  # the dump is the story's

    migrate(db)

    assert "chats" not in tables(db) and {"conversations", "outbound", "error_causes"} <= tables(db)
    assert db.scalar("SELECT value FROM schema_meta WHERE name = 'version'") == "4"

    # Chats → conversations: the number kept as the id, KeepingCRM as the channel.
    conversations = rows(db, "conversations", "id")
    assert len(conversations) == counts["chats"]
    for chat in before["chats"]:
        c = conversations[chat["id_i"]]
        assert (c["channel"], c["account"], c["external_id"]) == ("keepingcrm", "", str(chat["id_i"]))
        assert (c["title"], c["customer_email"]) == (chat["product"], chat["email"])
        for column in ("last_date", "cnt_msg", "cnt_new", "kind", "status", "created_at", "updated_at"):
            assert c[column] == chat[column], (chat["id_i"], column)

    # Messages: the same ids, the CRM's id as the channel's message id, nothing else changed.
    messages = rows(db, "messages", "id")
    assert len(messages) == counts["messages"]
    for old in before["messages"]:
        new = messages[old["id"]]
        assert (new["conversation_id"], new["external_id"]) == (old["id_i"], str(old["id"]))
        for column in ("direction", "text", "is_file", "is_img", "filename", "url", "preview",
                       "date_written", "date_seen", "deleted", "announced_at", "created_at"):
            assert new[column] == old[column], (old["id"], column)

    # Pins, active and history: the same rows, the one-active-pin rule on the new column.
    pins = rows(db, "pins", "id")
    assert len(pins) == counts["pins"]
    for old in before["pins"]:
        new = pins[old["id"]]
        assert new["conversation_id"] == old["id_i"]
        assert new["active_conversation_id"] == old["active_id_i"]
        for column in ("manager_id", "kind", "state", "created_at", "last_reply_at", "ended_at"):
            assert new[column] == old[column], (old["id"], column)
    by_state = {}
    for pin in pins.values():
        by_state[f"{pin['kind']} {pin['state']}"] = by_state.get(f"{pin['kind']} {pin['state']}", 0) + 1
    assert by_state == STORY["counts"]["pins_by_state"]

    # The Telegram message map: every post still finds its chat (and its message).
    mapped = rows(db, "tg_message_map", "tg_chat_id,tg_message_id")
    assert len(mapped) == counts["tg_message_map"]
    for old in before["tg_message_map"]:
        new = mapped[(old["tg_chat_id"], old["tg_message_id"])]
        assert (new["conversation_id"], new["message_id"]) == (old["id_i"], old["crm_message_id"])
        for column in ("purpose", "html", "notes", "created_at"):
            assert new[column] == old[column]

    # People and where they are in the desk.
    users = rows(db, "users", "tg_id")
    assert len(users) == counts["users"]
    for old in before["users"]:
        new = users[old["tg_id"]]
        assert {k: new[k] for k in old} == old
        assert new["role_source"] == "default"
    assert {tg_id: u["role"] for tg_id, u in users.items()} == \
           {int(k): v["role"] for k, v in STORY["people"].items()}
    states = rows(db, "manager_state", "tg_id")
    assert len(states) == counts["manager_state"]
    for old in before["manager_state"]:
        new = states[old["tg_id"]]
        assert (new["conversation_id"], new["mode"], new["data"]) == \
               (old["current_id_i"], old["mode"], old["data"])

    # The queue: every job kept; queued sends name their conversation and message.
    jobs = rows(db, "jobs", "id")
    assert len(jobs) == counts["jobs"]
    for old in before["jobs"]:
        new = jobs[old["id"]]
        assert new["kind"] == {"crm_seen": "mark_read"}.get(old["kind"], old["kind"])
        for column in ("queue", "dedupe_key", "lane", "seq", "priority", "status", "attempts",
                       "run_after", "created_at"):
            assert new[column] == old[column], (old["id"], column)
        payload, old_payload = json.loads(new["payload"]), json.loads(old["payload"])
        if old["kind"] == "tg_send" and "id_i" in old_payload:
            assert payload.pop("conversation_id") == old_payload.pop("id_i")
            assert payload.pop("message_id", None) == old_payload.pop("crm_message_id", None)
        assert payload == old_payload
    assert rows(db, "tg_rate", "bucket") == {r["bucket"]: r for r in before["tg_rate"]}


def test_migrating_again_changes_nothing(old_world):
    migrate(old_world)
    upgraded = shape_and_content(old_world)
    assert migrate(old_world) == []
    assert shape_and_content(old_world) == upgraded


def kept(db: Database) -> dict:
    """The shop's tables and every row (not the migration tool's own bookkeeping; not
    `updated_at`, which the server's clock sets when a migration touches a row)."""
    names = sorted(t for t in tables(db) if not t.startswith(("_yoyo", "yoyo_")))
    return {"shape": {t: db.fetchone(f"SHOW CREATE TABLE `{t}`")["Create Table"] for t in names},
            "rows": {t: [{k: v for k, v in r.items() if k != "updated_at"}
                         for r in db.fetchall(f"SELECT * FROM `{t}` ORDER BY 1")] for t in names}}


def conversations_migration():
    import importlib.util
    from models.db import MIGRATIONS_PATH
    spec = importlib.util.spec_from_file_location("conversations_migration",
                                                  MIGRATIONS_PATH / "0003.conversations.py")
    module = importlib.util.module_from_spec(spec)

    class Collector:                     # what yoyo gives a migration module it imports
        def add_step(self, *args, **kwargs):
            return None
    module.__dict__["__yoyo_collector__"] = Collector()
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("stopped_after", ["chats copied", "messages", "chats dropped", "pins' old rule"])
def test_the_conversations_migration_stopped_half_way_runs_again_to_the_same_result(old_world, stopped_after):
    """MariaDB commits each DDL statement on its own: a migration killed half-way leaves
    part of it done. Run again, it does the rest and the shop's data ends as after one run."""
    import yoyo
    from models.db import MIGRATIONS_PATH, migrations_uri
    migrate(old_world)
    whole_run = kept(old_world)
    # The same shop again, stopped inside the conversations migration.
    with old_world.connection() as conn, conn.cursor() as cur:
        cur.execute("SET FOREIGN_KEY_CHECKS = 0")
        for table in tables(old_world):
            cur.execute(f"DROP TABLE `{table}`")
        cur.execute("SET FOREIGN_KEY_CHECKS = 1")
    assert tables(old_world) == set()
    load_dump(old_world.settings, FIXTURE / "database.sql")
    backend = yoyo.get_backend(migrations_uri(old_world.settings))
    try:
        migrations = yoyo.read_migrations(str(MIGRATIONS_PATH))
        with backend.lock():
            backend.apply_migrations(migrations.filter(lambda m: m.id in ("0001.baseline", "0002.side-effects")))
    finally:
        backend.connection.close()
    steps = conversations_migration().STEPS
    names = [name for name, _, _ in steps]
    with old_world.connection() as conn, conn.cursor() as cur:
        for name, to_do, statement in steps[:names.index(stopped_after) + 1]:
            if to_do(cur):
                cur.execute(statement)
                conn.commit()
    assert migrate(old_world) == [m for m in migration_ids_after("0002.side-effects")]
    again = kept(old_world)
    assert again["shape"] == whole_run["shape"]
    for table, rows_now in again["rows"].items():
        for before, now in zip(whole_run["rows"][table], rows_now):
            assert now == before, table
    assert {t: len(r) for t, r in again["rows"].items()} == {t: len(r) for t, r in whole_run["rows"].items()}


def migration_ids_after(last_applied: str) -> list[str]:
    from models.db import migration_ids
    return [m for m in migration_ids() if m > last_applied]


def test_a_release_2_database_without_data_migrates_and_works(release2, sandbox_settings, tg, crm):
    load_dump(release2.settings, FIXTURE / "empty.sql")  # release 2 installed, never used
    assert tables(release2) == set(RELEASE_2_TABLES)
    assert release2.scalar("SELECT COUNT(*) FROM chats") == 0
    migrate(release2)
    assert release2.scalar("SELECT value FROM schema_meta WHERE name = 'version'") == "4"
    migrated = shape_and_content(release2)
    assert migrate(release2) == []
    assert shape_and_content(release2) == migrated

    desk = Desk(sandbox_settings.replace(mysql_db=UPGRADE_DB), release2, tg, crm).start()
    try:
        crm.customer_writes(3001, "Перше повідомлення після оновлення", product="Чайник")
        assert crm.signal(desk.listener_url, LINK_KEY, 3001) == [200]
        idle(desk)
        [post] = [m for m in tg.messages(SHARED_CHAT) if about(m, 3001)]
        assert visible(post).endswith("Перше повідомлення після оновлення")
        assert labels(post) == ["✍ Відповісти"]
        assert release2.scalar("SELECT role FROM users WHERE tg_id = %s", (ADMIN,)) == "admin"
    finally:
        desk.stop()


# --------------------------------------------------------------------------- the desk

def test_a_chat_pinned_before_the_upgrade_sends_its_customers_next_message_to_the_same_manager(upgraded):
    u = upgraded
    assert pins_of(u.db, 1012)[-1] == (OLENA, "PIN", "ACTIVE")
    olena_before, shared_before = u.highest_id(OLENA), u.highest_id(SHARED_CHAT)

    u.customer_writes(1012, "А насадки для кучерів у комплекті?")

    [to_olena] = u.new_messages(OLENA, olena_before)
    assert visible(to_olena).endswith("А насадки для кучерів у комплекті?")
    assert about(to_olena, 1012)
    assert labels(to_olena) == ["⚡ Відкрити чат"]
    [quiet] = [m for m in u.new_messages(SHARED_CHAT, shared_before) if about(m, 1012)]
    assert quiet["disable_notification"] and labels(quiet) == []
    assert "Закріплений менеджер: @olena_sales" in visible(quiet)
    assert visible(quiet).endswith("А насадки для кучерів у комплекті?")
    # New posts took new Telegram ids: the old map rows are untouched, the new ones found.
    assert u.db.fetchone("SELECT conversation_id, purpose FROM tg_message_map"
                         " WHERE tg_chat_id = %s AND tg_message_id = %s",
                         (OLENA, to_olena["message_id"])) == {"conversation_id": 1012,
                                                              "purpose": "notify"}

    # ⚡ opens the chat's card, the pin still hers.
    answer = u.press_label(OLENA, to_olena, "⚡ Відкрити чат")
    assert answer["text"] is None
    # The card, and writing mode at once (SPEC §8).
    assert visible(u.last(OLENA)).startswith("Ви відповідаєте на ордер #1012")
    card = [m for m in u.bot_messages(OLENA) if visible(m).startswith("💬 Чат #1012")][-1]
    assert visible(card).startswith("💬 Чат #1012\nКлієнт: iryna.lysenko@gmail.com\n"
                                    "Товар: Фен Dyson Supersonic HD07 & <Gift box>\n"
                                    "Закріплено за: @olena_sales")
    assert "👤 Зняти з мене закріп" in labels(card)

    # The English manager's pinned chat: to him, in English.
    john_before = u.highest_id(JOHN)
    u.customer_writes(1003, "And how much is the delivery?")
    [to_john] = u.new_messages(JOHN, john_before)
    assert visible(to_john).endswith("And how much is the delivery?")
    assert visible(to_john).startswith("📧 Message from a client")
    assert labels(to_john) == ["⚡ Open chat"]


def test_an_unpinned_chat_goes_to_the_shared_chat_and_an_old_post_still_claims_its_chat(upgraded):
    u = upgraded
    shared_before = u.highest_id(SHARED_CHAT)
    # Petro held 1008 until he was banned: nobody holds it now.
    assert pins_of(u.db, 1008) == [(PETRO, "PIN", "DELETE_PIN")]
    u.customer_writes(1008, "Так що з моніторами?")
    [post] = [m for m in u.new_messages(SHARED_CHAT, shared_before) if about(m, 1008)]
    assert visible(post).endswith("Так що з моніторами?")
    assert labels(post) == ["✍ Відповісти"] and not post["disable_notification"]

    # The laptop customer's post, sent by release 2 and still waiting: Taras taps it.
    waiting = STORY["waiting_post"]
    taras_before = u.highest_id(TARAS)
    answer = u.press(TARAS, SHARED_CHAT, waiting["message_id"], waiting["callback_data"])
    assert answer["text"] == "✅ Чат 1001 закріплено за вами."
    assert pins_of(u.db, 1001)[-1] == (TARAS, "PIN", "ACTIVE")
    edited = u.tg.message(SHARED_CHAT, waiting["message_id"])
    assert visible(edited) == visible(old_message("waiting_post")) + "\nМенеджер: Тарас"
    assert labels(edited) == ["✍ Відповісти"]
    history, prompt = u.new_messages(TARAS, taras_before)
    assert visible(history).startswith("📁 Історія чата #1001 (сторінка 1)")
    assert "Дякую, оплатила. Коли буде ТТН?" in visible(history)
    assert visible(prompt).startswith("Ви відповідаєте на ордер #1001 (maria.koval@gmail.com)")
    log = [visible(m) for m in u.bot_messages(LOG_CHAT)]
    assert log[-1].startswith("#CHANGE_PIN Тарас") and "1001" in log[-1]
    # A second manager tapping the same old post is told who has it.
    late = u.press(OLENA, SHARED_CHAT, waiting["message_id"], waiting["callback_data"])
    assert late["text"] == "Цей чат закріплено за Тарас."

    # The Office key task posted five days before the upgrade: 🔑 still connects.
    task = STORY["waiting_task_post"]
    answer = u.press(JOHN, SHARED_CHAT, task["message_id"], task["callback_data"])
    assert answer["text"] == "✅ Chat 1006 is pinned to you."
    assert pins_of(u.db, 1006) == [(JOHN, "ACTIVATE_KEY", "ACTIVE")]
    assert u.db.scalar("SELECT status FROM conversations WHERE id = 1006") == "in_work"


def test_old_chats_show_their_card_and_history_as_before(upgraded):
    u = upgraded
    u.say(OLENA, "📁 Історія всіх чатів")
    chats = u.last(OLENA)
    assert any(label.startswith("#1001 maria.koval@gmail.com") for label in labels(chats))
    u.press_label(OLENA, chats, next(x for x in labels(chats) if x.startswith("#1001 ")))
    card = u.last(OLENA)
    old_card = old_message("old_card_1001")
    assert visible(card) == visible(old_card)
    assert card["entities"] == old_card["entities"]  # bold, dates, the file links
    # The same buttons, and the desk's tools of SPEC §8 before ◀.
    assert labels(card) == labels(old_card)[:-1] + ["💬 Шаблони", "📝 Нотатка"] + labels(old_card)[-1:]

    u.press_label(OLENA, card, "📁 Історія чата")
    history = u.last(OLENA)
    old_history = old_message("old_history_1001")
    assert visible(history) == visible(old_history)
    assert history["entities"] == old_history["entities"]
    # The customer's file and Olena's document: links to the CRM's files as stored, and
    # those files are still there (at the address of the CRM restored here).
    files = [url for url in links(history) if "/files/" in url]
    assert [url.rsplit("/", 1)[-1] for url in files] == ["rekvizyty-TOV-Koval.pdf", "rakhunok-1001.pdf"]
    old_base = json.loads((FIXTURE / "crm.json").read_text(encoding="utf-8"))["base_url"]
    for url in files:
        assert url.startswith(old_base + "/files/")
        served = requests.get(url.replace(old_base, u.crm.url), timeout=5)
        assert served.status_code == 200 and served.content.startswith(b"%PDF-1.4")

    # The lists of a manager's chats, now and in history, as release 2 left them.
    def listed(label: str, user_id: int = OLENA) -> list[str]:
        u.say(user_id, label)
        return [x.split(" ")[0] for x in labels(u.last(user_id)) if x.startswith("#")]

    assert listed("🔥 Мої переписки") == ["#1012"]
    assert listed("📁 Історія моїх переписок") == ["#1010", "#1001"]  # removed, expired
    assert listed("📁 Історія моїх закріплених чатів") == []
    assert listed("📁 Історія моїх закріплених чатів", TARAS) == ["#1005"]
    assert listed("🔥 Мої переписки", TARAS) == ["#1002"]

    # The history of the phone chat: the photo and the long text, from release 2's store.
    u.say(OLENA, "/start")
    u.say(OLENA, "📁 Історія всіх чатів")
    chats = u.last(OLENA)
    u.press_label(OLENA, chats, next(x for x in labels(chats) if x.startswith("#1002 ")))
    u.press_label(OLENA, u.last(OLENA), "📁 Історія чата")
    text = visible(u.last(OLENA))
    assert "Ось такий колір потрібен\n🖼 зображення kolir.jpg" in text
    assert "Добрий день! Хочу уточнити кілька моментів перед покупкою." in text
    assert "… (повністю — у CRM)" in text


def test_roles_survive_the_upgrade(upgraded):
    u = upgraded
    # The banned person still gets nothing, whatever they do.
    petro_before = u.highest_id(PETRO)
    petro_row = u.db.fetchone("SELECT * FROM users WHERE tg_id = %s", (PETRO,))
    u.say(PETRO, "/start")
    u.say(PETRO, "Розблокуйте, будь ласка")
    waiting = STORY["waiting_post"]
    u.tg.user_presses_button(PETRO, SHARED_CHAT, waiting["message_id"], waiting["callback_data"])
    idle(u.desk)
    assert u.new_messages(PETRO, petro_before) == []
    assert u.db.fetchone("SELECT * FROM users WHERE tg_id = %s", (PETRO,)) == petro_row
    assert pins_of(u.db, 1001) == [(OLENA, "PIN", "UN_PIN")]

    # The pending person is still waiting for approval.
    u.say(IVAN, "Доброго дня, мене вже підтвердили?")
    assert visible(u.last(IVAN)).startswith("Дякуємо! Ваш запит на доступ надіслано адміністраторам")

    # Managers get their menus, each in their language.
    u.say(JOHN, "/start")
    assert visible(u.last(JOHN)) == "Welcome, @john_smith! You are connected to KeepDesk."
    u.say(TARAS, "/start")
    assert visible(u.last(TARAS)) == "Вітаємо, Тарас! Ви підключені до KeepDesk."

    # The owner's admin commands work: everybody with their role, the pins of a chat.
    u.say(ADMIN, "/all_users")
    people = visible(u.last(ADMIN))
    for line in ("@oksana_owner · 9001 · адмін", "@olena_sales · 701 · менеджер",
                 "Тарас · 702 · менеджер", "@john_smith · 703 · менеджер",
                 "@ivan_k · 704 · очікує", "@petro_m · 705 · заблокований"):
        assert line in people, people
    u.say(ADMIN, "/get_connected_users_1007")
    pins = visible(u.last(ADMIN))
    assert re.search(r"Тарас · PIN · DELETE_PIN", pins) and re.search(r"@oksana_owner · PIN · ACTIVE", pins)
    u.say(ADMIN, "/clean")
    said = [visible(m) for m in u.bot_messages(ADMIN)[-2:]]
    assert said[0] == "🧹 Очищення запущено у фоні; звіт надійде сюди."
    assert said[1] == ("🧹 Очищення завершено: видалено постів у спільному чаті — 0 (не вдалося"
                       " — 0); видалено збережених повідомлень — 0, записів про пости — 0,"
                       " завершених задач черги — 0.")  # a month of history is kept
    # …and approving the pending person, at last.
    ivan_before = u.highest_id(IVAN)
    u.say(ADMIN, f"/approve_{IVAN}")
    assert visible(u.last(ADMIN)) == "✅ @ivan_k тепер менеджер."
    assert [visible(m) for m in u.new_messages(IVAN, ivan_before)] == \
           ["✅ Доступ підтверджено. Ласкаво просимо до KeepDesk!"]
    # A manager's admin command gets no reaction, as before.
    olena_before = u.highest_id(OLENA)
    u.say(OLENA, f"/ban_{TARAS}")
    assert u.new_messages(OLENA, olena_before) == []
    assert u.db.scalar("SELECT role FROM users WHERE tg_id = %s", (TARAS,)) == "manager"


def test_task_statuses_survive_the_upgrade(upgraded):
    u = upgraded
    u.say(OLENA, "📊 Статистика")
    stats = u.last(OLENA)
    tasks = [label.split(" ")[:2] for label in labels(stats) if "#" in label]
    # The done task stays on the board a day after its last change (SPEC §8), with its holder.
    assert tasks == [["★", "#1006"], ["●", "#1005"], ["✅", "@olena_sales"]]

    u.say(OLENA, "⚡ Закріплені чати")
    pinned = u.last(OLENA)
    assert [x.split(" ")[0] for x in labels(pinned) if x.startswith("#")] == ["#1004"]
    u.press_label(OLENA, pinned, next(x for x in labels(pinned) if x.startswith("#1004 ")))
    card = u.last(OLENA)
    assert "Статус задачі: виконана" in visible(card)
    assert "Закріплено за: @olena_sales" in visible(card)
    # The holder may reopen it, as before.
    answer = u.press_label(OLENA, card, "✅ Змінити статус діалогу")
    assert answer["text"] == "Статус задачі #1004: в роботі."
    assert u.db.scalar("SELECT status FROM conversations WHERE id = 1004") == "in_work"

    u.say(JOHN, "📊 Statistics")
    # Who holds each task (SPEC §8): "□ @olena_sales <since> #1004 …".
    assert [(x.split(" ")[0], re.search(r"#(\d+)", x).group(1)) for x in labels(u.last(JOHN))
            if "#" in x] == [("□", "1004"), ("★", "1006"), ("●", "1005")]
    assert "@olena_sales" in [x for x in labels(u.last(JOHN)) if "#1004" in x][0]


def test_the_manager_left_writing_to_a_chat_writes_on(upgraded):
    u = upgraded
    assert u.db.fetchone("SELECT conversation_id, mode FROM manager_state WHERE tg_id = %s",
                         (TARAS,)) == {"conversation_id": 1002, "mode": "send"}
    taras_before = u.highest_id(TARAS)
    u.say(TARAS, "Чохол додамо безкоштовно, відправка сьогодні.")
    wait_for(lambda: u.crm.messages(1002)[-1]["message"] == "Чохол додамо безкоштовно, відправка сьогодні.")
    idle(u.desk)
    sent = u.crm.messages(1002)[-1]
    assert sent["seller"] == 1
    assert [visible(m) for m in u.new_messages(TARAS, taras_before)] == \
           ["✅ Надіслано клієнту (ордер #1002)."]
    shop = [m for m in u.crm.messages(1002) if m["seller"]]
    assert [m["message"] for m in shop].count("Чохол додамо безкоштовно, відправка сьогодні.") == 1

    # A Telegram reply to a notification sent by release 2 still reaches its chat.
    notice = STORY["notice_to_taras_1002"]
    u.say(TARAS, "І ще: гарантія 12 місяців.", reply_to_message_id=notice["message_id"])
    wait_for(lambda: u.crm.messages(1002)[-1]["message"] == "І ще: гарантія 12 місяців.")
    idle(u.desk)
    assert visible(u.last(TARAS)) == "✅ Надіслано клієнту (ордер #1002)."
    # The answers are stored as the shop's messages of the chat, after the old ones.
    stored = u.db.fetchall("SELECT id, external_id, direction, text FROM messages"
                           " WHERE conversation_id = 1002 ORDER BY id")
    assert [r["text"] for r in stored[-2:]] == ["Чохол додамо безкоштовно, відправка сьогодні.",
                                                "І ще: гарантія 12 місяців."]
    assert all(r["direction"] == "shop" for r in stored[-2:])
    assert [int(r["external_id"]) for r in stored[-2:]] == [m["id"] for m in u.crm.messages(1002)[-2:]]


def test_work_queued_when_release_2_stopped_is_done_once_after_the_upgrade(upgraded):
    u = upgraded
    queued = {job["kind"]: job for job in STORY["pending_jobs"]}
    assert sorted(queued) == ["crm_sync", "tg_send", "tg_update"]
    for job in queued.values():
        assert u.db.scalar("SELECT status FROM jobs WHERE id = %s", (job["id"],)) == "done"

    # The post Telegram refused (5xx) an hour before the upgrade: delivered, once.
    send = queued["tg_send"]
    assert send["payload"]["chat_id"] == SHARED_CHAT
    posts = [m for m in u.bot_messages(SHARED_CHAT) if about(m, 1009)]
    assert len(posts) == 1
    [post] = posts
    assert visible(post).endswith("Добрий вечір! Є в наявності V15 Detect?")
    assert labels(post) == ["✍ Відповісти"]
    assert post["message_id"] > STORY["waiting_post"]["message_id"]  # Telegram's ids go on
    assert u.db.fetchone("SELECT conversation_id, message_id FROM tg_message_map"
                         " WHERE tg_chat_id = %s AND tg_message_id = %s",
                         (SHARED_CHAT, post["message_id"])) == \
           {"conversation_id": 1009, "message_id": send["payload"]["crm_message_id"]}
    sends = [c for c in u.tg.calls("sendMessage") if c["params"].get("chat_id") == SHARED_CHAT
             and "V15 Detect?" in str(c["params"].get("text"))]
    assert [c["status"] for c in sends] == [200]
    answer = u.press_label(JOHN, post, "✍ Відповісти")  # its button works like any other
    assert answer["text"] == "✅ Chat 1009 is pinned to you."

    # The owner's answer, taken in by the webhook while the workers had stopped: it reaches
    # the customer once, and she gets her ✅ as a reply to it.
    update = queued["tg_update"]["payload"]["message"]
    answers = [m for m in u.crm.messages(1007) if m["message"] == update["text"]]
    assert len(answers) == 1 and answers[0]["seller"] == 1
    confirmation = u.last(ADMIN)
    assert visible(confirmation) == "✅ Надіслано клієнту (ордер #1007)."
    assert confirmation["reply_to_message_id"] == update["message_id"]

    # The customer who wrote while the workers had stopped: the sync ran, the post is there.
    [router] = [m for m in u.bot_messages(SHARED_CHAT) if about(m, 1011)
                and visible(m).endswith("А з тарифами Київстар він працює?")]
    assert labels(router) == ["✍ Відповісти"]

    # Nothing failed on the way: the owner sees no errors.
    u.say(ADMIN, "/errors")
    assert visible(u.last(ADMIN)) == "✅ Помилок немає."
