"""Rendering a StatusReport: a rich terminal view and Markdown (JSON is the model itself)."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from executor.bench.noise import describe as describe_noise_floor
from executor.status import RunStatusReport, StatusReport

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


def _facts(r: RunStatusReport) -> list[str]:
    d = r.durations
    lines = [f"path: {r.path}"]
    if d.attempts:
        phases = ", ".join(f"{k} {_hours(v)}" for k, v in d.phases_s.items())
        lines.append(f"attempt time: total {_hours(d.total_s)}, mean {_hours(d.mean_s)}, "
                     f"median {_hours(d.median_s)}, max {_hours(d.max_s)}"
                     + (f"; phases: {phases}" if phases else ""))
    if r.interrupted_attempts:
        lines.append(f"interrupted attempts: {r.interrupted_attempts}")
    if r.noise_floor is not None:
        lines.append(describe_noise_floor(r.noise_floor))
    if r.overturned:
        lines.append(f"ISO-Bench said success, the trajectory says otherwise: "
                     f"{len(r.overturned)} item(s): {', '.join(r.overturned)}")
    running = [f"{i.item_id} ({i.holder})" for i in r.items if i.state == "running"]
    if running:
        lines.append(f"running now: {', '.join(running)}")
    return lines


COUNT_COLUMNS = ("planned", "attempted", "succeeded", "failed", "running", "remaining",
                 "attempts", "error %")


def render_terminal(report: StatusReport, console: Console) -> None:
    """One block per run; tables narrow enough for an 80-column terminal."""
    if not report.runs:
        console.print(f"No runs under {report.state_dir}.")
        return
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
