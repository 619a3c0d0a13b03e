"""schema.sql and migrate: idempotent, and the database itself enforces the invariants."""
import threading

import pymysql
import pytest

from models.db import Database, connect_kwargs, migrate


def snapshot(db: Database) -> dict:
    tables = [r["TABLE_NAME"] for r in db.fetchall(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
        " ORDER BY TABLE_NAME")]
    shape = {t: db.fetchone(f"SHOW CREATE TABLE `{t}`")["Create Table"] for t in tables}
    rows = {t: db.fetchall(f"CHECKSUM TABLE `{t}`")[0]["Checksum"] for t in tables}
    return {"shape": shape, "rows": rows}


def test_migrate_twice_changes_nothing(db):
    db.execute("INSERT INTO conversations (id, channel, external_id, customer_email)"
               " VALUES (1, 'keepingcrm', '1', 'a@example.com')")
    migrate(db)
    before = snapshot(db)
    assert {"users", "conversations", "messages", "tg_message_map", "pins", "jobs"} <= set(before["shape"])
    migrate(db)
    assert snapshot(db) == before
    assert db.scalar("SELECT customer_email FROM conversations WHERE id = 1") == "a@example.com"


def test_migrate_creates_everything_on_an_empty_database(mariadb, settings):
    mariadb.create_database("keepdesk_empty", drop=True)
    empty = Database(settings.replace(mysql_db="keepdesk_empty"), pool_size=1)
    try:
        assert empty.scalar("SELECT COUNT(*) FROM information_schema.TABLES"
                            " WHERE TABLE_SCHEMA = DATABASE()") == 0
        migrate(empty)
        first = snapshot(empty)
        migrate(empty)
        assert snapshot(empty) == first
        assert empty.fetchone("SHOW TABLE STATUS LIKE 'pins'")["Engine"] == "InnoDB"
        assert empty.fetchone("SHOW TABLE STATUS LIKE 'messages'")["Collation"].startswith("utf8mb4")
    finally:
        empty.close()


def test_a_crm_message_is_stored_once(db):
    db.execute("INSERT INTO conversations (id, channel, external_id) VALUES (5, 'keepingcrm', '5')")
    db.execute("INSERT INTO messages (conversation_id, external_id, direction, text)"
               " VALUES (5, '77', 'client', 'hi')")
    with pytest.raises(pymysql.err.IntegrityError):  # the same message of its channel, again
        db.execute("INSERT INTO messages (conversation_id, external_id, direction, text)"
                   " VALUES (5, '77', 'client', 'hi')")


def test_second_active_pin_is_refused(db):
    db.execute("INSERT INTO pins (conversation_id, manager_id) VALUES (10, 1)")
    with pytest.raises(pymysql.err.IntegrityError):
        db.execute("INSERT INTO pins (conversation_id, manager_id) VALUES (10, 2)")
    # History is unlimited: expired and removed pins do not count.
    db.execute("UPDATE pins SET state = 'UN_PIN' WHERE conversation_id = 10")
    db.execute("INSERT INTO pins (conversation_id, manager_id, state) VALUES (10, 3, 'DELETE_PIN')")
    db.execute("INSERT INTO pins (conversation_id, manager_id) VALUES (10, 2)")
    assert db.scalar("SELECT COUNT(*) FROM pins WHERE conversation_id = 10 AND state = 'ACTIVE'") == 1
    # Reactivating an old pin while another is active is refused too.
    with pytest.raises(pymysql.err.IntegrityError):
        db.execute("UPDATE pins SET state = 'ACTIVE' WHERE conversation_id = 10 AND manager_id = 1")


def test_racing_connections_get_exactly_one_active_pin(db, settings):
    """Twenty connections insert an active pin for one chat at the same instant."""
    racers = 20
    barrier = threading.Barrier(racers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def race(manager_id: int) -> None:
        conn = pymysql.connect(**connect_kwargs(settings))
        try:
            conn.begin()
            with conn.cursor() as cur:
                barrier.wait()
                try:
                    cur.execute("INSERT INTO pins (conversation_id, manager_id) VALUES (42, %s)", (manager_id,))
                    conn.commit()
                    result = "pinned"
                except pymysql.err.IntegrityError:
                    conn.rollback()
                    result = "refused"
        finally:
            conn.close()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["pinned"] + ["refused"] * (racers - 1)
    assert db.scalar("SELECT COUNT(*) FROM pins WHERE conversation_id = 42 AND state = 'ACTIVE'") == 1


def test_schema_sql_is_what_the_migrations_make(db):
    """schema.sql is for reading; it must never drift from the migrations
    (regenerate it with `python -m bot schema > schema.sql`)."""
    from conftest import ROOT
    from models.db import schema_text
    assert schema_text(db) == (ROOT / "schema.sql").read_text(encoding="utf-8")


def test_migrations_are_recorded_and_a_second_run_applies_nothing(db):
    from models.db import pending_migrations
    assert pending_migrations(db) == []
    assert migrate(db) == []
    applied = [r["migration_id"] for r in db.fetchall(
        "SELECT migration_id FROM _yoyo_migration ORDER BY applied_at_utc, migration_id")]
    from models.db import migration_ids
    assert applied[:3] == ["0001.baseline", "0002.side-effects", "0003.conversations"]
    assert sorted(applied) == migration_ids()


def test_every_later_migration_can_run_again_after_an_interruption(db):
    """MariaDB commits each DDL statement on its own, so a migration stopped half-way is
    run again from its start: every statement of every migration after the conversations
    one (which is made of guarded steps, tests/test_upgrade.py) must find its work done and
    leave the schema as it is."""
    from yoyo.migrations import read_sql_migration
    from models.db import MIGRATIONS_PATH, schema_text
    before = schema_text(db)
    later = sorted(p for p in MIGRATIONS_PATH.glob("*.sql") if p.name >= "0004")
    assert later
    for path in later:
        _, _, statements = read_sql_migration(str(path))
        for statement in statements:
            db.execute(statement)
    assert schema_text(db) == before

