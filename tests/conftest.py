"""Test session: a real throwaway MariaDB, the sandbox emulators, fresh tables per test.

The MariaDB server lives in a temporary directory on a unix socket for the whole session
and is stopped at the end; each test that asks for `db` starts from empty tables.
"""
from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from config import Settings, load_settings  # noqa: E402
from models.db import Database, migrate  # noqa: E402
from models.singleton import ProcessSingleton  # noqa: E402
from models.mariadb import LocalMariaDB  # noqa: E402

TEST_DB = "keepdesk_test"
TABLES = ("jobs", "tg_message_map", "pins", "messages", "conversations", "manager_state", "users",
          "outbound", "error_causes", "worker_bells",
          "delivery_statuses", "wa_outbox", "onec_requests", "appointments", "unsubscribed_phones",
          "reviews", "api_tokens",
          # WhatsApp gateways (issue 12)
          "wa_batches", "wa_instances", "wa_files",
          "tg_accounts", "tg_account_hosts", "tg_contacts", "tg_sent", "tg_media",
          # the desk of SPEC §8 (issue 14)
          "responses", "desk_shifts", "chat_joins", "chat_notes", "canned_replies", "album_parts",
          "order_context", "desk_chores",
          # automatic replies, auto-assignment, scores
          "auto_replies", "auto_assign", "scores", "customer_links",
          # the admin panel (issue 15)
          "panel_users", "panel_throttle", "panel_sessions",
          # WhatsApp accounts added in the panel
          "wa_panel_accounts",
          # Telegram accounts logged in from the panel
          "tg_logins",
          # the figures by e-mail
          "digests",
          # leases and locks held by replicated rows
          "leases")

BOT_TOKEN = "123456:sandbox-token"
SHARED_CHAT = -1001000000001
LOG_CHAT = -1001000000002
ADMIN_ID = 9001


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_group_alive(pgid: int) -> bool:
    """Is any process of this group still running (a `python -m bot run` under test)?"""
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.fixture(scope="session")
def mariadb():
    directory = tempfile.mkdtemp(prefix="keepdesk-test-db-")
    server = LocalMariaDB(directory, durable=False, buffer_pool="128M").start()
    server.create_database(TEST_DB, drop=True)
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


# The master secret every process of a test derives its keys from (utils/keys.py).
SECRET_KEY = "test-master-secret-0123456789-abcdefXYZ"
# Required with a public address (PUBLIC_URL, WEBHOOK_URL).
METRICS_TOKEN = "test-metrics-token-0123"


def base_environment(mariadb: LocalMariaDB, **overrides: str) -> dict[str, str]:
    """A complete, valid KeepDesk environment pointing at the test database."""
    env = {
        "BOT_TOKEN": BOT_TOKEN,
        "CHAT_NEW_MESSAGE": str(SHARED_CHAT),
        "CHANNEL_LOG": str(LOG_CHAT),
        "ADMIN_IDS": str(ADMIN_ID),
        "TELEGRAM_API_URL": "http://127.0.0.1:9",
        "WEBHOOK_SECRET_PATH": "test-webhook-path",
        "WEBHOOK_SECRET_TOKEN": "test-secret-token",
        "KEEPING_API_URL": "http://127.0.0.1:9/api",
        "KEEPING_SELLER_ID": "1",
        "KEEPING_API_KEY": "sandbox-api-key",
        "KEEPING_WEB_URL": "http://127.0.0.1:9/web",
        "LINK_KEY": "test-link-key",
        "SECRET_KEY": SECRET_KEY,
        "JOB_LEASE_SECONDS": "5",
        **mariadb.environment(TEST_DB),
    }
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def schema(mariadb):
    settings = load_settings(base_environment(mariadb), env_file=None)
    db = Database(settings, pool_size=1)
    migrate(db)
    db.close()
    return True


@pytest.fixture
def settings(mariadb, schema) -> Settings:
    return load_settings(base_environment(mariadb), env_file=None)


@pytest.fixture
def db(settings):
    database = Database(settings)
    with database.connection() as conn, conn.cursor() as cur:
        for table in TABLES:
            cur.execute(f"DELETE FROM {table}")
        cur.execute("DELETE FROM tg_rate WHERE bucket <> 'global'")
        cur.execute("UPDATE tg_rate SET stamps = '', blocked_until = 0")
    ProcessSingleton.reset_all()
    yield database
    ProcessSingleton.reset_all()
    database.close()


@pytest.fixture(autouse=True)
def _restore_telebot_urls():
    import telebot.apihelper as apihelper
    saved = (apihelper.API_URL, apihelper.FILE_URL)
    yield
    apihelper.API_URL, apihelper.FILE_URL = saved


@pytest.fixture
def subprocess_env(mariadb):
    """Environment for a KeepDesk child process started by a test."""
    env = dict(os.environ)
    env.update(base_environment(mariadb))
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture(scope="session")
def _tg_server():
    from sandbox.telegram import TelegramSandbox
    server = TelegramSandbox(BOT_TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def tg(_tg_server):
    """The Telegram sandbox, emptied for this test."""
    _tg_server.reset()
    yield _tg_server
    _tg_server.reset()


@pytest.fixture(scope="session")
def _crm_server():
    from sandbox.crm import CrmSandbox
    server = CrmSandbox(api_key="sandbox-api-key", seller_id=1).start()
    yield server
    server.stop()


@pytest.fixture
def crm(_crm_server):
    """The CRM sandbox, emptied for this test."""
    _crm_server.reset()
    yield _crm_server
    _crm_server.reset()


@pytest.fixture
def sandbox_settings(settings, tg, crm) -> Settings:
    return settings.replace(telegram_api_url=tg.url, keeping_api_url=crm.api_url,
                            keeping_web_url=crm.web_url)


@pytest.fixture
def desk(sandbox_settings, db, tg, crm):
    from harness import Desk
    running = Desk(sandbox_settings, db, tg, crm).start()
    yield running
    running.stop()


@pytest.fixture
def reconciling_desk(sandbox_settings, db, tg, crm):
    """A desk whose reconciliation runs every half second."""
    from harness import Desk
    running = Desk(sandbox_settings.replace(reconcile_every=0.5), db, tg, crm).start()
    yield running
    running.stop()


# -- WhatsApp (issue 11) --------------------------------------------------------------------

@pytest.fixture(scope="session")
def _wa_server():
    from sandbox.whatsapp import WhatsAppSandbox
    # Meta allows about one message per 6 s to one customer; tests keep the rule at a
    # tenth of a second (KeepDesk's limiter is set to match, in whatsapp_settings).
    server = WhatsAppSandbox(pair_seconds=0.1).start()
    yield server
    server.stop()


@pytest.fixture
def wa(_wa_server):
    """The WhatsApp Cloud API sandbox, emptied for this test."""
    _wa_server.reset()
    yield _wa_server
    _wa_server.reset()


def whatsapp_settings(settings: Settings, wa, **changes) -> Settings:
    """Settings of one WhatsApp number pointed at the sandbox."""
    return settings.replace(whatsapp_cloud_token=wa.token, whatsapp_cloud_phone_number_id=wa.phone_number_id,
                            whatsapp_cloud_app_secret=wa.app_secret,
                            whatsapp_cloud_verify_token=wa.verify_token,
                            whatsapp_cloud_graph_url=wa.url,
                            whatsapp_limit_customer_seconds=wa.pair_seconds + 0.05, **changes)


@pytest.fixture
def wa_settings(sandbox_settings, wa) -> Settings:
    # Telegram's one message a second to a private chat is the CRM desk tests' business;
    # here it would only make the manager wait between the bot's answers.
    return whatsapp_settings(sandbox_settings.replace(tg_limit_private_per_s=50.0), wa,
                             whatsapp_templates=(("order_ready", 1), ("hello", 0)),
                             whatsapp_template_appointment="appointment",
                             whatsapp_template_review="review", whatsapp_template_birthday="birthday")


@pytest.fixture
def wa_desk(wa_settings, db, tg, crm, wa):
    """A desk with the CRM and one WhatsApp number, the sandbox subscribed to its webhook."""
    from harness import Desk
    running = Desk(wa_settings, db, tg, crm, wa=wa).start()
    yield running
    running.stop()


# --- Telegram accounts ↔ Planfix (CHANNELS.md §5) -------------------------------------------

PLANFIX_ADMIN_TOKEN = "planfix-admin-token"
TG_ACCOUNTS_KEY = "test-accounts-key-0123456789-abcdefghijklmnop"


@pytest.fixture(scope="session")
def _tga_server():
    from sandbox.tgaccounts import TgAccountsSandbox
    server = TgAccountsSandbox().start()
    yield server
    server.stop()


@pytest.fixture
def tga(_tga_server):
    """The Telegram accounts emulator, emptied for this test."""
    _tga_server.reset()
    yield _tga_server
    _tga_server.reset()


@pytest.fixture(scope="session")
def _planfix_server():
    from sandbox.planfix import PlanfixSandbox
    server = PlanfixSandbox().start()
    yield server
    server.stop()


@pytest.fixture
def planfix(_planfix_server):
    """The Planfix chat-API emulator, emptied for this test."""
    _planfix_server.reset()
    yield _planfix_server
    _planfix_server.reset()


def planfix_environment(mariadb, tga, planfix, sessions, routing: str = "planfix") -> dict[str, str]:
    return {"PLANFIX_ADMIN_TOKEN": PLANFIX_ADMIN_TOKEN, "PLANFIX_PROVIDER_ID": planfix.provider_id,
            "TG_ACCOUNTS_KEY": TG_ACCOUNTS_KEY, "PUBLIC_URL": "http://127.0.0.1:9",
            "METRICS_TOKEN": METRICS_TOKEN,
            "TG_ACCOUNTS_BACKEND": "sandbox", "TG_ACCOUNTS_SANDBOX_URL": tga.url,
            "TG_ACCOUNTS_ROUTING": routing, "TG_SESSIONS_DIR": str(sessions),
            "FETCH_TRUSTED_ORIGINS": planfix.url}


@pytest.fixture
def sessions_dir(tmp_path):
    """The sessions folder (TG_SESSIONS_DIR) of this test: its own tmp_path."""
    return tmp_path


@pytest.fixture
def planfix_settings(sandbox_settings, mariadb, tga, planfix, sessions_dir) -> Settings:
    env = base_environment(mariadb, **planfix_environment(mariadb, tga, planfix, sessions_dir))
    loaded = load_settings(env, env_file=None)
    return sandbox_settings.replace(**{k: getattr(loaded, k) for k in (
        "planfix_admin_token", "planfix_provider_id", "tg_accounts_key", "public_url",
        "tg_accounts_backend", "tg_accounts_sandbox_url", "tg_accounts_routing", "tg_sessions_dir",
        "fetch_trusted_origins")})


@pytest.fixture
def accounts_env(subprocess_env, mariadb, tga, planfix, sessions_dir):
    """The environment of a `python -m bot accounts` started by a test."""
    return dict(subprocess_env, **planfix_environment(mariadb, tga, planfix, sessions_dir),
                LOG_LEVEL="WARNING")


# --- WhatsApp gateways (issue 12): Green-API-compatible and Devino --------------------------

@pytest.fixture(scope="session")
def _ga_server():
    from sandbox.greenapi import GreenApiSandbox
    server = GreenApiSandbox().start()
    yield server
    server.stop()


@pytest.fixture
def ga(_ga_server):
    """The Green-API-compatible gateway sandbox, emptied for this test."""
    _ga_server.reset()
    yield _ga_server
    _ga_server.reset()


@pytest.fixture(scope="session")
def _dv_server():
    from sandbox.devino import DevinoSandbox
    server = DevinoSandbox().start()
    yield server
    server.stop()


@pytest.fixture
def dv(_dv_server):
    """The Devino sandbox, emptied for this test."""
    _dv_server.reset()
    yield _dv_server
    _dv_server.reset()


@pytest.fixture(scope="session")
def _sms_server():
    from sandbox.devino_sms import DevinoSmsSandbox
    server = DevinoSmsSandbox().start()
    yield server
    server.stop()


@pytest.fixture
def sms(_sms_server):
    """Devino's SMS API sandbox, emptied for this test."""
    _sms_server.reset()
    yield _sms_server
    _sms_server.reset()


@pytest.fixture(params=["cloud", "greenapi", "devino"])
def wa_any(request, sandbox_settings, db, tg, crm):
    """One WhatsApp account of each provider in turn: (driver, desk). The driver speaks
    to the provider's sandbox in the same words for every provider (tests/wa_providers.py)."""
    from harness import Desk
    from wa_providers import driver_for
    server = request.getfixturevalue({"cloud": "wa", "greenapi": "ga", "devino": "dv"}[request.param])
    driver = driver_for(request.param, server)
    settings = driver.settings(sandbox_settings.replace(tg_limit_private_per_s=50.0),
                               whatsapp_templates=(("order_ready", 1), ("hello", 0)),
                               whatsapp_template_appointment="appointment",
                               whatsapp_template_review="review", whatsapp_template_birthday="birthday")
    running = Desk(settings, db, tg, crm, wa=server).start()
    driver.desk = running
    yield driver
    running.stop()


# -- the browser tests (issue 15): one headless Chromium for the whole session ------------------

@pytest.fixture(scope="session")
def browser():
    from sandbox import browser as chromium
    chromium.ensure_installed()
    driver = chromium.start()
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (var/artifacts/, git-ignored)."""
    directory = ROOT / "var" / "artifacts"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """A browser test that fails leaves what the browser showed: failed-<test>.png/.html."""
    report = yield
    driver = item.funcargs.get("browser") if report.when == "call" and report.failed else None
    if driver is not None:
        directory = ROOT / "var" / "artifacts"
        directory.mkdir(parents=True, exist_ok=True)
        try:
            driver.save_screenshot(str(directory / f"failed-{item.name}.png"))
            (directory / f"failed-{item.name}.html").write_text(
                f"<!-- {driver.current_url} -->\n{driver.page_source}", encoding="utf-8")
        except Exception as exc:  # the report matters more than the picture
            print(f"could not save the browser's state: {exc}")
    return report
