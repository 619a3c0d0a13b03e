"""The sender: runs the durable `tg_send` jobs, within Telegram's limits.

Before each send a slot is reserved with the shared RateLimiter; without one the job is
put back until the slot frees (other chats keep flowing, since jobs are claimed per
chat lane). Telegram's answers are handled as SPEC §6 says:
429 → that chat waits `retry_after`; 5xx and network errors → retried with backoff by the
worker; 403 → the manager is marked unreachable (until their next /start) and #ERROR is
logged; "message is not modified" → success. Every message sent is recorded in the
Telegram message map, so a manager's reply to it finds its chat.
"""
from __future__ import annotations

import html
import logging

from telebot import TeleBot
from telebot.apihelper import ApiTelegramException

from bot.keyboards import to_markup
from bot.ratelimit import RateLimiter
from bot.texts import text
from models.jobs import SEND, Job, JobQueue
from models.message_map import MessageMapRepository
from models.users import UserManager
from scripts.worker import RetryLater

log = logging.getLogger(__name__)


def retry_after_of(exc: ApiTelegramException) -> float:
    parameters = (exc.result_json or {}).get("parameters") or {}
    return float(parameters.get("retry_after") or 1)


def is_not_modified(exc: ApiTelegramException) -> bool:
    return exc.error_code == 400 and "message is not modified" in (exc.description or "")


def _photo_refused(exc: ApiTelegramException) -> bool:
    # Telegram could not fetch the CRM's image URL (private, too big, wrong type).
    description = (exc.description or "").lower()
    return exc.error_code == 400 and any(
        marker in description for marker in ("wrong file identifier", "failed to get http url",
                                             "wrong type of the web page content",
                                             "photo_invalid_dimensions", "image_process_failed"))


class Sender:
    def __init__(self, bot: TeleBot, limiter: RateLimiter, jobs: JobQueue,
                 message_map: MessageMapRepository, users: UserManager,
                 log_chat_id: int | None) -> None:
        self.bot = bot
        self.limiter = limiter
        self.jobs = jobs
        self.message_map = message_map
        self.users = users
        self.log_chat_id = log_chat_id

    def __call__(self, job: Job) -> None:
        payload = job.payload
        chat_id = int(payload["chat_id"])
        wait = self.limiter.reserve(chat_id)
        if wait > 0:
            raise RetryLater(f"send budget of chat {chat_id} used up", wait)
        try:
            sent = self._send(payload)
        except ApiTelegramException as exc:
            self._on_refusal(job, chat_id, exc)
            return
        if payload.get("id_i") is not None:
            self.message_map.record(chat_id, sent.message_id, int(payload["id_i"]),
                                    payload.get("crm_message_id"), payload.get("purpose", "post"),
                                    html=payload["text"])

    def _send(self, payload: dict):
        markup = to_markup(payload.get("reply_markup"))
        silent = bool(payload.get("disable_notification"))
        chat_id = int(payload["chat_id"])
        if payload["method"] == "sendPhoto":
            try:
                return self.bot.send_photo(chat_id, payload["photo"], caption=payload["text"],
                                           parse_mode="HTML", reply_markup=markup,
                                           disable_notification=silent)
            except ApiTelegramException as exc:
                if not _photo_refused(exc):
                    raise
                log.warning("Telegram refused the image %s; sending it as a link", payload["photo"])
                body = payload["text"] + f'\n<a href="{html.escape(payload["photo"])}">🖼</a>'
                return self.bot.send_message(chat_id, body, parse_mode="HTML", reply_markup=markup,
                                             disable_notification=silent)
        return self.bot.send_message(chat_id, payload["text"], parse_mode="HTML",
                                     reply_markup=markup, disable_notification=silent)

    def _on_refusal(self, job: Job, chat_id: int, exc: ApiTelegramException) -> None:
        if exc.error_code == 429:
            delay = retry_after_of(exc)
            self.limiter.block(chat_id, delay)
            raise RetryLater(f"Telegram asked chat {chat_id} to wait {delay}s", delay) from exc
        if is_not_modified(exc):
            return
        if exc.error_code == 403 and chat_id > 0:
            self.users.set_reachable(chat_id, False)
            self.report_error(f"user {chat_id} blocked the bot; no more messages to them "
                              f"until they /start again ({exc.description})")
            return
        raise exc  # 5xx: transient, retried by the worker; other 4xx: reported after retries

    def report_error(self, message: str) -> None:
        """#ERROR to the log chat (itself a durable send), and to the process log."""
        log.error(message)
        queue_post(self.jobs, self.log_chat_id,
                   text("log_error", None, text=html.escape(message)[:3500]))


def queue_post(jobs: JobQueue, chat_id: int | None, html_text: str) -> None:
    """A background message (log chat, reports), sent by the sender within the limits."""
    if chat_id is None:
        return
    jobs.enqueue(SEND, "tg_send", {"chat_id": chat_id, "method": "sendMessage", "text": html_text},
                 lane=f"send:{chat_id}")
