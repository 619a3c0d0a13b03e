"""Database access: PyMySQL behind a thread-safe DBUtils pool, plus transactions.

Every connection runs in READ COMMITTED (the job queue's claim relies on fresh reads) and
in UTC. Connections are checked when taken from the pool, so a restarted MariaDB is
reconnected to transparently; while it is away, callers get `DatabaseUnavailable`.
"""
from __future__ import annotations

import contextlib
import logging
import random
import re
import threading
import time
from typing import Any, Iterator, Sequence
from urllib.parse import quote, urlencode

import pymysql
import yoyo
import pymysql.cursors
from dbutils.pooled_db import PooledDB, TooManyConnectionsError

from config import ROOT, Settings

log = logging.getLogger(__name__)

MIGRATIONS_PATH = ROOT / "migrations"

# Errors that mean "the database is not reachable right now", not "your query is wrong":
# no connection / gone away / lost (2002, 2003, 2006, 2013, 2055), too many connections
# (1040), shutting down (1053), the connection killed or timed out by the server or a
# balancer in front (1927, 4031), and a Galera node that is not (yet) part of the
# cluster's primary component: "WSREP has not yet prepared node for application use"
# (1047) and a commit refused while it is not connected to it (1180).
_UNAVAILABLE_CODES = {2002, 2003, 2006, 2013, 2055, 1040, 1053, 1927, 4031, 1047, 1180}
# Errors that mean "run the same transaction again": a deadlock — under Galera also a
# certification failure, another node's commit touching the same rows first (1213) — or a
# lock wait timeout (1205). Nothing of the transaction was kept.
_CONFLICT_CODES = {1213, 1205}
RETRY_CONFLICTS = 4           # tries of a single statement that met a conflict


class DatabaseUnavailable(RuntimeError):
    """MariaDB cannot be reached (stopped, restarting, out of connections)."""


def is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, (DatabaseUnavailable, TooManyConnectionsError, pymysql.err.InterfaceError)):
        return True
    if isinstance(exc, pymysql.err.OperationalError) and exc.args:
        return exc.args[0] in _UNAVAILABLE_CODES
    return False


def is_conflict(exc: BaseException) -> bool:
    """A deadlock or a Galera certification failure: the transaction may simply run again."""
    return isinstance(exc, pymysql.err.OperationalError) and bool(exc.args) and exc.args[0] in _CONFLICT_CODES


def again_on_conflict(run):
    """Run `run()` (one autocommit statement, or a whole transaction that starts afresh
    each time) until it does not meet a conflict, a few times, with a short random pause
    between; the last conflict propagates (a door answers 503, a job retries)."""
    for attempt in range(1, RETRY_CONFLICTS + 1):
        try:
            return run()
        except pymysql.err.OperationalError as exc:
            if not is_conflict(exc) or attempt == RETRY_CONFLICTS:
                raise
            time.sleep(random.uniform(0.005, 0.03) * attempt)


# Errors that mean "this row's data does not fit its column", not "the database is broken":
# data too long (1406), truncated (1265), out of range (1264), an incorrect date or value
# (1292, 1366). The statement is undone, the transaction goes on.
_DATA_CODES = {1406, 1265, 1264, 1292, 1366}


def is_data_error(exc: BaseException) -> bool:
    """A refusal of one row's values (or a text that cannot even be encoded for MariaDB)."""
    if isinstance(exc, UnicodeError):
        return True
    return isinstance(exc, pymysql.err.MySQLError) and bool(exc.args) and exc.args[0] in _DATA_CODES


def connect_kwargs(settings: Settings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "user": settings.mysql_user,
        "password": settings.mysql_password,
        "database": settings.mysql_db,
        "charset": "utf8mb4",
        "autocommit": True,
        "connect_timeout": 3,
        "read_timeout": 30,
        "write_timeout": 30,
        "cursorclass": pymysql.cursors.DictCursor,
        "init_command": "SET SESSION tx_isolation = 'READ-COMMITTED', SESSION time_zone = '+00:00'",
    }
    if settings.mysql_socket and not settings.mysql_host:
        kwargs["unix_socket"] = settings.mysql_socket
    else:
        kwargs["host"] = settings.mysql_host or "127.0.0.1"
        kwargs["port"] = settings.mysql_port
    return kwargs


class Database:
    """A pool of connections to KeepDesk's database; connects lazily, on first use."""

    def __init__(self, settings: Settings, *, pool_size: int | None = None) -> None:
        self.settings = settings
        self._kwargs = connect_kwargs(settings)
        self._local = threading.local()
        self._pool_size = pool_size or settings.mysql_pool_size
        self._pool: PooledDB | None = None

    def _get_pool(self) -> PooledDB:
        if self._pool is None:
            # A refused value is not a broken connection: left to itself, DBUtils answers
            # an OperationalError such as 1292 (a bad date) by swapping in a new
            # connection under the caller, the open transaction quietly lost with it.
            self._pool = PooledDB(
                creator=pymysql, mincached=0, maxcached=self._pool_size,
                maxconnections=self._pool_size * 4, blocking=True, ping=1,
                isfatal=lambda error: not is_data_error(error), **self._kwargs)
        return self._pool

    @contextlib.contextmanager
    def connection(self) -> Iterator[pymysql.connections.Connection]:
        try:
            conn = self._get_pool().connection()
        except Exception as exc:
            if is_unavailable(exc):
                raise DatabaseUnavailable(str(exc)) from exc
            raise
        try:
            yield conn
        finally:
            conn.close()  # back to the pool

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Within it, this thread's single statements (`execute`, `fetchone`, …) share one
        pooled connection, checked once when taken (a job's lookups do not each pay a
        checkout and a ping). Transactions and locks still take connections of their own."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        with self.connection() as conn:
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    def single(self):
        """The connection for one autocommit statement: the session's, or a pooled one."""
        conn = getattr(self._local, "conn", None)
        return contextlib.nullcontext(conn) if conn is not None else self.connection()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[pymysql.cursors.DictCursor]:
        """A cursor inside BEGIN … COMMIT; any exception rolls back and propagates."""
        with self.connection() as conn:
            conn.begin()
            cursor = conn.cursor()
            try:
                yield cursor
                conn.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.rollback()
                raise
            finally:
                cursor.close()

    # Small helpers for single statements in autocommit mode (a statement that met a
    # conflict was undone whole, so it is simply run again).

    def _statement(self, sql: str, args, result):
        def run():
            with self.single() as conn, conn.cursor() as cur:
                count = cur.execute(sql, args)
                return result(cur, count)
        return again_on_conflict(run)

    def execute(self, sql: str, args: Sequence | dict | None = None) -> int:
        return self._statement(sql, args, lambda cur, count: count)

    def insert(self, sql: str, args: Sequence | dict | None = None) -> int:
        """Run an INSERT and return the new AUTO_INCREMENT id."""
        return self._statement(sql, args, lambda cur, count: cur.lastrowid)

    def fetchone(self, sql: str, args: Sequence | dict | None = None) -> dict | None:
        return self._statement(sql, args, lambda cur, count: cur.fetchone())

    def fetchall(self, sql: str, args: Sequence | dict | None = None) -> list[dict]:
        return self._statement(sql, args, lambda cur, count: list(cur.fetchall()))

    def scalar(self, sql: str, args: Sequence | dict | None = None) -> Any:
        row = self.fetchone(sql, args)
        return None if row is None else next(iter(row.values()))

    def ping(self) -> bool:
        try:
            return self.scalar("SELECT 1") == 1
        except Exception as exc:  # any failure means "not healthy"; the caller reports it
            log.warning("database ping failed: %s", exc)
            return False

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def migrations_uri(settings: Settings) -> str:
    """The database as a yoyo connection URI (credentials quoted, socket or host)."""
    user = quote(settings.mysql_user or "", safe="")
    password = f":{quote(settings.mysql_password, safe='')}" if settings.mysql_password else ""
    query = {"charset": "utf8mb4"}
    if settings.mysql_socket and not settings.mysql_host:
        location = ""
        query["unix_socket"] = settings.mysql_socket
    else:
        location = f"{settings.mysql_host or '127.0.0.1'}:{settings.mysql_port}"
    return f"mysql://{user}{password}@{location}/{quote(settings.mysql_db, safe='')}?{urlencode(query)}"


def pending_migrations(db: "Database") -> list[str]:
    """Ids of the migrations this database has not had yet, in order."""
    backend = yoyo.get_backend(migrations_uri(db.settings))
    try:
        return [m.id for m in backend.to_apply(yoyo.read_migrations(str(MIGRATIONS_PATH)))]
    finally:
        backend.connection.close()


def migration_ids() -> list[str]:
    """Every versioned migration's id (migrations/*.sql, and *.py for one made of guarded
    steps), in order."""
    return sorted(p.stem for p in MIGRATIONS_PATH.iterdir()
                  if p.suffix in (".sql", ".py") and not p.name.startswith(("_", ".")))


def migrate(db: "Database") -> list[str]:
    """Apply the versioned migrations (migrations/, yoyo) this database lacks; returns
    their ids. Several processes starting at once are safe: yoyo holds a lock in the
    database while it works, and a migration is applied once."""
    backend = yoyo.get_backend(migrations_uri(db.settings))
    try:
        migrations = yoyo.read_migrations(str(MIGRATIONS_PATH))
        with backend.lock():
            todo = backend.to_apply(migrations)
            backend.apply_migrations(todo)
        applied = [m.id for m in todo]
    finally:
        backend.connection.close()
    if applied:
        log.info("migrations applied: %s", ", ".join(applied))
    return applied


SCHEMA_HEADER = """-- KeepDesk's schema as the migrations leave it — for reading, not for applying.
-- The database is built and upgraded by the versioned migrations in migrations/
-- (`python -m bot migrate`); regenerate this file with `python -m bot schema > schema.sql`
-- (tests/test_schema.py fails while it differs from what the migrations make).
"""
_AUTO_INCREMENT = re.compile(r" AUTO_INCREMENT=\d+")


def schema_text(db: "Database") -> str:
    """The tables of KeepDesk (not the migration tool's), as MariaDB describes them."""
    tables = [r["TABLE_NAME"] for r in db.fetchall(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
        " AND TABLE_NAME NOT LIKE %s AND TABLE_NAME <> 'yoyo_lock' ORDER BY TABLE_NAME",
        ("\\_yoyo%",))]
    shapes = [_AUTO_INCREMENT.sub("", db.fetchone(f"SHOW CREATE TABLE `{t}`")["Create Table"]) + ";"
              for t in tables]
    return SCHEMA_HEADER + "\n" + "\n\n".join(shapes) + "\n"
