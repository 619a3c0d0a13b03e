"""Benchmark 3: bursts with the sandbox enforcing Telegram's limits (it answers 429 like
Telegram: 30/s overall, 1/s per private chat, 20/min per group).

(a) 20 chats × 3 messages, (b) 30 chats × 1 message, (c) 5 pinned managers receiving 50
messages each. Figures: 429s received (goal 0), posts made, completion time against the
minimum the limits allow for those posts (goal ≤ 1.1×). The minimum: in a group, P posts
need ⌊(P−1)/20⌋ minutes; in a private chat, P posts need P−1 seconds; and never less than
the same burst takes with the limits switched off, measured in the same run.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from bench.common import LINK_KEY, SHARED_CHAT, machine, stack, verdict
from sandbox.telegram import parse_html

GROUP_PER_MIN = 20


@dataclass
class Burst:
    name: str
    chats: int
    per_chat: int
    pinned: bool = False


BURSTS = (Burst("(a) 20 chats × 3 messages", 20, 3),
          Burst("(b) 30 chats × 1 message", 30, 1),
          Burst("(c) 5 pinned managers × 50 messages", 5, 50, pinned=True))


def delivered(tg, texts: set[str], chat_id: int) -> set[str]:
    seen = set()
    for message in tg.messages(chat_id):
        body = parse_html(message.get("text") or "")[0]
        seen.update(t for t in texts if t in body)
    return seen


def run(burst: Burst, *, limits: bool) -> dict:
    # Without limits: neither the sandbox nor KeepDesk's own limiter holds anything back.
    unlimited = {} if limits else {"TG_LIMIT_GLOBAL_PER_S": "100000", "TG_LIMIT_PRIVATE_PER_S": "100000",
                                   "TG_LIMIT_GROUP_PER_MIN": "1000000"}
    with stack(enforce_limits=limits, durable=True, **unlimited) as (desk, tg, crm, db):
        managers = []
        if burst.pinned:
            for n in range(burst.chats):
                db.execute("INSERT INTO users (tg_id, username, role) VALUES (%s, %s, 'manager')",
                           (5000 + n, f"manager{n}"))
                db.execute("INSERT INTO conversations (id, channel, external_id)"
                           " VALUES (%s, 'keepingcrm', %s)", (800000 + n, str(800000 + n)))
                db.execute("INSERT INTO pins (conversation_id, manager_id) VALUES (%s, %s)", (800000 + n, 5000 + n))
                managers.append(5000 + n)
        texts = {}
        started = time.monotonic()
        for k in range(burst.per_chat):
            for n in range(burst.chats):
                text = f"burst message {n}-{k}"
                crm.customer_writes(800000 + n, text)
                texts[text] = 800000 + n
                crm.signal(desk.listener_url, LINK_KEY, 800000 + n)
        everything = set(texts)
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            shared_ok = delivered(tg, everything, SHARED_CHAT) == everything
            private_ok = all(delivered(tg, {t for t, c in texts.items() if c == 800000 + i}, m)
                             == {t for t, c in texts.items() if c == 800000 + i}
                             for i, m in enumerate(managers))
            if shared_ok and private_ok:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{burst.name}: not everything delivered in time")
        elapsed = time.monotonic() - started
        shared_posts = len(tg.messages(SHARED_CHAT))
        private_posts = max((len(tg.messages(m)) for m in managers), default=0)
        merged = db.scalar("SELECT COUNT(*) FROM jobs WHERE last_error LIKE 'merged into%%'")
        return {"elapsed": elapsed, "429": tg.count_429(), "shared_posts": shared_posts,
                "private_posts": private_posts, "messages": len(everything), "merged": merged}


def limit_floor(result: dict) -> float:
    group = (result["shared_posts"] - 1) // GROUP_PER_MIN * 60.0
    private = max(0, result["private_posts"] - 1) * 1.0
    return max(group, private)


def main() -> int:
    print(f"machine: {machine()}; the sandbox enforces 30/s, 1/s per private chat, 20/min per group")
    for burst in BURSTS:
        free = run(burst, limits=False)
        limited = run(burst, limits=True)
        floor = max(limit_floor(limited), free["elapsed"])
        ratio = limited["elapsed"] / floor
        print(f"{burst.name}: messages={limited['messages']} 429s={limited['429']} "
              f"posts: shared={limited['shared_posts']} private per manager={limited['private_posts']} "
              f"(merged away: {limited['merged']}) | "
              f"completion {limited['elapsed']:.1f} s, minimum the limits allow "
              f"{limit_floor(limited):.1f} s, same burst without limits {free['elapsed']:.1f} s "
              f"→ {ratio:.2f}× | 0 × 429 {verdict(limited['429'] == 0)}, ≤ 1.1× {verdict(ratio <= 1.1)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
