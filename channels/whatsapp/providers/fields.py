"""Bounded values out of a gateway's JSON (shared by the gateway providers' parsers):
whatever the body holds, each helper returns a value of its type and size, or nothing."""
from __future__ import annotations

from datetime import datetime, timezone

MAX_TEXT = 20000          # a customer's text (WhatsApp allows 4096 / 65536): bounded at the border
MAX_ID = 128              # message ids
MAX_NAME = 255
MAX_FILENAME = 255
MAX_URL = 2048


def as_list(value) -> list:
    return value if isinstance(value, list) else []


def as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def text(value, limit: int) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    return value[:limit] if isinstance(value, str) else ""


def message_id(value) -> str | None:
    """An id of at most MAX_ID printable characters (longer is refused, not cut: a cut id
    could collide with another)."""
    raw = text(value, MAX_ID + 1)
    return raw if raw and len(raw) <= MAX_ID and raw.isprintable() else None


def phone(value) -> str | None:
    """E.164 digits without "+" out of "380671234567", "+380…", "380…@c.us" (private chats
    only: a group's "…@g.us" is None)."""
    raw = text(value, 64).strip()
    if "@" in raw:
        raw, _, domain = raw.partition("@")
        if domain != "c.us":
            return None
    raw = raw.lstrip("+")
    return raw if raw.isdigit() and 5 <= len(raw) <= 20 else None


def url(value) -> str | None:
    raw = text(value, MAX_URL + 1)
    return raw if raw.startswith(("http://", "https://")) and len(raw) <= MAX_URL else None


def when(value, now: datetime) -> datetime:
    """Epoch seconds (or milliseconds), as a number or a string, or an ISO date-time;
    anything else (or an absurd date) is `now`. Naive UTC, as everything stored."""
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return now
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
        return parsed if 2000 <= parsed.year <= 2200 else now
    try:
        seconds = int(value)
    except (TypeError, ValueError, OverflowError):
        return now
    if seconds > 10_000_000_000:        # milliseconds
        seconds //= 1000
    if not 1_000_000_000 <= seconds <= 10_000_000_000:
        return now
    return datetime.fromtimestamp(seconds, timezone.utc).replace(tzinfo=None)


def number(value, limit: float = 1000) -> float | None:
    """A finite number no larger than `limit` (degrees by default), or nothing."""
    if isinstance(value, bool):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return result if result == result and abs(result) <= limit else None


# -- what a post shows of content that is not text (the same lines for every provider) ------

def location_text(latitude, longitude, *names) -> str:
    """"📍 50.45, 30.52" and the place's name and address, each on its line."""
    def degrees(value) -> str:
        value = number(value)
        return "?" if value is None else f"{value:.6f}".rstrip("0").rstrip(".")
    lines = [f"📍 {degrees(latitude)}, {degrees(longitude)}"]
    lines += [text(n, 500) for n in names if text(n, 500)]
    return "\n".join(lines)


def contact_text(name, phones=(), emails=(), company="") -> str:
    """"👤 Name +380… mail@… (Company)": one line per shared contact."""
    parts = ["👤", text(name, MAX_NAME)] + [text(p, 40) for p in list(phones)[:5]] \
        + [text(e, 254) for e in list(emails)[:5]]
    line = " ".join(p for p in parts if p)
    return f"{line} ({text(company, MAX_NAME)})" if text(company, MAX_NAME) else line


def amount(value) -> float | None:
    """A price or a quantity: a finite number of a plausible size, or nothing."""
    return number(value, limit=1e12)


def money(value, currency="") -> str:
    value = amount(value)
    return "" if value is None else f"{value:.2f} {text(currency, 8)}".strip()
