"""A three-node MariaDB Galera cluster behind HAProxy on loopback, from Debian's packages
(`galera-4`, `haproxy`, `rsync` for the nodes' state transfers), for the scenarios that
lose a machine. Installed when missing (as root), like MariaDB itself.

Each node is a `mariadbd` of its own (data, socket, ports) started with wsrep on; the
first bootstraps the cluster, the others join it by a state transfer. HAProxy sends every
connection to one writer and keeps the other two as backups (docs/deploy.md shows the
same configuration for real machines): when the writer stops answering, new connections
go to the next node within about a second.
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pymysql

from conftest import free_port
from models.mariadb import find_binary, server_account

PROVIDER = "/usr/lib/galera/libgalera_smm.so"
PACKAGES = {"haproxy": "haproxy", "rsync": "rsync", "wsrep_sst_rsync": "mariadb-server"}
DATABASE = "keepdesk_galera"
APP_USER = "keepdesk"

HAPROXY_CONFIG = """\
global
    maxconn 2000

defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    retries 2

# One writer, two backups: every KeepDesk host writes to the same node, so the cluster
# never certifies two hosts' writes against each other in the common case.
listen mariadb
    bind 127.0.0.1:{port}
    option redispatch
    default-server inter 500ms fall 2 rise 3 on-marked-down shutdown-sessions
{servers}
"""


def ensure_installed() -> None:
    """galera-4, haproxy and rsync from Debian's packages when missing (root only)."""
    missing = sorted({package for binary, package in PACKAGES.items() if not find_binary(binary)}
                     | ({"galera-4"} if not Path(PROVIDER).exists() else set()))
    if not missing:
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"the Galera scenarios need {', '.join(missing)}: "
                           f"sudo apt-get install {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    policy = Path("/usr/sbin/policy-rc.d")      # the packages' own services must not start
    created = not policy.exists()
    if created:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                       check=True, env=env)
    finally:
        if created:
            policy.unlink(missing_ok=True)


class Node:
    def __init__(self, cluster: "Galera", index: int) -> None:
        self.cluster = cluster
        self.index = index
        self.name = f"node{index + 1}"
        self.directory = cluster.directory / self.name
        self.datadir = self.directory / "data"
        self.socket = str(self.directory / "mysqld.sock")
        self.log_file = self.directory / "mysqld.log"
        self.port, self.gcomm, self.ist, self.sst = (free_port() for _ in range(4))
        self.process: subprocess.Popen | None = None

    def initialise(self, account: pwd.struct_passwd) -> None:
        (self.directory / "tmp").mkdir(parents=True, exist_ok=True)
        for folder in (self.directory, self.directory / "tmp"):   # the server's own user makes its files here
            os.chown(folder, account.pw_uid, account.pw_gid)
        # Its own temporary directory, as LocalMariaDB's: a server being made deletes the
        # `#sql*` files it finds there, and parallel test sessions make theirs at once.
        cmd = [find_binary("mariadb-install-db", "mysql_install_db"), "--no-defaults",
               f"--datadir={self.datadir}", f"--tmpdir={self.directory / 'tmp'}",
               "--auth-root-authentication-method=socket",
               "--skip-test-db", "--skip-name-resolve"]
        if account.pw_uid != os.geteuid():
            cmd.append(f"--user={account.pw_name}")
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {result.stderr[-2000:]}")
        for root, dirs, files in os.walk(self.directory):
            for name in dirs + files:
                os.chown(os.path.join(root, name), account.pw_uid, account.pw_gid)
        os.chown(self.directory, account.pw_uid, account.pw_gid)
        self.directory.chmod(0o700)

    def start(self, *, bootstrap: bool = False) -> None:
        account = server_account()
        options = (f"gmcast.listen_addr=tcp://127.0.0.1:{self.gcomm};ist.recv_addr=127.0.0.1:{self.ist};"
                   "gcache.size=64M;evs.suspect_timeout=PT3S;evs.inactive_timeout=PT6S")
        cmd = [find_binary("mariadbd", "mysqld"), "--no-defaults", f"--datadir={self.datadir}",
               f"--socket={self.socket}", f"--tmpdir={self.directory / 'tmp'}",
               f"--pid-file={self.directory / 'mysqld.pid'}", f"--log-error={self.log_file}",
               "--bind-address=127.0.0.1", f"--port={self.port}", "--skip-name-resolve",
               "--binlog-format=ROW", "--innodb-autoinc-lock-mode=2", "--innodb-buffer-pool-size=64M",
               "--innodb-flush-log-at-trx-commit=2", "--max-connections=500",
               "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
               "--wsrep-on=ON", f"--wsrep-provider={PROVIDER}",
               f"--wsrep-cluster-address=gcomm://{self.cluster.addresses}",
               "--wsrep-cluster-name=keepdesk", f"--wsrep-node-name={self.name}",
               f"--wsrep-node-address=127.0.0.1:{self.gcomm}", f"--wsrep-provider-options={options}",
               "--wsrep-sst-method=rsync", f"--wsrep-sst-receive-address=127.0.0.1:{self.sst}"]
        if account.pw_uid != os.geteuid():
            cmd.append(f"--user={account.pw_name}")
        if bootstrap:
            cmd.append("--wsrep-new-cluster")
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)

    def synced(self) -> bool:
        try:
            conn = pymysql.connect(unix_socket=self.socket, user="root", connect_timeout=2)
        except pymysql.err.MySQLError:
            return False
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW STATUS LIKE 'wsrep_local_state_comment'")
                row = cur.fetchone()
                return bool(row) and row[1] == "Synced"
        finally:
            conn.close()

    def wait_synced(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.synced():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} stopped: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not synced in {timeout}s: {self.log_tail()}")
            time.sleep(0.3)

    def kill(self) -> None:
        """kill -9: the machine is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-size:]
        except OSError:
            return "(no log)"


class Galera:
    """Three Galera nodes and HAProxy in front of them: `environment()` is what a
    KeepDesk host is given (MYSQL_HOST/PORT = HAProxy's)."""

    def __init__(self, directory: Path, size: int = 3) -> None:
        self.directory = Path(directory)
        self.nodes = [Node(self, i) for i in range(size)]
        self.proxy_port = free_port()
        self.password = secrets.token_urlsafe(24)
        self.haproxy: subprocess.Popen | None = None

    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{n.gcomm}" for n in self.nodes)

    def start(self) -> "Galera":
        ensure_installed()
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True)
        self.directory.chmod(0o755)      # the server's own user passes through to its folder
        account = server_account()
        for node in self.nodes:
            node.initialise(account)
        self.nodes[0].start(bootstrap=True)
        self.nodes[0].wait_synced()
        for node in self.nodes[1:]:
            node.start()
            node.wait_synced()
        conn = pymysql.connect(unix_socket=self.nodes[0].socket, user="root")
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{DATABASE}` CHARACTER SET utf8mb4"
                            " COLLATE utf8mb4_unicode_ci")
                cur.execute(f"CREATE USER IF NOT EXISTS '{APP_USER}'@'127.0.0.1' IDENTIFIED BY %s",
                            (self.password,))
                cur.execute(f"GRANT ALL ON `{DATABASE}`.* TO '{APP_USER}'@'127.0.0.1'")
        finally:
            conn.close()
        self.start_haproxy()
        return self

    def start_haproxy(self) -> None:
        servers = "\n".join(f"    server {n.name} 127.0.0.1:{n.port} check" + (" backup" if n.index else "")
                            for n in self.nodes)
        config = self.directory / "haproxy.cfg"
        config.write_text(HAPROXY_CONFIG.format(port=self.proxy_port, servers=servers))
        self.haproxy = subprocess.Popen([find_binary("haproxy"), "-db", "-f", str(config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            try:
                pymysql.connect(host="127.0.0.1", port=self.proxy_port, user=APP_USER,
                                password=self.password, database=DATABASE, connect_timeout=2).close()
                return
            except pymysql.err.MySQLError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def environment(self) -> dict[str, str]:
        return {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": str(self.proxy_port), "MYSQL_USER": APP_USER,
                "MYSQL_PASSWORD": self.password, "MYSQL_DB": DATABASE, "MYSQL_SOCKET": ""}

    def writer(self) -> Node:
        """The node HAProxy writes to now: the first that is alive."""
        return next(n for n in self.nodes if n.alive())

    def cluster_size(self) -> int:
        for node in self.nodes:
            if node.alive():
                try:
                    conn = pymysql.connect(unix_socket=node.socket, user="root", connect_timeout=2)
                except pymysql.err.MySQLError:
                    continue
                try:
                    with conn.cursor() as cur:
                        cur.execute("SHOW STATUS LIKE 'wsrep_cluster_size'")
                        return int(cur.fetchone()[1])
                finally:
                    conn.close()
        return 0

    def stop(self) -> None:
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.terminate()
            self.haproxy.wait(timeout=10)
        for node in reversed(self.nodes):
            node.stop()
