"""The desk of SPEC §8 at a big shop's size.

1. Finding a chat with 100k chats and 1M messages in MariaDB: p50 / p99 of the search a
   manager runs (`services/desk_tools.py::Search.find`: number, e-mail, phone, words — the
   words through InnoDB FULLTEXT), per kind and over a realistic mix (goal: p99 ≤ 50 ms).
   Beside it: the same words found by scanning the messages (`LIKE '%word%'`), which is
   what the index saves.
2. The SLA sweep with 100k open chats, each with a customer waiting: one run with nothing
   due, and one with 50 reminders due (`services/sla.py::SlaSweep.run`). Beside it: the
   same "what is due?" asked without the due-time index (every open wait read).

The data is made by MariaDB itself (the SEQUENCE engine): message texts are 6-10 words of
a 3,000-word vocabulary (Ukrainian and English) drawn with a Zipf-like skew, so some words
are in a third of the messages and most in very few — as in a shop's real conversations.
"""
from __future__ import annotations

import random
import sys
import time

from bench.common import database, machine, percentile, timed, verdict
from config import load_settings
from models.db import Database, migrate

CHATS, MESSAGES = 100_000, 1_000_000
OPEN_WAITS = 100_000
DUE = 50
SAMPLES = 200
SCAN_SAMPLES = 5
GOAL_MS = 50.0

_STEMS = ("достав", "замовл", "оплат", "поверн", "товар", "посилк", "відділ", "ноутбук", "телефон",
          "гаранті", "ремонт", "ключ", "активац", "рахун", "знижк", "кольор", "розмір", "наявн",
          "order", "delivery", "refund", "invoice", "parcel", "laptop", "charger", "warranty")
_ENDINGS = ("а", "и", "у", "ою", "ів", "ка", "ки", "ку", "ення", "ити", "ено", "ний", "на", "не",
            "s", "ed", "ing", "er", "")
_SYLLABLES = ("ба", "ве", "гі", "до", "жу", "зе", "ки", "ло", "ма", "не", "по", "ри", "са", "ти",
              "фу", "ха", "це", "чи", "ша", "ю", "ko", "ra", "ti", "lo", "ne")


def vocabulary(size: int = 3000, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    words = {stem + ending for stem in _STEMS for ending in _ENDINGS}
    while len(words) < size:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    ordered = sorted(words)
    rng.shuffle(ordered)
    return ordered[:size]


def fill(db: Database, words: list[str]) -> float:
    """100k chats, 1M messages; the FULLTEXT indexes built once the rows are in."""
    started = time.perf_counter()
    db.execute("ALTER TABLE messages DROP INDEX ft_messages_text")
    db.execute("ALTER TABLE conversations DROP INDEX ft_conversations_title")
    db.execute(
        "INSERT INTO conversations (id, channel, external_id, customer_email, customer_phone, title,"
        " last_date, cnt_msg, kind) SELECT seq, 'keepingcrm', seq, CONCAT('client', seq, '@example.com'),"
        " CONCAT('+38067', LPAD(seq, 7, '0')), CONCAT('Товар ', seq MOD 500),"
        " NOW() - INTERVAL seq MINUTE, 10, 'ordinary' FROM seq_1_to_%s" % CHATS)
    elt = "ELT(1 + FLOOR(POW(RAND(seq * 11 + %d), 3) * %d), %s)"
    quoted = ", ".join("'" + w + "'" for w in words)
    picks = ", ".join(elt % (k, len(words), quoted) for k in range(8))
    db.execute(
        "INSERT INTO messages (id, conversation_id, external_id, direction, text, date_written,"
        " announced_at) SELECT seq, 1 + seq MOD %s, seq, IF(seq MOD 2, 'client', 'shop'),"
        " CONCAT_WS(' ', %s), NOW() - INTERVAL seq SECOND, NOW() FROM seq_1_to_%s"
        % (CHATS, picks, MESSAGES))
    db.execute("ALTER TABLE messages ADD FULLTEXT KEY ft_messages_text (text)")
    db.execute("ALTER TABLE conversations ADD FULLTEXT KEY ft_conversations_title"
               " (title, customer_name, customer_email)")
    return time.perf_counter() - started


def word_frequencies(db: Database, words: list[str]) -> tuple[list[str], list[str]]:
    """(common words: in many messages, rare words: in few), measured on a sample."""
    rows = db.fetchall("SELECT text FROM messages WHERE id <= 20000")
    counts: dict[str, int] = {}
    for row in rows:
        for word in set(row["text"].split()):
            counts[word] = counts.get(word, 0) + 1
    ranked = sorted(counts, key=counts.get, reverse=True)
    return ranked[:20], [w for w in ranked if len(w) >= 4][-200:]


def search_figures(db: Database, words: list[str]) -> dict[str, list[float]]:
    from services.desk_tools import Search
    search = Search(db)
    common, rare = word_frequencies(db, words)
    rng = random.Random(11)
    kinds = {
        "order number": lambda: str(rng.randint(1, CHATS)),
        "e-mail": lambda: f"client{rng.randint(1, CHATS)}@example",
        "phone": lambda: f"067 {rng.randint(1, CHATS):07d}",
        "a rare word": lambda: rng.choice(rare),
        "a common word": lambda: rng.choice(common),
        "two words": lambda: f"{rng.choice(common)} {rng.choice(rare)}",
        "a word's beginning": lambda: rng.choice(rare)[:4],
    }
    results = {name: timed(lambda make=make: search.find(make()), SAMPLES) for name, make in kinds.items()}
    mix = [("order number", 0.3), ("e-mail", 0.15), ("phone", 0.1), ("a rare word", 0.2),
           ("a common word", 0.1), ("two words", 0.1), ("a word's beginning", 0.05)]
    names = [n for n, _ in mix]
    weights = [w for _, w in mix]
    results["realistic mix"] = timed(lambda: search.find(kinds[rng.choices(names, weights)[0]]()),
                                     SAMPLES * 2)
    results["beside: a rare word by scanning (LIKE)"] = timed(
        lambda: db.fetchall("SELECT conversation_id, MAX(id) AS newest FROM messages WHERE text LIKE %s"
                            " GROUP BY conversation_id ORDER BY newest DESC LIMIT 20",
                            ("%" + rng.choice(rare) + "%",)), SCAN_SAMPLES)
    return results


def sla_figures(db: Database, settings) -> dict[str, float | list[float]]:
    from container import Container
    db.execute("INSERT INTO responses (conversation_id, channel, message_id, asked_at, remind_at,"
               " takeback_at) SELECT seq, 'keepingcrm', seq * 10, NOW(6) - INTERVAL 1 MINUTE,"
               " NOW(6) + INTERVAL 14 MINUTE, NOW(6) + INTERVAL 59 MINUTE FROM seq_1_to_%s" % OPEN_WAITS)
    deps = Container.build(settings, db)
    sweep = deps.tools.sweep
    idle = timed(sweep.run, 50)
    db.execute("UPDATE responses SET remind_at = NOW(6) - INTERVAL 1 SECOND WHERE id <= %s", (DUE,))
    started = time.perf_counter()
    done = sweep.run()
    due_ms = (time.perf_counter() - started) * 1000
    scan = timed(lambda: db.fetchall(
        "SELECT id FROM responses IGNORE INDEX (ix_responses_remind, ix_responses_takeback)"
        " WHERE answered_at IS NULL AND remind_at <= NOW(6) LIMIT 200"), 10)
    return {"idle": idle, "due_ms": due_ms, "reminded": done["reminded"], "scan": scan}


def main() -> int:
    print(f"machine: {machine()}")
    words = vocabulary()
    with database(durable=False) as server:
        env = {"BOT_TOKEN": "123456:bench-token", "CHAT_NEW_MESSAGE": "-1001000000001",
               "KEEPING_API_URL": "http://127.0.0.1:9/api", "KEEPING_SELLER_ID": "1",
               "KEEPING_API_KEY": "bench", "KEEPING_WEB_URL": "http://127.0.0.1:9/web",
               "LINK_KEY": "bench-link-key", "LOG_LEVEL": "WARNING",
               **server.environment("keepdesk_bench")}
        settings = load_settings(env, env_file=None)
        db = Database(settings)
        migrate(db)
        seconds = fill(db, words)
        print(f"seeded {CHATS:,} chats / {MESSAGES:,} messages and built the FULLTEXT indexes in {seconds:.0f} s")
        searches = search_figures(db, words)
        sla = sla_figures(db, settings)
        db.close()
    print(f"1. search, {CHATS:,} chats / {MESSAGES:,} messages (goal p99 ≤ {GOAL_MS:.0f} ms):")
    for name, values in searches.items():
        p99 = percentile(values, 99)
        goal = "" if name.startswith("beside") else f" {verdict(p99 <= GOAL_MS)}"
        print(f"   {name:<40} p50 {percentile(values, 50):7.2f} ms  p99 {p99:8.2f} ms{goal}")
    scan = percentile(searches["beside: a rare word by scanning (LIKE)"], 50)
    print(f"   the index against a scan (a rare word): {scan / percentile(searches['a rare word'], 50):.0f}× faster")
    print(f"2. SLA sweep, {OPEN_WAITS:,} open chats with a customer waiting:")
    print(f"   nothing due: p50 {percentile(sla['idle'], 50):.2f} ms  p99 {percentile(sla['idle'], 99):.2f} ms")
    print(f"   {DUE} reminders due: one run {sla['due_ms']:.0f} ms ({sla['reminded']} reminded,"
          f" {sla['due_ms'] / max(1, sla['reminded']):.1f} ms each: the reminder and its send stored)")
    print(f"   beside: 'what is due?' without the due-time index: p50 {percentile(sla['scan'], 50):.1f} ms"
          f" (the sweep's own query: flat whatever the number of open chats)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
