"""`isobench status`: where a state directory stands.

Its module imports only click: the report's modules are imported when the command runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from executor.cli.gc_pause import gc_paused
from executor.cli.state_arg import chosen_state, state_input

FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("status")
@state_input
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--markdown", is_flag=True, help="Print the report as Markdown.")
@click.option("--plan", "plan_file", type=FILE,
              help="Count this plan's items as planned (ISO-Bench runs keep no plan).")
@click.option("--remaining-plan", type=FILE, help="Write the items left (one run) as a plan.")
@click.option("--task", help="Only runs of this task.")
@click.option("--agent", help="Only runs of this agent.")
@click.option("--model", help="Only runs of this model.")
@click.option("--run-id", help="Only this run id.")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True,
              help="How many most-retried items to list.")
@click.option("--details", is_flag=True,
              help="Per-run blocks (retries, every signature) and every unreadable file.")
def status_command(state, state_dir, as_json, markdown, plan_file, remaining_plan, task, agent,
                   model, run_id, top, details) -> None:
    """Where a state directory stands: per run planned, done, failed, left, and why.

    Reads isobench's state and ISO-Bench's (outcomes re-derived from trajectories).
    """
    state = chosen_state(state, state_dir)
    # imported here, not at the top: `status --help` must not wait for them (lazy.py)
    from rich.console import Console

    from executor.core.errors import UserInputError
    from executor.core.journal import write_json_atomic
    from executor.views.status import build_report
    from executor.views.status import remaining_plan_json
    from executor.views.status_view import render_markdown, render_terminal
    from executor.core.task import load_plan

    if as_json and markdown:
        raise UserInputError("give --json or --markdown, not both")
    with gc_paused():
        report = build_report(state, plan=load_plan(plan_file) if plan_file else None, top=top)
    wanted = {"task": task, "agent": agent, "model": model, "run_id": run_id}
    report.runs = [r for r in report.runs
                   if all(v is None or getattr(r, k) == v for k, v in wanted.items())]
    if any(wanted.values()):  # an unreadable journal belongs to the runs whose tree holds it
        report.unreadable = [u for u in report.unreadable
                             if any(u.startswith(f"{r.path}/") for r in report.runs)]
    if remaining_plan:
        if len(report.runs) != 1:
            names = ", ".join(f"{r.task}/{r.agent}/{r.model}/{r.run_id}" for r in report.runs)
            raise UserInputError(f"--remaining-plan needs exactly one run; narrow with "
                                 f"--task/--agent/--model/--run-id (found: {names or 'none'})")
        run = report.runs[0]
        left = remaining_plan_json(run)
        write_json_atomic(remaining_plan, left)
        click.echo(f"{remaining_plan}: {len(left['items'])} items left ({run.fixable} failed, "
                   f"to rerun after a fix; {run.failed - run.fixable} failed for good, not in "
                   "it)", err=True)
        for entry in left["items"]:
            if "fix" in entry:
                click.echo(f"  {entry['item_id']} ({entry['left']}): {entry['fix']}", err=True)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    elif markdown:
        click.echo(render_markdown(report))
    else:
        render_terminal(report, Console(), details=details)


def register(group: click.Group) -> None:
    group.add_command(status_command)
