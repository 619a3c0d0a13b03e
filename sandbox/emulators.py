"""`python -m sandbox` (sandbox/__main__.py): run the Telegram, CRM, WhatsApp (Cloud API, a Green-API-compatible
gateway, Devino), Devino's SMS API, Telegram accounts and Planfix emulators until Ctrl-C.

Prints the settings that point KeepDesk at them, so that in another terminal
`make run` talks to the sandbox instead of the real services.
"""
from __future__ import annotations

import argparse
import signal
import threading

from sandbox.crm import CrmSandbox
from sandbox.devino import DevinoSandbox
from sandbox.devino_sms import DevinoSmsSandbox
from sandbox.greenapi import GreenApiSandbox
from sandbox.planfix import PlanfixSandbox
from sandbox.tgaccounts import TgAccountsSandbox
from sandbox.telegram import TelegramSandbox
from sandbox.whatsapp import WhatsAppSandbox

TOKEN = "123456:sandbox-token"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox")
    parser.add_argument("--telegram-port", type=int, default=8081)
    parser.add_argument("--crm-port", type=int, default=8082)
    parser.add_argument("--whatsapp-port", type=int, default=8083)
    parser.add_argument("--whatsapp-templates", default="appointment:3,review:2,birthday:2,order_ready:1,hello:0",
                        help="approved templates the emulator knows, name:parameters")
    parser.add_argument("--tgaccounts-port", type=int, default=8084)
    parser.add_argument("--planfix-port", type=int, default=8085)
    parser.add_argument("--greenapi-port", type=int, default=8086)
    parser.add_argument("--devino-port", type=int, default=8087)
    parser.add_argument("--devino-sms-port", type=int, default=8088)
    parser.add_argument("--enforce-limits", action="store_true",
                        help="answer 429 like Telegram when its limits are exceeded")
    args = parser.parse_args(argv)
    tg = TelegramSandbox(TOKEN, port=args.telegram_port, enforce_limits=args.enforce_limits).start()
    crm = CrmSandbox(port=args.crm_port).start()
    wa = WhatsAppSandbox(port=args.whatsapp_port).start()
    for item in filter(None, args.whatsapp_templates.split(",")):
        name, _, count = item.partition(":")
        wa.add_template(name.strip(), int(count or 0))
    accounts = TgAccountsSandbox(port=args.tgaccounts_port).start()
    planfix = PlanfixSandbox(port=args.planfix_port).start()
    ga = GreenApiSandbox(port=args.greenapi_port).start()
    dv = DevinoSandbox(port=args.devino_port).start()
    sms = DevinoSmsSandbox(port=args.devino_sms_port).start()
    for item in filter(None, args.whatsapp_templates.split(",")):
        name, _, count = item.partition(":")
        dv.add_template(name.strip(), int(count or 0))
    print("Sandbox running. Point KeepDesk at it with:\n"
          f"  BOT_TOKEN={TOKEN}\n  TELEGRAM_API_URL={tg.url}\n"
          f"  KEEPING_API_URL={crm.api_url}\n  KEEPING_WEB_URL={crm.web_url}\n"
          f"  KEEPING_SELLER_ID={crm.seller_id}\n  KEEPING_API_KEY={crm.api_key}\n"
          f"  WHATSAPP_CLOUD_GRAPH_URL={wa.url}\n  WHATSAPP_CLOUD_TOKEN={wa.token}\n"
          f"  WHATSAPP_CLOUD_PHONE_NUMBER_ID={wa.phone_number_id}\n"
          f"  WHATSAPP_CLOUD_APP_SECRET={wa.app_secret}\n  WHATSAPP_CLOUD_VERIFY_TOKEN={wa.verify_token}\n"
          f"  WHATSAPP_TEMPLATES={args.whatsapp_templates}\n"
          "  WHATSAPP_TEMPLATE_APPOINTMENT=appointment WHATSAPP_TEMPLATE_REVIEW=review"
          " WHATSAPP_TEMPLATE_BIRTHDAY=birthday\n"
          "The WhatsApp emulator calls KeepDesk's webhook once subscribed: in Python,\n"
          "  WhatsAppSandbox.subscribe('http://127.0.0.1:<LISTENER_PORT>/whatsapp/cloud')\n"
          "(docs/whatsapp.md, \"The WhatsApp sandbox\").\n"
          f"  TG_ACCOUNTS_BACKEND=sandbox\n  TG_ACCOUNTS_SANDBOX_URL={accounts.url}\n"
          f"  PLANFIX_PROVIDER_ID={planfix.provider_id}\n  FETCH_TRUSTED_ORIGINS={planfix.url}\n"
          f"Telegram accounts emulator: {accounts.url} (test control under /control, see sandbox/tgaccounts.py)\n"
          f"Planfix emulator: url_planfix={planfix.url}, token_planfix={planfix.token}\n"
          "A Green-API-compatible gateway instead (WHATSAPP_PROVIDER=greenapi):\n"
          f"  WHATSAPP_GREENAPI_URL={ga.url} WHATSAPP_GREENAPI_ID={ga.instance}"
          f" WHATSAPP_GREENAPI_TOKEN={ga.token}\n"
          "  with no webhook set it keeps notifications for WHATSAPP_GREENAPI_RECEIVE=poll; for the webhook\n"
          "  (WHATSAPP_GREENAPI_WEBHOOK_TOKEN=<the same token> is then required),\n"
          f"  POST {ga.url}/_sandbox/webhook {{\"url\": \"http://127.0.0.1:<LISTENER_PORT>/whatsapp/greenapi\","
          " \"token\": \"<token>\"}\n"
          "Devino instead (WHATSAPP_PROVIDER=devino; PUBLIC_URL=http://127.0.0.1:<LISTENER_PORT>;\n"
          "  a PUBLIC_URL also needs SECRET_KEY=<32+ random characters> and METRICS_TOKEN):\n"
          f"  WHATSAPP_DEVINO_URL={dv.url} WHATSAPP_DEVINO_KEY={dv.key} WHATSAPP_DEVINO_FROM={dv.sender}"
          " WHATSAPP_DEVINO_CALLBACK_SECRET=<8+ characters>\n"
          "SMS when WhatsApp cannot reach a customer (docs/sms.md; callbacks need PUBLIC_URL as above):\n"
          f"  SMS_DEVINO_URL={sms.url} SMS_DEVINO_KEY={sms.key} SMS_DEVINO_FROM={sms.sender}"
          " SMS_DEVINO_CALLBACK_SECRET=<8+ characters>\n"
          "Ctrl-C stops it.", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    wa.stop()
    ga.stop()
    dv.stop()
    sms.stop()
    planfix.stop()
    accounts.stop()
    crm.stop()
    tg.stop()
    return 0

