"""`python -m sandbox`: run the Telegram and CRM emulators until Ctrl-C.

Prints the settings that point KeepDesk at them, so that in another terminal
`make run` talks to the sandbox instead of the real services.
"""
from __future__ import annotations

import argparse
import signal
import threading

from sandbox.crm import CrmSandbox
from sandbox.planfix import PlanfixSandbox
from sandbox.tgaccounts import TgAccountsSandbox
from sandbox.telegram import TelegramSandbox

TOKEN = "123456:sandbox-token"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox")
    parser.add_argument("--telegram-port", type=int, default=8081)
    parser.add_argument("--crm-port", type=int, default=8082)
    parser.add_argument("--tgaccounts-port", type=int, default=8083)
    parser.add_argument("--planfix-port", type=int, default=8084)
    parser.add_argument("--enforce-limits", action="store_true",
                        help="answer 429 like Telegram when its limits are exceeded")
    args = parser.parse_args(argv)
    tg = TelegramSandbox(TOKEN, port=args.telegram_port, enforce_limits=args.enforce_limits).start()
    crm = CrmSandbox(port=args.crm_port).start()
    accounts = TgAccountsSandbox(port=args.tgaccounts_port).start()
    planfix = PlanfixSandbox(port=args.planfix_port).start()
    print("Sandbox running. Point KeepDesk at it with:\n"
          f"  BOT_TOKEN={TOKEN}\n  TELEGRAM_API_URL={tg.url}\n"
          f"  KEEPING_API_URL={crm.api_url}\n  KEEPING_WEB_URL={crm.web_url}\n"
          f"  KEEPING_SELLER_ID={crm.seller_id}\n  KEEPING_API_KEY={crm.api_key}\n"
          f"  TG_ACCOUNTS_BACKEND=sandbox\n  TG_ACCOUNTS_SANDBOX_URL={accounts.url}\n"
          f"  PLANFIX_PROVIDER_ID={planfix.provider_id}\n"
          f"Telegram accounts emulator: {accounts.url} (test control under /control, see sandbox/tgaccounts.py)\n"
          f"Planfix emulator: url_planfix={planfix.url}, token_planfix={planfix.token}\n"
          "Ctrl-C stops it.", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    planfix.stop()
    accounts.stop()
    crm.stop()
    tg.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
