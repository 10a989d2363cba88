"""The report's plots: matplotlib figures rendered to inline SVG strings.

SVG keeps the HTML self-contained and offline (no JavaScript, no CDN) and stays sharp when
zoomed. Text is emitted as text (`svg.fonttype: none`): smaller files, searchable labels. Each
figure gets its own hash salt, so the ids inside two SVGs of one page never collide and the same
data renders to the same bytes.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from executor.views.report.model import CommitReport, RunReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# matplotlib is imported by the plots that draw with it, when they have something to draw: its
# import is 1-2 s, and a report of runs nothing measured (ISO-Bench's state) draws nothing.

COLORS = {"base": "#7f7f7f", "base2": "#bcbd22", "human": "#1f77b4", "agent": "#d62728"}
VARIANT_ORDER = ("base", "base2", "human", "agent")
PAIR_STYLE = {"human/base": ("human", "o"), "agent/base": ("agent", "D")}
WIDTH_IN = 8.5
STATES_WIDTH_PX, STATES_HEIGHT_PX = 860, 26
PLAIN = "{value:g}"
TIMES = "{value:g}×"


def _figure(**kwargs) -> Figure:
    from matplotlib.figure import Figure
    return Figure(**kwargs)


def _log_axis(ax, label: str) -> None:
    """Log scale with plain labels on the decades only (minor labels collide)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    formatter = FuncFormatter(lambda value, _: label.format(value=value))
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(formatter)
    ax.xaxis.set_minor_formatter(NullFormatter())


def _svg(fig: Figure, key: str) -> str:
    import matplotlib
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": key}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: inline in HTML


def forest_plot(run: RunReport, key: str) -> str | None:
    """Per-commit speedups over base (human and agent) with their intervals, log scale."""
    rows = [c for c in run.commits if any(s.pair in PAIR_STYLE for s in c.speedups)]
    if not rows:
        return None
    fig = _figure(figsize=(WIDTH_IN * 0.75, 1.2 + 0.45 * len(rows)))
    ax = fig.add_subplot()
    for y, commit in enumerate(reversed(rows)):
        for offset, pair in ((0.15, "human/base"), (-0.15, "agent/base")):
            s = next((s for s in commit.speedups if s.pair == pair), None)
            if s is None:
                continue
            variant, marker = PAIR_STYLE[pair]
            low = s.low if s.low is not None else s.speedup
            high = s.high if s.high is not None else s.speedup
            ax.errorbar(s.speedup, y + offset, xerr=[[s.speedup - low], [high - s.speedup]],
                        fmt=marker, color=COLORS[variant], capsize=2, markersize=4,
                        label=variant if y == 0 else None)
    ax.axvline(1.0, color="#444", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(rows)), [c.item_id for c in reversed(rows)], fontsize=8)
    _log_axis(ax, TIMES)
    lows = [s.low or s.speedup for c in rows for s in c.speedups if s.pair in PAIR_STYLE]
    highs = [s.high or s.speedup for c in rows for s in c.speedups if s.pair in PAIR_STYLE]
    ax.set_xlim(min(min(lows), 1.0) / 1.25, max(max(highs), 1.0) * 1.25)
    ax.set_xlabel("speedup over base (>1 is faster; bars: 95% intervals)", fontsize=9)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.grid(axis="x", alpha=0.3, which="both")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8,
              frameon=False)
    ax.set_title("Per-commit speedup over base", fontsize=10, loc="left", pad=18)
    return _svg(fig, key)


def trials_plot(commit: CommitReport, key: str) -> str | None:
    """Each variant's timed trial values as a strip (warm-ups hollow), median marked."""
    by_variant: dict[str, list[tuple[float, bool]]] = {}
    for t in commit.trials:
        if t.value is not None:
            by_variant.setdefault(t.variant, []).append((t.value, t.warmup))
    if not by_variant:
        return None
    names = [v for v in VARIANT_ORDER if v in by_variant] + sorted(
        v for v in by_variant if v not in VARIANT_ORDER)
    fig = _figure(figsize=(WIDTH_IN * 0.62, 0.6 + 0.42 * len(names)))
    ax = fig.add_subplot()
    for y, name in enumerate(names):
        values = by_variant[name]
        color = COLORS.get(name, "#9467bd")
        for i, (value, warmup) in enumerate(values):
            jitter = ((i * 0.618) % 1 - 0.5) * 0.3  # golden-ratio spread: no RNG, no overlap
            ax.plot(value, y + jitter, "o", markersize=4, color=color,
                    markerfacecolor="none" if warmup else color, alpha=0.85)
        timed = sorted(v for v, w in values if not w)
        if timed:
            median = timed[len(timed) // 2] if len(timed) % 2 else \
                (timed[len(timed) // 2 - 1] + timed[len(timed) // 2]) / 2
            ax.plot([median, median], [y - 0.3, y + 0.3], color=color, linewidth=2)
    unit = commit.metric.get("unit", "")
    name = commit.metric.get("name", "value")
    direction = "lower is better" if commit.metric.get("lower_is_better", True) else \
        "higher is better"
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_ylim(-0.6, len(names) - 0.4)
    values = [v for vs in by_variant.values() for v, _ in vs]
    if min(values) > 0 and max(values) / min(values) > 8:
        _log_axis(ax, PLAIN)
    ax.set_xlabel(f"{name} ({unit}; {direction}) · bar: median", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    return _svg(fig, key)


def states_plot(run: RunReport, key: str) -> str | None:
    """Where the run stands: one stacked bar of done / failed / unknown / remaining. Drawn as
    SVG by hand, not by matplotlib: a report of ISO-Bench's state has 21 runs, and a figure per
    bar cost a second of `report`. `key` names its id, as the other plots' salts do."""
    parts = [("done", run.done, "#2ca02c"), ("failed", run.failed, "#d62728"),
             ("unknown", run.unknown, "#9467bd"), ("remaining", run.remaining, "#c7c7c7")]
    total = sum(n for _, n, _ in parts)
    if not total:
        return None
    width, height = STATES_WIDTH_PX, STATES_HEIGHT_PX
    shapes, left = [], 0.0
    for label, n, color in parts:
        if not n:
            continue
        w = width * n / total
        shapes.append(f'<path d="M{left:.2f} 0h{w:.2f}v{height}h-{w:.2f}z" fill="{color}">'
                      f"<title>{label} {n}</title></path>")
        if n / total > 0.06:
            ink = "black" if label == "remaining" else "white"
            shapes.append(f'<text x="{left + w / 2:.2f}" y="{height / 2 + 4:.1f}" '
                          f'text-anchor="middle" font-size="12" fill="{ink}">{label} {n}</text>')
        left += w
    return (f'<svg xmlns="http://www.w3.org/2000/svg" id="{key}" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'font-family="sans-serif">{"".join(shapes)}</svg>')
