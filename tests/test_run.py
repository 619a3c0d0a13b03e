"""`python -m bot run` (what `make run` calls): local MariaDB under var/, schema, both
doors, workers, long polling — and Ctrl-C stops everything it started."""
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests

from conftest import ROOT, free_port, process_group_alive
from harness import wait_for
from models.mariadb import LocalMariaDB


@pytest.mark.slow
def test_run_starts_everything_and_ctrl_c_stops_it(tg, tmp_path):
    # Not under tmp_path: pytest keeps that 0700 to root, and started by root the local
    # MariaDB runs as its own system user, which must pass through the folders above var/.
    var_dir = Path(tempfile.mkdtemp(prefix="keepdesk-run-var-"))
    webhook_port, listener_port, web_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYSQL_")}
    env.update({
        # Only the bot token and the sandbox: a bare desk is enough to start.
        "BOT_TOKEN": "123456:sandbox-token", "TELEGRAM_API_URL": tg.url,
        "KEEPDESK_VAR_DIR": str(var_dir),
        "WEBHOOK_PORT": str(webhook_port), "LISTENER_PORT": str(listener_port),
        "BIND_HOST": "127.0.0.1", "HTTP_WORKERS": "1", "WORKER_THREADS": "2",
        "WEB_PORT": str(web_port),
    })
    log = open(tmp_path / "run.log", "w")
    run = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env,
                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def healthy(port):
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                return answer.status_code == 200 and answer.json()["database"] == "up"
            except requests.RequestException:
                return False

        wait_for(lambda: healthy(webhook_port) and healthy(listener_port) and healthy(web_port),
                 timeout=90, interval=0.2)
        # The admin panel's door (WEB.md §1): a user made with create-admin (on the same
        # local MariaDB) logs in and sees every process of this KeepDesk on the home page.
        made = subprocess.run([sys.executable, "-m", "bot", "create-admin", "owner", "--password-stdin"],
                              cwd=ROOT, env=env, input="a long password 1\n", text=True,
                              capture_output=True, timeout=60)
        assert made.returncode == 0, made.stderr
        # The README's 1C step, typed as written: no MYSQL_* anywhere, the token printed.
        token = subprocess.run([sys.executable, "-m", "bot", "api-token", "create", "1c-clinic"],
                               cwd=ROOT, env=env, text=True, capture_output=True, timeout=60)
        assert token.returncode == 0, token.stderr
        assert re.fullmatch(r"[A-Za-z0-9_.-]{32,}", token.stdout.strip().splitlines()[-1]), token.stdout
        listed = subprocess.run([sys.executable, "-m", "bot", "api-token", "list"],
                                cwd=ROOT, env=env, text=True, capture_output=True, timeout=60)
        assert "1c-clinic" in listed.stdout and "active" in listed.stdout, listed.stderr
        panel = requests.Session()
        page = panel.get(f"http://127.0.0.1:{web_port}/login", timeout=5).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        home = panel.post(f"http://127.0.0.1:{web_port}/login", timeout=10, data={
            "csrf_token": token, "login": "owner", "password": "a long password 1"}).text
        panel.close()   # no keep-alive connection left for gunicorn's graceful stop to wait out
        processes = int(re.search(r"процесів: (\d+)", home).group(1))    # the panel speaks Ukrainian
        # The supervisor, the doors' one gunicorn and its two workers, a worker.
        assert processes >= 5
        database = LocalMariaDB(var_dir / "mysql")
        assert database.is_running()
        with database.connect_app("keepdesk") as conn, conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")   # KeepDesk's own database user, not root
            assert cur.fetchone()[0] == "keepdesk@localhost"
            cur.execute("SHOW TABLES")
            assert {"jobs", "pins", "users"} <= {row[0] for row in cur.fetchall()}
        # Its secrets and its database are private: 0600 files in 0700 folders (var/ lets
        # the database server's own group pass through to var/mysql, nothing more).
        assert stat.S_IMODE(var_dir.stat().st_mode) in (0o700, 0o710)
        for private in (var_dir / "mysql", var_dir / "mysql" / "data"):
            assert stat.S_IMODE(private.stat().st_mode) == 0o700, private
        for secret in (var_dir / "web_secret_key", database.password_file):
            assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
            assert stat.S_IMODE(secret.parent.stat().st_mode) in (0o700, 0o710), secret.parent

        # No WEBHOOK_URL: updates come by long polling and are answered by the workers.
        wait_for(lambda: tg.calls("deleteWebhook"), timeout=30)
        tg.user_sends_text(4242, "/start")
        wait_for(lambda: tg.messages(4242), timeout=30)

        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        assert run.wait(timeout=60) == 0
        wait_for(lambda: not process_group_alive(run.pid), timeout=20)
        assert not database.is_running()
    finally:
        if process_group_alive(run.pid):
            os.killpg(run.pid, signal.SIGKILL)
        LocalMariaDB(var_dir / "mysql").stop()
        shutil.rmtree(var_dir, ignore_errors=True)
        log.close()
        print((tmp_path / "run.log").read_text()[-3000:])
