"""Logging set-up: one format for every process, and no secret in any line.

urllib3 logs every request URL at DEBUG, and Telegram's URLs carry the bot token; a log
line may also quote a settings value by accident. The filter below replaces every
configured secret with a marker before a line is written, whatever logger produced it.
"""
from __future__ import annotations

import logging
import sys
from typing import Iterable

from utils import redact as redaction

FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


class RedactSecrets(logging.Filter):
    """Hides this filter's secrets and every secret the process registered
    (`utils.redact`), plus bot tokens and CRM session tokens whatever their value."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)
        redaction.register(self.secrets)

    def redact(self, text: str) -> str:
        return redaction.redact(text, self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def configure_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Send every logger's lines to stderr through the redacting filter."""
    root = logging.getLogger()
    root.setLevel(level)
    handler = next((h for h in root.handlers if getattr(h, "_keepdesk", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._keepdesk = True  # type: ignore[attr-defined]
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    for old in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
        handler.removeFilter(old)
    handler.addFilter(RedactSecrets(secrets))
    # Telebot's own logger writes to its own handler; route it through ours instead.
    telebot_logger = logging.getLogger("TeleBot")
    telebot_logger.handlers.clear()
    telebot_logger.propagate = True
