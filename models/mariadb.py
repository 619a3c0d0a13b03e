"""A private MariaDB server in a directory of our own, reachable on a unix socket.

Used by `make run` when no MYSQL_HOST is configured (data under var/mysql, kept between
runs) and by the test session (a throwaway directory). Runs the Debian `mariadbd`; when it
is missing, `ensure_installed()` installs Debian's package as root or says what to do.

Private to KeepDesk, whoever else has an account on the machine:
* the server's folder (data, socket, temporary files) is 0700 and owned by the OS account
  the server runs as: no other account reaches the socket;
* the server never runs as OS root: started by root, it runs as the `mysql` system user
  (created if missing) and KeepDesk's root processes still reach the socket;
* KeepDesk connects as the database user `keepdesk`, whose random password is made on
  first start and kept 0600 in the server's folder; it may use its own databases only
  (no FILE, no global privilege);
* the administrator is `root@localhost` identified by unix_socket (only OS root), plus,
  when KeepDesk runs as another OS account, that account's name identified the same way:
  no password to steal, none to guess;
* `secure_file_priv` is a private folder of the server's, so `SELECT … INTO OUTFILE` and
  `LOAD DATA INFILE` cannot touch any other file;
* a folder made by an older KeepDesk (root with no password, data owned by root) is put
  right on its next start.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import pymysql

from utils.private_files import FOLDER_MODE, private_folder, read_secret

log = logging.getLogger(__name__)


class MariaDBUnavailable(RuntimeError):
    """mariadbd is not installed, or cannot run here as a private server (the message
    says why and what to do)."""


APP_USER = "keepdesk"        # the database user KeepDesk's processes connect as
SERVER_OS_USER = "mysql"     # the OS account the server runs as when started by root
ACCESS_DENIED = (1045, 1698)


def server_account() -> pwd.struct_passwd:
    """The OS account the local server runs as: ours, or `mysql` when we are root."""
    if os.geteuid() != 0:
        return _own_account()
    try:
        return pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        log.info("creating the system user %s for the local MariaDB", SERVER_OS_USER)
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                        SERVER_OS_USER], check=True)
        return pwd.getpwnam(SERVER_OS_USER)


def admin_user() -> str:
    """The database administrator we connect as over unix_socket: our OS account's name."""
    return _own_account().pw_name


def _own_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwuid(os.geteuid())
    except KeyError:
        raise MariaDBUnavailable(
            f"this OS account (uid {os.geteuid()}) has no name in /etc/passwd; the local "
            "MariaDB lets in its administrator by OS account name. Add the account, or set "
            "MYSQL_HOST to an existing MySQL/MariaDB server.") from None


def _separate_server_user(account: pwd.struct_passwd) -> bool:
    return account.pw_uid != os.geteuid()


def _unreachable_ancestor(path: Path, account: pwd.struct_passwd) -> Path | None:
    """The first folder above `path` that `account` may not pass through, if any."""
    groups = set(os.getgrouplist(account.pw_name, account.pw_gid))
    for folder in reversed(path.parents):
        info = folder.stat()
        if info.st_uid == account.pw_uid:
            bit = stat.S_IXUSR
        elif info.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return folder
    return None


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
    """One mariadbd process with its data in `directory`, private to us (see above).

    `connect()` is the administrator (tests, set-up); KeepDesk's processes get
    `environment()`, the `keepdesk` user."""

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
        # The only folder INTO OUTFILE / LOAD DATA may touch (secure_file_priv).
        self.files_dir = self.directory / "files"
        self.password_file = self.directory / f"{APP_USER}.password"
        self.durable = durable
        self.buffer_pool = buffer_pool
        self.process: subprocess.Popen | None = None

    # -- lifecycle -------------------------------------------------------------------

    def prepare(self) -> pwd.struct_passwd:
        """Make the server's folders private to the OS account it runs as (0700, owned by
        it) and check that account can reach them; returns that account."""
        account = server_account()
        separate = _separate_server_user(account)
        if separate:
            blocked = _unreachable_ancestor(self.directory, account)
            if blocked is not None:
                raise MariaDBUnavailable(
                    f"the local MariaDB runs as the system user {account.pw_name} (never as "
                    f"root), which cannot reach {self.directory}: {blocked} is closed to it. "
                    "Keep var/ elsewhere (KEEPDESK_VAR_DIR=/var/lib/keepdesk), run KeepDesk "
                    "as a non-root user, or set MYSQL_HOST.")
        new = not self.directory.exists()
        private_folder(self.directory)
        if separate and (new or self.directory.stat().st_uid != account.pw_uid):
            # New, or made by an older KeepDesk that ran the server as root.
            _chown_tree(self.directory, account, keep=(self.password_file,))
        for folder in (self.tmpdir, self.files_dir):
            folder.mkdir(mode=FOLDER_MODE, exist_ok=True)
            if separate:
                os.chown(folder, account.pw_uid, account.pw_gid)
        for folder in (self.directory, self.tmpdir, self.files_dir, self.datadir):
            if folder.exists() and stat.S_IMODE(folder.stat().st_mode) != FOLDER_MODE:
                folder.chmod(FOLDER_MODE)
        return account

    def initialise(self) -> None:
        account = self.prepare()
        if (self.datadir / "mysql").is_dir():
            return
        install_db = find_binary("mariadb-install-db", "mysql_install_db")
        # root@localhost is identified by unix_socket only (OS root); so is the second
        # administrator, the OS account that owns the server (or runs KeepDesk).
        cmd = [install_db, "--no-defaults", f"--datadir={self.datadir}", f"--tmpdir={self.tmpdir}",
               "--auth-root-authentication-method=socket", "--skip-test-db",
               "--skip-name-resolve"]
        if _separate_server_user(account):
            cmd.append(f"--user={account.pw_name}")
        else:
            cmd.append(f"--auth-root-socket-user={account.pw_name}")
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {result.stderr[-2000:]}")
        if not _separate_server_user(account):
            self.datadir.chmod(FOLDER_MODE)

    def start(self, timeout: float = 60.0) -> "LocalMariaDB":
        ensure_installed()
        self.initialise()
        if not self.is_running():
            self._launch(timeout)
        self._secure_accounts()
        return self

    def _launch(self, timeout: float) -> None:
        account = server_account()
        cmd = [find_binary("mariadbd", "mysqld"), "--no-defaults",
               f"--datadir={self.datadir}", f"--socket={self.socket}", f"--tmpdir={self.tmpdir}",
               f"--pid-file={self.pid_file}", f"--log-error={self.log_file}",
               f"--secure-file-priv={self.files_dir}",
               "--skip-networking", "--skip-name-resolve", "--skip-log-bin",
               f"--innodb-buffer-pool-size={self.buffer_pool}",
               "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
               "--max-connections=500"]
        if not self.durable:
            # A throwaway test database need not survive a power cut; fsyncs cost seconds.
            cmd += ["--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0",
                    "--innodb-doublewrite=0"]
        if _separate_server_user(account):
            cmd.append(f"--user={account.pw_name}")   # never as root
        # Own session: Ctrl-C in the terminal reaches our supervisor, which stops the
        # server in order instead of the signal killing it mid-write.
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        self._wait_ready(timeout)
        # mariadbd makes its socket 0777; the folder already keeps everybody else out,
        # and the socket itself now does too (our root processes pass any mode).
        os.chmod(self.socket, 0o700)

    def _secure_accounts(self) -> None:
        """The `keepdesk` user with the password of our file; an older KeepDesk's open
        root (no password) closed, its anonymous and remote accounts dropped."""
        password = self.app_password
        conn, legacy = self._admin_connection()
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW CREATE USER 'root'@'localhost'")
                legacy = legacy or "unix_socket" not in cur.fetchone()[0]
                if legacy:
                    log.warning("securing the local MariaDB made by an older KeepDesk "
                                "(root had no password)")
                    cur.execute("SELECT User, Host FROM mysql.user WHERE User = ''"
                                " OR (User = 'root' AND Host <> 'localhost')")
                    for user, host in cur.fetchall():
                        cur.execute("DROP USER %s@%s", (user, host))
                    admin = admin_user()
                    if admin != "root":
                        cur.execute("CREATE USER IF NOT EXISTS %s@'localhost' IDENTIFIED VIA unix_socket",
                                    (admin,))
                        cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@'localhost' WITH GRANT OPTION",
                                    (admin,))
                    cur.execute("ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket")
                cur.execute("CREATE USER IF NOT EXISTS %s@'localhost' IDENTIFIED BY %s",
                            (APP_USER, password))
                cur.execute("ALTER USER %s@'localhost' IDENTIFIED BY %s", (APP_USER, password))
        finally:
            conn.close()

    @property
    def app_password(self) -> str:
        """The `keepdesk` user's password: random, made on first start, kept 0600."""
        return read_secret(self.password_file)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited at start-up; see {self.log_file}:\n"
                                   + self._log_tail())
            try:
                self._admin_connection()[0].close()
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
            self._admin_connection()[0].close()
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
        """The administrator: our OS account's name, identified by unix_socket."""
        return self._connect(admin_user(), "", database)

    def connect_app(self, database: str | None = None) -> pymysql.connections.Connection:
        """As KeepDesk's processes connect: the `keepdesk` user and its password."""
        return self._connect(APP_USER, self.app_password, database)

    def _connect(self, user: str, password: str, database: str | None):
        return pymysql.connect(unix_socket=self.socket, user=user, password=password,
                               database=database, connect_timeout=2, autocommit=True,
                               charset="utf8mb4")

    def _admin_connection(self) -> tuple[pymysql.connections.Connection, bool]:
        """The administrator's connection, and whether it came in by an older KeepDesk's
        root with no password (which `_secure_accounts` then closes)."""
        try:
            return self.connect(), False
        except pymysql.err.OperationalError as exc:
            if exc.args[0] not in ACCESS_DENIED:
                raise
            return self._connect("root", "", None), True

    def create_database(self, name: str, *, drop: bool = False) -> None:
        """Create `name` (empty with `drop`) and let the `keepdesk` user use it, and only it."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                if drop:
                    cur.execute(f"DROP DATABASE IF EXISTS `{_identifier(name)}`")
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{_identifier(name)}` "
                            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
                cur.execute(f"GRANT ALL PRIVILEGES ON `{_identifier(name)}`.* TO %s@'localhost'",
                            (APP_USER,))
        finally:
            conn.close()

    def environment(self, database: str) -> dict[str, str]:
        """The settings that point KeepDesk at this server, as the `keepdesk` user."""
        return {"MYSQL_SOCKET": self.socket, "MYSQL_USER": APP_USER,
                "MYSQL_PASSWORD": self.app_password, "MYSQL_DB": database, "MYSQL_HOST": ""}


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a safe database name: {name!r}")
    return name


def _chown_tree(top: Path, account: pwd.struct_passwd, *, keep=()) -> None:
    keep = {Path(p) for p in keep}
    os.chown(top, account.pw_uid, account.pw_gid)
    for folder, subfolders, files in os.walk(top):
        for name in subfolders + files:
            path = Path(folder) / name
            if path not in keep:
                os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:   # a server another object of ours started has exited but is not reaped yet
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


LOCAL_DB_NAME = "keepdesk"


def local_server(settings) -> LocalMariaDB:
    """The MariaDB of `make run` without MYSQL_HOST: var/mysql (not started here)."""
    return LocalMariaDB(Path(settings.var_dir) / "mysql")


def local_database(settings) -> tuple[LocalMariaDB, dict[str, str]]:
    """Start (or reuse) the MariaDB under var/ (`make run` without MYSQL_HOST) and say how
    to reach it. var/ becomes 0700 (0710 for the server's group when the server runs as
    its own system user, so that it reaches var/mysql and nothing else)."""
    account = server_account()
    private_folder(settings.var_dir,
                   reach_group=account.pw_gid if _separate_server_user(account) else None)
    server = local_server(settings).start()
    server.create_database(LOCAL_DB_NAME)
    return server, server.environment(LOCAL_DB_NAME)


def local_settings(settings):
    """`settings` pointed at the MariaDB under var/ (started if need be), as `keepdesk`;
    returns (server, settings)."""
    server, env = local_database(settings)
    return server, settings.replace(mysql_socket=env["MYSQL_SOCKET"], mysql_user=env["MYSQL_USER"],
                                    mysql_password=env["MYSQL_PASSWORD"], mysql_db=env["MYSQL_DB"],
                                    mysql_host=None)


@contextlib.contextmanager
def reachable(settings):
    """`settings` able to reach the database for one command: as they are when MYSQL_HOST
    or MYSQL_SOCKET is set, else pointed at `make run`'s own MariaDB under var/ — started for
    the command when it is not running (and stopped after), the one `make run` keeps
    otherwise."""
    if not settings.uses_local_mariadb:
        yield settings
        return
    started_here = not local_server(settings).is_running()
    server, settings = local_settings(settings)
    try:
        yield settings
    finally:
        if started_here:
            server.stop()
