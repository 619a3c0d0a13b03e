"""Customers writing in the CRM, the CRM signalling the listener, and counting in Telegram.

Every client message carries a unique tag `[<run>/<n>]`, so its copies in Telegram can be
counted wherever they land — alone, split, or merged with others into one post.
"""
from __future__ import annotations

import collections
import itertools
import re
import secrets
import threading
import time
from dataclasses import dataclass, field

import requests

from conftest import LOG_CHAT, SHARED_CHAT
from harness import crm_chat
from reliability.cluster import LINK_KEY

TAG = re.compile(r"\[(?P<run>[a-z0-9]+)/(?P<n>\d+)\]")
NO_ANSWER = 0


@dataclass
class Written:
    n: int
    id_i: int
    tag: str
    crm_id: int
    written_at: float                                 # time.time()
    signals: list[int] = field(default_factory=list)  # statuses of the signals sent for it

    @property
    def acknowledged(self) -> bool:
        return 200 in self.signals


class Customers:
    """Customers writing in the CRM sandbox; the CRM signals the real listener door."""

    def __init__(self, crm, listener_url: str, figures=None, *, product: str = "Товар") -> None:
        self.crm = crm
        self.listener_url = listener_url
        self.figures = figures
        self.product = product
        self.run = secrets.token_hex(3)
        self.written: list[Written] = []
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._local = threading.local()

    def write(self, id_i: int, text: str = "чи є в наявності?", **kwargs) -> Written:
        with self._lock:
            n = next(self._numbers)
        tag = f"[{self.run}/{n}]"
        fields = {"email": f"client{id_i}@example.com", "product": f"{self.product} {id_i}",
                  **kwargs}
        message = self.crm.customer_writes(id_i, f"{tag} {text}", **fields)
        written = Written(n, id_i, tag, message["id"], time.time())
        with self._lock:
            self.written.append(written)
        return written

    def signal(self, id_i: int, *, retry_for: float = 0.0, about: Written | None = None) -> int:
        """POST the CRM's signal; with `retry_for`, repeat it until 200 (as a patient CRM
        would). Returns the last status (NO_ANSWER when the connection failed)."""
        deadline = time.monotonic() + retry_for
        while True:
            status = self._post_signal(id_i)
            if about is not None:
                about.signals.append(status)
            if status == 200 or time.monotonic() >= deadline:
                return status
            time.sleep(0.1)

    def write_and_signal(self, id_i: int, *, retry_for: float = 0.0, **kwargs) -> Written:
        written = self.write(id_i, **kwargs)
        self.signal(id_i, retry_for=retry_for, about=written)
        return written

    def _post_signal(self, id_i: int) -> int:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        try:
            status = session.post(f"{self.listener_url}/messages/{LINK_KEY}",
                                  json={"InvoiceId": id_i}, timeout=10).status_code
        except requests.RequestException:
            status = NO_ANSWER
            session.close()
            self._local.session = None
        if self.figures is not None:
            self.figures.add("signals_sent")
            self.figures.add("signals_ok" if status == 200 else "signals_refused")
        return status

    def numbers(self) -> set[int]:
        return {w.n for w in self.written}

    def stream(self, plan: list[int], seconds: float, *, senders: int = 4,
               retry_for: float = 30.0, repeat_every: int = 0) -> None:
        """One message per entry of `plan` (chat ids), spread over about `seconds`, from
        `senders` parallel CRM connections. Each connection owns a share of the chats, so
        the messages of one chat are written and signalled in plan order. With
        `repeat_every`, every so many signals is sent twice, as the CRM does in bursts."""
        chats = list(dict.fromkeys(plan))
        owner = {id_i: k % senders for k, id_i in enumerate(chats)}
        shares = [[id_i for id_i in plan if owner[id_i] == k] for k in range(senders)]

        def send(share: list[int]) -> None:
            pause = seconds / max(1, len(share))
            for id_i in share:
                written = self.write_and_signal(id_i, retry_for=retry_for)
                if repeat_every and written.n % repeat_every == 0:
                    self.signal(id_i, retry_for=retry_for, about=written)
                time.sleep(pause)

        threads = [threading.Thread(target=send, args=(share,), daemon=True)
                   for share in shares if share]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def add_manager(db, tg_id: int, username: str | None, language: str = "uk", *,
                first_name: str | None = None, role: str = "manager") -> int:
    """A person of `role` (a manager unless told); a bootstrap admin (ADMIN_IDS) may
    already be there, so an existing row is updated."""
    db.execute("INSERT INTO users (tg_id, username, first_name, language, role)"
               " VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE username = VALUES(username),"
               " first_name = VALUES(first_name), language = VALUES(language), role = VALUES(role)",
               (tg_id, username, first_name or (username or "").title(), language, role))
    return tg_id


def pin(db, id_i: int, manager_id: int) -> None:
    crm_chat(db, id_i)
    db.execute("INSERT INTO pins (conversation_id, manager_id) VALUES (%s, %s)", (id_i, manager_id))


def tags_in(records, run: str) -> list[int]:
    """Tag numbers of `run` in Telegram message records, in the order they appear."""
    found = []
    for record in sorted(records, key=lambda r: r["message_id"]):
        text = record.get("visible_text") or ""
        found += [int(m["n"]) for m in TAG.finditer(text) if m["run"] == run]
    return found


def tag_counts(tg, chat_id: int, run: str) -> collections.Counter:
    return collections.Counter(tags_in(tg.messages(chat_id), run))


def wait_delivered(tg, chat_id: int, run: str, expected: set[int], timeout: float,
                   on_wait=None) -> collections.Counter:
    """Poll the sandbox until every expected tag is in `chat_id`, or the time is up.

    Returns the counts either way; the caller asserts, so the figures get recorded first.
    """
    deadline = time.monotonic() + timeout
    while True:
        counts = tag_counts(tg, chat_id, run)
        if expected <= set(counts) or time.monotonic() > deadline:
            return counts
        if on_wait is not None:
            on_wait()
        time.sleep(0.2)


def settle(db, timeout: float = 30.0) -> bool:
    """Wait until no job is pending or running (periodic jobs aside)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        depth = db.scalar("SELECT COUNT(*) FROM jobs WHERE status IN ('pending', 'running')"
                          " AND (dedupe_key IS NULL OR dedupe_key NOT LIKE 'periodic:%%')")
        if depth == 0:
            return True
        time.sleep(0.2)
    return False


def slowest_delivery(tg, customers: Customers) -> float:
    """Seconds from a customer's writing to the first post carrying it, worst case."""
    first: dict[str, float] = {}
    for call in tg.calls("sendMessage"):
        if call["status"] != 200:
            continue
        for match in TAG.finditer(str(call["params"].get("text", ""))):
            first.setdefault(match.group(0), call["time"])
    waits = [first[w.tag] - w.written_at for w in customers.written if w.tag in first]
    return max(waits, default=0.0)


def unfinished_jobs(db, limit: int = 15) -> str:
    """What is still queued, for a failure message."""
    rows = db.fetchall(
        "SELECT id, kind, lane, status, attempts, worker, run_after, lease_until, last_error,"
        " NOW(6) AS now FROM jobs WHERE status IN ('pending', 'running')"
        " ORDER BY id LIMIT %s", (limit,))
    return "\n".join(str(r) for r in rows) or "(queue empty)"


def failed_jobs(db, limit: int = 10) -> str:
    """Jobs given up on, with their last error, for a failure message."""
    rows = db.fetchall("SELECT id, kind, attempts, LEFT(last_error, 300) AS last_error FROM jobs"
                       " WHERE status = 'failed' ORDER BY id LIMIT %s", (limit,))
    return "\n".join(str(r) for r in rows) or "(no failed jobs)"


def record_delivery(figures, expected: set[int], counts: collections.Counter) -> tuple[set, int]:
    """Put accepted / delivered / duplicated / lost into the figures; (missing, duplicates)."""
    delivered = expected & set(counts)
    duplicates = sum(counts[n] - 1 for n in delivered)
    figures.messages(len(expected), len(delivered), duplicates)
    return expected - delivered, duplicates


# ----------------------------------------------------------------- what people see

SENT_OK = "✅ Надіслано клієнту (ордер #{id_i})."       # the manager's ✅ (uk)


def poll(condition, timeout: float, interval: float = 0.2):
    """`condition()` until it is truthy or the time is up; returns its last value either
    way (the caller asserts, so the figures get recorded first)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def posts_with(tg, chat_id: int, needle: str) -> list[dict]:
    """The bot's messages in `chat_id` whose visible text contains `needle`."""
    return [m for m in tg.messages(chat_id) if needle in (m.get("visible_text") or "")]


def first_sent_at(tg, chat_id: int, needle: str) -> float | None:
    """When Telegram first accepted a message to `chat_id` carrying `needle` (epoch s)."""
    times = [c["time"] for c in tg.calls() if c["status"] == 200
             and c["method"].lower() in ("sendmessage", "sendphoto", "senddocument")
             and c["params"].get("chat_id") == chat_id
             and needle in str(c["params"].get("text") or c["params"].get("caption") or "")]
    return min(times, default=None)


def refused_sends(tg, chat_id: int, statuses=(429, 500, 502, 503, 504)) -> list[dict]:
    return [c for c in tg.calls("sendMessage")
            if c["params"].get("chat_id") == chat_id and c["status"] in statuses]


def take_chat(tg, manager: int, post: dict, **profile) -> dict:
    """The manager taps the post's only inline button ("✍ Відповісти"); the update."""
    [[button]] = post["reply_markup"]["inline_keyboard"]
    return tg.user_presses_button(manager, post["chat_id"], post["message_id"],
                                  button["callback_data"], **profile)


def callback_answer(tg, update: dict, timeout: float = 20.0) -> dict | None:
    """The bot's answer to a button tap (its plain text is what the person sees)."""
    query_id = update["callback_query"]["id"]
    found = poll(lambda: [a for a in tg.callback_answers()
                          if a["callback_query_id"] == query_id], timeout)
    return found[0] if found else None


def confirmations(tg, manager: int, id_i: int) -> list[dict]:
    """The ✅ "sent to the client" messages a manager has for chat id_i."""
    return [m for m in tg.messages(manager) if m["visible_text"] == SENT_OK.format(id_i=id_i)]


def wait_confirmation(tg, manager: int, id_i: int, timeout: float) -> list[dict]:
    return poll(lambda: confirmations(tg, manager, id_i), timeout)


def shop_messages(crm, id_i: int, text: str | None = None) -> list[dict]:
    """What the customer received in the CRM chat (shop messages), oldest first."""
    return [m for m in crm.messages(id_i)
            if m["seller"] and (text is None or m["message"] == text)]


def log_posts(tg, tag: str = "#ERROR") -> list[dict]:
    """CHANNEL_LOG posts starting with `tag` (#ERROR, #CHANGE_PIN), oldest first."""
    return [m for m in tg.messages(LOG_CHAT) if (m["visible_text"] or "").startswith(tag)]


def wait_log_posts(tg, tag: str, contains: str, timeout: float) -> list[dict]:
    """CHANNEL_LOG posts with `tag` whose text contains `contains` (case-insensitive)."""
    return poll(lambda: [m for m in log_posts(tg, tag)
                         if contains.lower() in m["visible_text"].lower()], timeout)


def wait_post(tg, written: Written, timeout: float, chat_id: int = SHARED_CHAT) -> dict | None:
    """The first post carrying a customer message's tag, once it is there."""
    found = poll(lambda: posts_with(tg, chat_id, written.tag), timeout)
    return found[0] if found else None
