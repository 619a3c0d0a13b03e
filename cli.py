"""`python -m bot run|polling|worker|accounts|tg-login|set-webhook|delete-webhook|migrate|schema|demo|api-token|create-admin`.

`run` with no BOT_TOKEN (neither in the environment nor in .env) starts the playground
(WEB.md §2): the real KeepDesk against the local emulators, on the panel's port.

The top of the house: each command is one function that loads the settings and calls a
script, a service or the sandbox; `bot/__main__.py` only calls `main`."""
from __future__ import annotations

import argparse
import logging
import sys

from config import Settings, SettingsError, load_settings
from utils.logs import configure_logging
from utils.signals import StopSignal

log = logging.getLogger("keepdesk")


def cmd_run(settings: Settings, args) -> int:
    from scripts.supervisor import run
    return run(settings)


def cmd_polling(settings: Settings, args) -> int:
    from scripts.supervisor import run
    return run(settings, polling=True)


def cmd_worker(settings: Settings, args) -> int:
    from scripts.worker_main import serve
    serve(settings, StopSignal(), threads=args.threads)
    return 0


def cmd_accounts(settings: Settings, args) -> int:
    from scripts.accounts import serve
    serve(settings, StopSignal())
    return 0


def cmd_tg_login(settings: Settings, args) -> int:
    from scripts.tglogin import destination, main
    try:
        target = destination(args.number, file=args.file, store=args.store, folder=settings.tg_sessions_dir)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    return main(settings, target)


def cmd_set_webhook(settings: Settings, args) -> int:
    from bot.factory import create_bot
    from bot.sender import TelegramApi
    from scripts.supervisor import webhook_endpoint
    if not settings.webhook_url:
        print("WEBHOOK_URL is not set; nothing to register.", file=sys.stderr)
        return 2
    TelegramApi(create_bot(settings)).point_webhook(webhook_endpoint(settings), settings.webhook_secret_token)
    print(f"webhook set to {settings.webhook_url}/telegram/***")
    return 0


def cmd_delete_webhook(settings: Settings, args) -> int:
    from bot.factory import create_bot
    from bot.sender import TelegramApi
    TelegramApi(create_bot(settings)).drop_webhook()
    print("webhook deleted")
    return 0


def cmd_migrate(settings: Settings, args) -> int:
    from scripts.migrate import main
    return main(settings)


def cmd_schema(settings: Settings, args) -> int:
    from models.db import Database, schema_text
    db = Database(settings, pool_size=1)
    try:
        print(schema_text(db), end="")
    finally:
        db.close()
    return 0


def cmd_api_token(settings: Settings, args) -> int:
    """1C API tokens: create NAME (the token alone on the last line), list, revoke NAME|#ID."""
    from models.db import Database
    from services.api_tokens import ApiTokens
    db = Database(settings, pool_size=1)
    try:
        tokens = ApiTokens(db)
        if args.action == "create":
            if not args.name:
                print("usage: python -m bot api-token create NAME", file=sys.stderr)
                return 2
            token = tokens.create(args.name)
            print(f"1C API token {args.name!r} created; it is shown once, keep it safe:")
            print(token)
        elif args.action == "list":
            for t in tokens.all():
                state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
                used = f"last used {t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never used"
                print(f"{t.id}\t{t.name}\tcreated {t.created_at:%Y-%m-%d %H:%M}\t{used}\t{state}")
        else:
            if not args.name:
                print("usage: python -m bot api-token revoke NAME|#ID", file=sys.stderr)
                return 2
            count = tokens.revoke(args.name)
            print(f"{count} token(s) revoked")
            return 0 if count else 1
    finally:
        db.close()
    return 0


def cmd_create_admin(settings: Settings, args) -> int:
    """A panel user (WEB.md §1): the password is asked twice (or read from stdin with
    --password-stdin); an existing user gets the new password and loses every session."""
    import getpass
    from models.db import Database
    from services.panel_auth import PanelAuth
    from utils.clock import utc_now
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"Password for {args.login}: ")
        if getpass.getpass("Again: ") != password:
            print("The passwords differ; nothing changed.", file=sys.stderr)
            return 2
    db = Database(settings, pool_size=1)
    try:
        user, created = PanelAuth(db, utc_now).set_password(args.login, password, args.telegram_id)
    except ValueError as exc:
        print(f"Nothing changed: {exc}.", file=sys.stderr)
        return 2
    finally:
        db.close()
    print(f"Panel user {user.login!r} {'created' if created else 'updated; their sessions ended'}."
          f" Log in at http://{settings.web_bind}:{settings.web_port}/")
    return 0


def playground_wanted(environ=None, env_file=None) -> bool:
    """No BOT_TOKEN anywhere: `run` shows the playground instead of stopping."""
    from config import ROOT, read_environment
    raw = read_environment(environ, ROOT / ".env" if env_file is None else env_file)
    return not raw.get("BOT_TOKEN", "").strip()


def cmd_demo(settings: Settings | None, args) -> int:
    from sandbox.demo import main
    return main()


# Commands that reach the database: without MYSQL_* they use `make run`'s own under var/.
DATABASE_COMMANDS = ("worker", "accounts", "tg-login", "migrate", "schema", "api-token", "create-admin")
WRITES_ROWS = ("api-token", "create-admin")

COMMANDS = {
    "run": (cmd_run, "doors, workers and Telegram intake (webhook or polling), one process group"),
    "polling": (cmd_polling, "like run, but always long polling (development)"),
    "worker": (cmd_worker, "one worker process"),
    "accounts": (cmd_accounts, "the Telegram accounts process (every account's session, one loop)"),
    "tg-login": (cmd_tg_login, "create a Telegram account's session interactively"),
    "set-webhook": (cmd_set_webhook, "register WEBHOOK_URL with Telegram"),
    "delete-webhook": (cmd_delete_webhook, "remove the webhook"),
    "migrate": (cmd_migrate, "apply the versioned migrations the database lacks"),
    "schema": (cmd_schema, "print the schema the migrations made (schema.sql)"),
    "demo": (cmd_demo, "the whole flow against the sandbox, no credentials"),
    "api-token": (cmd_api_token, "1C API tokens: create NAME | list | revoke NAME|#ID"),
    "create-admin": (cmd_create_admin, "create a panel user (or set their password)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="KeepDesk")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        if name == "worker":
            command.add_argument("--threads", type=int, default=None)
        if name == "api-token":
            command.add_argument("action", choices=("create", "list", "revoke"))
            command.add_argument("name", nargs="?")
        if name == "create-admin":
            command.add_argument("login")
            command.add_argument(
                "--telegram-id", type=int, default=None,
                help="bind the login to this Telegram id for good: it works only while that "
                     "person is an admin (without: the server's own login)")
            command.add_argument("--password-stdin", action="store_true")
        if name == "tg-login":
            command.add_argument("number", help="the account's phone number")
            command.add_argument("--file", default=None, help="session file path (default sessions/NUMBER)")
            command.add_argument("--store", action="store_true",
                                 help="keep the session encrypted in the database instead")
    args = parser.parse_args(argv)
    if args.command == "demo":
        configure_logging("WARNING")
        return cmd_demo(None, args)
    if args.command == "run" and playground_wanted():
        from sandbox.playground import main as playground
        return playground()
    try:
        settings = load_settings(database_only=args.command in ("migrate", "schema", "api-token",
                                                                "create-admin"))
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.secrets)
    if args.command not in DATABASE_COMMANDS:
        return COMMANDS[args.command][0](settings, args)
    # Without MYSQL_* these reach `make run`'s own MariaDB under var/, as `run` does;
    # those that write rows bring its schema up to date first.
    from models.mariadb import reachable
    with reachable(settings) as settings:
        configure_logging(settings.log_level, settings.secrets)
        if args.command in WRITES_ROWS:
            _migrate_quietly(settings)
        return COMMANDS[args.command][0](settings, args)


def _migrate_quietly(settings: Settings) -> None:
    from models.db import Database, migrate
    db = Database(settings, pool_size=1)
    try:
        migrate(db)
    finally:
        db.close()


