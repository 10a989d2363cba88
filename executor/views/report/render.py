"""Render a Report three ways from the one model: HTML (self-contained), Markdown, JSON.

Templates are Jinja2 files next to this module (autoescaped for HTML); plots are inline SVG
from plots.py. Nothing is fetched when the page opens: no scripts, no fonts, no CDN.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from executor.core.errors import UserInputError
from executor.core.journal import write_bytes_atomic
from executor.views.report import plots
from executor.views.report.model import Interval, Report

HTML_NAME = "report.html"
MD_NAME = "report.md"
JSON_NAME = "report.json"


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _interval(iv: Interval, kind: str = "ratio") -> str:
    if iv.estimate is None:
        return "– (nothing measured)"
    fmt = _pct if kind == "share" else (lambda v: f"{v:.3f}×")
    if iv.low is None:
        return f"{fmt(iv.estimate)} (n={iv.n})"
    return f"{fmt(iv.estimate)} [{fmt(iv.low)}, {fmt(iv.high)}] (n={iv.n})"


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


def _speedup(commit, pair: str) -> str:
    s = next((s for s in commit.speedups if s.pair == pair), None)
    if s is None:
        return "–"
    if s.low is None:
        return f"{s.speedup:.3f}×"
    return f"{s.speedup:.3f}× [{s.low:.3f}, {s.high:.3f}]"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def environment() -> Environment:
    env = Environment(loader=PackageLoader("executor.views.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"], default=False),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=_num, pct=_pct, interval=_interval, money=_money, pretty=_pretty)
    env.globals.update(speedup=_speedup)
    # Runs of one plan as columns, for the templates' "Runs side by side" section.
    from executor.views.report.side_by_side import side_by_side
    env.globals["side_by_side"] = side_by_side
    return env


def figures(report: Report) -> dict[str, Markup]:
    """Every plot of the report, keyed by a stable id the template asks for."""
    out: dict[str, Markup] = {}
    for r, run in enumerate(report.runs):
        for key, svg in ((f"states-{r}", plots.states_plot(run, f"states-{r}")),
                         (f"forest-{r}", plots.forest_plot(run, f"forest-{r}"))):
            if svg:
                out[key] = Markup(svg)  # our own matplotlib output, not user text
        for c, commit in enumerate(run.commits):
            svg = plots.trials_plot(commit, f"trials-{r}-{c}")
            if svg:
                out[f"trials-{r}-{c}"] = Markup(svg)
    return out


def render_html(report: Report) -> str:
    return environment().get_template("report.html.j2").render(report=report,
                                                                figs=figures(report))


def render_markdown(report: Report) -> str:
    return environment().get_template("report.md.j2").render(report=report)


def render_json(report: Report) -> str:
    return report.model_dump_json(indent=2)


def write_report(report: Report, out_dir: Path) -> dict[str, Path]:
    """report.html, report.md, report.json in `out_dir` (each written atomically, readable
    by others as the umask allows); a place that cannot be written is bad input."""
    written = {}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, text in ((HTML_NAME, render_html(report)), (MD_NAME, render_markdown(report)),
                           (JSON_NAME, render_json(report))):
            write_bytes_atomic(out_dir / name, text.encode(), shared=True)
            written[name] = out_dir / name
    except OSError as exc:
        raise UserInputError(f"cannot write the report to {out_dir}: "
                             f"{exc.strerror or exc}") from exc
    return written
