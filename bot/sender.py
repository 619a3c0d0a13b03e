"""The sender: performs the durable `tg_send` jobs — every message, photo and edit the bot
sends — within Telegram's limits, each once.

Before each call a slot is reserved with the shared RateLimiter; without one the job is
put back until the slot frees (other chats keep flowing, since jobs are claimed per chat
lane). Telegram's answers are handled as SPEC §6 says: 429 → that chat waits
`retry_after`; 5xx and network errors → retried by the worker's failure policy; 403 from a
person → marked unreachable (until their next /start) and reported; "message is not
modified" → success; an edit of a message that is gone → nothing to do; any other refusal
→ `Permanent`: a dead letter with #ERROR (never just a log line).

A job's text is either ready HTML (`text`) or a notice (`notice` + `values`) rendered here
in the recipient's language, with every value escaped. Every message sent about a chat is
recorded in the Telegram message map, so a manager's reply to it finds its chat.
"""
from __future__ import annotations

import io
import logging
import time
from typing import Callable

from telebot import TeleBot, types
from telebot import apihelper
from telebot.apihelper import ApiTelegramException

from bot import formatting as fmt
from bot.formatting import visible_len
from bot.keyboards import main_menu_dict, to_markup
from bot.posts import POST_TEXT_LIMIT
from bot.ratelimit import RateLimiter
from bot.texts import language_for, text
from models.jobs import Job, JobQueue, Permanent, RetryLater
from models.locks import LockManager
from models.message_map import MessageMapRepository
from models.users import UserManager
from utils.metrics import SENDS, SIGNAL_TO_POST

log = logging.getLogger(__name__)

# Merge only when a post would otherwise wait noticeably (the group's per-minute budget).
MERGE_WHEN_WAITING = 1.0
# In a burst, how long a group's post waits for news still being synced to join it.
HOLD_FOR_NEWS = 0.5
# In a burst, news about a conversation posted seconds ago joins that post (an edit,
# which takes nothing of the group's budget) instead of waiting for the budget.
APPEND_WITHIN = 5.0

EDITS = ("editMessageText", "editMessageCaption", "editMessageReplyMarkup")

# Telegram could not fetch the CRM's image URL (private, too big, wrong type): a link instead.
_PHOTO_REFUSED = ("wrong file identifier", "wrong remote file identifier",
                  "failed to get http url", "wrong type of the web page content",
                  "photo_invalid_dimensions", "image_process_failed", "wrong http url")
# An edit of a message that is no longer there (deleted by /clean or by a person).
_EDIT_GONE = ("message to edit not found", "message can't be edited", "message_id_invalid")


def retry_after_of(exc: ApiTelegramException) -> float:
    parameters = (exc.result_json or {}).get("parameters") or {}
    return float(parameters.get("retry_after") or 1)


def is_not_modified(exc: ApiTelegramException) -> bool:
    return exc.error_code == 400 and "message is not modified" in (exc.description or "")


def _described(exc: ApiTelegramException, markers: tuple[str, ...]) -> bool:
    description = (exc.description or "").lower()
    return exc.error_code == 400 and any(marker in description for marker in markers)


class Sender:
    def __init__(self, bot: TeleBot, limiter: RateLimiter, jobs: JobQueue,
                 message_map: MessageMapRepository, users: UserManager,
                 report: Callable[..., object] | None = None, *,
                 bot_language: str | None = None, locks: LockManager | None = None,
                 media: Callable[[int], object] | None = None) -> None:
        self.bot = bot
        self.locks = locks
        self.limiter = limiter
        self.jobs = jobs
        self.message_map = message_map
        self.users = users
        self.report = report
        self.bot_language = bot_language
        # A stored message's file the channel keeps (channels/media.py): its bytes.
        self.media = media

    def __call__(self, job: Job) -> None:
        payload = job.payload
        chat_id = int(payload["chat_id"])
        if payload.get("reserved") and job.attempts == 1:
            # Stored leased, with its slot reserved in the same transaction (bot/fanout.py).
            self._deliver(job, payload, chat_id)
            return
        mergeable = bool(payload.get("merge_html"))
        if mergeable and chat_id < 0 and self._budget_is_the_bottleneck(job, chat_id):
            payload = self._merge(job) or payload
            if job.deferrals == 0 and self.jobs.news_in_progress():
                # A burst: more news is being synced right now; a moment's wait lets its
                # posts about this conversation join this one instead of using the budget.
                raise RetryLater("holding a post for news to merge", HOLD_FOR_NEWS)
            if self._append_to_recent_post(payload, chat_id):
                return
        wait = self.limiter.reserve(chat_id)
        if wait > 0:
            SENDS.labels("rate_limited").inc()
            if wait >= MERGE_WHEN_WAITING and mergeable:
                payload = self._merge(job) or payload
                if chat_id < 0 and self._append_to_recent_post(payload, chat_id):
                    return
            raise RetryLater(f"send budget of chat {chat_id} used up", wait)
        if job.deferrals > 0 and mergeable:
            # It waited for the budget: fold in what queued up behind it meanwhile.
            payload = self._merge(job) or payload
        self._deliver(job, payload, chat_id)

    def _deliver(self, job: Job, payload: dict, chat_id: int) -> None:
        """The call itself, its slot reserved: send, record, settle the slot's time."""
        html = self.render(payload)
        try:
            sent = self._call(payload, html)
        except ApiTelegramException as exc:
            self.limiter.confirm(chat_id)
            self._on_refusal(payload, chat_id, exc)
            return
        except BaseException:
            self.limiter.confirm(chat_id)
            raise
        self.limiter.confirm(chat_id)
        SENDS.labels("sent").inc()
        if payload.get("signal_at"):
            SIGNAL_TO_POST.observe(max(0.0, time.time() - float(payload["signal_at"])))
        if payload.get("conversation_id") is not None and isinstance(sent, types.Message):
            appendable = bool(payload.get("merge_html")) and payload.get("method", "sendMessage") == "sendMessage"
            self.message_map.record(chat_id, sent.message_id, int(payload["conversation_id"]),
                                    payload.get("message_id"), payload.get("purpose", "post"),
                                    html=html, notes={"appendable": True} if appendable else None)

    # -- what is sent --------------------------------------------------------------------

    def render(self, payload: dict) -> str:
        """The job's HTML: as queued, or its notice in the recipient's language."""
        if payload.get("notice") is None:
            return payload["text"]
        return self._worded(payload["notice"], payload.get("values"), self._language(payload))

    def _worded(self, key: str, values: dict | None, language: str) -> str:
        """A text with its values escaped; a value that is itself a text (`{"says": …}`)
        is worded in the same language."""
        return text(key, language, **{
            name: (self._worded(v["says"], v.get("values"), language) if isinstance(v, dict) and "says" in v
                   else fmt.escape(v) if isinstance(v, str) else v)
            for name, v in (values or {}).items()})

    def _language(self, payload: dict) -> str:
        return payload.get("language") or self._language_of(
            int(payload.get("language_of") or payload["chat_id"]))

    def keyboard(self, payload: dict):
        """The job's keyboard; a notice's button labels and main menu in its language."""
        markup = payload.get("reply_markup")
        if not markup:
            return None
        if markup.get("main_menu"):
            return to_markup(main_menu_dict(self._language(payload)))
        if any("label" in button for row in markup.get("inline_keyboard", ()) for button in row):
            language = self._language(payload)
            markup = {"inline_keyboard": [[
                {"text": text(b["label"], language), "callback_data": b["callback_data"]} if "label" in b else b
                for b in row] for row in markup["inline_keyboard"]]}
        return to_markup(markup)

    def _language_of(self, chat_id: int) -> str:
        user = self.users.get(chat_id) if chat_id > 0 else None
        return language_for(user.language if user else None, self.bot_language)

    def _call(self, payload: dict, html: str):
        markup = self.keyboard(payload)
        silent = bool(payload.get("disable_notification"))
        chat_id = int(payload["chat_id"])
        method = payload.get("method", "sendMessage")
        if method == "editMessageText":
            return self.bot.edit_message_text(html, chat_id, int(payload["edit_message_id"]),
                                              parse_mode="HTML", reply_markup=markup)
        if method == "editMessageCaption":
            return self.bot.edit_message_caption(html, chat_id, int(payload["edit_message_id"]),
                                                 parse_mode="HTML", reply_markup=markup)
        if method == "editMessageReplyMarkup":
            return self.bot.edit_message_reply_markup(chat_id, int(payload["edit_message_id"]),
                                                      reply_markup=markup)
        reply = None
        if payload.get("reply_to"):
            reply = types.ReplyParameters(int(payload["reply_to"]), allow_sending_without_reply=True)
        if payload.get("media"):
            return self._upload(payload, html, markup, silent, reply)
        if method == "sendPhoto":
            try:
                return self.bot.send_photo(chat_id, payload["photo"], caption=html,
                                           parse_mode="HTML", reply_markup=markup,
                                           disable_notification=silent, reply_parameters=reply)
            except ApiTelegramException as exc:
                if not _described(exc, _PHOTO_REFUSED):
                    raise
                log.warning("Telegram refused an image (%s); sending it as a link", exc.description)
                html = html + "\n" + fmt.link(payload["photo"], "🖼")
        return self.bot.send_message(chat_id, html, parse_mode="HTML", reply_markup=markup,
                                     disable_notification=silent, reply_parameters=reply)

    def _upload(self, payload: dict, html: str, markup, silent: bool, reply):
        """A customer's file the channel keeps: fetched from it (bounded), uploaded here.
        A file the channel will not give (too big, expired) is named in the post instead;
        a channel that is away is retried like any send."""
        chat_id = int(payload["chat_id"])
        media = payload["media"]
        name = str(media.get("name") or "file")
        try:
            fetched = self.media(int(media["message_id"])) if self.media else None
        except Exception as exc:
            if getattr(exc, "transient", False):
                raise
            log.warning("a customer's file could not be fetched: %s", exc)
            note = text("post_media_too_big", self._language_of(chat_id), name=name,
                        reason=str(getattr(exc, "reason", exc))[:200])
            return self.bot.send_message(chat_id, html + "\n" + note, parse_mode="HTML",
                                         reply_markup=markup, disable_notification=silent,
                                         reply_parameters=reply)
        if fetched is None:
            raise Permanent("no channel gives this file", f"message {media.get('message_id')}")
        upload = types.InputFile(io.BytesIO(fetched.data), file_name=name)
        if payload.get("method") == "sendPhoto":
            try:
                return self.bot.send_photo(chat_id, upload, caption=html, parse_mode="HTML",
                                           reply_markup=markup, disable_notification=silent,
                                           reply_parameters=reply)
            except ApiTelegramException as exc:
                if not _described(exc, _PHOTO_REFUSED):
                    raise
                upload = types.InputFile(io.BytesIO(fetched.data), file_name=name)
        return self.bot.send_document(chat_id, upload, caption=html, parse_mode="HTML",
                                      reply_markup=markup, disable_notification=silent,
                                      reply_parameters=reply, visible_file_name=name)

    # -- when Telegram says no -----------------------------------------------------------

    def _on_refusal(self, payload: dict, chat_id: int, exc: ApiTelegramException) -> None:
        method = payload.get("method", "sendMessage")
        if exc.error_code == 429:
            SENDS.labels("retry_after").inc()
            delay = retry_after_of(exc)
            self.limiter.block(chat_id, delay)
            raise RetryLater(f"Telegram asked chat {chat_id} to wait {delay}s", delay) from exc
        if is_not_modified(exc):
            SENDS.labels("not_modified").inc()
            return
        if method in EDITS and _described(exc, _EDIT_GONE):
            SENDS.labels("not_modified").inc()
            log.info("edit of message %s in %s skipped: %s", payload.get("edit_message_id"), chat_id,
                     exc.description)
            return
        if exc.error_code == 403 and chat_id > 0:
            SENDS.labels("blocked").inc()
            self.users.set_reachable(chat_id, False)
            if self.report is not None:
                self.report("a person blocked the bot",
                            f"user {chat_id}: no more messages to them until they /start again"
                            f" ({exc.description})")
            return
        SENDS.labels("error").inc()
        if exc.error_code >= 500:
            raise exc  # transient: retried by the worker's failure policy
        where = "the log chat" if payload.get("purpose") == "log" else f"chat {chat_id}"
        raise Permanent(f"Telegram refused {method} to {where}",
                        f"{exc.error_code} {exc.description}") from exc

    # -- merging posts that wait for a group's budget -------------------------------------

    def _budget_is_the_bottleneck(self, job: Job, chat_id: int) -> bool:
        """More posts queued for this group, and news being synced, than its window still
        allows."""
        coming = (self.jobs.lane_waiting(job.lane) if job.lane else 0) + self.jobs.news_in_progress()
        return coming > 0 and coming + 1 > self.limiter.remaining(chat_id)

    def _append_to_recent_post(self, payload: dict, chat_id: int) -> bool:
        """The group's budget is short and a text post about this conversation went out a
        moment ago, untouched since (nobody tapped it): show this news in that post — an
        edit, which uses none of the budget — instead of a post that waits for the next
        minute. Under the post's lock, so a tap's note and this edit never overwrite each
        other; run again after a crash, the same edit is "not modified" (success)."""
        if payload.get("method", "sendMessage") != "sendMessage" or self.locks is None:
            return False
        conversation_id = payload.get("conversation_id")
        if conversation_id is None:
            return False
        recent = self.message_map.latest_post(chat_id, int(conversation_id), APPEND_WITHIN)
        if recent is None or not _untouched(recent):
            return False
        with self.locks.lock("post", f"{chat_id}:{recent.tg_message_id}", timeout=5):
            current = self.message_map.lookup(chat_id, recent.tg_message_id)
            if current is None or not _untouched(current):
                return False
            extended = current.html + "\n\n" + payload["merge_html"]
            if visible_len(extended) > POST_TEXT_LIMIT:
                return False
            try:
                self.bot.edit_message_text(extended, chat_id, current.tg_message_id, parse_mode="HTML",
                                           reply_markup=self.keyboard(payload))
            except ApiTelegramException as exc:
                if not is_not_modified(exc):
                    if exc.error_code == 429 or exc.error_code >= 500:
                        raise
                    log.info("news not appended to post %s in %s: %s", current.tg_message_id,
                             chat_id, exc.description)
                    return False
            self.message_map.extend(chat_id, current.tg_message_id, extended, payload.get("message_id"))
        SENDS.labels("merged").inc()
        return True

    def _merge(self, job: Job) -> dict | None:
        merged, payload = merge_waiting_posts(self.jobs, job)
        if merged:
            SENDS.labels("merged").inc(merged)
        return payload


def _untouched(post) -> bool:
    """A text post nobody has tapped or answered yet (its notes say nothing but that)."""
    notes = post.notes or {}
    return bool(post.html) and notes.get("appendable") is True and set(notes) == {"appendable"}


def merge_waiting_posts(jobs: JobQueue, job: Job) -> tuple[int, dict]:
    """While a chat's budget is used up, fold the posts queued behind `job` about the same
    conversation into it: one post with all their messages and the newest reply button.
    Nothing is dropped (see JobQueue.fold_waiting). Returns how many posts were merged,
    and the job's payload."""
    head = job.payload

    def fold(current: dict, waiting: list[tuple[int, dict]]) -> tuple[dict, list[int]]:
        text_html, merged = current["text"], []
        for job_id, queued in waiting:
            if queued.get("conversation_id") != head.get("conversation_id") or not queued.get("merge_html"):
                continue
            candidate = text_html + "\n\n" + queued["merge_html"]
            if visible_len(candidate) > POST_TEXT_LIMIT:
                break
            text_html = candidate
            merged.append(job_id)
            # Its own part grows too: folded later into another post, or shown in a post
            # sent a moment ago, this post carries every message it took in.
            current.update(reply_markup=queued.get("reply_markup") or current.get("reply_markup"),
                           message_id=queued.get("message_id"),
                           merge_html=current["merge_html"] + "\n\n" + queued["merge_html"],
                           merged=current.get("merged", 0) + 1)
        current["text"] = text_html
        return current, merged

    merged, payload = jobs.fold_waiting(job, fold)
    if merged:
        log.info("merged %s queued posts into job %s", merged, job.id)
    return merged, payload


class TelegramApi:
    """The Bot API calls that are not queued sends — answering a tap or an inline query,
    files, command menus, the webhook, deleting old posts, long polling. The sender above
    and this class are the only code that calls Telegram (tests/test_architecture.py)."""

    def __init__(self, bot: TeleBot) -> None:
        self.bot = bot

    # -- a person's tap or inline query: only useful now, a repeat is harmless ---------------

    def answer_callback(self, call_id: str, message: str | None, *, alert: bool = False) -> None:
        try:
            self.bot.answer_callback_query(call_id, None if message is None else fmt.callback_text(message),
                                           show_alert=alert)
        except ApiTelegramException as exc:  # a stale query: the tap's effect stands
            log.info("could not answer callback: %s", exc.description)

    def answer_inline(self, query_id: str, results: list) -> None:
        self.bot.answer_inline_query(query_id, results, cache_time=0, is_personal=True)

    # -- files ---------------------------------------------------------------------------------

    def file_path(self, file_id: str) -> str | None:
        return self.bot.get_file(file_id).file_path

    def file_url(self, path: str) -> str:
        return apihelper.FILE_URL.format(self.bot.token, path)

    # -- the bot's set-up ------------------------------------------------------------------------

    def set_commands(self, commands: list[tuple[str, str]] | None, scope, language: str | None) -> None:
        """setMyCommands, or deleteMyCommands when `commands` is None."""
        if commands is None:
            self.bot.delete_my_commands(scope=scope, language_code=language)
            return
        self.bot.set_my_commands([types.BotCommand(c, d) for c, d in commands], scope=scope,
                                 language_code=language)

    def point_webhook(self, url: str, secret_token: str | None, allowed_updates=None) -> None:
        self.bot.set_webhook(url=url, secret_token=secret_token, allowed_updates=allowed_updates)

    def drop_webhook(self) -> None:
        self.bot.delete_webhook()

    def webhook_info(self, timeout: float):
        return self.bot.get_webhook_info(timeout=timeout)

    def updates(self, offset: int | None, timeout: int, allowed_updates) -> list[dict]:
        """Long polling, as Telegram's raw JSON (the stored update is exactly Telegram's)."""
        return apihelper.get_updates(self.bot.token, offset=offset, timeout=timeout + 10,
                                     long_polling_timeout=timeout, allowed_updates=allowed_updates)

    def alive(self) -> bool:
        """Telegram answers (getMe): the probe that ends an outage's backoff."""
        try:
            self.bot.get_me()
            return True
        except Exception:
            return False

    def delete_post(self, chat_id: int, message_id: int) -> None:
        """Not a send: Telegram's flood control answers 429, and the caller stops there."""
        self.bot.delete_message(chat_id, message_id)
