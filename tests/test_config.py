"""Settings: defaults, validation that names the culprit, .env handling."""
import pytest

from config import SETTING_NAMES, SettingsError, load_settings

VALID = {
    "BOT_TOKEN": "123456:abc-DEF_ghi",
    "CHAT_NEW_MESSAGE": "-100123",
    "KEEPING_API_URL": "https://shop.keeping.example/api",
    "KEEPING_SELLER_ID": "7",
    "KEEPING_API_KEY": "k",
    "KEEPING_WEB_URL": "https://shop.keeping.example",
    "LINK_KEY": "link-key-123",
}


def test_defaults_of_the_operating_contract():
    s = load_settings(VALID, env_file=None)
    assert s.telegram_api_url == "https://api.telegram.org"
    assert (s.webhook_port, s.listener_port) == (8443, 8080)
    assert (s.tg_limit_global_per_s, s.tg_limit_private_per_s, s.tg_limit_group_per_min) == (30, 1, 20)
    assert s.pin_ttl_hours == 24
    assert s.webhook_url is None and s.uses_local_mariadb
    assert s.chat_new_message == -100123


def test_missing_bot_token_is_named():
    env = {k: v for k, v in VALID.items() if k != "BOT_TOKEN"}
    with pytest.raises(SettingsError) as err:
        load_settings(env, env_file=None)
    assert "BOT_TOKEN is required but not set" in str(err.value)


@pytest.mark.parametrize("missing", ["CHAT_NEW_MESSAGE", "KEEPING_API_KEY", "KEEPING_WEB_URL", "LINK_KEY"])
def test_an_incomplete_crm_connection_names_what_is_missing(missing):
    env = {k: v for k, v in VALID.items() if k != missing}
    with pytest.raises(SettingsError) as err:
        load_settings(env, env_file=None)
    assert f"{missing} is required to connect the CRM" in str(err.value)


def test_a_bot_token_alone_is_a_bare_desk():
    s = load_settings({"BOT_TOKEN": VALID["BOT_TOKEN"]}, env_file=None)
    assert not s.crm_configured and s.chat_new_message is None
    assert load_settings(VALID, env_file=None).crm_configured


@pytest.mark.parametrize("name,value", [
    ("WEBHOOK_PORT", "eighty"), ("WEBHOOK_PORT", "70000"), ("CHAT_NEW_MESSAGE", "shared"),
    ("BOT_TOKEN", "not a token"), ("TASK_PRODUCT_PATTERN", "(unclosed"),
    ("WEBHOOK_URL", "http://insecure.example"), ("ADMIN_IDS", "1,two"),
    ("BOT_LANGUAGE", "de"), ("CRM_ALLOWED_IPS", "10.0.0.0/8,not-an-ip"),
    ("PIN_TTL_HOURS", "-1"), ("WEBHOOK_SECRET_TOKEN", "has spaces in it"),
    ("FETCH_TRUSTED_ORIGINS", "http://10.0.0.5/files"), ("FETCH_TRUSTED_ORIGINS", "ftp://10.0.0.5"),
    ("FETCH_TRUSTED_ORIGINS", "http://user@10.0.0.5"), ("FETCH_TRUSTED_ORIGINS", "http://10.0.0.5:99999"),
])
def test_malformed_setting_is_named(name, value):
    with pytest.raises(SettingsError) as err:
        load_settings({**VALID, name: value}, env_file=None)
    assert f"{name} is malformed" in str(err.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(SettingsError) as err:
        load_settings({"WEBHOOK_PORT": "x"}, env_file=None)
    message = str(err.value)
    for name in ("BOT_TOKEN", "WEBHOOK_PORT"):
        assert name in message


def test_webhook_mode_requires_its_secrets():
    with pytest.raises(SettingsError) as err:
        load_settings({**VALID, "WEBHOOK_URL": "https://bot.example"}, env_file=None)
    assert "WEBHOOK_SECRET_PATH is required when WEBHOOK_URL is set" in str(err.value)
    assert "WEBHOOK_SECRET_TOKEN is required when WEBHOOK_URL is set" in str(err.value)


def test_trusted_fetch_origins_are_a_list_of_origins():
    s = load_settings({**VALID, "FETCH_TRUSTED_ORIGINS": " http://10.0.0.5:8080/, https://pf.lan "}, env_file=None)
    assert s.fetch_trusted_origins == ("http://10.0.0.5:8080", "https://pf.lan")
    assert load_settings(VALID, env_file=None).fetch_trusted_origins == ()


def test_dotenv_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("\n".join(f"{k}={v}" for k, v in VALID.items())
                        + "\nWEBHOOK_PORT=9000\nLISTENER_PORT=9001\n")
    s = load_settings({"WEBHOOK_PORT": "9100"}, env_file=env_file)
    assert s.webhook_port == 9100 and s.listener_port == 9001 and s.bot_token == VALID["BOT_TOKEN"]


def test_secrets_are_not_in_repr():
    s = load_settings({**VALID, "MYSQL_PASSWORD": "pw-secret"}, env_file=None)
    assert "pw-secret" not in repr(s) and VALID["LINK_KEY"] not in repr(s)


def test_env_example_documents_every_setting():
    from config import ROOT
    text = (ROOT / ".env.example").read_text()
    for name in SETTING_NAMES:
        assert f"{name}=" in text, name


def test_migrate_needs_only_the_database():
    s = load_settings({"MYSQL_HOST": "db.example"}, env_file=None, database_only=True)
    assert s.mysql_host == "db.example"
