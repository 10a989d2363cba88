"""`isobench report`: the report people look at (HTML, Markdown, JSON from one model)."""

from __future__ import annotations

from pathlib import Path

import click

from executor.cli.gc_pause import gc_paused
from executor.cli.state_arg import chosen_state, state_input

from executor.core.errors import UserInputError
from executor.views.report.build import build_report
from executor.views.report.render import write_report
from executor.core.task import load_plan


@click.command("report")
@state_input
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("report"), show_default=True,
              help="Directory for report.html, report.md and report.json.")
@click.option("--run-id", "run_ids", multiple=True,
              help="Only these runs (repeatable): a run id, 'task/agent/model', or for "
                   "ISO-Bench runs part of the title.")
@click.option("--compare", "compare_with", metavar="RUN",
              help="Put this run beside the one --run-id names (two agents on one plan, or a "
                   "run and its rerun). Two --run-id values compare those two.")
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Count this plan's items as planned (ISO-Bench runs keep no plan).")
@click.option("--no-human-diff", is_flag=True,
              help="Skip `git diff base human` (it needs the repository as a local checkout).")
def report_command(state, state_dir, out_dir, run_ids, compare_with, plan_file, no_human_diff) -> None:
    """Write a self-contained HTML report (opens from file://, offline), report.md and
    report.json for the runs under STATE (isobench's and ISO-Bench's layouts, and
    `isobench bench` results).

    \b
    Per run: planned / done / failed by true cause / remaining, tokens, cost, agent and
    benchmark hours, results across commits with bootstrap intervals, a forest plot of
    per-commit speedups, the A/A noise floor. Per commit: verdict and evidence, trial values
    per variant, GPU state per trial, agent diff beside the human's, the trajectory as steps.

    \b
      isobench report state -o report/
      isobench report state --run-id r1 --compare r2 -o cmp/
      isobench report iso-bench/state --plan plan.json --run-id vllm_core/trae/gpt-5
    """
    state = chosen_state(state, state_dir)
    compare = None
    if compare_with:
        if len(run_ids) != 1:
            raise UserInputError("--compare RUN needs exactly one --run-id beside it")
        compare = (run_ids[0], compare_with)
    elif len(run_ids) == 2:
        compare = (run_ids[0], run_ids[1])
    click.echo(f"reading {state} ...", err=True)
    with gc_paused():
        report = build_report(state, run_ids=tuple(run_ids),
                              plan=load_plan(plan_file) if plan_file else None,
                              human_diffs=not no_human_diff, compare_ids=compare)
        if (run_ids or compare) and not report.runs:
            raise UserInputError(f"no run under {state} matches {', '.join(run_ids)}")
        click.echo(f"report: {len(report.runs)} run(s), "
                   f"{sum(len(r.commits) for r in report.runs)} item(s)", err=True)
        written = write_report(report, out_dir)
    for path in written.values():
        click.echo(str(path))


def register(group: click.Group) -> None:
    group.add_command(report_command)
