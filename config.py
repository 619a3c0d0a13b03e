"""KeepDesk settings: one typed, immutable object built from the environment and `.env`.

Every setting of SPEC §7 is here with its default; `.env.example` documents each one.
A missing or malformed required setting stops start-up with a message naming it
(`SettingsError`). Nothing here connects anywhere: building settings is pure.

Required: BOT_TOKEN always. The CRM settings (CHAT_NEW_MESSAGE, KEEPING_*, LINK_KEY) come
as a group: with none of them KeepDesk runs as a bare desk (access requests, admin
commands) and says so at start-up; with any of them, all are required. The webhook
secrets are required when WEBHOOK_URL is set. With a public address (PUBLIC_URL or
WEBHOOK_URL) a strong SECRET_KEY and METRICS_TOKEN are required, and a Green-API account
receiving by webhook always needs its webhook token (`_check_public`).
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping
from urllib.parse import urlparse

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent

# Telegram accepts 1-256 characters of A-Z, a-z, 0-9, _ and - as a webhook secret token.
_SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# Secret path parts end up in URLs: keep them URL-safe and long enough not to be guessed.
_PATH_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    # Telegram
    bot_token: str = field(repr=False)
    chat_new_message: int | None = None
    channel_log: int | None = None
    telegram_api_url: str = "https://api.telegram.org"
    webhook_url: str | None = None
    webhook_secret_path: str | None = field(default=None, repr=False)
    webhook_secret_token: str | None = field(default=None, repr=False)
    admin_ids: tuple[int, ...] = ()
    # CRM
    keeping_api_url: str = ""
    keeping_seller_id: str = ""
    keeping_api_key: str = field(default="", repr=False)
    keeping_web_url: str = ""
    link_key: str = field(default="", repr=False)
    crm_allowed_ips: tuple[str, ...] = ()
    metrics_token: str | None = field(default=None, repr=False)
    crm_max_message_len: int = 4000
    # Database
    mysql_host: str | None = None
    mysql_port: int = 3306
    mysql_user: str = "keepdesk"
    mysql_password: str = field(default="", repr=False)
    mysql_db: str = "keepdesk"
    mysql_socket: str | None = None
    mysql_pool_size: int = 8
    # Servers and workers
    webhook_port: int = 8443
    listener_port: int = 8080
    bind_host: str = "0.0.0.0"
    http_workers: int = 2
    workers: int = 1
    worker_threads: int = 4
    max_body_bytes: int = 1_048_576
    job_lease_seconds: float = 20.0
    var_dir: Path = ROOT / "var"
    # Telegram limits
    tg_limit_global_per_s: float = 30.0
    tg_limit_private_per_s: float = 1.0
    tg_limit_group_per_min: float = 20.0
    # Behaviour knobs
    pin_ttl_hours: float = 24.0
    reconcile_every: float = 60.0
    retention_days: int = 180
    clean_after_hours: float = 24.0
    task_product_pattern: str = r"(?i)ключ|key|активац|activation"
    bot_language: str | None = None
    log_level: str = "INFO"
    # WhatsApp Cloud API (CHANNELS.md §3) and the 1C API (§2)
    whatsapp_cloud_token: str | None = field(default=None, repr=False)
    whatsapp_cloud_phone_number_id: str | None = None
    whatsapp_cloud_app_secret: str | None = field(default=None, repr=False)
    whatsapp_cloud_verify_token: str | None = field(default=None, repr=False)
    whatsapp_cloud_graph_url: str = "https://graph.facebook.com"
    whatsapp_cloud_api_version: str = "v21.0"
    whatsapp_numbers_file: Path | None = None
    whatsapp_template_language: str = "uk"
    whatsapp_template_review: str | None = None
    whatsapp_template_appointment: str | None = None
    whatsapp_template_birthday: str | None = None
    whatsapp_templates: tuple[tuple[str, int], ...] = ()
    whatsapp_limit_per_number_per_s: float = 80.0
    whatsapp_limit_customer_seconds: float = 6.0
    whatsapp_media_max_bytes: int = 20 * 1024 * 1024
    phone_default_region: str = "UA"
    onec_api_enabled: bool = True
    onec_repeat_window_seconds: float = 600.0
    onec_expiry_hours: float = 36.0
    onec_birthday_days: float = 7.0
    # WhatsApp gateways (CHANNELS.md §4): Green-API-compatible services and Devino
    whatsapp_provider: str | None = None        # cloud | greenapi | devino (None: by the settings set)
    whatsapp_greenapi_url: str | None = None
    whatsapp_greenapi_media_url: str | None = None
    whatsapp_greenapi_id: str | None = None
    whatsapp_greenapi_token: str | None = field(default=None, repr=False)
    whatsapp_greenapi_style: str = "path"
    whatsapp_greenapi_webhook_token: str | None = field(default=None, repr=False)
    whatsapp_greenapi_receive: str = "webhook"
    whatsapp_greenapi_receive_timeout: int = 5
    whatsapp_devino_url: str = "https://api.devino.online"
    whatsapp_devino_key: str | None = field(default=None, repr=False)
    whatsapp_devino_from: str | None = None
    whatsapp_devino_callback_secret: str | None = field(default=None, repr=False)
    whatsapp_devino_batch: int = 100
    whatsapp_devino_limit_per_s: float = 20.0
    whatsapp_devino_confirm_seconds: float = 600.0
    whatsapp_devino_collect_seconds: float = 0.5
    whatsapp_gateway_timeout_seconds: float = 20.0
    whatsapp_template_texts: Path | None = None
    # SMS when WhatsApp cannot reach a customer (docs/sms.md): Devino's SMS API
    sms_devino_url: str = "https://api.devino.online"
    sms_devino_key: str | None = field(default=None, repr=False)
    sms_devino_from: str | None = None
    sms_devino_callback_secret: str | None = field(default=None, repr=False)
    sms_devino_batch: int = 100
    sms_devino_limit_per_s: float = 20.0
    sms_devino_confirm_seconds: float = 600.0
    sms_devino_collect_seconds: float = 0.5
    sms_devino_priority: str = "HIGH"
    sms_validity_seconds: int = 86400
    sms_fallback_hours: float = 24.0
    sms_template_appointment: str = "Вас записано до {doctor} на {date} о {time}."
    sms_template_review: str = "{name}, дякуємо за візит! Будемо раді вашому відгуку."
    sms_template_birthday: str = "{name}, вітаємо з днем народження!"
    sms_template_custom: str = "{params}"
    # Telegram user accounts ↔ Planfix (CHANNELS.md §5)
    planfix_provider_id: str = ""
    planfix_admin_token: str | None = field(default=None, repr=False)
    telegram_api_id: int | None = None
    telegram_api_hash: str | None = field(default=None, repr=False)
    public_url: str | None = None
    tg_accounts_backend: str = "telethon"
    tg_accounts_sandbox_url: str | None = None
    tg_accounts_key: str | None = field(default=None, repr=False)
    tg_sessions_dir: Path = ROOT / "sessions"
    tg_accounts_routing: str = "planfix"
    tg_accounts_rpc_port: int = 0
    tg_accounts_rpc_host: str = "127.0.0.1"
    # This app host's name among several (leases and job leases name their holder by it).
    host_name: str = field(default_factory=socket.gethostname)
    planfix_resolve_timeout: float = 8.0
    signed_url_ttl: float = 3600.0
    media_max_bytes: int = 15 * 1024 * 1024   # under MariaDB's default max_allowed_packet (16 MiB)
    # Outside addresses KeepDesk downloads (utils/fetch.py): origins besides the configured
    # CRM / gateway URLs that may be on a private address (e.g. a LAN Planfix, an emulator)
    fetch_trusted_origins: tuple[str, ...] = ()
    # The desk that never strands a customer (SPEC §8)
    sla_remind_minutes: int = 15
    sla_takeback_minutes: int = 60
    working_hours: str = ""
    tz: str = "Europe/Kyiv"
    # The answer outside working hours (docs/desk-care.md)
    holidays: tuple = ()                       # local dates (datetime.date) the shop is closed
    after_hours_channels: tuple[str, ...] = ("whatsapp", "tgaccount", "keepingcrm")
    # the reply's words with {when}; per channel (…_WHATSAPP_UK) over all channels (…_UK)
    after_hours_text_uk: str = ""
    after_hours_text_en: str = ""
    after_hours_text_whatsapp_uk: str = ""
    after_hours_text_whatsapp_en: str = ""
    after_hours_text_tgaccount_uk: str = ""
    after_hours_text_tgaccount_en: str = ""
    after_hours_text_keepingcrm_uk: str = ""
    after_hours_text_keepingcrm_en: str = ""
    after_hours_template: str = ""             # WhatsApp, outside the 24-hour window
    # The admin panel (WEB.md §1): its own door
    web_port: int = 8090
    web_bind: str = "127.0.0.1"
    web_secret_key: str = field(default="", repr=False)
    web_session_idle_minutes: int = 480
    web_session_max_hours: int = 72
    # Keys and the public face (utils/keys.py; docs/security.md)
    secret_key: str = field(default="", repr=False)
    trusted_proxies: tuple[str, ...] = ()
    # The figures by e-mail (docs/digest.md): off unless DIGEST_PERIOD is set
    digest_period: str = ""                    # "", "daily" or "weekly"
    digest_hour: int = 8                       # hour of day in TZ the digest goes out
    digest_recipients: tuple[str, ...] = ()
    digest_from: str = ""
    smtp_host: str = ""
    smtp_port: int = 0                         # 0: 587 with STARTTLS, 465 with SMTPS
    smtp_security: str = "starttls"            # "starttls" or "smtps"
    smtp_login: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_ca_file: Path | None = None           # a CA to trust besides the system's
    smtp_timeout: float = 30.0

    @property
    def crm_configured(self) -> bool:
        """Without the CRM settings KeepDesk runs as a bare desk (access, admin commands)."""
        return bool(self.keeping_api_url and self.link_key and self.chat_new_message is not None)

    @property
    def whatsapp_configured(self) -> bool:
        """One account by settings (Cloud API, a Green-API-compatible gateway or Devino), or
        more in WHATSAPP_NUMBERS_FILE (CHANNELS.md §3, §4)."""
        return bool(self.whatsapp_numbers_file or self.whatsapp_settings_provider)

    @property
    def whatsapp_settings_provider(self) -> str | None:
        """The provider of the account the settings describe: WHATSAPP_PROVIDER, or the one
        family whose settings are set (None: the settings describe no account)."""
        complete = {"cloud": bool(self.whatsapp_cloud_token and self.whatsapp_cloud_phone_number_id),
                    "greenapi": bool(self.whatsapp_greenapi_id and self.whatsapp_greenapi_token),
                    "devino": bool(self.whatsapp_devino_key and self.whatsapp_devino_from)}
        if self.whatsapp_provider:
            return self.whatsapp_provider if complete[self.whatsapp_provider] else None
        found = [name for name, ok in complete.items() if ok]
        return found[0] if len(found) == 1 else None

    @property
    def whatsapp_default_provider(self) -> str:
        """WHATSAPP_PROVIDER, or the settings' family: also the provider of entries of
        WHATSAPP_NUMBERS_FILE that name none."""
        return self.whatsapp_provider or self.whatsapp_settings_provider or "cloud"

    @property
    def sms_configured(self) -> bool:
        """An SMS provider is set up: notices WhatsApp could not deliver go by SMS."""
        return bool(self.sms_devino_key and self.sms_devino_from)

    @property
    def planfix_configured(self) -> bool:
        """Telegram accounts relayed to Planfix: the management endpoint and the accounts
        process exist only with PLANFIX_ADMIN_TOKEN (and its group) set."""
        return bool(self.planfix_admin_token and self.tg_accounts_key)

    @property
    def public_deployment(self) -> bool:
        """KeepDesk has a public address (PUBLIC_URL or WEBHOOK_URL): production. Then a
        strong SECRET_KEY and METRICS_TOKEN are required."""
        return bool(self.public_url or self.webhook_url)

    @property
    def uses_local_mariadb(self) -> bool:
        """No host and no socket configured: KeepDesk runs its own MariaDB under var/."""
        return not self.mysql_host and not self.mysql_socket

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a log line or a URL we print."""
        values = (self.bot_token, self.keeping_api_key, self.mysql_password,
                  self.link_key, self.webhook_secret_token, self.webhook_secret_path,
                  self.metrics_token, self.whatsapp_cloud_token, self.whatsapp_cloud_app_secret,
                  self.whatsapp_cloud_verify_token, self.planfix_admin_token,
                  self.whatsapp_greenapi_token, self.whatsapp_greenapi_webhook_token,
                  self.whatsapp_devino_key, self.whatsapp_devino_callback_secret,
                  self.sms_devino_key, self.sms_devino_callback_secret,
                  self.telegram_api_hash, self.tg_accounts_key, self.web_secret_key,
                  self.secret_key, self.smtp_password)
        return tuple(v for v in values if v)

    @property
    def digest_on(self) -> bool:
        return bool(self.digest_period)

    @property
    def smtp_port_used(self) -> int:
        return self.smtp_port or (465 if self.smtp_security == "smtps" else 587)

    @property
    def hours(self):
        """WORKING_HOURS in TZ, as the SLA counts time (utils/hours.py)."""
        from utils.hours import WorkingHours
        return WorkingHours.parse(self.working_hours, self.tz)

    def after_hours_text(self, channel: str, language: str) -> str:
        """The answer outside working hours set for this channel and language ("" unset)."""
        return (getattr(self, f"after_hours_text_{channel}_{language}", "")
                or getattr(self, f"after_hours_text_{language}", ""))

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)


# --- parsers: each takes the raw string and returns the typed value or raises ValueError ---

def _int(raw: str) -> int:
    return int(raw.strip())


def _positive_int(raw: str) -> int:
    value = _int(raw)
    if value <= 0:
        raise ValueError("must be a positive integer")
    return value


def _port(raw: str) -> int:
    value = _int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("must be a TCP port (0-65535)")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw.strip())
    if not value > 0:
        raise ValueError("must be a positive number")
    return value


def _int_list(raw: str) -> tuple[int, ...]:
    return tuple(int(part) for part in raw.replace(" ", "").split(",") if part)


def _networks(raw: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in raw.split(",") if part.strip())
    for part in parts:
        ipaddress.ip_network(part, strict=False)  # ValueError names the bad entry
    return parts


def _http_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("must be an http(s) URL")
    return url


def _origins(raw: str) -> tuple[str, ...]:
    """Comma-separated http(s) origins: scheme://host[:port], nothing after."""
    found = []
    for part in (p.strip().rstrip("/") for p in raw.split(",")):
        if not part:
            continue
        parsed = urlparse(_http_url(part))
        if parsed.path or parsed.query or parsed.fragment or "@" in parsed.netloc:
            raise ValueError(f"{part!r} must be an origin only: scheme://host[:port]")
        parsed.port  # ValueError names a bad port
        found.append(part)
    return tuple(found)


def _https_url(raw: str) -> str:
    url = _http_url(raw)
    if not url.startswith("https://"):
        raise ValueError("must be an https URL (Telegram only calls https webhooks)")
    return url


def _bot_token(raw: str) -> str:
    token = raw.strip()
    if not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", token):
        raise ValueError("must look like '<digits>:<letters>' as BotFather gives it")
    return token


def _secret_token(raw: str) -> str:
    if not _SECRET_TOKEN_RE.fullmatch(raw):
        raise ValueError("1-256 characters of A-Z a-z 0-9 _ -")
    return raw


def _path_secret(raw: str) -> str:
    if not _PATH_SECRET_RE.fullmatch(raw):
        raise ValueError("8-128 characters of A-Z a-z 0-9 _ -")
    return raw


def _regex(raw: str) -> str:
    re.compile(raw)
    return raw


def _language(raw: str) -> str | None:
    value = raw.strip().lower()
    if value not in ("uk", "en"):
        raise ValueError("must be 'uk' or 'en'")
    return value


def _log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return value


def _backend(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("telethon", "sandbox"):
        raise ValueError("must be 'telethon' or 'sandbox'")
    return value


def _routing(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("planfix", "desk", "both"):
        raise ValueError("must be 'planfix', 'desk' or 'both'")
    return value
def _minutes(raw: str) -> int:
    value = _int(raw)
    if not 0 <= value <= 7 * 24 * 60:
        raise ValueError("must be minutes between 0 (off) and 10080 (a week)")
    return value


def _working_hours(raw: str) -> str:
    from utils.hours import WorkingHours
    WorkingHours.parse(raw)  # HoursError (a ValueError) says what is wrong
    return raw.strip()


def _holidays(raw: str) -> tuple:
    """"2026-01-01, 2026-01-07": the local dates the shop is closed all day."""
    from datetime import date
    days = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            days.append(date.fromisoformat(item))
        except ValueError:
            raise ValueError(f"{item!r} is not a date: write YYYY-MM-DD, separated by commas") from None
    return tuple(sorted(set(days)))


AFTER_HOURS_CHANNEL_NAMES = ("whatsapp", "tgaccount", "keepingcrm")


def _after_hours_channels(raw: str) -> tuple[str, ...]:
    """"whatsapp, tgaccount" (or "off"): the channels that answer outside working hours."""
    if raw.strip().lower() in ("off", "none", "no"):
        return ()
    names = tuple(dict.fromkeys(p.strip().lower() for p in raw.split(",") if p.strip()))
    unknown = [n for n in names if n not in AFTER_HOURS_CHANNEL_NAMES]
    if unknown:
        raise ValueError(f"unknown channel {unknown[0]!r}: use "
                         + ", ".join(AFTER_HOURS_CHANNEL_NAMES) + " or off")
    return names


def _template_name(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[a-z0-9_]{1,512}", value):
        raise ValueError("must be an approved template's name (lower case letters, digits, _)")
    return value


def _after_hours_text(raw: str) -> str:
    value = raw.strip()
    if "{" in value.replace("{when}", ""):
        raise ValueError("may hold only the placeholder {when} (when the shop opens)")
    if len(value) > 1000:
        raise ValueError("must be at most 1000 characters")
    return value


def _time_zone(raw: str) -> str:
    from utils.hours import parse_timezone
    return parse_timezone(raw).key


def _text(raw: str) -> str:
    return raw.strip()


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be on or off (true/false, 1/0)")


def _region(raw: str) -> str:
    value = raw.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", value):
        raise ValueError("must be a two-letter country code such as UA or RU")
    return value


def _api_version(raw: str) -> str:
    value = raw.strip()
    value = value if value.startswith("v") else f"v{value}"
    if not re.fullmatch(r"v\d{1,3}\.\d{1,2}", value):
        raise ValueError("must look like v21.0")
    return value


def _digits(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"\d{5,32}", value):
        raise ValueError("must be the number's id: digits only")
    return value


def _templates(raw: str) -> tuple[tuple[str, int], ...]:
    """`name:count,name:count`: the shop's approved templates and their body parameters."""
    found = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        name, _, count = part.partition(":")
        if not re.fullmatch(r"[a-z0-9_]{1,512}", name.strip()) or not count.strip().isdigit():
            raise ValueError(f"{part!r}: expected name:parameter_count, e.g. order_ready:2")
        found.append((name.strip(), int(count)))
    return tuple(found)


def _template_name(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[a-z0-9_]{1,512}", value):
        raise ValueError("a template name is lower-case letters, digits and _")
    return value


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError("must be " + ", ".join(f"'{c}'" for c in choices[:-1])
                             + f" or '{choices[-1]}'")
        return value
    return parse


def _receive_timeout(raw: str) -> int:
    value = _int(raw)
    if not 5 <= value <= 60:
        raise ValueError("Green-API takes 5 to 60 seconds")
    return value


def _sender(raw: str) -> str:
    value = raw.strip().lstrip("+")
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
        raise ValueError("the sender name or number Devino gave the shop (letters, digits, _ . -)")
    return value


def _devino_batch(raw: str) -> int:
    value = _positive_int(raw)
    if value > 1000:
        raise ValueError("at most 1000 messages in one call")
    return value


def _host_name(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,48}", value):
        raise ValueError("letters, digits, _ . - (at most 48): this host's name among the app hosts")
    return value


def _rpc_host(raw: str) -> str:
    value = raw.strip()
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("an IP address of this host (127.0.0.1, or its private address when"
                         " the app hosts are several)") from None
    return value


def _collect_seconds(raw: str) -> float:
    value = float(raw.strip())
    if not 0 <= value <= 1:
        raise ValueError("0 (send at once) to 1 second")
    return value


SMS_PLACEHOLDERS = ("doctor", "date", "time", "name", "params")


def _sms_template(raw: str) -> str:
    value = raw.strip()
    unknown = sorted(set(re.findall(r"{([^{}]*)}", value)) - set(SMS_PLACEHOLDERS))
    if unknown:
        raise ValueError(f"unknown placeholder {{{unknown[0]}}} (known: "
                         + ", ".join("{" + p + "}" for p in SMS_PLACEHOLDERS) + ")")
    if len(value) > 1000:
        raise ValueError("at most 1000 characters")
    return value


def _sms_sender(raw: str) -> str:
    value = raw.strip()
    if not (re.fullmatch(r"[A-Za-z0-9 ._-]{1,11}", value) or re.fullmatch(r"[0-9]{1,15}", value)):
        raise ValueError("the approved sender name Devino gave the shop (up to 11 Latin letters or 15 digits)")
    return value


def _sms_priority(raw: str) -> str:
    value = raw.strip().upper()
    if value not in ("LOW", "MEDIUM", "HIGH", "REALTIME", "0", "1", "2", "3"):
        raise ValueError("LOW, MEDIUM, HIGH or REALTIME (or 0 to 3)")
    return value


def _sms_validity(raw: str) -> int:
    value = _positive_int(raw)
    if value > 259200:
        raise ValueError("at most 259200 seconds (3 days)")
    return value


def _web_secret(raw: str) -> str:
    value = raw.strip()
    if len(value) < 32:
        raise ValueError("must be at least 32 characters"
                         " (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return value


def _accounts_key(raw: str) -> str:
    from utils.secretbox import key_problem
    value = raw.strip()
    problem = key_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _session_idle(raw: str) -> int:
    value = _int(raw)
    if not 5 <= value <= 7 * 24 * 60:
        raise ValueError("must be minutes between 5 and 10080 (a week)")
    return value


def _session_hours(raw: str) -> int:
    value = _int(raw)
    if not 1 <= value <= 31 * 24:
        raise ValueError("must be hours between 1 and 744 (31 days)")
    return value


def _master_secret(raw: str) -> str:
    from utils.keys import weakness
    value = raw.strip()
    problem = weakness(value)
    if problem:
        raise ValueError(problem + " (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return value


_EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


def _email(raw: str) -> str:
    value = raw.strip()
    if not _EMAIL_RE.fullmatch(value):
        raise ValueError(f"not an e-mail address like owner@shop.example: {value[:80]!r}")
    return value


def _emails(raw: str) -> tuple[str, ...]:
    values = tuple(_email(part) for part in raw.split(",") if part.strip())
    if not values:
        raise ValueError("a comma-separated list of e-mail addresses")
    if len(values) > 50:
        raise ValueError("at most 50 recipients")
    return values


def _hour(raw: str) -> int:
    value = _int(raw)
    if not 0 <= value <= 23:
        raise ValueError("an hour of the day, 0-23")
    return value


def _host(raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z0-9._:\[\]-]{1,253}", value):
        raise ValueError("a host name or address")
    return value


# An SMTP password is the mail provider's; a short or well-known one is refused all the same.
_WEAK_PASSWORDS = {"password", "passw0rd", "12345678", "123456789", "1234567890", "qwertyui",
                   "qwerty123", "changeme", "secret12", "password1", "admin123", "letmein1"}


def smtp_password_weakness(value: str) -> str | None:
    if len(value) < 10:
        return "must be at least 10 characters"
    if value.lower() in _WEAK_PASSWORDS or len(set(value)) < 4:
        return "is a well-known or repetitive password"
    return None


def _path(raw: str) -> Path:
    path = Path(raw.strip())
    return path if path.is_absolute() else ROOT / path


# name -> (field, parser, required)
_SPEC: dict[str, tuple[str, Callable[[str], object], bool]] = {
    "BOT_TOKEN": ("bot_token", _bot_token, True),
    "CHAT_NEW_MESSAGE": ("chat_new_message", _int, False),
    "CHANNEL_LOG": ("channel_log", _int, False),
    "TELEGRAM_API_URL": ("telegram_api_url", _http_url, False),
    "WEBHOOK_URL": ("webhook_url", _https_url, False),
    "WEBHOOK_SECRET_PATH": ("webhook_secret_path", _path_secret, False),
    "WEBHOOK_SECRET_TOKEN": ("webhook_secret_token", _secret_token, False),
    "ADMIN_IDS": ("admin_ids", _int_list, False),
    "KEEPING_API_URL": ("keeping_api_url", _http_url, False),
    "KEEPING_SELLER_ID": ("keeping_seller_id", _text, False),
    "KEEPING_API_KEY": ("keeping_api_key", _text, False),
    "KEEPING_WEB_URL": ("keeping_web_url", _http_url, False),
    "LINK_KEY": ("link_key", _path_secret, False),
    "CRM_ALLOWED_IPS": ("crm_allowed_ips", _networks, False),
    "METRICS_TOKEN": ("metrics_token", _secret_token, False),
    "CRM_MAX_MESSAGE_LEN": ("crm_max_message_len", _positive_int, False),
    "MYSQL_HOST": ("mysql_host", _text, False),
    "MYSQL_PORT": ("mysql_port", _port, False),
    "MYSQL_USER": ("mysql_user", _text, False),
    "MYSQL_PASSWORD": ("mysql_password", str, False),
    "MYSQL_DB": ("mysql_db", _text, False),
    "MYSQL_SOCKET": ("mysql_socket", _text, False),
    "MYSQL_POOL_SIZE": ("mysql_pool_size", _positive_int, False),
    "WEBHOOK_PORT": ("webhook_port", _port, False),
    "LISTENER_PORT": ("listener_port", _port, False),
    "BIND_HOST": ("bind_host", _text, False),
    "HTTP_WORKERS": ("http_workers", _positive_int, False),
    "WORKERS": ("workers", _positive_int, False),
    "WORKER_THREADS": ("worker_threads", _positive_int, False),
    "MAX_BODY_BYTES": ("max_body_bytes", _positive_int, False),
    "JOB_LEASE_SECONDS": ("job_lease_seconds", _positive_float, False),
    "KEEPDESK_VAR_DIR": ("var_dir", _path, False),
    "TG_LIMIT_GLOBAL_PER_S": ("tg_limit_global_per_s", _positive_float, False),
    "TG_LIMIT_PRIVATE_PER_S": ("tg_limit_private_per_s", _positive_float, False),
    "TG_LIMIT_GROUP_PER_MIN": ("tg_limit_group_per_min", _positive_float, False),
    "PIN_TTL_HOURS": ("pin_ttl_hours", _positive_float, False),
    "RECONCILE_EVERY": ("reconcile_every", _positive_float, False),
    "RETENTION_DAYS": ("retention_days", _positive_int, False),
    "CLEAN_AFTER_HOURS": ("clean_after_hours", _positive_float, False),
    "TASK_PRODUCT_PATTERN": ("task_product_pattern", _regex, False),
    "BOT_LANGUAGE": ("bot_language", _language, False),
    "LOG_LEVEL": ("log_level", _log_level, False),
    # WhatsApp (CHANNELS.md §3) and the 1C API (§2)
    "WHATSAPP_CLOUD_TOKEN": ("whatsapp_cloud_token", _text, False),
    "WHATSAPP_CLOUD_PHONE_NUMBER_ID": ("whatsapp_cloud_phone_number_id", _digits, False),
    "WHATSAPP_CLOUD_APP_SECRET": ("whatsapp_cloud_app_secret", _text, False),
    "WHATSAPP_CLOUD_VERIFY_TOKEN": ("whatsapp_cloud_verify_token", _text, False),
    "WHATSAPP_CLOUD_GRAPH_URL": ("whatsapp_cloud_graph_url", _http_url, False),
    "WHATSAPP_CLOUD_API_VERSION": ("whatsapp_cloud_api_version", _api_version, False),
    "WHATSAPP_NUMBERS_FILE": ("whatsapp_numbers_file", _path, False),
    "WHATSAPP_TEMPLATE_LANGUAGE": ("whatsapp_template_language", _text, False),
    "WHATSAPP_TEMPLATE_REVIEW": ("whatsapp_template_review", _template_name, False),
    "WHATSAPP_TEMPLATE_APPOINTMENT": ("whatsapp_template_appointment", _template_name, False),
    "WHATSAPP_TEMPLATE_BIRTHDAY": ("whatsapp_template_birthday", _template_name, False),
    "WHATSAPP_TEMPLATES": ("whatsapp_templates", _templates, False),
    "WHATSAPP_LIMIT_PER_NUMBER_PER_S": ("whatsapp_limit_per_number_per_s", _positive_float, False),
    "WHATSAPP_LIMIT_CUSTOMER_SECONDS": ("whatsapp_limit_customer_seconds", _positive_float, False),
    "WHATSAPP_MEDIA_MAX_BYTES": ("whatsapp_media_max_bytes", _positive_int, False),
    "PHONE_DEFAULT_REGION": ("phone_default_region", _region, False),
    "ONEC_API_ENABLED": ("onec_api_enabled", _bool, False),
    "ONEC_REPEAT_WINDOW_SECONDS": ("onec_repeat_window_seconds", _positive_float, False),
    "ONEC_EXPIRY_HOURS": ("onec_expiry_hours", _positive_float, False),
    "ONEC_BIRTHDAY_DAYS": ("onec_birthday_days", _positive_float, False),
    # WhatsApp gateways (CHANNELS.md §4)
    "WHATSAPP_PROVIDER": ("whatsapp_provider", _one_of("cloud", "greenapi", "devino"), False),
    "WHATSAPP_GREENAPI_URL": ("whatsapp_greenapi_url", _http_url, False),
    "WHATSAPP_GREENAPI_MEDIA_URL": ("whatsapp_greenapi_media_url", _http_url, False),
    "WHATSAPP_GREENAPI_ID": ("whatsapp_greenapi_id", _digits, False),
    "WHATSAPP_GREENAPI_TOKEN": ("whatsapp_greenapi_token", _text, False),
    "WHATSAPP_GREENAPI_STYLE": ("whatsapp_greenapi_style", _one_of("path", "bearer"), False),
    "WHATSAPP_GREENAPI_WEBHOOK_TOKEN": ("whatsapp_greenapi_webhook_token", _text, False),
    "WHATSAPP_GREENAPI_RECEIVE": ("whatsapp_greenapi_receive", _one_of("webhook", "poll"), False),
    "WHATSAPP_GREENAPI_RECEIVE_TIMEOUT": ("whatsapp_greenapi_receive_timeout", _receive_timeout, False),
    "WHATSAPP_DEVINO_URL": ("whatsapp_devino_url", _http_url, False),
    "WHATSAPP_DEVINO_KEY": ("whatsapp_devino_key", _text, False),
    "WHATSAPP_DEVINO_FROM": ("whatsapp_devino_from", _sender, False),
    "WHATSAPP_DEVINO_CALLBACK_SECRET": ("whatsapp_devino_callback_secret", _path_secret, False),
    "WHATSAPP_DEVINO_BATCH": ("whatsapp_devino_batch", _devino_batch, False),
    "WHATSAPP_DEVINO_LIMIT_PER_S": ("whatsapp_devino_limit_per_s", _positive_float, False),
    "WHATSAPP_DEVINO_CONFIRM_SECONDS": ("whatsapp_devino_confirm_seconds", _positive_float, False),
    "WHATSAPP_DEVINO_COLLECT_SECONDS": ("whatsapp_devino_collect_seconds", _collect_seconds, False),
    "WHATSAPP_GATEWAY_TIMEOUT_SECONDS": ("whatsapp_gateway_timeout_seconds", _positive_float, False),
    "WHATSAPP_TEMPLATE_TEXTS": ("whatsapp_template_texts", _path, False),
    "SMS_DEVINO_URL": ("sms_devino_url", _http_url, False),
    "SMS_DEVINO_KEY": ("sms_devino_key", _text, False),
    "SMS_DEVINO_FROM": ("sms_devino_from", _sms_sender, False),
    "SMS_DEVINO_CALLBACK_SECRET": ("sms_devino_callback_secret", _path_secret, False),
    "SMS_DEVINO_BATCH": ("sms_devino_batch", _devino_batch, False),
    "SMS_DEVINO_LIMIT_PER_S": ("sms_devino_limit_per_s", _positive_float, False),
    "SMS_DEVINO_CONFIRM_SECONDS": ("sms_devino_confirm_seconds", _positive_float, False),
    "SMS_DEVINO_COLLECT_SECONDS": ("sms_devino_collect_seconds", _collect_seconds, False),
    "SMS_DEVINO_PRIORITY": ("sms_devino_priority", _sms_priority, False),
    "SMS_VALIDITY_SECONDS": ("sms_validity_seconds", _sms_validity, False),
    "SMS_FALLBACK_HOURS": ("sms_fallback_hours", _positive_float, False),
    "SMS_TEMPLATE_APPOINTMENT": ("sms_template_appointment", _sms_template, False),
    "SMS_TEMPLATE_REVIEW": ("sms_template_review", _sms_template, False),
    "SMS_TEMPLATE_BIRTHDAY": ("sms_template_birthday", _sms_template, False),
    "SMS_TEMPLATE_CUSTOM": ("sms_template_custom", _sms_template, False),
    # Telegram user accounts ↔ Planfix (CHANNELS.md §5)
    "PLANFIX_PROVIDER_ID": ("planfix_provider_id", _text, False),
    "PLANFIX_ADMIN_TOKEN": ("planfix_admin_token", _secret_token, False),
    "TELEGRAM_API_ID": ("telegram_api_id", _positive_int, False),
    "TELEGRAM_API_HASH": ("telegram_api_hash", _text, False),
    "PUBLIC_URL": ("public_url", _http_url, False),
    "TG_ACCOUNTS_BACKEND": ("tg_accounts_backend", _backend, False),
    "TG_ACCOUNTS_SANDBOX_URL": ("tg_accounts_sandbox_url", _http_url, False),
    "TG_ACCOUNTS_KEY": ("tg_accounts_key", _accounts_key, False),
    "TG_SESSIONS_DIR": ("tg_sessions_dir", _path, False),
    "TG_ACCOUNTS_ROUTING": ("tg_accounts_routing", _routing, False),
    "TG_ACCOUNTS_RPC_PORT": ("tg_accounts_rpc_port", _port, False),
    "TG_ACCOUNTS_RPC_HOST": ("tg_accounts_rpc_host", _rpc_host, False),
    "HOST_NAME": ("host_name", _host_name, False),
    "PLANFIX_RESOLVE_TIMEOUT": ("planfix_resolve_timeout", _positive_float, False),
    "SIGNED_URL_TTL": ("signed_url_ttl", _positive_float, False),
    "MEDIA_MAX_BYTES": ("media_max_bytes", _positive_int, False),
    "FETCH_TRUSTED_ORIGINS": ("fetch_trusted_origins", _origins, False),
    "SLA_REMIND_MINUTES": ("sla_remind_minutes", _minutes, False),
    "SLA_TAKEBACK_MINUTES": ("sla_takeback_minutes", _minutes, False),
    "WORKING_HOURS": ("working_hours", _working_hours, False),
    "TZ": ("tz", _time_zone, False),
    # The answer outside working hours (docs/desk-care.md)
    "HOLIDAYS": ("holidays", _holidays, False),
    "AFTER_HOURS_CHANNELS": ("after_hours_channels", _after_hours_channels, False),
    "AFTER_HOURS_TEMPLATE": ("after_hours_template", _template_name, False),
    "AFTER_HOURS_TEXT_UK": ("after_hours_text_uk", _after_hours_text, False),
    "AFTER_HOURS_TEXT_EN": ("after_hours_text_en", _after_hours_text, False),
    "AFTER_HOURS_TEXT_WHATSAPP_UK": ("after_hours_text_whatsapp_uk", _after_hours_text, False),
    "AFTER_HOURS_TEXT_WHATSAPP_EN": ("after_hours_text_whatsapp_en", _after_hours_text, False),
    "AFTER_HOURS_TEXT_TGACCOUNT_UK": ("after_hours_text_tgaccount_uk", _after_hours_text, False),
    "AFTER_HOURS_TEXT_TGACCOUNT_EN": ("after_hours_text_tgaccount_en", _after_hours_text, False),
    "AFTER_HOURS_TEXT_KEEPINGCRM_UK": ("after_hours_text_keepingcrm_uk", _after_hours_text, False),
    "AFTER_HOURS_TEXT_KEEPINGCRM_EN": ("after_hours_text_keepingcrm_en", _after_hours_text, False),
    # The admin panel (WEB.md §1)
    "WEB_PORT": ("web_port", _port, False),
    "WEB_BIND": ("web_bind", _text, False),
    "WEB_SECRET_KEY": ("web_secret_key", _web_secret, False),
    "WEB_SESSION_IDLE_MINUTES": ("web_session_idle_minutes", _session_idle, False),
    "WEB_SESSION_MAX_HOURS": ("web_session_max_hours", _session_hours, False),
    # Keys and the public face (utils/keys.py)
    "SECRET_KEY": ("secret_key", _master_secret, False),
    "TRUSTED_PROXIES": ("trusted_proxies", _networks, False),
    # The figures by e-mail (docs/digest.md)
    "DIGEST_PERIOD": ("digest_period", _one_of("daily", "weekly"), False),
    "DIGEST_HOUR": ("digest_hour", _hour, False),
    "DIGEST_RECIPIENTS": ("digest_recipients", _emails, False),
    "DIGEST_FROM": ("digest_from", _email, False),
    "SMTP_HOST": ("smtp_host", _host, False),
    "SMTP_PORT": ("smtp_port", _port, False),
    "SMTP_SECURITY": ("smtp_security", _one_of("starttls", "smtps"), False),
    "SMTP_LOGIN": ("smtp_login", _text, False),
    "SMTP_PASSWORD": ("smtp_password", str, False),
    "SMTP_CA_FILE": ("smtp_ca_file", _path, False),
    "SMTP_TIMEOUT": ("smtp_timeout", _positive_float, False),
}

SETTING_NAMES = tuple(_SPEC)


def read_environment(environ: Mapping[str, str] | None = None,
                     env_file: str | os.PathLike | None = ROOT / ".env") -> dict[str, str]:
    """The raw settings: `.env` first, the real environment wins over it."""
    merged: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def load_settings(environ: Mapping[str, str] | None = None, *,
                  env_file: str | os.PathLike | None = ROOT / ".env",
                  database_only: bool = False) -> Settings:
    """Build Settings or raise SettingsError naming every missing or malformed setting.

    `database_only` is for `python -m bot migrate`, which needs nothing but the database.
    """
    raw = read_environment(environ, env_file)
    values: dict[str, object] = {}
    problems: list[str] = []
    for name, (attr, parse, required) in _SPEC.items():
        text = raw.get(name, "")
        if text.strip() == "":
            if required and not database_only:
                problems.append(f"{name} is required but not set")
            continue
        try:
            values[attr] = parse(text)
        except (ValueError, re.error) as exc:
            problems.append(f"{name} is malformed: {exc}")
    if values.get("webhook_url"):
        _require_together(values, problems, "when WEBHOOK_URL is set", _WEBHOOK_GROUP)
    if not database_only and ("whatsapp_cloud_token" in values
                              or "whatsapp_cloud_phone_number_id" in values):
        _require_together(values, problems, "to connect a WhatsApp number", _WHATSAPP_GROUP)
    if not database_only:
        _check_gateways(values, problems)
    if not database_only and any(attr in values for attr in _SMS_GROUP.values()):
        _require_together(values, problems, "to send SMS through Devino", _SMS_GROUP)
    if not database_only and any(attr in values for attr in _CRM_GROUP.values()):
        _require_together(values, problems, "to connect the CRM", _CRM_GROUP)
    if not database_only and values.get("planfix_admin_token"):
        _require_together(values, problems, "to relay Telegram accounts to Planfix", _PLANFIX_GROUP)
    if values.get("tg_accounts_backend") == "sandbox" and not database_only:
        _require_together(values, problems, "with TG_ACCOUNTS_BACKEND=sandbox",
                          {"TG_ACCOUNTS_SANDBOX_URL": "tg_accounts_sandbox_url"})
    if not database_only:
        _check_public(values, problems)
    if not database_only and values.get("digest_period"):
        _check_digest(values, problems)
    if problems:
        raise SettingsError("KeepDesk cannot start: " + "; ".join(problems)
                            + ". See .env.example for every setting.")
    if database_only:
        values.setdefault("bot_token", "")
    return Settings(**values)  # type: ignore[arg-type]


# Settings that only make sense all together: one of a group set means all are needed.
_WEBHOOK_GROUP = {"WEBHOOK_SECRET_PATH": "webhook_secret_path",
                  "WEBHOOK_SECRET_TOKEN": "webhook_secret_token"}
_CRM_GROUP = {"CHAT_NEW_MESSAGE": "chat_new_message", "KEEPING_API_URL": "keeping_api_url",
              "KEEPING_SELLER_ID": "keeping_seller_id", "KEEPING_API_KEY": "keeping_api_key",
              "KEEPING_WEB_URL": "keeping_web_url", "LINK_KEY": "link_key"}

_PLANFIX_GROUP = {"PLANFIX_PROVIDER_ID": "planfix_provider_id", "TG_ACCOUNTS_KEY": "tg_accounts_key",
                  "PUBLIC_URL": "public_url"}


_WHATSAPP_GROUP = {"WHATSAPP_CLOUD_TOKEN": "whatsapp_cloud_token",
                   "WHATSAPP_CLOUD_PHONE_NUMBER_ID": "whatsapp_cloud_phone_number_id",
                   "WHATSAPP_CLOUD_APP_SECRET": "whatsapp_cloud_app_secret",
                   "WHATSAPP_CLOUD_VERIFY_TOKEN": "whatsapp_cloud_verify_token"}


_GREENAPI_GROUP = {"WHATSAPP_GREENAPI_URL": "whatsapp_greenapi_url",
                   "WHATSAPP_GREENAPI_ID": "whatsapp_greenapi_id",
                   "WHATSAPP_GREENAPI_TOKEN": "whatsapp_greenapi_token"}
_DEVINO_GROUP = {"WHATSAPP_DEVINO_KEY": "whatsapp_devino_key",
                 "WHATSAPP_DEVINO_FROM": "whatsapp_devino_from",
                 "WHATSAPP_DEVINO_CALLBACK_SECRET": "whatsapp_devino_callback_secret",
                 "PUBLIC_URL": "public_url"}
_SMS_GROUP = {"SMS_DEVINO_KEY": "sms_devino_key", "SMS_DEVINO_FROM": "sms_devino_from"}
_PROVIDER_GROUPS = {"cloud": _WHATSAPP_GROUP, "greenapi": _GREENAPI_GROUP, "devino": _DEVINO_GROUP}


def _check_gateways(values: dict, problems: list[str]) -> None:
    """A gateway's settings come as a group; WHATSAPP_PROVIDER names a complete one, and
    chooses when the settings of several families are set (CHANNELS.md §4)."""
    if any(attr in values for attr in ("whatsapp_greenapi_id", "whatsapp_greenapi_token")):
        _require_together(values, problems, "to connect a Green-API-compatible gateway", _GREENAPI_GROUP)
    if any(attr in values for attr in ("whatsapp_devino_key", "whatsapp_devino_from")):
        _require_together(values, problems, "to connect Devino", _DEVINO_GROUP)
    chosen = values.get("whatsapp_provider")
    started = {"cloud": "whatsapp_cloud_token" in values or "whatsapp_cloud_phone_number_id" in values,
               "greenapi": "whatsapp_greenapi_id" in values,
               "devino": "whatsapp_devino_key" in values}
    if chosen and not started[chosen] and "whatsapp_numbers_file" not in values:
        _require_together(values, problems, f"with WHATSAPP_PROVIDER={chosen}", _PROVIDER_GROUPS[chosen])
    if not chosen and sum(started.values()) > 1:
        problems.append("WHATSAPP_PROVIDER is required when the settings of several WhatsApp providers"
                        " are set (" + ", ".join(n for n, s in started.items() if s) + ")")


def _check_public(values: dict, problems: list[str]) -> None:
    """With a public address the secure defaults are not optional: a strong master secret
    (its own generated one would differ between hosts and go unnoticed in a restore),
    /metrics and /healthz details behind a token (behind a same-host proxy every caller
    looks local), and every Green-API webhook authenticated."""
    public = [name for name, attr in (("PUBLIC_URL", "public_url"), ("WEBHOOK_URL", "webhook_url"))
              if values.get(attr)]
    why = f"when {' and '.join(public)} {'is' if len(public) == 1 else 'are'} set"
    if public:
        _require_together(values, problems, why, {"SECRET_KEY": "secret_key", "METRICS_TOKEN": "metrics_token"})
    greenapi = values.get("whatsapp_greenapi_id") and (
        values.get("whatsapp_provider") in (None, "greenapi"))
    if (greenapi and values.get("whatsapp_greenapi_receive", "webhook") == "webhook"
            and not values.get("whatsapp_greenapi_webhook_token")):
        if not any(p.startswith("WHATSAPP_GREENAPI_WEBHOOK_TOKEN") for p in problems):
            problems.append("WHATSAPP_GREENAPI_WEBHOOK_TOKEN is required with WHATSAPP_GREENAPI_RECEIVE=webhook"
                            " (anyone who knows the instance id could post to the webhook otherwise;"
                            " or receive by polling: WHATSAPP_GREENAPI_RECEIVE=poll)")


def _check_digest(values: dict, problems: list[str]) -> None:
    """The digest goes out by SMTP with a login: everything it needs, and a password that
    is not weak (it is a secret like the others: never logged, never shown)."""
    _require_together(values, problems, "when DIGEST_PERIOD is set", {
        "DIGEST_RECIPIENTS": "digest_recipients", "DIGEST_FROM": "digest_from",
        "SMTP_HOST": "smtp_host", "SMTP_LOGIN": "smtp_login", "SMTP_PASSWORD": "smtp_password"})
    password = values.get("smtp_password")
    if password and (problem := smtp_password_weakness(password)):
        problems.append(f"SMTP_PASSWORD is weak: it {problem}")


def _require_together(values: dict, problems: list[str], why: str, group: dict[str, str]) -> None:
    for name, attr in group.items():
        if attr not in values and not any(p.startswith(name) for p in problems):
            problems.append(f"{name} is required {why}")
