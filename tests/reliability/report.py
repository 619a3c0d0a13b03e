"""The figures of the reliability suite, gathered per scenario and printed at the end.

Each scenario asks for a `Figures` record (the `figures` fixture) and fills it in as it
runs: processes used, kills survived, faults injected by kind, signals, and messages
accepted / delivered / duplicated / lost. `tests/reliability/conftest.py` prints the table
from its `pytest_terminal_summary` hook, for the fast subset and for the full run alike.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import os
import platform
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

FULL = os.environ.get("KEEPDESK_RELIABILITY", "").strip().lower() == "full"
SIZE_NAME = "full" if FULL else "fast"
STARTED = time.monotonic()

DOCS = Path(__file__).resolve().parents[2] / "docs" / "guarantees.md"
DOCS_MARKER = "<!-- figures below are written by make reliability; do not edit -->"


def sized(fast, full):
    """The fast figure by default, the full one under KEEPDESK_RELIABILITY=full."""
    return full if FULL else fast

# The order faults are listed in; kinds not named here follow alphabetically.
FAULT_ORDER = ("kill_worker", "kill_door", "5xx", "429", "403", "timeouts", "tg_unreachable",
               "db_restarts", "crm_down", "crm_slow")


@dataclasses.dataclass
class Figures:
    scenario: str
    size: str = SIZE_NAME
    outcome: str = "not run"
    seconds: float = 0.0
    trials: int = 0
    processes: int = 0            # serving processes running at once (door workers + bot workers)
    processes_started: int = 0    # every serving process started, restarts included
    kills: int = 0                # kill -9 survived
    faults: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    signals_sent: int = 0         # CRM signals posted to the listener (retries included)
    signals_ok: int = 0           # answered 200
    signals_refused: int = 0      # answered 503 / no answer (the door was killed)
    updates_refused: int = 0      # Telegram updates answered 503
    accepted: int = 0             # client messages KeepDesk took responsibility for
    delivered: int = 0            # of those, seen in Telegram
    duplicated: int = 0           # extra copies in Telegram
    lost: int = 0                 # accepted but never delivered
    notes: list[str] = dataclasses.field(default_factory=list)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)
    _started: float = dataclasses.field(default_factory=time.monotonic, repr=False)

    def fault(self, kind: str, count: int = 1) -> None:
        with self._lock:
            self.faults[kind] += count

    def add(self, name: str, count: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + count)

    def note(self, text: str) -> None:
        with self._lock:
            self.notes.append(text)

    def messages(self, accepted: int, delivered: int, duplicated: int) -> None:
        with self._lock:
            self.accepted += accepted
            self.delivered += delivered
            self.duplicated += duplicated
            self.lost += accepted - delivered

    def finish(self, outcome: str) -> None:
        self.outcome = outcome
        self.seconds = time.monotonic() - self._started

    def as_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if not f.name.startswith("_")}
        data["faults"] = dict(self.faults)
        return data


class Report:
    def __init__(self) -> None:
        self.scenarios: list[Figures] = []

    def scenario(self, name: str) -> Figures:
        figures = Figures(name)
        self.scenarios.append(figures)
        return figures

    def totals(self) -> Figures:
        total = Figures("TOTAL")
        for f in self.scenarios:
            total.faults.update(f.faults)
            for name in ("trials", "processes_started", "kills", "signals_sent", "signals_ok",
                         "signals_refused", "updates_refused", "accepted", "delivered",
                         "duplicated", "lost", "seconds"):
                setattr(total, name, getattr(total, name) + getattr(f, name))
            total.processes = max(total.processes, f.processes)
        outcomes = collections.Counter(f.outcome for f in self.scenarios)
        total.outcome = " ".join(f"{n} {o}" for o, n in sorted(outcomes.items()))
        return total

    def lines(self) -> list[str]:
        rows = self.scenarios + [self.totals()] if self.scenarios else []
        width = max((len(f.scenario) for f in rows), default=0)
        return [f"{f.scenario:<{width}} | {format_figures(f)}" for f in rows]

    def summary_lines(self) -> list[str]:
        """The table and the scenarios' notes, as the terminal summary prints them."""
        return self.lines() + [f"  {f.scenario}: {note}" for f in self.scenarios for note in f.notes]

    def write_docs(self, session: str = "", path: Path | None = None) -> str | None:
        """Put the summary into docs/guarantees.md below DOCS_MARKER, keeping the
        hand-written part above it. Only in the full run (and not with
        KEEPDESK_RELIABILITY_DOCS=0); returns the line to print, None when not written.
        Never raises: a docs/ that cannot be written is a warning line, not a failure."""
        if not FULL or not self.scenarios:
            return None
        if os.environ.get("KEEPDESK_RELIABILITY_DOCS", "1").strip().lower() in ("0", "no", "off", "false"):
            return None
        path = path or DOCS
        try:
            text = path.read_text(encoding="utf-8") if path.exists() else "# Guarantees\n"
            found = re.search(rf"^{re.escape(DOCS_MARKER)}[ \t]*$", text, re.MULTILINE)
            head = text[:found.start()] if found else text.rstrip("\n") + "\n\n"
            path.write_text(head + docs_section(self, session), encoding="utf-8")
        except Exception as exc:   # noqa: BLE001 — the figures must never fail the suite
            return f"warning: the figures were not written to {path}: {exc}"
        return f"figures written to {path}"

    def write_json(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as out:
            json.dump({"size": SIZE_NAME,
                       "scenarios": [f.as_dict() for f in self.scenarios],
                       "total": self.totals().as_dict()}, out, indent=2, ensure_ascii=False)


def format_faults(faults: collections.Counter) -> str:
    kinds = [k for k in FAULT_ORDER if faults.get(k)]
    kinds += sorted(k for k in faults if k not in FAULT_ORDER and faults[k])
    return " ".join(f"{k}={faults[k]}" for k in kinds) or "none"


def format_figures(f: Figures) -> str:
    parts = [f"{f.outcome} in {f.seconds:.0f}s",
             f"trials: {f.trials}",
             f"processes: {f.processes} (started {f.processes_started})",
             f"kills survived: {f.kills}",
             f"faults injected: {format_faults(f.faults)}",
             f"signals sent={f.signals_sent} ok={f.signals_ok} refused={f.signals_refused}",
             f"messages accepted={f.accepted} delivered={f.delivered} "
             f"duplicated={f.duplicated} lost={f.lost}"]
    if f.updates_refused:
        parts.insert(-1, f"updates refused={f.updates_refused}")
    return " | ".join(parts)


def machine() -> str:
    memory = "memory unknown"
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB memory"
                    break
    except (OSError, ValueError, IndexError):
        pass
    return (f"{platform.machine() or 'unknown machine'}, {os.cpu_count()} cores, {memory}, "
            f"Python {platform.python_version()}")


def docs_section(report: Report, session: str = "") -> str:
    """What goes below the marker: when, where, how the session ended, and the table."""
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    minutes = (time.monotonic() - STARTED) / 60
    outcome = f"{session} in {minutes:.1f} min" if session else f"{minutes:.1f} min"
    count = len(report.scenarios)
    lines = [DOCS_MARKER, "",
             f"Written by `make reliability` {when} on {machine()}.",
             f"The session: {outcome}; {count} reliability scenario{'' if count == 1 else 's'}:", ""]
    body = report.summary_lines()
    longest = max((len(run) for line in body for run in re.findall(r"`+", line)), default=0)
    ticks = "`" * max(3, longest + 1)
    return "\n".join(lines + [f"{ticks}text", *body, ticks]) + "\n"


def session_outcome(stats: dict) -> str:
    """E.g. "245 passed, 1 failed", from the stats of pytest's terminal reporter."""
    kinds = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
    try:
        return ", ".join(f"{len(stats[k])} {k}" for k in kinds if stats.get(k))
    except Exception:   # noqa: BLE001 — only a line of the docs
        return ""


REPORT = Report()
