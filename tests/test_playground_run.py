"""`make run` on a fresh clone (no BOT_TOKEN, no .env) opens the playground (WEB.md §2):
`python -m bot run` as a process, the page on WEB_PORT, the terminal saying what it is and
how to connect real Telegram — and Ctrl-C stops it all."""
import os
import signal
import subprocess
import sys

import pytest
import requests

from conftest import ROOT, free_port, process_group_alive
from harness import wait_for


@pytest.mark.slow
def test_run_without_a_bot_token_opens_the_playground(tmp_path):
    env_file = ROOT / ".env"
    if env_file.is_file() and "BOT_TOKEN" in env_file.read_text():
        pytest.skip("this checkout has a .env with BOT_TOKEN: `make run` connects to Telegram here")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "BOT_TOKEN"))}
    env.update({"WEB_PORT": str(port), "PYTHONPATH": str(ROOT)})
    out = open(tmp_path / "run.log", "w")
    run = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, stdout=out,
                           stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def page():
            try:
                return requests.get(f"http://127.0.0.1:{port}/", timeout=2).text
            except requests.RequestException:
                return ""
        wait_for(lambda: "KeepDesk playground" in page(), timeout=120, interval=0.3)
        said = (tmp_path / "run.log").read_text()
        assert "PLAYGROUND" in said and f"http://127.0.0.1:{port}/" in said
        assert "BOT_TOKEN" in said and ".env" in said           # how to connect real Telegram
        assert requests.get(f"http://127.0.0.1:{port}/panel/login", timeout=5).status_code == 200
        os.killpg(run.pid, signal.SIGINT)                        # Ctrl-C
        assert run.wait(timeout=60) == 0
        wait_for(lambda: not process_group_alive(run.pid), timeout=20)
    finally:
        if process_group_alive(run.pid):
            os.killpg(run.pid, signal.SIGKILL)
        out.close()
        print((tmp_path / "run.log").read_text()[-3000:])
