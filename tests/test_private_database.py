"""The database `make run` starts on its own (no MYSQL_HOST) is private to KeepDesk.

Another local account can neither reach its socket nor read its password; the server
itself never runs as OS root; its own OS account cannot log in as root or keepdesk;
nobody writes or reads a file through INTO OUTFILE / LOAD_FILE outside its private
folder; and a folder an older KeepDesk left open (root without a password, socket
0777, data owned by root) is closed on its next start.
"""
from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymysql
import pytest

from conftest import ROOT
from config import load_settings
from models.mariadb import (APP_USER, SERVER_OS_USER, find_binary, local_database,
                            local_server)

CLIENT = find_binary("mariadb", "mysql")
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: runs a client as another OS "
                                                       "account (setpriv --reuid)")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def client_as(user: str, *args: str) -> subprocess.CompletedProcess:
    """The mariadb command-line client, run as the OS account `user`."""
    account = pwd.getpwnam(user)
    return subprocess.run(["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
                           "--clear-groups", CLIENT, "--no-defaults", *args, "-e", "SELECT 1"],
                          capture_output=True, text=True, timeout=30)


def bare_environment(var_dir: Path) -> dict[str, str]:
    """What a newcomer's `make run` has: a bot token, no MYSQL_* at all."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYSQL_")}
    env.update({"BOT_TOKEN": "123456:sandbox-token", "KEEPDESK_VAR_DIR": str(var_dir),
                "PYTHONPATH": str(ROOT)})
    return env


@pytest.fixture
def var_dir():
    # In /tmp itself: pytest's tmp_path sits in a folder closed to every account but root.
    directory = Path(tempfile.mkdtemp(prefix="keepdesk-private-var-"))
    yield directory
    local_server(load_settings(bare_environment(directory), env_file=None,
                               database_only=True)).stop()
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def local(var_dir):
    """`python -m bot migrate` made the database (the product's own path: var/mysql,
    schema, then stopped); `local_database`, what `make run` calls, starts it again."""
    made = subprocess.run([sys.executable, "-m", "bot", "migrate"], cwd=ROOT,
                          env=bare_environment(var_dir), capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    settings = load_settings(bare_environment(var_dir), env_file=None, database_only=True)
    server, env = local_database(settings)
    yield server, env
    server.stop()


@as_root
def test_another_local_account_cannot_reach_the_make_run_database(var_dir, local):
    server, env = local
    assert env["MYSQL_USER"] == APP_USER and env["MYSQL_PASSWORD"]
    # KeepDesk itself gets in, as keepdesk, and sees its tables.
    with server.connect_app("keepdesk") as conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone()[0] == "keepdesk@localhost"
        cur.execute("SHOW TABLES")
        assert "jobs" in {row[0] for row in cur.fetchall()}

    # nobody: as MariaDB root with no password, or as keepdesk with the right password
    # (had it been stolen), the socket is out of reach; the password file is unreadable.
    for args in (["-uroot"], [f"-u{APP_USER}", f"-p{env['MYSQL_PASSWORD']}"]):
        attempt = client_as("nobody", f"--socket={server.socket}", *args)
        assert attempt.returncode != 0
        assert "Can't connect" in attempt.stderr and "(13)" in attempt.stderr, attempt.stderr
    nobody = pwd.getpwnam("nobody")
    peek = subprocess.run(["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                           "--clear-groups", "cat", str(server.password_file)],
                          capture_output=True, text=True)
    assert peek.returncode != 0 and env["MYSQL_PASSWORD"] not in peek.stdout

    # The server runs as its own system user, never as root …
    pid = int(server.pid_file.read_text())
    assert os.stat(f"/proc/{pid}").st_uid == pwd.getpwnam(SERVER_OS_USER).pw_uid != 0
    # … and even that account, which does reach the socket, is not let in as root
    # (unix_socket: OS root only) nor as keepdesk without the password.
    for args in (["-uroot"], [f"-u{APP_USER}"]):
        attempt = client_as(SERVER_OS_USER, f"--socket={server.socket}", *args)
        assert attempt.returncode != 0 and "Access denied" in attempt.stderr, attempt.stderr

    # Folders 0700 (var/ lets only the server's group pass through to var/mysql), the
    # socket and the password file closed too.
    server_account = pwd.getpwnam(SERVER_OS_USER)
    assert mode(var_dir) == 0o710 and var_dir.stat().st_gid == server_account.pw_gid
    for folder in (server.directory, server.datadir, server.tmpdir, server.files_dir):
        assert mode(folder) == 0o700, folder
        assert folder.stat().st_uid == server_account.pw_uid, folder
    assert mode(Path(server.socket)) == 0o700
    assert mode(server.password_file) == 0o600 and server.password_file.stat().st_uid == 0


def test_into_outfile_cannot_write_outside_the_private_folder(local):
    server, _ = local
    target = Path(tempfile.gettempdir()) / f"keepdesk-outfile-{os.getpid()}"
    target.unlink(missing_ok=True)
    try:
        with server.connect_app("keepdesk") as conn, conn.cursor() as cur:
            with pytest.raises(pymysql.err.OperationalError) as refused:   # no FILE privilege
                cur.execute(f"SELECT 'x' INTO OUTFILE '{target}'")
            assert refused.value.args[0] == 1227
        with server.connect() as conn, conn.cursor() as cur:   # even the administrator
            cur.execute("SELECT @@secure_file_priv")
            assert Path(cur.fetchone()[0]) == server.files_dir
            with pytest.raises(pymysql.err.OperationalError) as refused:
                cur.execute(f"SELECT 'x' INTO OUTFILE '{target}'")
            assert refused.value.args[0] == 1290   # --secure-file-priv
            cur.execute("SELECT LOAD_FILE('/etc/passwd')")
            assert cur.fetchone()[0] is None
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)


def test_the_web_secret_key_made_under_var_is_private(var_dir, local):
    from doors.panel import secret_key
    settings = load_settings(bare_environment(var_dir), env_file=None, database_only=True)
    assert secret_key(settings.replace(web_secret_key=""))
    assert mode(var_dir / "web_secret_key") == 0o600
    assert mode(var_dir) in (0o700, 0o710)


@as_root
def test_a_database_an_older_keepdesk_left_open_is_closed_on_its_next_start(var_dir, request):
    """What KeepDesk did before: root with no password, the server run as OS root, its
    files root's, the socket 0777 in a 0755 folder."""
    var_dir.chmod(0o755)
    directory = var_dir / "mysql"
    directory.mkdir()
    directory.chmod(0o755)
    made = subprocess.run([find_binary("mariadb-install-db"), "--no-defaults",
                           f"--datadir={directory / 'data'}", "--auth-root-authentication-method=normal",
                           "--skip-test-db", "--skip-name-resolve", "--user=root"],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    old = subprocess.Popen([find_binary("mariadbd"), "--no-defaults", f"--datadir={directory / 'data'}",
                            f"--socket={directory / 'mysqld.sock'}", f"--pid-file={directory / 'mysqld.pid'}",
                            "--skip-networking", "--skip-log-bin", "--innodb-buffer-pool-size=32M",
                            "--user=root"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if client_as("nobody", f"--socket={directory / 'mysqld.sock'}", "-uroot").returncode == 0:
                break   # the finding: any local account is MariaDB root
            old.poll()
            assert old.returncode is None
            time.sleep(0.1)
        else:
            pytest.fail("the old-style server did not let nobody in (the setting changed?)")
    finally:
        old.terminate()
        old.wait(timeout=60)

    settings = load_settings(bare_environment(var_dir), env_file=None, database_only=True)
    server, _ = local_database(settings)
    request.addfinalizer(server.stop)
    assert client_as("nobody", f"--socket={server.socket}", "-uroot").returncode != 0
    attempt = client_as(SERVER_OS_USER, f"--socket={server.socket}", "-uroot")
    assert attempt.returncode != 0 and "Access denied" in attempt.stderr, attempt.stderr
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT User, Host FROM mysql.user WHERE User = '' OR User = 'root'")
        assert cur.fetchall() == (("root", "localhost"),)
    mysql_uid = pwd.getpwnam(SERVER_OS_USER).pw_uid
    assert all((Path(folder) / name).stat().st_uid == mysql_uid
               for folder, subfolders, files in os.walk(server.datadir) for name in subfolders + files)
    assert mode(server.directory) == 0o700 and mode(Path(server.socket)) == 0o700
