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
import json
import logging
import time

from telebot import TeleBot
from telebot.apihelper import ApiTelegramException

from bot.formatting import visible_len
from bot.keyboards import to_markup
from bot.posts import POST_TEXT_LIMIT
from bot.ratelimit import RateLimiter
from bot.texts import text
from models.jobs import SEND, Job, JobQueue
from models.message_map import MessageMapRepository
from models.users import UserManager
from scripts.worker import RetryLater
from utils.metrics import SENDS, SIGNAL_TO_POST

log = logging.getLogger(__name__)


# Merge only when a post would otherwise wait noticeably (the group's per-minute budget).
MERGE_WHEN_WAITING = 1.0


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
        mergeable = bool(payload.get("merge_html"))
        if mergeable and chat_id < 0 and self._budget_is_the_bottleneck(job, chat_id):
            payload = self._merge(job) or payload
        wait = self.limiter.reserve(chat_id)
        if wait > 0:
            SENDS.labels("rate_limited").inc()
            if wait >= MERGE_WHEN_WAITING and mergeable:
                self._merge(job)
            raise RetryLater(f"send budget of chat {chat_id} used up", wait)
        if job.deferrals > 0 and mergeable:
            # It waited for the budget: fold in what queued up behind it meanwhile.
            payload = self._merge(job) or payload
        try:
            sent = self._send(payload)
        except ApiTelegramException as exc:
            self.limiter.confirm(chat_id)
            self._on_refusal(job, chat_id, exc)
            return
        except BaseException:
            self.limiter.confirm(chat_id)
            raise
        self.limiter.confirm(chat_id)
        SENDS.labels("sent").inc()
        if payload.get("signal_at"):
            SIGNAL_TO_POST.observe(max(0.0, time.time() - float(payload["signal_at"])))
        if payload.get("id_i") is not None:
            self.message_map.record(chat_id, sent.message_id, int(payload["id_i"]),
                                    payload.get("crm_message_id"), payload.get("purpose", "post"),
                                    html=payload["text"])

    def _budget_is_the_bottleneck(self, job: Job, chat_id: int) -> bool:
        """More posts queued for this group than its window still allows."""
        queued = self.jobs.db.scalar("SELECT COUNT(*) FROM jobs WHERE lane = %s AND status = 'pending'",
                                     (job.lane,))
        return queued > 0 and queued + 1 > self.limiter.remaining(chat_id)

    def _merge(self, job: Job) -> dict | None:
        merged, payload = merge_waiting_posts(self.jobs, job)
        if merged:
            SENDS.labels("merged").inc(merged)
        return payload

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
            SENDS.labels("retry_after").inc()
            delay = retry_after_of(exc)
            self.limiter.block(chat_id, delay)
            raise RetryLater(f"Telegram asked chat {chat_id} to wait {delay}s", delay) from exc
        if is_not_modified(exc):
            SENDS.labels("not_modified").inc()
            return
        if exc.error_code == 403 and chat_id > 0:
            SENDS.labels("blocked").inc()
            self.users.set_reachable(chat_id, False)
            self.report_error(f"user {chat_id} blocked the bot; no more messages to them "
                              f"until they /start again ({exc.description})")
            return
        SENDS.labels("error").inc()
        raise exc  # 5xx: transient, retried by the worker; other 4xx: reported after retries

    def report_error(self, message: str) -> None:
        """#ERROR to the log chat (itself a durable send), and to the process log."""
        log.error(message)
        queue_post(self.jobs, self.log_chat_id,
                   text("log_error", None, text=html.escape(message)[:3500]))


def merge_waiting_posts(jobs: JobQueue, job: Job) -> tuple[int, dict]:
    """While a chat's budget is used up, fold the posts queued behind `job` about the same
    CRM chat into it: one post with all their messages and the newest reply button.
    Nothing is dropped — merged jobs are marked done only in the same transaction that
    puts their text into `job`. Returns how many posts were merged, and the job's payload."""
    head = job.payload
    with jobs.db.transaction() as cur:
        cur.execute("SELECT payload FROM jobs WHERE id = %s FOR UPDATE", (job.id,))
        current = json.loads(cur.fetchone()["payload"])  # may hold earlier merges
        # SKIP LOCKED: a post another transaction is touching (being queued again by a
        # sync) is left for the next merge rather than waited for.
        cur.execute("SELECT id, payload FROM jobs WHERE lane = %s AND status = 'pending'"
                    " AND kind = 'tg_send' AND id <> %s ORDER BY seq, id FOR UPDATE SKIP LOCKED",
                    (job.lane, job.id))
        text_html, merged = current["text"], []
        for row in cur.fetchall():
            queued = json.loads(row["payload"])
            if queued.get("id_i") != head.get("id_i") or not queued.get("merge_html"):
                continue
            candidate = text_html + "\n\n" + queued["merge_html"]
            if visible_len(candidate) > POST_TEXT_LIMIT:
                break
            text_html = candidate
            merged.append(row["id"])
            current.update(reply_markup=queued.get("reply_markup") or current.get("reply_markup"),
                           crm_message_id=queued.get("crm_message_id"),
                           merged=current.get("merged", 0) + 1)
        if not merged:
            return 0, current
        current["text"] = text_html
        cur.execute("UPDATE jobs SET payload = %s WHERE id = %s",
                    (json.dumps(current, ensure_ascii=False), job.id))
        placeholders = ", ".join(["%s"] * len(merged))
        cur.execute(f"UPDATE jobs SET status = 'done', last_error = %s WHERE id IN ({placeholders})",
                    (f"merged into job {job.id}", *merged))
    log.info("merged %s queued posts into job %s", len(merged), job.id)
    return len(merged), current


def queue_post(jobs: JobQueue, chat_id: int | None, html_text: str,
               reply_markup: dict | None = None) -> None:
    """A background message (log chat, notices, reports), sent by the sender within the
    limits; a 403 from a person who blocked the bot is handled there."""
    if chat_id is None:
        return
    jobs.enqueue(SEND, "tg_send", {"chat_id": chat_id, "method": "sendMessage", "text": html_text,
                                   "reply_markup": reply_markup}, lane=f"send:{chat_id}")
