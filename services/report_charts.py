"""The reports' charts as data, shared by the panel's reports page (drawn as SVG,
doors/panel/charts.py) and the digest by e-mail (drawn as PNG, utils/png.py): which
charts there are, their titles, labels, values and units, and who each manager is."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from models.responses import EVERYONE
from services.panel import Report

BAR = "#3b82f6"
BAR_ALT = "#10b981"


@dataclass(frozen=True)
class Bars:
    """A vertical bar chart: one bar per value, its label under it."""
    key: str
    title: str
    labels: tuple[str, ...]
    values: tuple[float, ...]
    colour: str = BAR
    label_every: int = 1
    unit: str = ""


@dataclass(frozen=True)
class PairedBars:
    """Horizontal bars, two per row (median, p90): who answers how fast."""
    key: str
    title: str
    rows: tuple[tuple[str, float, float], ...]
    unit: str = " min"


def manager_names(team: list[dict]) -> Callable[[int | None], str]:
    """`who(manager_id)`: a manager's name as the reports show it."""
    names = {u["tg_id"]: (f"@{u['username']}" if u["username"] else u["first_name"] or str(u["tg_id"]))
             for u in team}

    def who(manager_id: int | None) -> str:
        if manager_id == EVERYONE:
            return "Everyone"
        if manager_id is None:
            return "Outside the desk"
        return names.get(manager_id, str(manager_id))
    return who


def per_manager(report: Report):
    """First response per manager over all channels (the speed chart's rows)."""
    return [f for f in report.first_response if f.channel is None and f.manager_id != EVERYONE]


def report_charts(report: Report, who: Callable[[int | None], str]) -> dict[str, Bars | PairedBars]:
    """The reports' three charts: first response per manager, volume by hour and by day."""
    return {
        "speed": PairedBars("speed", "First response per manager",
                            tuple((who(f.manager_id), f.median_minutes, f.p90_minutes)
                                  for f in per_manager(report))),
        "by_hour": Bars("by_hour", "Customer messages by hour of day",
                        tuple(f"{h:02d}" for h in range(24)), tuple(float(v) for v in report.by_hour),
                        label_every=2),
        "by_day": Bars("by_day", "Customer messages by day", tuple(d[5:] for d, _ in report.by_day),
                       tuple(float(v) for _, v in report.by_day), colour=BAR_ALT,
                       label_every=max(1, len(report.by_day) // 14)),
    }
