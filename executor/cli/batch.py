"""`isobench plan`, `isobench run` (batches) and `isobench status`."""

from __future__ import annotations

import functools
from pathlib import Path

import click
from rich.console import Console

from executor.batch.base import Cancel, ItemOutcome
from executor.batch.leases import parse_gpus
from executor.batch.local import LocalBackend, LocalOptions, print_stopping, sigint_cancels
from executor.batch.order import history_estimates, longest_first
from executor.batch.plans import catalogue_plan, make_plan, read_commit_list
from executor.batch.policy import RetryPolicy
from executor.batch.progress import BatchProgress
from executor.batch.runner import load_run_item_factory, prepare_run, resolve_run_key
from executor.errors import UserInputError
from executor.journal import write_json_atomic
from executor.state import StateLayout
from executor.status import build_report
from executor.status import remaining_plan as plan_of_remaining
from executor.status_view import render_markdown, render_terminal
from executor.task import load_plan

FILE = click.Path(dir_okay=False, path_type=Path)


@click.command("plan")
@click.argument("shas", nargs=-1)
@click.option("--commits", "commit_file", type=FILE,
              help="File with one sha per line ('#' comments; 'sha | date | subject' works).")
@click.option("--from-plan", "from_plan", type=FILE,
              help="Start from this plan.json (ISO-Bench format); shas then select items.")
@click.option("--catalogue", help="A catalogue task, e.g. vllm_core.")
@click.option("--task-id", help="Task id of a plan made from commits (e.g. demo).")
@click.option("--repo", help="Repository (path or URL) of a plan made from commits.")
@click.option("-o", "--out", type=FILE, help="Write the plan here (default: stdout).")
def plan_command(shas, commit_file, from_plan, catalogue, task_id, repo, out) -> None:
    """Make a plan.json from commits, an existing plan, or the catalogue.

    \b
      isobench plan --task-id demo --repo ./demo 7e485709 1a2b3c4d -o plan.json
      isobench plan --from-plan vllm_core_plan.json --commits vllm_39.txt -o plan39.json
    """
    if from_plan and catalogue:
        raise UserInputError("give --from-plan or --catalogue, not both")
    wanted = list(shas) + (read_commit_list(commit_file) if commit_file else [])
    base = load_plan(from_plan) if from_plan else catalogue_plan(catalogue) if catalogue else None
    plan = make_plan(wanted, base=base, task_id=task_id, repo=repo)
    if out:
        write_json_atomic(out, plan)
        click.echo(f"{out}: {len(plan.items)} items of {plan.task_id}", err=True)
    else:
        click.echo(plan.model_dump_json(indent=2))


@click.command("run")
@click.argument("plan_file", metavar="PLAN", type=FILE)
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("state"), show_default=True, help="State directory.")
@click.option("--run-id", help="Run id (default: a new timestamp; with --resume the latest).")
@click.option("--resume", is_flag=True,
              help="Continue the run: skip items the policy calls final, re-run the rest.")
@click.option("--agent", default="trae", show_default=True, help="Agent name (state layout).")
@click.option("--model", default="none", show_default=True, help="Model name (state layout).")
@click.option("--backend", type=click.Choice(["local"]), default="local", show_default=True,
              help="Where attempts run.")
@click.option("--workers", type=click.IntRange(min=1),
              help="Attempts at once (default: one per GPU lease, or 1 without GPUs).")
@click.option("--gpus", default="none", show_default=True,
              help="GPU ids to lease, e.g. 0,1,2,3; 'none' for CPU slots.")
@click.option("--gpus-per-item", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--retryable-attempts", type=click.IntRange(min=1), default=4, show_default=True,
              help="Attempts for retryable failures (429, 5xx, timeouts).")
@click.option("--infra-attempts", type=click.IntRange(min=1), default=3, show_default=True,
              help="Attempts for infrastructure failures.")
@click.option("--backoff", "backoff_s", type=click.FloatRange(min=0), default=30.0,
              show_default=True, help="First retry delay in seconds (doubles per retry).")
@click.option("--run-item", "run_item_spec", metavar="MODULE:NAME",
              help="Factory NAME(ctx) -> run_item; MODULE may be a FILE.py.")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress bar and one line per attempt on stderr (the bar redraws only on "
                   "a terminal).")
@click.option("--order", type=click.Choice(["history", "plan"]), default="history",
              show_default=True, help="history: longest first, estimated from earlier runs of "
                                      "the task (plan order where none); plan: plan order.")
@click.option("--seed", type=int, help="Seed the backoff jitter.")
@click.pass_context
def run_command(ctx, plan_file, state_dir, run_id, resume, agent, model, backend, workers, gpus,
                gpus_per_item, retryable_attempts, infra_attempts, backoff_s, run_item_spec,
                progress, order, seed) -> None:
    """Run a plan: every item through run_item, on GPU leases, with retries and resume.

    Exit 0 when every item succeeded, 1 when some failed or remain, 130 after Ctrl-C.
    """
    if run_item_spec is None:
        # HOOK(pipeline): the default becomes the one-commit pipeline (executor.pipeline
        # run_commit behind the run_item contract) when it is wired in.
        raise UserInputError("isobench run needs --run-item MODULE:NAME until the one-commit "
                             "pipeline is wired to batches")
    plan = load_plan(plan_file)
    gpu_ids = parse_gpus(gpus)
    layout = StateLayout(root=state_dir)
    policy = RetryPolicy(retryable_attempts=retryable_attempts, infra_attempts=infra_attempts,
                         backoff_base_s=backoff_s)
    key = resolve_run_key(layout, plan, agent, model, run_id, resume)
    factory = load_run_item_factory(run_item_spec)  # before anything is written
    batch = prepare_run(layout, key, plan, policy, resume=resume, seed=seed)
    run_item = factory(batch)
    leases = len(gpu_ids) // gpus_per_item if gpu_ids else 1
    options = LocalOptions(workers=workers or max(1, leases), gpu_ids=gpu_ids,
                           gpus_per_item=gpus_per_item)
    priority = (longest_first(history_estimates(layout, key.task, exclude_run=key.run_id))
                if order == "history" else None)
    cancel = Cancel()
    run = functools.partial(LocalBackend(options).run, plan.items, run_item, batch,
                            cancel=cancel, priority=priority)
    click.echo(f"run {key.run_id}: {len(plan.items)} items -> {layout.run_dir(key)}", err=True)
    try:
        with sigint_cancels(cancel, on_first=print_stopping):
            if progress:
                with BatchProgress(len(plan.items), title=key.task) as bar:
                    summary = run(observer=bar)
            else:
                summary = run()
    except KeyboardInterrupt:
        click.echo("isobench: abandoned running items; their journals say running and the "
                   "next --resume closes them as interrupted", err=True)
        ctx.exit(130)
    click.echo(f"run {key.run_id}: {summary.count(ItemOutcome.SUCCEEDED)} succeeded, "
               f"{summary.count(ItemOutcome.FAILED)} failed, "
               f"{summary.count(ItemOutcome.REMAINING)} remaining"
               + (" (interrupted)" if summary.interrupted else ""), err=True)
    ctx.exit(summary.exit_code)


@click.command("status")
@click.argument("state", type=click.Path(exists=True, file_okay=False, path_type=Path),
                default="state")
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
def status_command(state, as_json, markdown, plan_file, remaining_plan, task, agent, model,
                   run_id, top) -> None:
    """Where a state directory stands: per run planned, done, failed, left, and why.

    Reads isobench's state and ISO-Bench's (outcomes re-derived from trajectories).
    """
    if as_json and markdown:
        raise UserInputError("give --json or --markdown, not both")
    report = build_report(state, plan=load_plan(plan_file) if plan_file else None, top=top)
    wanted = {"task": task, "agent": agent, "model": model, "run_id": run_id}
    report.runs = [r for r in report.runs
                   if all(v is None or getattr(r, k) == v for k, v in wanted.items())]
    if remaining_plan:
        if len(report.runs) != 1:
            names = ", ".join(f"{r.task}/{r.agent}/{r.model}/{r.run_id}" for r in report.runs)
            raise UserInputError(f"--remaining-plan needs exactly one run; narrow with "
                                 f"--task/--agent/--model/--run-id (found: {names or 'none'})")
        left = plan_of_remaining(report.runs[0])
        write_json_atomic(remaining_plan, left)
        click.echo(f"{remaining_plan}: {len(left.items)} items left", err=True)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    elif markdown:
        click.echo(render_markdown(report))
    else:
        render_terminal(report, Console())



def register(group: click.Group) -> None:
    for command in (plan_command, run_command, status_command):
        group.add_command(command)
