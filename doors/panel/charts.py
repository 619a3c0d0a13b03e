"""Charts as SVG made on the server (no JavaScript, no CDN): bars with their numbers.
Every value goes through Markup.escape; colours are presentation attributes (the panel's
Content-Security-Policy allows no inline styles)."""
from __future__ import annotations

from markupsafe import Markup, escape

from doors.panel.texts import text
from services.report_charts import BAR, BAR_ALT, Bars, PairedBars

AXIS = "#6b7280"


def draw(chart: Bars | PairedBars) -> Markup:
    """One of the reports' charts (services/report_charts.py) as SVG."""
    if isinstance(chart, PairedBars):
        return hbars(list(chart.rows), title=chart.title, unit=chart.unit)
    return bars(list(chart.values), list(chart.labels), title=chart.title, unit=chart.unit,
                colour=chart.colour, label_every=chart.label_every)


def bars(values: list[float], labels: list[str], *, title: str, unit: str = "",
         width: int = 640, height: int = 180, colour: str = BAR, label_every: int = 1) -> Markup:
    """A vertical bar chart: one bar per value, its label under it."""
    n = max(1, len(values))
    top = max(values) if values and max(values) > 0 else 1
    left, bottom, right, head = 36, 22, 8, 18
    plot_w, plot_h = width - left - right, height - bottom - head
    step = plot_w / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
             f'<title>{escape(title)}</title>',
             f'<line x1="{left}" y1="{head + plot_h}" x2="{width - right}" y2="{head + plot_h}" '
             f'stroke="{AXIS}" stroke-width="1"/>',
             f'<text x="{left - 4}" y="{head + 4}" font-size="10" text-anchor="end" fill="{AXIS}">'
             f'{escape(_number(top))}{escape(unit)}</text>']
    for i, (value, label) in enumerate(zip(values, labels)):
        h = 0 if top == 0 else plot_h * value / top
        x = left + i * step + step * 0.15
        y = head + plot_h - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
                     f'fill="{colour}"><title>{escape(label)}: {escape(_number(value))}{escape(unit)}'
                     f'</title></rect>')
        if value:
            parts.append(f'<text x="{x + step * 0.35:.1f}" y="{y - 3:.1f}" font-size="9" '
                         f'text-anchor="middle" fill="#111827">{escape(_number(value))}</text>')
        if i % label_every == 0:
            parts.append(f'<text x="{x + step * 0.35:.1f}" y="{height - 6}" font-size="9" '
                         f'text-anchor="middle" fill="{AXIS}">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def hbars(rows: list[tuple[str, float, float]], *, title: str, unit: str = " min",
          width: int = 640) -> Markup:
    """Horizontal bars, two per row (median, p90): who answers how fast."""
    row_h, left, right = 34, 170, 70
    height = max(1, len(rows)) * row_h + 24
    top = max([max(a, b) for _, a, b in rows] + [1])
    plot_w = width - left - right
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
             f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
             f'<title>{escape(title)}</title>',
             f'<rect x="{left}" y="4" width="10" height="8" fill="{BAR}"/>'
             f'<text x="{left + 14}" y="12" font-size="10" fill="{AXIS}">{escape(text("chart.median"))}</text>'
             f'<rect x="{left + 70}" y="4" width="10" height="8" fill="{BAR_ALT}"/>'
             f'<text x="{left + 84}" y="12" font-size="10" fill="{AXIS}">{escape(text("chart.p90"))}</text>']
    for i, (label, median, p90) in enumerate(rows):
        y = 20 + i * row_h
        parts.append(f'<text x="{left - 6}" y="{y + 16}" font-size="11" text-anchor="end" '
                     f'fill="#111827">{escape(label[:28])}</text>')
        for j, (value, colour) in enumerate(((median, BAR), (p90, BAR_ALT))):
            w = plot_w * value / top
            parts.append(f'<rect x="{left}" y="{y + j * 13}" width="{w:.1f}" height="11" '
                         f'fill="{colour}"/><text x="{left + w + 4:.1f}" y="{y + j * 13 + 9}" '
                         f'font-size="10" fill="#111827">{escape(_number(value))}{escape(unit)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
