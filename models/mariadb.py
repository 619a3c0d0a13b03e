"""A private MariaDB server in a directory of our own, reachable on a unix socket.

Used by `make run` when no MYSQL_HOST is configured (data under var/mysql, kept between
runs) and by the test session (a throwaway directory). Runs the Debian `mariadbd`; when it
is missing, `ensure_installed()` installs Debian's package as root or says what to do.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pymysql

log = logging.getLogger(__name__)


class MariaDBUnavailable(RuntimeError):
    """mariadbd is not installed and cannot be installed from here."""


def find_binary(*names: str) -> str | None:
    for name in names:
        for directory in (None, "/usr/sbin", "/usr/bin", "/usr/local/sbin"):
            found = shutil.which(name, path=directory) if directory else shutil.which(name)
            if found:
                return found
    return None


def ensure_installed() -> None:
    """Install Debian's mariadb-server when mariadbd is missing (root only)."""
    if find_binary("mariadbd", "mysqld") and find_binary("mariadb-install-db", "mysql_install_db"):
        return
    if os.geteuid() != 0:
        raise MariaDBUnavailable(
            "mariadbd is not installed. Install it with `sudo apt-get install mariadb-server` "
            "or set MYSQL_HOST to an existing MySQL/MariaDB server.")
    log.info("installing mariadb-server from Debian's packages")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # The package's own service must not start: we run our own server in our own directory.
    policy = Path("/usr/sbin/policy-rc.d")
    created_policy = not policy.exists()
    if created_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                        "mariadb-server", "mariadb-client"], check=True, env=env)
    finally:
        if created_policy:
            policy.unlink(missing_ok=True)


class LocalMariaDB:
    """One mariadbd process with its data in `directory`; root connects over the socket."""

    def __init__(self, directory: str | os.PathLike, *, durable: bool = True,
                 buffer_pool: str = "256M") -> None:
        self.directory = Path(directory).resolve()
        self.datadir = self.directory / "data"
        self.socket = str(self.directory / "mysqld.sock")
        self.pid_file = self.directory / "mysqld.pid"
        self.log_file = self.directory / "mysqld.log"
        # Its own temporary directory: a server starting up deletes the `#sql*` files it
        # finds there, and several throwaway servers (parallel test sessions) share /tmp.
        self.tmpdir = self.directory / "tmp"
        self.durable = durable
        self.buffer_pool = buffer_pool
        self.process: subprocess.Popen | None = None

    # -- lifecycle -------------------------------------------------------------------

    def initialise(self) -> None:
        if (self.datadir / "mysql").is_dir():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self.tmpdir.mkdir(exist_ok=True)
        install_db = find_binary("mariadb-install-db", "mysql_install_db")
        cmd = [install_db, "--no-defaults", f"--datadir={self.datadir}", f"--tmpdir={self.tmpdir}",
               "--auth-root-authentication-method=normal", "--skip-test-db",
               "--skip-name-resolve"]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {result.stderr[-2000:]}")

    def start(self, timeout: float = 60.0) -> "LocalMariaDB":
        ensure_installed()
        self.initialise()
        if self.is_running():
            return self
        self.tmpdir.mkdir(exist_ok=True)
        cmd = [find_binary("mariadbd", "mysqld"), "--no-defaults",
               f"--datadir={self.datadir}", f"--socket={self.socket}", f"--tmpdir={self.tmpdir}",
               f"--pid-file={self.pid_file}", f"--log-error={self.log_file}",
               "--skip-networking", "--skip-name-resolve", "--skip-log-bin",
               f"--innodb-buffer-pool-size={self.buffer_pool}",
               "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
               "--max-connections=500"]
        if not self.durable:
            # A throwaway test database need not survive a power cut; fsyncs cost seconds.
            cmd += ["--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0",
                    "--innodb-doublewrite=0"]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        # Own session: Ctrl-C in the terminal reaches our supervisor, which stops the
        # server in order instead of the signal killing it mid-write.
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited at start-up; see {self.log_file}:\n"
                                   + self._log_tail())
            try:
                self.connect().close()
                return
            except pymysql.err.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"mariadbd did not become ready in {timeout:.0f}s:\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def is_running(self) -> bool:
        try:
            self.connect().close()
            return True
        except pymysql.err.OperationalError:
            return False

    def stop(self, timeout: float = 60.0) -> None:
        """Shut the server down cleanly (SIGTERM), killing it only if it hangs."""
        pid = self._pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.pid == pid:
                if self.process.poll() is not None:
                    break
            elif not _alive(pid):
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
        self.process = None

    def kill(self) -> None:
        """Crash the server (SIGKILL), as a power cut would: for fault tests."""
        pid = self._pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            if self.process is not None:
                self.process.wait()
        self.process = None

    def _pid(self) -> int | None:
        if self.process is not None and self.process.poll() is None:
            return self.process.pid
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- access ----------------------------------------------------------------------

    def connect(self, database: str | None = None) -> pymysql.connections.Connection:
        return pymysql.connect(unix_socket=self.socket, user="root", password="",
                               database=database, connect_timeout=2, autocommit=True,
                               charset="utf8mb4")

    def create_database(self, name: str, *, drop: bool = False) -> None:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                if drop:
                    cur.execute(f"DROP DATABASE IF EXISTS `{_identifier(name)}`")
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{_identifier(name)}` "
                            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        finally:
            conn.close()

    def environment(self, database: str) -> dict[str, str]:
        """The settings that point KeepDesk at this server."""
        return {"MYSQL_SOCKET": self.socket, "MYSQL_USER": "root", "MYSQL_PASSWORD": "",
                "MYSQL_DB": database, "MYSQL_HOST": ""}


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a safe database name: {name!r}")
    return name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


LOCAL_DB_NAME = "keepdesk"


def local_database(settings) -> tuple[LocalMariaDB, dict[str, str]]:
    """Start (or reuse) the MariaDB under var/ (`make run` without MYSQL_HOST) and say how
    to reach it."""
    server = LocalMariaDB(settings.var_dir / "mysql").start()
    server.create_database(LOCAL_DB_NAME)
    return server, server.environment(LOCAL_DB_NAME)
