"""Charts as inline SVG, drawn on the server: no script, no CDN, no external URL.

Every piece of text (stage names, owner emails: attacker-controlled) is XML-escaped
here, so the templates may insert the result as markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

from worker.stalls.figures import StallFigures, stage_rank

PALETTE = ["#2f6fab", "#d9822b", "#3a9a5b", "#b9443c", "#7a5aa6", "#8c6d46", "#c9569c"]
ROW = 22
LABEL_W = 220
BAR_W = 320
VALUE_W = 200
LABEL_CHARS = 32


def _t(text: object) -> str:
    return escape(str(text), quote=True)


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def hbars(title: str, rows: Sequence[tuple[str, float, str]], *, css: str = "") -> Markup:
    """Horizontal bars: (label, value, value as text) per row."""
    top = max((v for _, v, _ in rows), default=0.0) or 1.0
    height = 30 + ROW * max(len(rows), 1)
    width = LABEL_W + BAR_W + VALUE_W
    parts = [
        f'<svg class="chart {_t(css)}" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{_t(title)}</title>",
        f'<text x="0" y="16" font-weight="bold" font-size="13">{_t(title)}</text>',
    ]
    if not rows:
        parts.append('<text x="0" y="40" font-size="12" fill="#777">no data</text>')
    for i, (label, value, shown) in enumerate(rows):
        y = 26 + i * ROW
        w = round(BAR_W * value / top, 1)
        parts += [
            f'<text x="{LABEL_W - 6}" y="{y + 14}" text-anchor="end" font-size="12">'
            f"{_t(_short(label))}</text>",
            f'<rect x="{LABEL_W}" y="{y + 2}" width="{w}" height="{ROW - 6}" '
            f'fill="{PALETTE[0]}"><title>{_t(label)}: {_t(shown)}</title></rect>',
            f'<text x="{LABEL_W + w + 6}" y="{y + 14}" font-size="12">{_t(shown)}</text>',
        ]
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def columns(
    title: str, groups: Sequence[str], series: dict[str, Sequence[float]], unit: str
) -> Markup:
    """Grouped columns: one group per x label (a week), one column per series (a stage)."""
    names = list(series)
    top = max((v for vs in series.values() for v in vs), default=0.0) or 1.0
    plot_h, group_w = 160, max(40, 12 * max(len(names), 1) + 16)
    width = 60 + group_w * max(len(groups), 1) + 160
    height = plot_h + 70
    parts = [
        f'<svg class="chart" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<title>{_t(title)}</title>",
        f'<text x="0" y="16" font-weight="bold" font-size="13">{_t(title)}</text>',
        f'<text x="0" y="{plot_h + 30}" font-size="11" fill="#777">0</text>',
        f'<text x="0" y="36" font-size="11" fill="#777">{top:.1f} {_t(unit)}</text>',
        f'<line x1="50" y1="{plot_h + 30}" x2="{width - 160}" y2="{plot_h + 30}" stroke="#999"/>',
    ]
    if not groups:
        parts.append('<text x="60" y="80" font-size="12" fill="#777">no data</text>')
    for gi, group in enumerate(groups):
        x0 = 60 + gi * group_w
        for si, name in enumerate(names):
            value = series[name][gi]
            h = round(plot_h * value / top, 1)
            parts.append(
                f'<rect x="{x0 + si * 12}" y="{plot_h + 30 - h}" width="10" height="{h}" '
                f'fill="{PALETTE[si % len(PALETTE)]}"><title>{_t(group)} {_t(name)}: '
                f"{value:.1f} {_t(unit)}</title></rect>"
            )
        parts.append(f'<text x="{x0}" y="{plot_h + 46}" font-size="10">{_t(group[5:])}</text>')
    for si, name in enumerate(names):
        y = 30 + si * 16
        parts += [
            f'<rect x="{width - 150}" y="{y}" width="10" height="10" '
            f'fill="{PALETTE[si % len(PALETTE)]}"/>',
            f'<text x="{width - 134}" y="{y + 9}" font-size="11">{_t(name)}</text>',
        ]
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def charts(fig: StallFigures) -> dict[str, Markup]:
    """Every chart of the stall page, by name."""
    overall = [t for t in fig.time_in_stage if t.week is None]
    weekly = [t for t in fig.time_in_stage if t.week is not None]
    weeks = sorted({t.week.isoformat() for t in weekly if t.week})
    stages = sorted({t.stage for t in weekly}, key=stage_rank)
    p50 = {(t.week.isoformat() if t.week else "", t.stage): t.p50_s / 3600 for t in weekly}
    cycles = [c for c in fig.cycle_time if c.week is not None]
    return {
        "time_in_stage": hbars(
            "Time in stage, p90 (whole period)",
            [(t.stage, t.p90_s, f"p50 {hours(t.p50_s)}, p90 {hours(t.p90_s)}") for t in overall],
        ),
        "weekly": columns(
            "Time in stage by week, p50",
            weeks,
            {s: [p50.get((w, s), 0.0) for w in weeks] for s in stages},
            "h",
        ),
        "aging": hbars(
            "Open handoffs by stage",
            [(a.stage, a.open, f"{a.open} open, oldest {hours(a.max_s)}") for a in fig.aging],
        ),
        "owners": hbars(
            "Open handoffs by owner",
            [(g.value, g.open, f"{g.open} open") for g in fig.waits if g.by == "owner"][:15],
        ),
        "nudges": hbars(
            "Reminders and escalations by stage",
            [
                (n.stage, n.reminders + n.escalations, f"{n.reminders} / {n.escalations}")
                for n in fig.nudges
            ],
        ),
        "cycle": hbars(
            "Cycle time lead → cash by week finished, p50",
            [(c.week.isoformat() if c.week else "", c.p50_s, hours(c.p50_s)) for c in cycles],
        ),
        "conversion": hbars(
            "Conversion by stage",
            [(v.stage, v.rate, f"{v.rate:.0%} of {v.entered}") for v in fig.conversion],
        ),
    }
