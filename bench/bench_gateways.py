"""WhatsApp through the gateways (Green-API, Devino).

a) Notices per second to each provider at its documented limit: a 1C burst of
   appointment notices POSTed to `/appointment` at once, until the last one reaches the
   provider's sandbox, KeepDesk as production runs it (gunicorn door, two `python -m bot
   worker` processes). Against the limit the provider documents: Green-API's sending
   50/s per instance — and its checkWhatsapp 10/s, which bounds a burst to phones the shop
   never wrote to (each is checked before its first message); the Cloud API's 80/s per number (benchmark 5's path, beside them);
   Devino documents no per-message rate: it is bounded by calls, WHATSAPP_DEVINO_LIMIT_PER_S
   (20 calls/s) × WHATSAPP_DEVINO_BATCH messages. Goal: ≥ 0.8× the documented rate for the
   gateways, nothing twice, nothing lost.
b) Devino: batched sending against one request per message, side by side in this run —
   the same notices with WHATSAPP_DEVINO_BATCH=100 and =1, each call taking a realistic
   round trip (CALL_LATENCY). Goal: batched ≥ 5× faster, in ≤ 1/20 of the calls.
"""
from __future__ import annotations

import sys
import time

from bench.common import METRICS_TOKEN, free_port, machine, post_appointments, process_stack, verdict
from sandbox.devino import DevinoSandbox
from sandbox.greenapi import GreenApiSandbox
from sandbox.whatsapp import WhatsAppSandbox

NOTICES = 300
CALL_LATENCY = 0.05          # a provider's round trip over the internet (s)
DEVINO_CALLS_PER_S = 20
SECRET = "bench-devino-secret-0001"
WEBHOOK_TOKEN = "bench-greenapi-webhook-token"


def burst(url: str, db, sent, count: int, doctor: str = "Коваль") -> tuple[float, int, int]:
    """POST `count` appointment notices at once; the time until the last reached the provider."""
    from services.api_tokens import ApiTokens
    token = ApiTokens(db).create(f"bench-{doctor}")
    phones = [f"38050{k:07d}" for k in range(count)]
    before = len(sent())
    started = time.monotonic()
    post_appointments(url, token, phones, doctor)
    deadline = time.monotonic() + 180
    while len(sent()) < before + count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(sent()) - before} of {count} notices reached the provider in 180 s")
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    to = sent()[before:]
    return elapsed, len(set(to)), len(to) - len(set(to))


def run_cloud() -> tuple[float, int, int]:
    wa = WhatsAppSandbox(pair_seconds=0.0).start()
    try:
        wa.add_template("appointment", 3)
        with process_stack(workers=2, WORKER_THREADS="8", WHATSAPP_CLOUD_TOKEN=wa.token,
                           WHATSAPP_CLOUD_PHONE_NUMBER_ID=wa.phone_number_id,
                           WHATSAPP_CLOUD_APP_SECRET=wa.app_secret, WHATSAPP_CLOUD_VERIFY_TOKEN=wa.verify_token,
                           WHATSAPP_CLOUD_GRAPH_URL=wa.url, WHATSAPP_TEMPLATE_APPOINTMENT="appointment",
                           WHATSAPP_LIMIT_PER_NUMBER_PER_S="80") as (url, tg, crm, db):
            return burst(url, db, lambda: [m["to"] for m in wa.sent()], NOTICES)
    finally:
        wa.stop()


def run_greenapi() -> tuple[tuple, tuple, int, int]:
    ga = GreenApiSandbox(call_latency=CALL_LATENCY).start()
    try:
        with process_stack(workers=2, WORKER_THREADS="8", WHATSAPP_PROVIDER="greenapi", WHATSAPP_GREENAPI_URL=ga.url,
                           WHATSAPP_GREENAPI_ID=ga.instance, WHATSAPP_GREENAPI_TOKEN=ga.token,
                           WHATSAPP_GREENAPI_WEBHOOK_TOKEN=WEBHOOK_TOKEN,
                           WHATSAPP_TEMPLATE_APPOINTMENT="appointment") as (url, tg, crm, db):
            ga.use_webhook(f"{url}/whatsapp/greenapi", WEBHOOK_TOKEN)
            sent = lambda: [m["to"] for m in ga.sent()]  # noqa: E731
            new = burst(url, db, sent, NOTICES)                    # each phone checked first (10/s)
            known = burst(url, db, sent, NOTICES, doctor="Шевчук")  # the same phones again: sending 50/s
            return new, known, ga.throttled["send"], ga.throttled["check"]
    finally:
        ga.stop()


def run_devino(batch: int) -> tuple[float, int, int, int]:
    dv = DevinoSandbox(call_latency=CALL_LATENCY, per_second=100000).start()
    port = free_port()
    try:
        dv.add_template("appointment", 3)
        with process_stack(workers=2, port=port, WORKER_THREADS="8", WHATSAPP_PROVIDER="devino",
                           WHATSAPP_DEVINO_URL=dv.url, WHATSAPP_DEVINO_KEY=dv.key, WHATSAPP_DEVINO_FROM=dv.sender,
                           WHATSAPP_DEVINO_CALLBACK_SECRET=SECRET, PUBLIC_URL=f"http://127.0.0.1:{port}",
                           METRICS_TOKEN=METRICS_TOKEN,
                           WHATSAPP_DEVINO_BATCH=str(batch), WHATSAPP_DEVINO_LIMIT_PER_S=str(DEVINO_CALLS_PER_S),
                           WHATSAPP_TEMPLATE_APPOINTMENT="appointment") as (url, tg, crm, db):
            elapsed, distinct, doubled = burst(url, db, lambda: [m["to"] for m in dv.sent()], NOTICES)
            return elapsed, distinct, doubled, len(dv.calls)
    finally:
        dv.stop()


def main(argv: list[str] | None = None) -> int:
    cloud = run_cloud()
    green = run_greenapi()
    batched = run_devino(100)
    single = run_devino(1)
    print(f"machine: {machine()}; {NOTICES} appointment notices from 1C at once; each gateway call takes"
          f" {CALL_LATENCY * 1000:.0f} ms")
    new, known = green[0], green[1]
    rows = [("Cloud API (80/s per number)", cloud[0], 80.0, cloud[1], cloud[2], ""),
            ("Green-API, new phones (checkWhatsapp 10/s)", new[0], 10.0, new[1], new[2],
             f"429 answered: check {green[3]}×"),
            ("Green-API, known phones (sending 50/s)", known[0], 50.0, known[1], known[2],
             f"429 answered: send {green[2]}×"),
            ("Devino, batched (100 per call)", batched[0], None, batched[1], batched[2], f"{batched[3]} calls"),
            ("Devino, one request per message", single[0], float(DEVINO_CALLS_PER_S), single[1], single[2],
             f"{single[3]} calls")]
    for name, elapsed, limit, distinct, doubled, extra in rows:
        rate = NOTICES / elapsed
        against = f" = {rate / limit:.2f}× the documented {limit:.0f}/s" if limit else ""
        print(f"  {name:<40} {elapsed:6.2f} s  {rate:7.1f} notices/s{against}  delivered {distinct}/{NOTICES},"
              f" twice {doubled} {verdict(distinct == NOTICES and doubled == 0)}  {extra}")
    print(f"Green-API at ≥ 0.8× its limits: new phones {NOTICES / new[0] / 10:.2f}× {verdict(NOTICES / new[0] >= 8)},"
          f" known phones {NOTICES / known[0] / 50:.2f}× {verdict(NOTICES / known[0] >= 40)}")
    speedup = single[0] / batched[0]
    print(f"Devino batched vs one request per message: {speedup:.1f}× faster {verdict(speedup >= 5)} (≥ 5×),"
          f" {batched[3]} calls against {single[3]} {verdict(batched[3] * 20 <= single[3])} (≤ 1/20)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
