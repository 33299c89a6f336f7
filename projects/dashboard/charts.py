"""Small server-rendered SVG charts: grouped bars, precision/recall curves and a stacked share bar.

Plain functions from numbers to markup (every text escaped), so pages need no JavaScript library
and no CDN, and tests can read the figures in the page.
"""

import math

from django.utils.html import conditional_escape, escape
from django.utils.safestring import mark_safe

WIDTH, HEIGHT = 380, 220
LEFT, RIGHT, TOP, BOTTOM = 38, 10, 14, 44
LEGEND_ITEM = '<span class="legend-item"><span class="swatch" style="background: {}"></span>{}</span>'
SERIES_COLORS = ["#2563eb", "#f59e0b", "#15803d", "#b91c1c", "#7c3aed", "#0891b2"]


def _html(template, *args):
    """str.format with every text argument escaped and numbers formatted as the template says
    (format_html would turn numbers into text first)."""
    return mark_safe(template.format(*(conditional_escape(a) if isinstance(a, str) else a for a in args)))


def _join(template, rows):
    return mark_safe("".join(_html(template, *row) for row in rows))


def _frame(name, title, body, *, legend=()):
    legend_items = _join(LEGEND_ITEM, ((color, label) for label, color in legend))
    return _html(
        '<figure class="chart" data-chart="{}"><figcaption>{}</figcaption>'
        '<svg viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">'
        "<title>{}</title>{}</svg>{}</figure>",
        name, title, WIDTH, HEIGHT, WIDTH, HEIGHT, title, title, body,
        _html('<div class="legend">{}</div>', legend_items) if legend else "",
    )


def _plot_size():
    return WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def _y_axis(maximum, *, ticks=5, fmt="{:g}"):
    width, height = _plot_size()
    parts = []
    for step in range(ticks + 1):
        value = maximum * step / ticks
        y = TOP + height - height * step / ticks
        parts.append(_html(
            '<line x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}" class="grid"/>'
            '<text x="{}" y="{:.1f}" class="tick" text-anchor="end">{}</text>',
            LEFT, y, LEFT + width, y, LEFT - 4, y + 4, fmt.format(round(value, 2)),
        ))
    return mark_safe("".join(parts))


def bars(name, title, groups, series, *, maximum=1.0, fmt="{:.2f}"):
    """groups: [(group label, [value per series or None])]; series: [series label]. Values are drawn
    against 0..maximum and written above their bar."""
    if not groups:
        return _frame(name, title, _html('<text x="{}" y="{}" class="tick">no data yet</text>',
                                               LEFT, TOP + 20))
    maximum = maximum or 1.0
    width, height = _plot_size()
    slot = width / len(groups)
    bar = min(36.0, slot * 0.8 / max(len(series), 1))
    parts = [_y_axis(maximum)]
    for index, (group, values) in enumerate(groups):
        start = LEFT + slot * index + (slot - bar * len(values)) / 2
        for position, value in enumerate(values):
            x = start + bar * position
            color = SERIES_COLORS[position % len(SERIES_COLORS)]
            if value is None:
                parts.append(_html(
                    '<text x="{:.1f}" y="{:.1f}" class="value" text-anchor="middle">–</text>',
                    x + bar / 2, TOP + height - 3))
                continue
            h = height * min(max(value / maximum, 0.0), 1.0)
            parts.append(_html(
                '<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}">'
                "<title>{}: {} {}</title></rect>"
                '<text x="{:.1f}" y="{:.1f}" class="value" text-anchor="middle">{}</text>',
                x + 1, TOP + height - h, bar - 2, h, color, group, series[position], fmt.format(value),
                x + bar / 2, TOP + height - h - 3, fmt.format(value),
            ))
        parts.append(_html(
            '<text x="{:.1f}" y="{}" class="tick" text-anchor="middle">{}</text>',
            LEFT + slot * index + slot / 2, TOP + height + 16, _short(group),
        ))
    legend = [(label, SERIES_COLORS[i % len(SERIES_COLORS)]) for i, label in enumerate(series)]
    return _frame(name, title, mark_safe("".join(parts)), legend=legend if len(series) > 1 else ())


def curves(name, title, lines):
    """Precision (y) against recall (x), both 0..1. lines: [(label, color, [[precision, recall]...],
    marked [precision, recall] or None)]; points without a precision are left out."""
    width, height = _plot_size()
    parts = [_y_axis(1.0)]
    for step in range(6):
        x = LEFT + width * step / 5
        parts.append(_html(
            '<text x="{:.1f}" y="{}" class="tick" text-anchor="middle">{:g}</text>',
            x, TOP + height + 14, round(step / 5, 1)))
    parts.append(_html(
        '<text x="{}" y="{}" class="tick" text-anchor="middle">recall</text>'
        '<text x="10" y="{}" class="tick" transform="rotate(-90 10 {})" '
        'text-anchor="middle">precision</text>',
        LEFT + width / 2, HEIGHT - 6, TOP + height / 2, TOP + height / 2))

    def xy(point):
        precision, recall = point
        return LEFT + width * recall, TOP + height - height * precision

    for label, color, points, marked in lines:
        kept = [xy(point) for point in points if point[0] is not None]
        if kept:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in kept)
            parts.append(_html(
                '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"><title>{}</title></polyline>',
                path, color, label))
        if marked is not None and marked[0] is not None:
            x, y = xy(marked)
            parts.append(_html(
                '<circle cx="{:.1f}" cy="{:.1f}" r="5" fill="{}" stroke="#fff" stroke-width="1.5" '
                'class="threshold"><title>{} at its threshold: precision {:.2f}, recall {:.2f}</title>'
                "</circle>",
                x, y, color, label, marked[0], marked[1]))
    legend = [(label, color) for label, color, _points, _marked in lines]
    return _frame(name, title, mark_safe("".join(parts)), legend=legend)


def shares(name, title, parts_in):
    """One horizontal bar split into [(label, count, color)] parts, each labelled with its share."""
    total = sum(count for _label, count, _color in parts_in)
    width = WIDTH - 2
    parts, x = [], 1.0
    for label, count, color in parts_in:
        if not total or not count:
            continue
        w = width * count / total
        parts.append(_html(
            '<rect x="{:.1f}" y="8" width="{:.1f}" height="28" fill="{}">'
            "<title>{}: {} ({:.0%})</title></rect>",
            x, w, color, label, count, count / total))
        if w > 34:
            parts.append(_html(
                '<text x="{:.1f}" y="27" class="inbar" text-anchor="middle">{:.0%}</text>', x + w / 2,
                count / total))
        x += w
    legend = [(f"{label} {count}", color) for label, count, color in parts_in]
    body = mark_safe("".join(parts)) if parts else _html(
        '<text x="4" y="27" class="tick">{}</text>', "no proposals on reviewed images yet")
    return _html(
        '<figure class="chart" data-chart="{}"><figcaption>{}</figcaption>'
        '<svg viewBox="0 0 {} 44" width="{}" height="44" role="img" aria-label="{}"><title>{}</title>{}</svg>'
        '<div class="legend">{}</div></figure>',
        name, title, WIDTH, WIDTH, title, title, body,
        _join(LEGEND_ITEM, ((color, label) for label, color in legend)),
    )


def nice_ceiling(value):
    """The smallest 1, 2, 2.5, 3, 4 or 5 times a power of ten at or above value (1 for nothing): an axis
    maximum whose fifths are round numbers."""
    if not value or value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 3, 4, 5, 10) if step * power >= value)


def _short(text, limit=16):
    text = str(text)
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")
