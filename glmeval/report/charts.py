"""Tiny inline-SVG charts: grouped bars and lines, no external libraries.

The HTML report must be one self-contained file that opens offline and passes a strict
content policy, so charts are plain SVG markup written here rather than a JavaScript
charting library from a CDN. Every piece of text that reaches the markup (titles, series
names, category labels, which may come from a suite author) goes through
:func:`markupsafe.escape`, so a chart is as safe to embed as the rest of the autoescaped page.

Charts scale with their container (``viewBox`` + ``width=100%``); the legend is HTML next to
the SVG so it wraps on a phone instead of overflowing the drawing. A label is never cut: it
wraps onto more lines, or, when it would take too many (24 long variant labels, a prompt as an
axis value), the chart draws a short code (``V7``, ``#2``) and lists code → label in an HTML
key under the drawing. Widths are estimated generously (a CJK character counts a full em), and
each label's room is written on it as ``data-room`` so a browser test can check the estimate.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence

from markupsafe import Markup, escape

from glmeval.percent import percent

Number = float | int | None
Formatter = Callable[[float], str]

# Okabe-Ito inspired, distinguishable for the common forms of colour blindness.
PALETTE: tuple[str, ...] = (
    "#2f6fde", "#e08a00", "#159f74", "#c4397a", "#6b4fbb", "#4fa3d9", "#b5a000", "#d4542c",
    "#5c6b7a", "#8c564b",
)

SPARKS = "▁▂▃▄▅▆▇█"
FONT_SIZE = 11.0  # the SVG's font-size: every width below is in its user units
LINE_H = 13.0
MAX_LABEL_LINES = 3  # a category label needing more lines is drawn as a code with a key
HBAR_LABEL_MAX = 220  # widest label column of a horizontal bar chart before codes take over


def color(i: int) -> str:
    """The colour of the ``i``-th series; cycles through :data:`PALETTE`."""
    return PALETTE[i % len(PALETTE)]


def _num(value: Number) -> float | None:
    """A finite float or ``None``: NaN and infinities are gaps, not zeros."""
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def nice_ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    """Round tick values covering ``[lo, hi]`` (1, 2, 2.5, 5 × 10^k steps), so axes read easily."""
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    value = start
    while value < hi + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    if len(ticks) < 2:
        ticks.append(round(start + step, 10))
    return ticks


def default_fmt(value: float) -> str:
    """Compact numbers for axis labels: 1.2k, 35, 0.004."""
    a = abs(value)
    if a >= 1e6:
        return f"{value / 1e6:.1f}M"
    if a >= 1e4:
        return f"{value / 1e3:.0f}k"
    if a >= 1e3:
        return f"{value / 1e3:.1f}k"
    if a >= 10 or a == 0:
        return f"{value:.0f}"
    if a >= 1:
        return f"{value:.1f}"
    return f"{value:.2g}"


def pct_fmt(value: float) -> str:
    return percent(value)


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """A generous estimate of ``text``'s drawn width: wide (CJK, full-width) characters count
    1.05 em, digits and capitals 0.72, ``m``/``w``/``%`` a full em, the rest 0.64 (wider than
    most Latin glyphs), so a label judged to fit does fit whatever sans-serif font the
    reader's browser picks."""
    return sum(size * _em(ch) for ch in text)


def _em(ch: str) -> float:
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 1.05
    if ch in "MW@%mw":
        return 1.0
    if ch.isupper() or ch.isdigit():
        return 0.72
    return 0.64


def wrap_lines(text: str, room: float, size: float = FONT_SIZE) -> list[str]:
    """``text`` broken into lines of at most ``room`` wide: at spaces, and inside a word (or a
    run of CJK, which has no spaces) only when the word alone is too wide. Nothing is dropped."""
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if text_width(candidate, size) <= room:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for ch in word:
            if line and text_width(line + ch, size) > room:
                lines.append(line)
                line = ""
            line += ch
    lines.append(line)
    return lines


def _label_svg(x: float, y: float, lines: Sequence[str], room: float, tip: str, anchor: str = "middle",
               fill: str = "#24292f", extra: str = "") -> str:
    """A (possibly multi-line) label as one ``<text>`` of ``<tspan>`` lines, its full text as the tooltip."""
    spans = "".join(
        f'<tspan x="{x:.1f}" dy="{0 if i == 0 else LINE_H:.0f}">{escape(line)}</tspan>' for i, line in enumerate(lines)
    )
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}" class="label" data-room="{room:.0f}"{extra}>'
            f"<title>{escape(tip)}</title>{spans}</text>")


def _key(codes: Sequence[str], labels: Sequence[str]) -> str:
    """The HTML key of a chart that drew codes: code → full label, wrapping freely."""
    items = "".join(f'<li><b class="code">{escape(c)}</b> <span class="klabel">{escape(lab)}</span></li>'
                    for c, lab in zip(codes, labels))
    return f'<ol class="chart-key">{items}</ol>'


def _categories(labels: Sequence[str], room: float) -> tuple[list[list[str]], str]:
    """Each x label as lines fitting ``room``, or codes ``#1``, ``#2``... and their key when some
    label would need more than :data:`MAX_LABEL_LINES` lines."""
    wrapped = [wrap_lines(str(lab), room) for lab in labels]
    if max(len(w) for w in wrapped) <= MAX_LABEL_LINES:
        return wrapped, ""
    codes = [f"#{i + 1}" for i in range(len(labels))]
    return [[c] for c in codes], _key(codes, [str(lab) for lab in labels])


def _left_margin(ticks: Sequence[float], fmt: Formatter) -> int:
    """Room for the y tick labels (``¥0.0075`` needs more than ``75%``); 46 at least, as before."""
    return max(46, int(max(text_width(fmt(t)) for t in ticks)) + 10)


def _legend(series: Sequence[str]) -> str:
    if len(series) <= 1:
        return ""
    items = "".join(
        f'<span class="key"><i style="background:{color(i)}"></i>{escape(name)}</span>' for i, name in enumerate(series)
    )
    return f'<div class="legend">{items}</div>'


def _frame(
    title: str, body: str, width: int, height: int, series: Sequence[str], note: str | None, label: str, key: str = ""
) -> Markup:
    caption = f"<figcaption>{escape(title)}</figcaption>" if title else ""
    foot = f'<div class="chart-note">{escape(note)}</div>' if note else ""
    svg = (
        f'<svg class="chart-svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label or title)}" preserveAspectRatio="xMidYMid meet" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="11">{body}</svg>'
    )
    return Markup(f'<figure class="chart">{caption}{_legend(series)}{svg}{key}{foot}</figure>')


def _axis(
    lo: float, hi: float, ticks: list[float], left: int, right: int, top: int, bottom: int, fmt: Formatter
) -> tuple[str, Callable[[float], float]]:
    """Horizontal grid lines with labels; returns the markup and the value → y mapping."""

    def y(value: float) -> float:
        return bottom - (value - lo) / (hi - lo) * (bottom - top) if hi > lo else bottom

    parts = []
    for t in ticks:
        yy = y(t)
        parts.append(f'<line x1="{left}" x2="{right}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid" stroke="#d0d7de" stroke-width="1"/>')
        parts.append(
            f'<text x="{left - 6}" y="{yy + 3.5:.1f}" text-anchor="end" fill="#57606a" class="label" '
            f'data-room="{left - 6}">{escape(fmt(t))}</text>'
        )
    return "".join(parts), y


def _series(series: Mapping[str, Sequence[Number]]) -> tuple[list[str], list[list[float | None]], list[float]]:
    """Series names, their values as floats (None for missing), and every finite value."""
    names = list(series)
    values = [[_num(v) for v in series[n]] for n in names]
    return names, values, [v for row in values for v in row if v is not None]


def _scale(finite: list[float], y_max: float | None) -> tuple[float, float, list[float]]:
    """The y range and ticks: from 0 (or below, for negatives) to a round number above the
    data, or exactly to ``y_max`` when it is pinned (1.0 for rates)."""
    lo = min(0.0, min(finite) if finite else 0.0)
    top_value = y_max if y_max is not None else (max(finite) if finite else 1.0)
    ticks = nice_ticks(lo, top_value if top_value > lo else lo + 1)
    if y_max is None:
        return lo, ticks[-1], ticks
    return lo, max(y_max, lo + 1e-9), [t for t in nice_ticks(lo, y_max) if t <= y_max + 1e-9]


def bar_chart(
    categories: Sequence[str],
    series: Mapping[str, Sequence[Number]],
    *,
    title: str = "",
    fmt: Formatter = default_fmt,
    y_max: float | None = None,
    width: int = 520,
    height: int = 240,
    note: str | None = None,
) -> Markup:
    """Grouped vertical bars: one group per category, one bar per series.

    Missing values (``None``/NaN) leave a gap rather than a zero-height bar, so "no data" is
    not mistaken for "zero". ``y_max`` pins the scale (1.0 for rates) so charts of the same
    metric compare by eye. Category labels wrap under their group (the drawing grows to fit
    them) or become codes with a key; values are printed on the bars only when every one fits
    its bar, since overlapping numbers read as nothing.
    """
    names, values, finite = _series(series)
    if not categories or not names:
        return _frame(title, "", width, 40, [], note or "no data", title)
    lo, hi, ticks = _scale(finite, y_max)
    left, right, top, bottom = _left_margin(ticks, fmt), width - 8, 16, height - 34
    group_w = (right - left) / len(categories)
    lines, key = _categories([str(c) for c in categories], group_w - 6)
    height += int(LINE_H * (max(len(x) for x in lines) - 1))
    grid, y = _axis(lo, hi, ticks, left, right, top, bottom, fmt)
    bar_w = max(2.0, min(34.0, group_w * 0.8 / len(names)))
    parts = [grid]
    show_values = len(categories) * len(names) <= 16 and all(text_width(fmt(v), 10) <= bar_w for v in finite)
    for ci, cat in enumerate(categories):
        gx = left + ci * group_w + (group_w - bar_w * len(names)) / 2
        for si, name in enumerate(names):
            v = values[si][ci] if ci < len(values[si]) else None
            if v is None:
                continue
            x = gx + si * bar_w
            y0, y1 = y(max(lo, 0.0)), y(v)
            ytop, h = min(y0, y1), max(abs(y0 - y1), 0.8)
            tip = f"{name} · {cat}: {fmt(v)}" if len(names) > 1 else f"{cat}: {fmt(v)}"
            parts.append(
                f'<rect x="{x + 1:.1f}" y="{ytop:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" rx="2" '
                f'fill="{color(si)}"><title>{escape(tip)}</title></rect>'
            )
            if show_values:
                parts.append(
                    f'<text x="{x + bar_w / 2:.1f}" y="{ytop - 4:.1f}" text-anchor="middle" fill="#24292f" font-size="10" '
                    f'class="label" data-room="{bar_w:.0f}">{escape(fmt(v))}</text>'
                )
        parts.append(_label_svg(left + ci * group_w + group_w / 2, bottom + 16, lines[ci], group_w - 6, str(cat)))
    parts.append(f'<line x1="{left}" x2="{right}" y1="{y(max(lo, 0.0)):.1f}" y2="{y(max(lo, 0.0)):.1f}" stroke="#8c959f"/>')
    return _frame(title, "".join(parts), width, height, names, note, title, key)


def line_chart(
    x_labels: Sequence[str],
    series: Mapping[str, Sequence[Number]],
    *,
    title: str = "",
    fmt: Formatter = default_fmt,
    y_max: float | None = None,
    width: int = 520,
    height: int = 240,
    note: str | None = None,
    x_tips: Sequence[str] | None = None,
) -> Markup:
    """Lines over evenly spaced x positions (runs in time order, or an axis's values).

    A missing point breaks the line, so a variant absent from one run shows as a gap rather
    than an invented slope. ``x_tips`` gives a longer tooltip per x (the run id and date).
    """
    names, values, finite = _series(series)
    if not x_labels or not names or not finite:
        return _frame(title, "", width, 40, [], note or "no data", title)
    lo, hi, ticks = _scale(finite, y_max)
    left, right, top, bottom = _left_margin(ticks, fmt), width - 10, 16, height - 34
    n = len(x_labels)
    pad = 34  # room for the first and last x labels, centred on their points
    step = (right - left - 2 * pad) / max(n - 1, 1)

    def x(i: int) -> float:
        return left + pad + (i * step if n > 1 else (right - left - 2 * pad) / 2)

    every = max(1, math.ceil(n / max(1, int((right - left) / 70))))
    shown = [i for i in range(n) if i % every == 0 or i == n - 1]
    room = (right - left) if n == 1 else min(step * every, 2 * (width - x(n - 1))) - 6
    lines, key = _categories([str(x_labels[i]) for i in shown], room)
    height += int(LINE_H * (max(len(ls) for ls in lines) - 1))
    grid, y = _axis(lo, hi, ticks, left, right, top, bottom, fmt)
    parts = [grid]
    for i, label_lines in zip(shown, lines):
        tip = x_tips[i] if x_tips and i < len(x_tips) else str(x_labels[i])
        parts.append(_label_svg(x(i), bottom + 16, label_lines, room, tip))
    for si, name in enumerate(names):
        segments: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(values[si][:n]):
            if v is None:
                if segments[-1]:
                    segments.append([])
                continue
            segments[-1].append((x(i), y(v)))
        for seg in segments:
            if len(seg) > 1:
                points = " ".join(f"{px:.1f},{py:.1f}" for px, py in seg)
                parts.append(f'<polyline points="{points}" fill="none" stroke="{color(si)}" stroke-width="2" stroke-linejoin="round"/>')
        for i, v in enumerate(values[si][:n]):
            if v is None:
                continue
            where = x_tips[i] if x_tips and i < len(x_tips) else x_labels[i]
            tip = f"{name} · {where}: {fmt(v)}" if len(names) > 1 else f"{where}: {fmt(v)}"
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.2" fill="{color(si)}" stroke="#fff" stroke-width="1">'
                f"<title>{escape(tip)}</title></circle>"
            )
    parts.append(f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#8c959f"/>')
    return _frame(title, "".join(parts), width, height, names, note, title, key)


def hbar_chart(
    labels: Sequence[str],
    values: Sequence[Number],
    *,
    title: str = "",
    intervals: Sequence[tuple[Number, Number]] | None = None,
    fmt: Formatter = default_fmt,
    x_max: float | None = None,
    width: int = 520,
    highlight: Sequence[bool] | None = None,
    note: str | None = None,
    codes: Sequence[str] | None = None,
) -> Markup:
    """Horizontal bars, one per label (variants, whose labels are long), with optional
    interval whiskers (the 95% interval of a pass rate) so overlapping intervals are visible.
    ``highlight`` draws those bars in the accent colour (the best variant).

    Labels that fit a :data:`HBAR_LABEL_MAX` column are drawn whole; otherwise the bars are
    labelled with ``codes`` (``V1``...) and the key under the chart gives each full label, or,
    without codes, each label wraps onto as many lines as it needs."""
    if not labels:
        return _frame(title, "", width, 40, [], note or "no data", title)
    full = [str(lab) for lab in labels]
    widest = max(text_width(lab) for lab in full)
    key = ""
    if widest + 16 <= HBAR_LABEL_MAX:
        shown = [[lab] for lab in full]
        label_w = max(60, int(widest) + 16)
    elif codes:
        shown = [[str(c)] for c in codes]
        key = _key([str(c) for c in codes], full)
        label_w = max(60, int(max(text_width(str(c)) for c in codes)) + 16)
    else:
        label_w = HBAR_LABEL_MAX
        shown = [wrap_lines(lab, label_w - 16) for lab in full]
    rows = [max(24.0, LINE_H * len(ls) + 11) for ls in shown]
    top = 8
    left, right = label_w, width - 52
    height = int(top + sum(rows) + 22)
    nums = [_num(v) for v in values]
    finite = [v for v in nums if v is not None]
    hi = x_max if x_max is not None else (nice_ticks(0.0, max(finite) if finite else 1.0)[-1])
    hi = hi or 1.0

    def x(value: float) -> float:
        return left + max(0.0, min(value, hi)) / hi * (right - left)

    parts = []
    for t in nice_ticks(0.0, hi):
        if t > hi + 1e-9:
            continue
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{height - 20}" class="grid" stroke="#d0d7de"/>')
        parts.append(f'<text x="{x(t):.1f}" y="{height - 6}" text-anchor="middle" fill="#57606a">{escape(fmt(t))}</text>')
    y_at = float(top)
    for i, (lab, v) in enumerate(zip(full, nums)):
        cy = y_at + rows[i] / 2
        y_at += rows[i]
        first = cy + 4 - LINE_H * (len(shown[i]) - 1) / 2
        parts.append(_label_svg(left - 8, first, shown[i], label_w - 12, lab, anchor="end"))
        if v is None:
            continue
        fill = PALETTE[0] if not highlight or not highlight[i] else PALETTE[2]
        tip = f"{lab}: {fmt(v)}"
        if intervals and i < len(intervals):
            lo_, hi_ = (_num(b) for b in intervals[i])
            if lo_ is not None and hi_ is not None:
                tip += f" (95% CI {fmt(lo_)}–{fmt(hi_)})"
        parts.append(
            f'<rect x="{left}" y="{cy - 8:.1f}" width="{max(x(v) - left, 1.0):.1f}" height="16" rx="3" fill="{fill}" '
            f'opacity="0.9"><title>{escape(tip)}</title></rect>'
        )
        if intervals and i < len(intervals):
            lo_, hi_ = (_num(b) for b in intervals[i])
            if lo_ is not None and hi_ is not None:
                parts.append(
                    f'<path d="M{x(lo_):.1f},{cy:.1f}H{x(hi_):.1f}M{x(lo_):.1f},{cy - 5:.1f}V{cy + 5:.1f}'
                    f'M{x(hi_):.1f},{cy - 5:.1f}V{cy + 5:.1f}" stroke="#24292f" stroke-width="1.2" fill="none" class="whisker"/>'
                )
        parts.append(f'<text x="{right + 6}" y="{cy + 4:.1f}" fill="#24292f" font-weight="600">{escape(fmt(v))}</text>')
    return _frame(title, "".join(parts), width, height, [], note, title, key)


def sparkline(values: Sequence[Number], lo: float | None = None, hi: float | None = None) -> str:
    """A text sparkline (``▁▃▅█``) for Markdown, where no SVG renders; gaps show as spaces."""
    nums = [_num(v) for v in values]
    finite = [v for v in nums if v is not None]
    if not finite:
        return ""
    lo = min(finite) if lo is None else lo
    hi = max(finite) if hi is None else hi
    span = hi - lo
    out = []
    for v in nums:
        if v is None:
            out.append(" ")
        elif span <= 0:
            out.append(SPARKS[len(SPARKS) // 2])
        else:
            idx = int(round((min(max(v, lo), hi) - lo) / span * (len(SPARKS) - 1)))
            out.append(SPARKS[idx])
    return "".join(out)


__all__ = [
    "bar_chart", "line_chart", "hbar_chart", "sparkline", "nice_ticks", "default_fmt", "pct_fmt", "PALETTE", "color",
    "text_width", "wrap_lines",
]
