"""Benchmark 2: the webhook door under load.

gunicorn serves `webhook_server:app` with 2 workers on a durable MariaDB (every update is
committed before it is acknowledged); a second process sends Telegram updates open-loop.
Figures: p50/p99 acknowledgement latency at a steady 300 updates/s for 20 s, then the peak
rate with zero errors (steps of increasing rate, 5 s each, until a step has errors or its
p99 exceeds 100 ms). Goal: p99 ≤ 20 ms at 300/s.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import requests

from bench.common import database, machine, verdict
from config import ROOT, load_settings
from models.db import Database, migrate

SECRET = "bench-secret"
PATH = "bench-webhook-path"
STEADY_RATE, STEADY_SECONDS = 300, 20
PEAK_STEPS = (600, 900, 1200, 1600, 2000, 2500)
STEP_SECONDS = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(url: str, rate: float, seconds: float, first_id: int) -> dict:
    output = subprocess.run([sys.executable, "-m", "bench.loadgen", url, "--secret", SECRET,
                             "--rate", str(rate), "--seconds", str(seconds),
                             "--first-id", str(first_id)],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> int:
    with database(durable=True) as server:
        port = free_port()
        env = dict(os.environ, BOT_TOKEN="123456:sandbox-token", WEBHOOK_SECRET_PATH=PATH,
                   WEBHOOK_SECRET_TOKEN=SECRET, LOG_LEVEL="WARNING",
                   **server.environment("keepdesk_bench"))
        env.pop("MYSQL_HOST", None)
        migrate(Database(load_settings(env, env_file=None)))
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", "2", "--worker-class", "gthread",
             "--threads", "8", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
             "webhook_server:app"], cwd=ROOT, env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except requests.RequestException:
                    time.sleep(0.1)
            url = f"{base}/telegram/{PATH}"
            load(url, 100, 2, first_id=10_000_000)  # warm-up: connections, pools
            steady = load(url, STEADY_RATE, STEADY_SECONDS, first_id=1)
            peak, next_id = None, 1_000_000
            for rate in PEAK_STEPS:
                step = load(url, rate, STEP_SECONDS, first_id=next_id)
                next_id += 1_000_000
                if step["errors"] or step["p99_ms"] > 100 or step["achieved_per_s"] < rate * 0.95:
                    break
                peak = step
        finally:
            gunicorn.terminate()
            gunicorn.wait(timeout=20)
    print(f"machine: {machine()}; gunicorn 2 workers (gthread), MariaDB with a commit per update")
    print(f"steady {STEADY_RATE}/s for {STEADY_SECONDS} s: sent={steady['sent']} ok={steady['ok']} "
          f"errors={steady['errors']} p50={steady['p50_ms']:.1f} ms p99={steady['p99_ms']:.1f} ms "
          f"max={steady['max_ms']:.1f} ms")
    peak_text = (f"{peak['achieved_per_s']:.0f}/s (p99 {peak['p99_ms']:.1f} ms, 0 errors)"
                 if peak else f"below {PEAK_STEPS[0]}/s")
    print(f"peak rate with zero errors (p99 ≤ 100 ms): {peak_text}")
    ok = steady["errors"] == 0 and steady["p99_ms"] <= 20
    print(f"p99 ≤ 20 ms at {STEADY_RATE}/s: {steady['p99_ms']:.1f} ms {verdict(ok)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
