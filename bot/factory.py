"""Building the bot: pyTelegramBotAPI pointed at the configured Bot API, handlers wired.

In webhook and worker mode the bot runs with `threaded=False`: our workers provide the
concurrency, and telebot's own thread pool would swallow exceptions and reorder updates.
"""
from __future__ import annotations

import logging

import telebot
from telebot import ExceptionHandler, TeleBot, apihelper

from config import Settings

log = logging.getLogger(__name__)


def configure_api(settings: Settings) -> None:
    """Point telebot (process-wide) at the Bot API of the settings."""
    base = settings.telegram_api_url.rstrip("/")
    apihelper.API_URL = base + "/bot{0}/{1}"
    apihelper.FILE_URL = base + "/file/bot{0}/{1}"
    apihelper.CONNECT_TIMEOUT = 5
    apihelper.READ_TIMEOUT = 30
    apihelper.RETRY_ON_ERROR = False  # our workers retry with backoff, durably


class Reraise(ExceptionHandler):
    """Hand every handler error back to the worker, which retries or reports it."""

    def handle(self, exception: BaseException) -> bool:
        raise exception


def new_bot(settings: Settings, *, middlewares: bool = False) -> TeleBot:
    configure_api(settings)
    return TeleBot(settings.bot_token, threaded=False, parse_mode="HTML",
                   use_class_middlewares=middlewares, exception_handler=Reraise())


def create_bot(settings: Settings) -> TeleBot:
    """A bare bot for API calls only (webhook management, file downloads, deletes)."""
    return new_bot(settings)


def process_update(bot: TeleBot, payload: dict) -> None:
    bot.process_new_updates([telebot.types.Update.de_json(payload)])
