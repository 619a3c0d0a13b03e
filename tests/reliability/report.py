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
import threading
import time

FULL = os.environ.get("KEEPDESK_RELIABILITY", "").strip().lower() == "full"
SIZE_NAME = "full" if FULL else "fast"


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


REPORT = Report()
