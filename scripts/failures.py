"""The failure policy of every job, decided in one place (SPEC §6, "Nothing fails silently").

A failed run of a job is one of:
* **transient** — the outside world is away or busy (database restarting, a deadlock,
  the network, Telegram 429/5xx, the CRM down): try again after a capped backoff;
* **permanent** — trying again cannot help (Telegram refuses the request, a bug, data
  the code cannot handle): try again a few times (a fluke is cheap to rule out), then
  the job becomes a **dead letter**: kept in `jobs` with status 'failed', reported with
  `#ERROR` in the log chat, listed by `/errors`, re-run by `/retry_<id>`.

How long a transient failure is retried, and how far the backoff grows, depends on what
waits behind the job: a person's update holds that person's lane, so it is retried for a
minute at most; a send holds its chat's lane, so its backoff stays short; a manager's
answer to a customer is retried for a day, telling the manager once that it waits.
Periodic jobs (reconciliation, pin expiry, …) never die: whatever happens, they are
scheduled again, and repeated failures are reported.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import pymysql
import requests
from telebot.apihelper import ApiTelegramException

from bot.outbox import SEND_KIND
from models.db import is_unavailable
from models.jobs import Permanent, RetryLater  # noqa: F401  (re-exported for handlers)

# Deadlock, lock wait timeout: the database asks us to try the transaction again.
_RETRY_TRANSACTION = (1213, 1205)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, Permanent):
        return False
    if is_unavailable(exc) or isinstance(exc, (requests.ConnectionError, requests.Timeout,
                                               requests.exceptions.ChunkedEncodingError)):
        return True
    if isinstance(exc, pymysql.err.OperationalError) and exc.args and exc.args[0] in _RETRY_TRANSACTION:
        return True
    if isinstance(exc, ApiTelegramException):
        return exc.error_code == 429 or exc.error_code >= 500
    return bool(getattr(exc, "transient", False))


@dataclass(frozen=True)
class Policy:
    """How one kind of job is retried."""
    backoff_cap: float = 10.0          # seconds; the longest a lane waits for one job
    transient_attempts: int = 0        # give up after this many failed runs (0 = never)
    permanent_attempts: int = 3        # runs before a non-transient failure is a dead letter
    report_after: int = 5              # consecutive failed runs before "still failing" is reported


DEFAULT = Policy()
POLICIES: dict[str, Policy] = {
    # A person's update: their lane waits behind it, so a minute at most.
    "tg_update": Policy(backoff_cap=5.0, transient_attempts=8, permanent_attempts=2, report_after=4),
    # A send to Telegram: its chat's lane waits; retried until Telegram is back.
    SEND_KIND: Policy(backoff_cap=10.0, permanent_attempts=1, report_after=12),
    # A manager's answer to a customer: for as long as the CRM is away (a day at most).
    "deliver": Policy(backoff_cap=30.0, transient_attempts=3000, permanent_attempts=3, report_after=6),
    "mark_read": Policy(backoff_cap=30.0, transient_attempts=3000, permanent_attempts=3, report_after=6),
    # A CRM sync: news keeps coming; a poison answer must not be retried forever.
    "crm_sync": Policy(backoff_cap=30.0, transient_attempts=200, permanent_attempts=3, report_after=5),
    "clean": Policy(backoff_cap=60.0, transient_attempts=30, permanent_attempts=2, report_after=3),
    # WhatsApp: a stored webhook body, like a CRM sync; a message KeepDesk sends
    # on its own (1C, the API), like a manager's answer — for as long as Meta is away.
    "wa_webhook": Policy(backoff_cap=30.0, transient_attempts=200, permanent_attempts=3, report_after=5),
    "wa_send": Policy(backoff_cap=30.0, transient_attempts=3000, permanent_attempts=3, report_after=6),
    # A notice WhatsApp could not deliver, by SMS: as long as the SMS provider is away; its
    # stored status callback like a webhook body. (`sms_fallback`, `sms_confirm`: periodic.)
    "sms_send": Policy(backoff_cap=30.0, transient_attempts=3000, permanent_attempts=3, report_after=6),
    "sms_status": Policy(backoff_cap=30.0, transient_attempts=200, permanent_attempts=3, report_after=5),
    # (`wa_poll`, a Green-API queue's long poll, and `wa_confirm`, Devino's lost
    # answers, are periodic: they follow PERIODIC. A Devino batch is part of `wa_send`.)
    # Telegram accounts ↔ Planfix (CHANNELS.md §5). An account's event into the desk(s):
    # the database or a bug, retried like a sync.
    "tga_message": Policy(backoff_cap=30.0, transient_attempts=200, permanent_attempts=3, report_after=5),
    "tga_read": Policy(backoff_cap=30.0, transient_attempts=200, permanent_attempts=3, report_after=5),
    # To Planfix: while Planfix is down or answers 5xx, for a day; its 400/401 is a
    # dead letter at once (Permanent), reported with #ERROR.
    "pf_message": Policy(backoff_cap=30.0, transient_attempts=3000, permanent_attempts=3, report_after=6),
    "pf_status": Policy(backoff_cap=30.0, transient_attempts=3000, permanent_attempts=3, report_after=6),
    # Planfix's message to a customer: while the account is offline or in a FLOOD_WAIT
    # (retry_after obeyed), for a day; a refusal becomes messageStatus error, not a failure.
    "pf_deliver": Policy(backoff_cap=30.0, transient_attempts=3000, permanent_attempts=3, report_after=6),
    # The desk of SPEC §8 (its periodic jobs — sla_sweep, daily_clean, pin_notices,
    # command_menus — follow PERIODIC: they never die).
    # A command menu: Telegram away is waited out; a refusal is a dead letter (#ERROR).
    "tg_commands": Policy(backoff_cap=60.0, transient_attempts=200, permanent_attempts=2, report_after=5),
    # The order on a card: nice to have; a CRM away for long is not worth a dead letter
    # per card (the next news asks again), a refusal is.
    "order_context": Policy(backoff_cap=30.0, transient_attempts=5, permanent_attempts=2, report_after=5),
    # The figures by e-mail: the mail server away or 4xx is waited out (about a day); a
    # 5xx refusal, or a send whose outcome is unknown, is a dead letter at once (Permanent).
    "digest_send": Policy(backoff_cap=300.0, transient_attempts=300, permanent_attempts=1, report_after=5),
    # A manager's album: as a manager's answer (its delivery then has the answer's policy).
    "send_album": Policy(backoff_cap=5.0, transient_attempts=60, permanent_attempts=2, report_after=4),
}
PERIODIC = Policy(backoff_cap=60.0, transient_attempts=0, permanent_attempts=0, report_after=3)


def policy_for(kind: str, periodic: bool = False) -> Policy:
    return PERIODIC if periodic else POLICIES.get(kind, DEFAULT)


def backoff(attempt: int, cap: float) -> float:
    """1, 2, 4 … seconds up to `cap`, with jitter so retries do not march in step."""
    base = min(cap, 2.0 ** min(max(0, attempt - 1), 30))  # no float overflow after ~1024 attempts
    return base * random.uniform(0.8, 1.0)


@dataclass(frozen=True)
class Verdict:
    """What to do with a job whose run just failed."""
    dead: bool                 # a dead letter now
    delay: float = 0.0         # else: run again after this many seconds
    report: bool = False       # say so in the log chat (a dead letter always is)


def decide(kind: str, attempts: int, exc: BaseException, *, periodic: bool = False,
           period: float | None = None) -> Verdict:
    """The one decision: retry (when) or dead letter, and whether to report."""
    policy = policy_for(kind, periodic)
    transient = is_transient(exc)
    cap = min(policy.backoff_cap, period) if periodic and period else policy.backoff_cap
    if periodic:
        # Never dies: a permanent error of a periodic job is retried like a transient one.
        return Verdict(False, backoff(attempts, cap), attempts >= policy.report_after)
    retry_after = getattr(exc, "retry_after", None)
    if transient:
        if policy.transient_attempts and attempts >= policy.transient_attempts:
            return Verdict(True, report=True)
        delay = float(retry_after) if retry_after else backoff(attempts, cap)
        return Verdict(False, delay, attempts == policy.report_after)
    if isinstance(exc, Permanent) or attempts >= policy.permanent_attempts:
        return Verdict(True, report=True)
    return Verdict(False, backoff(attempts, cap))


def cause_of(kind: str, exc: BaseException) -> str:
    """A short, stable name for what went wrong, to group reports of the same cause."""
    if isinstance(exc, Permanent):
        return f"{kind}: {exc.cause}"
    if isinstance(exc, ApiTelegramException):
        return f"{kind}: Telegram {exc.error_code} {(exc.description or '')[:120]}"
    return f"{kind}: {type(exc).__name__}"
