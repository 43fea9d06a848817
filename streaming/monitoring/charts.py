"""Small SVG charts for the streaming dashboard, drawn on the server (no script, no CDN).

Every text that ends up in the markup goes through ``escape``; numbers are formatted by us.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from streaming.monitoring.stats import Bucket

WIDTH, HEIGHT = 760, 220
LEFT, RIGHT, TOP, BOTTOM = 66, 12, 12, 36
STATUS_COLORS = {
    "completed": "#2b8a3e",
    "cancelled": "#868e96",
    "error": "#c92a2a",
    "timeout": "#e67700",
    "interrupted": "#5f3dc4",
    "streaming": "#1971c2",
}
PERCENTILE_COLORS = {50: "#1971c2", 95: "#e67700", 99: "#c92a2a"}
RATING_COLORS = {"up": "#2b8a3e", "down": "#c92a2a"}
RATING_NAMES = {"up": "👍", "down": "👎"}


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def _frame(maximum: float, unit: str, labels: Sequence[str]) -> list[str]:
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" class="chart">'
    ]
    plot_h = HEIGHT - TOP - BOTTOM
    for i in range(5):
        value = maximum * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e9ecef"/>')
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#495057">'
            f"{value:g}{escape(unit)}</text>"
        )
    if labels:
        step = max(1, len(labels) // 8)
        slot = (WIDTH - LEFT - RIGHT) / len(labels)
        for i in range(0, len(labels), step):
            x = LEFT + slot * (i + 0.5)
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 14}" text-anchor="middle" font-size="11" fill="#495057">'
                f"{escape(labels[i])}</text>"
            )
    return parts


def _legend(items: Sequence[tuple[str, str]]) -> str:
    x = LEFT
    parts = []
    for name, color in items:
        parts.append(f'<rect x="{x}" y="{HEIGHT - 10}" width="10" height="10" fill="{color}"/>')
        parts.append(
            f'<text x="{x + 14}" y="{HEIGHT - 1}" font-size="11" fill="#495057">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    return "".join(parts)


def _stacked_bars(
    counts: Sequence[dict[str, int]], labels: Sequence[str], colors: dict[str, str], names: dict[str, str]
) -> SafeString:
    """Stacked bars: one per bucket, one segment per key of ``colors`` (``names``: the key as shown)."""
    maximum = _nice_max(max((sum(c.values()) for c in counts), default=0))
    parts = _frame(maximum, "", labels)
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(counts))
    for i, bucket in enumerate(counts):
        y = TOP + plot_h
        for key, color in colors.items():
            count = bucket.get(key, 0)
            if not count:
                continue
            h = plot_h * count / maximum
            y -= h
            parts.append(
                f'<rect x="{LEFT + slot * i + slot * 0.1:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" '
                f'height="{h:.1f}" fill="{color}">'
                f"<title>{escape(labels[i])}: {count} {escape(names[key])}</title></rect>"
            )
    parts.append(_legend([(names[key], color) for key, color in colors.items()]))
    parts.append("</svg>")
    return mark_safe("".join(parts))


def _lines(
    series: dict[str, tuple[str, Sequence[float | None]]],
    labels: Sequence[str],
    unit: str,
    maximum: float | None = None,
) -> SafeString:
    """Lines: ``series`` is name -> (colour, a value or None per bucket); gaps where None."""
    values = [v for _, points in series.values() for v in points if v is not None]
    maximum = maximum or _nice_max(max(values, default=0))
    parts = _frame(maximum, unit, labels)
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(labels))
    for name, (color, bucket_values) in series.items():
        points = []
        for i, value in enumerate(bucket_values):
            if value is None:
                continue
            x = LEFT + slot * (i + 0.5)
            y = TOP + plot_h - plot_h * value / maximum
            points.append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}">'
                f"<title>{escape(labels[i])}: {escape(name)} {value}{escape(unit)}</title></circle>"
            )
        if len(points) > 1:
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(points)}"/>'
            )
    parts.append(_legend([(name, color) for name, (color, _) in series.items()]))
    parts.append("</svg>")
    return mark_safe("".join(parts))


def streams_by_status(buckets: Sequence[Bucket], labels: Sequence[str]) -> SafeString:
    """Stacked bars: streams per bucket, one colour per status."""
    return _stacked_bars([b.by_status for b in buckets], labels, STATUS_COLORS, {s: s for s in STATUS_COLORS})


def ttft_percentiles(buckets: Sequence[Bucket], labels: Sequence[str]) -> SafeString:
    """Lines: p50/p95/p99 time to first token per bucket (gaps where a bucket had no streams)."""
    series = {f"p{p}": (color, [b.ttft.get(p) for b in buckets]) for p, color in PERCENTILE_COLORS.items()}
    return _lines(series, labels, " ms")


def feedback_by_rating(buckets: Sequence[Bucket], labels: Sequence[str]) -> SafeString:
    """Stacked bars: rated answers per bucket, 👍 and 👎."""
    return _stacked_bars([b.feedback for b in buckets], labels, RATING_COLORS, RATING_NAMES)


def down_rate(buckets: Sequence[Bucket], labels: Sequence[str]) -> SafeString:
    """A line: the 👎 rate of the rated answers per bucket (gaps where none was rated), 0-100 %."""
    rates = [None if (rate := b.down_rate()) is None else round(rate * 100, 1) for b in buckets]
    return _lines({"👎 rate": (RATING_COLORS["down"], rates)}, labels, " %", maximum=100)
