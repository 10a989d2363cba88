"""Render a Report three ways from the one model: HTML (self-contained), Markdown, JSON.

Templates are Jinja2 files next to this module (autoescaped for HTML); plots are inline SVG
from plots.py. Nothing is fetched when the page opens: no scripts, no fonts, no CDN.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from executor.core.errors import UserInputError
from executor.core.journal import write_bytes_atomic
from executor.views.report import plots
from executor.views.report.model import CommitReport, Interval, Report, Step

HTML_NAME = "report.html"
MD_NAME = "report.md"
JSON_NAME = "report.json"
PAGES_DIR = "commits"
PAGES_CSS = "style.css"
# Up to this many commits in all, each commit's evidence is inline (one self-contained file);
# above it, on a page of its own: ISO-Bench's state (917 commits) made a 20 MB report.html.
INLINE_COMMITS = 60
DIFF_LINE = {"@": "hunk", "+": "add", "-": "del"}


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


def _diff_html(text: str) -> Markup:
    """A diff as escaped lines, each in a span classed by its first character (built here, not
    by a template loop: a loop per line was most of the rendering time). Escaped once, whole:
    escaping neither makes nor removes a line break, nor changes a first character that
    DIFF_LINE names."""
    return Markup("\n".join(
        f'<span class="{DIFF_LINE.get(line[:1], "")}">{line}</span>'
        for line in str(escape(text)).splitlines()) + "\n")


def _steps_html(steps: list[Step]) -> Markup:
    """The trajectory table's rows (commit_detail.html.j2), built here for the same reason as
    _diff_html: ISO-Bench's 917 commits have 21,000 steps, and the template loop over them was
    most of `report`'s page rendering. The markup is the loop's, byte for byte."""
    rows = []
    for s in steps:
        error = f'<div class="evidence">{escape(s.error)}</div>' if s.error else ""
        output = f'<pre class="wrap">{escape(s.output)}</pre>' if s.output else ""
        tokens_in = "–" if s.input_tokens is None else s.input_tokens
        tokens_out = "–" if s.output_tokens is None else s.output_tokens
        calls = escape("\n".join(s.tool_calls))
        rows.append(f'<tr><td class="n">{s.number}</td><td><code>{calls}</code></td>\n'
                    f'<td>{error}{output}</td>\n'
                    f'<td class="n">{tokens_in}/{tokens_out}</td></tr>')
    return Markup("".join(rows))


def environment() -> Environment:
    env = Environment(loader=PackageLoader("executor.views.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"], default=False),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=_num, pct=_pct, interval=_interval, money=_money, pretty=_pretty,
                       diff_html=_diff_html, steps_html=_steps_html)
    env.globals.update(speedup=_speedup)
    # Runs of one plan as columns, for the templates' "Runs side by side" section.
    from executor.views.report.side_by_side import side_by_side
    env.globals["side_by_side"] = side_by_side
    return env


def _trials_figure(commit: CommitReport, r: int, c: int) -> dict[str, Markup]:
    svg = plots.trials_plot(commit, f"trials-{r}-{c}")
    return {f"trials-{r}-{c}": Markup(svg)} if svg else {}  # our matplotlib output


def figures(report: Report, trials: bool = True) -> dict[str, Markup]:
    """Every plot of the report, keyed by a stable id the template asks for (the per-commit
    trials plots only with `trials`: on pages of their own they are drawn with the page)."""
    out: dict[str, Markup] = {}
    for r, run in enumerate(report.runs):
        for key, svg in ((f"states-{r}", plots.states_plot(run, f"states-{r}")),
                         (f"forest-{r}", plots.forest_plot(run, f"forest-{r}"))):
            if svg:
                out[key] = Markup(svg)  # our own matplotlib output, not user text
        for c, commit in enumerate(run.commits if trials else []):
            out.update(_trials_figure(commit, r, c))
    return out


def uses_pages(report: Report) -> bool:
    return sum(len(run.commits) for run in report.runs) > INLINE_COMMITS


def page_path(report: Report, r: int, c: int) -> str:
    """A commit's page, relative to report.html: commits/<nn>-<run>/<item>.html."""
    safe = lambda text: re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")
    run = report.runs[r]
    return f"{PAGES_DIR}/{r:02d}-{safe(run.title)}/{safe(run.commits[c].item_id)}.html"


def render_html(report: Report, pages: bool | None = None) -> str:
    """report.html; with `pages` (default: above INLINE_COMMITS commits) each commit's
    evidence is left to render_pages and the commits table links there."""
    pages = uses_pages(report) if pages is None else pages
    href = ((lambda r, c, _: page_path(report, r, c)) if pages
            else (lambda r, c, _: f"#c-{r}-{c}"))
    return environment().get_template("report.html.j2").render(
        report=report, figs=figures(report, trials=not pages), pages=pages, commit_href=href)


def render_pages(report: Report, out_dir: Path) -> int:
    """Each commit's evidence as its own page under out_dir/commits/ (replacing the pages of an
    earlier report there); returns how many."""
    env = environment()
    template = env.get_template("commit.html.j2")
    fresh = out_dir / f".{PAGES_DIR}.new"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    # one stylesheet for every page (inlined, it was 4 KB times 917 pages)
    (fresh / PAGES_CSS).write_text(env.get_template("style.css.j2").render())
    count = 0
    for r, run in enumerate(report.runs):
        for c, commit in enumerate(run.commits):
            path = fresh / page_path(report, r, c).removeprefix(f"{PAGES_DIR}/")
            path.parent.mkdir(parents=True, exist_ok=True)
            html = template.render(c=commit, r=r, ci=c, run=run, css=PAGES_CSS,
                                   figs=_trials_figure(commit, r, c),
                                   back=f"../../{HTML_NAME}#run-{r}")
            path.write_text(html)
            count += 1
    shutil.rmtree(out_dir / PAGES_DIR, ignore_errors=True)
    fresh.rename(out_dir / PAGES_DIR)
    return count


def render_markdown(report: Report) -> str:
    return environment().get_template("report.md.j2").render(report=report)


def render_json(report: Report) -> str:
    return report.model_dump_json(indent=2)


def write_report(report: Report, out_dir: Path) -> dict[str, Path]:
    """report.html, report.md, report.json in `out_dir` (each written atomically, readable
    by others as the umask allows), and commits/ with a page per commit when the report is
    large; a place that cannot be written is bad input."""
    written = {}
    pages = uses_pages(report)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if pages:
            render_pages(report, out_dir)
            written[PAGES_DIR] = out_dir / PAGES_DIR
        else:  # an earlier, larger report's pages would be stale beside this one
            shutil.rmtree(out_dir / PAGES_DIR, ignore_errors=True)
        for name, text in ((HTML_NAME, render_html(report, pages)),
                           (MD_NAME, render_markdown(report)), (JSON_NAME, render_json(report))):
            write_bytes_atomic(out_dir / name, text.encode(), shared=True)
            written[name] = out_dir / name
    except OSError as exc:
        raise UserInputError(f"cannot write the report to {out_dir}: "
                             f"{exc.strerror or exc}") from exc
    return written
