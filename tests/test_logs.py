"""No secret in any log line: configured secrets and the CRM's rotating token."""
import logging

from utils.logs import RedactSecrets, configure_logging


def test_secrets_and_crm_tokens_are_redacted(capfd):
    configure_logging("DEBUG", ["123456:sandbox-token", "crm-api-key"])
    log = logging.getLogger("urllib3.connectionpool")
    log.debug('http://127.0.0.1:80 "GET /bot123456:sandbox-token/getMe HTTP/1.1" 200 1')
    log.debug('"GET /api/debates/v2?token=abc123def&id_i=5 HTTP/1.1" 200 2')
    logging.getLogger("x").error("login with key %s failed", "crm-api-key")
    err = capfd.readouterr().err
    assert "sandbox-token" not in err and "abc123def" not in err and "crm-api-key" not in err
    assert "/bot***/getMe" in err and "token=***&id_i=5" in err
    configure_logging("WARNING", [])


def test_redaction_keeps_ordinary_text():
    assert RedactSecrets(["s3cr3t"]).redact("tokens=3 and token_type=x") == "tokens=3 and token_type=x"
