"""`python -m bench.loadgen URL --rate R --seconds S`: an open-loop load of Telegram updates.

Runs in its own process (so the server under test gets the machine's other core): sends
R requests a second for S seconds on schedule, whether or not earlier ones have been
answered, and prints one JSON line: sent, ok, errors, latencies' p50/p99/max (ms) and the
rate achieved. Each request carries a distinct update_id.
"""
from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time

import requests


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run(url: str, secret: str, rate: float, seconds: float, first_id: int, threads: int) -> dict:
    due: queue.Queue = queue.Queue()
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client() -> None:
        session = requests.Session()
        while True:
            item = due.get()
            if item is None:
                return
            update_id, scheduled = item
            body = {"update_id": update_id, "message": {
                "message_id": update_id, "date": int(time.time()), "text": "load",
                "chat": {"id": 10_000_000 + update_id % 5000, "type": "private"},
                "from": {"id": 10_000_000 + update_id % 5000, "is_bot": False, "first_name": "L"}}}
            try:
                answer = session.post(url, json=body, timeout=10,
                                      headers={"X-Telegram-Bot-Api-Secret-Token": secret})
                ok = answer.status_code == 200
            except requests.RequestException:
                ok = False
            # Open loop: latency counts from when the request was due, so a slow server
            # cannot hide behind a slowed-down client.
            elapsed = (time.perf_counter() - scheduled) * 1000
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors[0] += 1

    workers = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    total = int(rate * seconds)
    start = time.perf_counter()
    for n in range(total):
        scheduled = start + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        due.put((first_id + n, scheduled))
    for _ in workers:
        due.put(None)
    for worker in workers:
        worker.join()
    duration = time.perf_counter() - start
    return {"rate": rate, "sent": total, "ok": len(latencies), "errors": errors[0],
            "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
            "max_ms": max(latencies) if latencies else float("nan"),
            "achieved_per_s": len(latencies) / duration}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--first-id", type=int, default=1)
    parser.add_argument("--threads", type=int, default=32)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.url, args.secret, args.rate, args.seconds, args.first_id, args.threads)),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
