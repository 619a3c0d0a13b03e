"""WhatsApp through the Cloud API.

a) WhatsApp webhook → first Telegram post: a customer writes (the Graph API sandbox POSTs
   the signed webhook to the integrations door under gunicorn), until the Telegram
   sandbox receives the post; ≥ 200 messages one at a time, a `python -m bot worker`
   process doing the work, as in production. Beside it, in the same run, the same
   figure for a KeepingCRM signal (benchmark 1's path) — the two channels side by side.
   Goal: p50 ≤ 30 ms, p99 ≤ 100 ms.
b) 1C burst: 500 appointment notices POSTed to `/appointment` at once; the time until the
   last one reaches the Graph API sandbox, against the minimum Meta's limit allows
   (500 / 80 per second = 6.25 s). Goal: ≤ 1.2× the minimum, no notice twice, none lost.
"""
from __future__ import annotations

import sys
import time

import requests

from bench.common import LINK_KEY, machine, percentile, post_appointments, process_stack, summary, verdict
from sandbox.whatsapp import WhatsAppSandbox

MESSAGES = 200
NOTICES = 500
PER_NUMBER_PER_S = 80


def whatsapp_settings(wa: WhatsAppSandbox, **extra: str) -> dict:
    return {"WHATSAPP_CLOUD_TOKEN": wa.token, "WHATSAPP_CLOUD_PHONE_NUMBER_ID": wa.phone_number_id,
            "WHATSAPP_CLOUD_APP_SECRET": wa.app_secret, "WHATSAPP_CLOUD_VERIFY_TOKEN": wa.verify_token,
            "WHATSAPP_CLOUD_GRAPH_URL": wa.url, "WHATSAPP_TEMPLATE_APPOINTMENT": "appointment",
            "WHATSAPP_LIMIT_PER_NUMBER_PER_S": str(PER_NUMBER_PER_S), **extra}


def measure_latency(wa: WhatsAppSandbox) -> tuple[list[float], list[float]]:
    whatsapp, crm_path = [], []
    with process_stack(TG_LIMIT_GROUP_PER_MIN="1000000", TG_LIMIT_GLOBAL_PER_S="100000",
                       **whatsapp_settings(wa, WHATSAPP_LIMIT_CUSTOMER_SECONDS="0.01")) as (url, tg, crm, db):
        assert wa.subscribe(f"{url}/whatsapp/cloud").status_code == 200
        session = requests.Session()
        for n in range(MESSAGES + 10):
            for channel in ("whatsapp", "crm"):
                before = tg.count_calls("sendMessage")
                if channel == "whatsapp":
                    sent_at = time.time()
                    wa.customer_writes(f"38067{n % 50:07d}", f"message {n}")
                else:
                    id_i = 900000 + n % 50
                    crm.customer_writes(id_i, f"message {n}")
                    sent_at = time.time()
                    assert session.post(f"{url}/messages/{LINK_KEY}", json={"InvoiceId": id_i},
                                        timeout=10).status_code == 200
                try:
                    tg.wait_until(lambda: tg.count_calls("sendMessage") > before, timeout=10)
                except TimeoutError:
                    raise RuntimeError(f"{channel} message {n} was not posted within 10 s") from None
                posted_at = tg.calls("sendMessage")[before]["time"]
                if n >= 10:
                    (whatsapp if channel == "whatsapp" else crm_path).append((posted_at - sent_at) * 1000)
                tg.reset()
    return whatsapp, crm_path


def measure_burst(wa: WhatsAppSandbox) -> tuple[float, int, int]:
    from services.api_tokens import ApiTokens
    wa.reset()
    wa.add_template("appointment", 3)
    with process_stack(workers=2, WORKER_THREADS="8", **whatsapp_settings(wa)) as (url, tg, crm, db):
        token = ApiTokens(db).create("bench")
        phones = [f"38050{k:07d}" for k in range(NOTICES)]
        started = time.monotonic()
        post_appointments(url, token, phones, "Коваль")
        accepted = time.monotonic() - started
        wa.wait_until(lambda: len(wa.sent()) >= NOTICES, timeout=120)
        elapsed = time.monotonic() - started
        sent = [m["to"] for m in wa.sent()]
        print(f"  1C accepted the 500 requests in {accepted:.2f} s", flush=True)
        return elapsed, len(set(sent)), len(sent) - len(set(sent))


def main(argv: list[str] | None = None) -> int:
    wa = WhatsAppSandbox(pair_seconds=0.0).start()
    burst_only = "--burst" in (argv if argv is not None else sys.argv[1:])
    try:
        whatsapp, crm_path = ([0.0], [0.0]) if burst_only else measure_latency(wa)
        elapsed, distinct, doubled = measure_burst(wa)
    finally:
        wa.stop()
    p50, p99 = percentile(whatsapp, 50), percentile(whatsapp, 99)
    minimum = NOTICES / PER_NUMBER_PER_S
    print(f"machine: {machine()}")
    print(f"WhatsApp webhook → post:  {summary(whatsapp)}")
    print(f"CRM signal → post (beside it): {summary(crm_path)}")
    print(f"p50 ≤ 30 ms: {p50:.1f} ms {verdict(p50 <= 30)} | p99 ≤ 100 ms: {p99:.1f} ms {verdict(p99 <= 100)}")
    print(f"1C burst, {NOTICES} appointment notices: {elapsed:.2f} s; Meta's limit allows "
          f"{minimum:.2f} s at best ({PER_NUMBER_PER_S}/s) → {elapsed / minimum:.2f}× "
          f"{verdict(elapsed <= 1.2 * minimum)} (≤ 1.2×) | delivered {distinct}/{NOTICES}, "
          f"twice: {doubled} {verdict(distinct == NOTICES and doubled == 0)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
