"""Rendering a StatusReport: a rich terminal view and Markdown (JSON is the model itself)."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from executor.parts.bench.noise import describe as describe_noise_floor
from executor.views.status import RunStatusReport, StatusReport

ARROW = " → "
EXAMPLE_CHARS = 120


def _run_title(r: RunStatusReport) -> str:
    where = f"{len(r.runs)} ISO-Bench runs" if r.runs else r.run_id
    return f"{r.task} · {r.agent} · {r.model} · {where} ({r.source})"


def _tokens(r: RunStatusReport) -> str:
    u = r.usage
    return f"{u.input_tokens:,} in / {u.output_tokens:,} out" if u.llm_calls else "-"


def _cost(r: RunStatusReport) -> str:
    if r.usage.cost_usd is None:
        return "n/a" if r.usage.llm_calls else "-"
    partial = f" (+{r.unpriced_attempts} unpriced)" if r.unpriced_attempts else ""
    return f"${r.usage.cost_usd:,.2f}{partial}"


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.1f}m" if seconds < 7200 else f"{seconds / 3600:.1f}h"


def _rate(r: RunStatusReport) -> str:
    return "-" if r.error_rate is None else f"{r.error_rate:.0%}"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"


SUMMARY_COLUMNS = ("run", "planned", "attempted", "succeeded", "failed", "running",
                   "remaining", "attempts", "error rate", "tokens", "cost", "attempt time")


def _summary_row(r: RunStatusReport) -> list[str]:
    return [_run_title(r), str(r.planned), str(r.attempted), str(r.succeeded), str(r.failed),
            str(r.running), str(r.remaining), str(r.attempts), _rate(r), _tokens(r), _cost(r),
            _hours(r.durations.total_s if r.durations.attempts else None)]


def _retry_rows(r: RunStatusReport) -> list[tuple[str, str, str]]:
    return [(i.item_id, ARROW.join(i.sequence), i.state) for i in r.most_retried]


def _signature_rows(r: RunStatusReport) -> list[tuple[str, str, str, str, str]]:
    return [(s.name, s.error_class.value, str(s.attempts), str(s.items), _clip(s.example))
            for s in r.signatures]


def misfiled_line(r: RunStatusReport) -> str:
    return (f"{len(r.misfiled)} directory(ies) ran another item's commit than their name says "
            "(counted by the commit)")


def journal_less_line(r: RunStatusReport) -> str:
    """ISO-Bench directories without journal.json: counted, and said so."""
    parts = []
    if r.journal_less:
        steps = sum(1 for d in r.journal_less if d.endswith(": max_steps"))
        parts.append(f"{len(r.journal_less)} trajectory(ies) without journal.json ({steps} hit "
                     "the step limit), counted as attempts")
    if r.empty_dirs:
        parts.append(f"{len(r.empty_dirs)} directory(ies) with neither journal nor trajectory "
                     "(nothing shows the agent ran), not counted")
    return "; ".join(parts)


def _facts(r: RunStatusReport) -> list[str]:
    d = r.durations
    lines = [f"path: {r.path}"]
    if d.attempts:
        phases = ", ".join(f"{k} {_hours(v)}" for k, v in d.phases_s.items())
        lines.append(f"attempt time: total {_hours(d.total_s)}, mean {_hours(d.mean_s)}, "
                     f"median {_hours(d.median_s)}, max {_hours(d.max_s)}"
                     + (f"; phases: {phases}" if phases else ""))
    if r.unknown:
        lines.append(f"unknown: {r.unknown} item(s) whose agent left no readable ending "
                     "(not counted as failed)")
    if r.patch_kept:
        lines.append(f"done by a kept patch: {r.patch_kept} item(s) (the agent's run died after "
                     "its work was in model_patch.diff; benchmarkable)")
    if r.interrupted_attempts:
        lines.append(f"interrupted attempts: {r.interrupted_attempts}")
    if r.noise_floor is not None:
        lines.append(describe_noise_floor(r.noise_floor))
    if r.misfiled:
        lines.append(misfiled_line(r) + ":")
        lines += [f"  {m}" for m in r.misfiled]
    if r.journal_less or r.empty_dirs:
        lines.append(journal_less_line(r) + ":")
        lines += [f"  {d}" for d in r.journal_less + r.empty_dirs]
    fixable = [i for i in r.items if i.fix]
    if fixable:
        lines.append(f"failed, to rerun after a fix: {len(fixable)} item(s) "
                     "(--remaining-plan writes them with their fixes):")
        lines += [f"  {i.item_id} ({i.sequence[-1]}): {i.fix}" for i in fixable]
    if r.overturned:
        lines.append(f"ISO-Bench said success, the trajectory says otherwise: "
                     f"{len(r.overturned)} item(s): {', '.join(r.overturned)}")
    running = [f"{i.item_id} ({i.holder})" for i in r.items if i.state == "running"]
    if running:
        lines.append(f"running now: {', '.join(running)}")
    return lines


COUNT_COLUMNS = ("planned", "attempted", "succeeded", "failed", "running", "remaining",
                 "attempts", "error %")


TOTAL_COLUMNS = ("planned", "done", "kept", "failed", "to fix", "unknown", "left", "cost")
TOP_CAUSES = 5
LISTED_WARNINGS = 3


def _short_title(r: RunStatusReport) -> str:
    return f"{r.task} · {r.agent} · {r.model}" + ("" if r.runs else f" · {r.run_id}")


def _total_row(r: RunStatusReport) -> list[str]:
    return [_short_title(r), str(r.planned), str(r.succeeded), str(r.patch_kept or "-"),
            str(r.failed), str(r.fixable or "-"), str(r.unknown or "-"), str(r.remaining),
            _cost(r)]


def top_causes(report: StatusReport, n: int = TOP_CAUSES) -> list[tuple[str, int, int, int]]:
    """(signature, attempts, items, runs) over all runs, most attempts first."""
    totals: dict[str, list[int]] = {}
    for r in report.runs:
        for s in r.signatures:
            t = totals.setdefault(s.name, [0, 0, 0])
            t[0] += s.attempts
            t[1] += s.items
            t[2] += 1
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1][0], kv[0]))[:n]
    return [(name, *counts) for name, counts in ranked]


def warning_lines(report: StatusReport, limit: int | None = LISTED_WARNINGS) -> list[str]:
    """Unreadable journals and trajectories: counted always, listed up to `limit`."""
    found = list(report.unreadable) + [w for r in report.runs for w in r.warnings]
    if not found:
        return []
    lines = [f"warning: {len(found)} file(s) exist but could not be read "
             f"({len(report.unreadable)} journal(s)); they count as nothing:"]
    shown = found if limit is None else found[:limit]
    lines += [f"  {w}" for w in shown]
    if len(found) > len(shown):
        lines.append(f"  ... {len(found) - len(shown)} more (--details lists all)")
    return lines


def render_terminal(report: StatusReport, console: Console, details: bool = False) -> None:
    """Totals first (one row per run, the causes behind the failures, warnings): one screen.
    Per-run blocks follow with `details`, or when one run is selected."""
    if not report.runs:
        console.print(f"No runs under {report.state_dir}.")
        for line in warning_lines(report, None):
            console.print(line, style="yellow", highlight=False)
        return
    totals = Table(box=box.SIMPLE, pad_edge=False, collapse_padding=True,
                   title=f"{report.state_dir}: {len(report.runs)} run(s)", title_justify="left")
    totals.add_column("run (task · agent · model)", overflow="fold")
    for name in TOTAL_COLUMNS:
        totals.add_column(name, justify="right", no_wrap=True)
    for r in report.runs:
        totals.add_row(*_total_row(r))
    console.print(totals)
    console.print("done: an attempt truly finished (kept: its patch outlived the agent); "
                  "to fix: failed, the user can fix the cause and rerun (--remaining-plan); "
                  "left: not final", style="dim", highlight=False)
    causes = top_causes(report)
    if causes:
        t = Table("failure cause", "attempts", "items", "runs", box=box.SIMPLE, pad_edge=False,
                  title="why attempts failed", title_justify="left")
        for row in causes:
            t.add_row(*map(str, row))
        console.print(t)
    for line in warning_lines(report, None if details else LISTED_WARNINGS):
        console.print(line, style="yellow", highlight=False)
    misfiled = [r for r in report.runs if r.misfiled]
    if misfiled and not (details or len(report.runs) == 1):
        console.print("; ".join(f"{_short_title(r)}: {misfiled_line(r)}" for r in misfiled)
                      + " (--details names them)", style="yellow", highlight=False)
    journal_less = [r for r in report.runs if r.journal_less or r.empty_dirs]
    if journal_less and not (details or len(report.runs) == 1):
        for r in journal_less:
            console.print(f"{_short_title(r)}: {journal_less_line(r)} (--details names them)",
                          style="yellow", highlight=False)
    if details or len(report.runs) == 1:
        _render_details(report, console)
    else:
        console.print("Per-run details: --details, or select one run with "
                      "--task/--agent/--model/--run-id.", style="dim", highlight=False)


def _render_details(report: StatusReport, console: Console) -> None:
    for r in report.runs:
        console.rule(_run_title(r))
        # No vertical rules, shared padding: eight columns fit an 80-column terminal.
        counts = Table(box=box.SIMPLE, pad_edge=False, collapse_padding=True)
        for name in COUNT_COLUMNS:
            counts.add_column(name, min_width=len(name), no_wrap=True)
        counts.add_row(*_summary_row(r)[1:9])
        console.print(counts)
        console.print(f"tokens: {_tokens(r)}; cost: {_cost(r)}", highlight=False)
        for line in _facts(r):
            console.print(line, highlight=False)
        if r.most_retried:
            t = Table("item", "outcome sequence", "now", title="most retried",
                      title_justify="left")
            for row in _retry_rows(r):
                t.add_row(*row)
            console.print(t)
        if r.signatures:
            t = Table("signature", "class", "attempts", "items", "example",
                      title="error signatures", title_justify="left")
            for row in _signature_rows(r):
                t.add_row(*row)
            console.print(t)


def _md_table(header: tuple[str, ...] | list[str], rows: list) -> list[str]:
    esc = lambda cell: str(cell).replace("|", "\\|")  # noqa: E731
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            + ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows])


def render_markdown(report: StatusReport) -> str:
    lines = [f"# isobench status: `{report.state_dir}`", "",
             f"Generated {report.generated_at:%Y-%m-%d %H:%M:%S} UTC.", ""]
    if not report.runs:
        return "\n".join(lines + ["No runs."]) + "\n"
    lines += _md_table(SUMMARY_COLUMNS, [_summary_row(r) for r in report.runs]) + [""]
    lines += [f"> {w}" if not w.startswith("  ") else f"> - {w.strip()}"
              for w in warning_lines(report, None)] + [""]
    for r in report.runs:
        lines += [f"## {_run_title(r)}", ""] + [f"- {f}" for f in _facts(r)] + [""]
        if r.most_retried:
            lines += ["### Most retried", ""]
            lines += _md_table(("item", "outcome sequence", "now"), _retry_rows(r)) + [""]
        if r.signatures:
            lines += ["### Error signatures", ""]
            lines += _md_table(("signature", "class", "attempts", "items", "example"),
                               _signature_rows(r)) + [""]
    return "\n".join(lines)
