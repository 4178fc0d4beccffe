"""Charts as SVG drawn on the server: no JavaScript, no CDN, nothing to vendor or pin, and the page
works on networks that reach only the Airflow host. Airflow-free.

Every data mark carries ``data-*`` attributes (series, day or label, value) and a ``<title>`` tooltip,
so a browser test (and a screen reader) can read the figures the chart shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

from rafay_provider.ui.contracts import ReservationUse
from rafay_provider.ui.formats import hours, money
from rafay_provider.ui.queries import DailyCharges

# Colour-blind-safe palette (Okabe-Ito), then grey for "others".
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000",
           "#8E6C8A", "#4D9221", "#B2182B", "#2166AC")
OTHERS = "#BBBBBB"


def _color(i: int, others: bool) -> str:
    return OTHERS if others else PALETTE[i % len(PALETTE)]


def _nice_max(value: Decimal) -> Decimal:
    """A round axis maximum at or above ``value`` (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return Decimal(1)
    exp = value.adjusted()
    for step in (1, 2, 5, 10):
        candidate = Decimal(step).scaleb(exp)
        if candidate >= value:
            return candidate
    return Decimal(10).scaleb(exp)


def _axis(value: Decimal) -> str:
    """An axis tick (a round number, not a figure of the data): no decimals when it is whole."""
    return f"{value:,.2f}" if value != value.to_integral_value() else f"{value:,.0f}"


def daily_stacked_bars(data: DailyCharges, *, width: int = 900, height: int = 320) -> str:
    """Stacked bars: one bar per day, one segment per org series (largest first at the bottom)."""
    left, right, top, bottom = 70, 10, 10, 40
    legend_h = 18 * ((len(data.series) + 2) // 3)
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum((s.amounts[i] for s in data.series), Decimal(0)) for i in range(len(data.days))]
    y_max = _nice_max(max(totals, default=Decimal(0)))
    n = max(1, len(data.days))
    slot = plot_w / n
    bar_w = max(1.0, slot * 0.8)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="chart-daily" role="img" '
        f'width="{width}" height="{height + legend_h}" viewBox="0 0 {width} {height + legend_h}" '
        f'data-currency="{escape(data.currency)}">',
        f"<title>Daily charges per organization, {escape(data.currency)}</title>",
    ]
    for k in range(5):
        value = y_max * k / 4
        y = top + plot_h - plot_h * k / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{_axis(value)}</text>')
    for i, day in enumerate(data.days):
        x = left + i * slot + (slot - bar_w) / 2
        y = float(top + plot_h)
        for j, s in enumerate(data.series):
            amount = s.amounts[i]
            if amount <= 0:
                continue
            h = float(amount / y_max) * plot_h
            y -= h
            out.append(
                f'<rect class="point" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{_color(j, s.org_id is None)}" data-series="{escape(s.org_id or "others")}" '
                f'data-day="{day.isoformat()}" data-value="{amount}">'
                f"<title>{escape(s.label)} {day.isoformat()}: {money(amount)} {escape(data.currency)}</title></rect>"
            )
        if i % max(1, n // 10) == 0:
            out.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                       f'font-size="11">{day:%m-%d}</text>')
    for j, s in enumerate(data.series):
        lx, ly = left + (j % 3) * (plot_w / 3), height + 18 * (j // 3)
        out.append(f'<rect x="{lx:.1f}" y="{ly - 10}" width="12" height="12" fill="{_color(j, s.org_id is None)}"/>')
        out.append(f'<text x="{lx + 16:.1f}" y="{ly}" font-size="12">{escape(s.label)}</text>')
    if not data.series:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no charges in '
                   f'{escape(data.currency)} over these days</text>')
    out.append("</svg>")
    return "".join(out)


def horizontal_bars(items: Sequence[tuple[str, Decimal]], *, unit: str, chart_id: str, title: str,
                    width: int = 900, row: int = 24) -> str:
    """One bar per label, largest first (``items`` as given)."""
    left, right, top = 220, 120, 10
    height = top + row * max(1, len(items)) + 10
    plot_w = width - left - right
    v_max = max((v for _, v in items), default=Decimal(0)) or Decimal(1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(items):
        y = top + i * row
        w = float(value / v_max) * plot_w
        others = label.startswith("others")
        out.append(f'<text x="{left - 6}" y="{y + row * 0.65:.1f}" text-anchor="end" font-size="12">'
                   f"{escape(label)}</text>")
        out.append(
            f'<rect class="point" x="{left}" y="{y + 3}" width="{max(w, 1.0):.1f}" height="{row - 6}" '
            f'fill="{_color(0, others)}" data-series="{escape(label)}" data-value="{value}">'
            f"<title>{escape(label)}: {hours(value)} {escape(unit)}</title></rect>"
        )
        out.append(f'<text x="{left + w + 6:.1f}" y="{y + row * 0.65:.1f}" font-size="12">'
                   f"{hours(value)} {escape(unit)}</text>")
    if not items:
        out.append(f'<text x="{width / 2}" y="{height / 2 + 4}" text-anchor="middle">nothing to show</text>')
    out.append("</svg>")
    return "".join(out)


def utilisation_bars(use: ReservationUse, *, width: int = 900, height: int = 200) -> str:
    """A reservation's month: per day a light bar of its capacity and a dark bar of the usage it covered
    (its unit); each covered bar carries ``data-day``, ``data-capacity``, ``data-covered`` and the day's
    utilisation in percent as ``data-value``."""
    left, right, top, bottom = 70, 10, 10, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    y_max = _nice_max(max(use.capacity + use.covered, default=Decimal(0)))
    n = max(1, len(use.days))
    slot = plot_w / n
    bar_w = max(1.0, slot * 0.7)
    title = f"Reservation {use.contract_id} ({use.profile}): capacity and covered usage per day, {use.unit}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart utilisation" '
        f'id="chart-reservation-{escape(use.contract_id)}" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" data-contract="{escape(use.contract_id)}">',
        f"<title>{escape(title)}</title>",
    ]
    for k in range(5):
        y = top + plot_h - plot_h * k / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">'
                   f"{_axis(y_max * k / 4)}</text>")
    for i, (day, capacity, covered) in enumerate(zip(use.days, use.capacity, use.covered, strict=True)):
        x = left + i * slot + (slot - bar_w) / 2
        cap_h = float(capacity / y_max) * plot_h
        cov_h = float(covered / y_max) * plot_h
        percent = (100 * covered / capacity).quantize(Decimal("0.1")) if capacity else Decimal(0)
        out.append(f'<rect x="{x:.1f}" y="{top + plot_h - cap_h:.1f}" width="{bar_w:.1f}" height="{cap_h:.1f}" '
                   f'fill="#cfe3f3"/>')
        out.append(
            f'<rect class="point" x="{x:.1f}" y="{top + plot_h - cov_h:.1f}" width="{bar_w:.1f}" '
            f'height="{cov_h:.1f}" fill="{PALETTE[0]}" data-series="{escape(use.contract_id)}" '
            f'data-day="{day.isoformat()}" data-capacity="{capacity}" data-covered="{covered}" data-value="{percent}">'
            f"<title>{day.isoformat()}: {hours(covered)} of {hours(capacity)} {escape(use.unit)} covered "
            f"({percent}%)</title></rect>"
        )
        if i % max(1, n // 10) == 0:
            out.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                       f'font-size="11">{day:%m-%d}</text>')
    if not use.days:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no capacity this month</text>')
    out.append("</svg>")
    return "".join(out)
