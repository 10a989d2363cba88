"""`isobench run-commit <sha>`: one commit end to end, and a summary a person can read."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from executor.agents import make_agent
from executor.cli.common import (agent_options, bench_options, console, log_line, new_run_id,
                                 run_options, sandbox_options, sigterm_as_interrupt,
                                 state_dir_option, task_options)
from executor.journal import EXIT_CODES, RunStatus
from executor.pipeline import CommitOutcome, run_commit
from executor.resolve import reference_patch, resolve_job
from executor.sandbox import docker_client, reap_orphans


def print_summary(outcome: CommitOutcome) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("status", f"[bold]{outcome.status.value}[/bold] (exit {outcome.exit_code})")
    if outcome.signature:
        table.add_row("cause", f"{outcome.signature.name} ({outcome.signature.error_class}): "
                               f"{outcome.signature.evidence[:160]}")
    table.add_row("patch", f"{outcome.patch_bytes} bytes")
    results = outcome.results
    if results is not None:
        metric = results.metric
        unit = metric.get("unit", "")
        direction = "lower is better" if metric.get("lower_is_better", True) else \
            "higher is better"
        table.add_row("metric", f"{metric.get('name', metric.get('kind'))} ({unit or '?'}), "
                                f"{direction}; {results.trials_per_variant} trials/variant")
        analysis = results.analysis or {}
        for name, summary in (analysis.get("summaries") or {}).items():
            table.add_row(f"  {name}", f"median {summary['median']:.6g} "
                                       f"[{summary['ci_low']:.6g}, {summary['ci_high']:.6g}]")
        for key, decision in (analysis.get("comparisons") or {}).items():
            comp = decision["comparison"]
            interval = (f"[{comp['ci_low']:.3f}, {comp['ci_high']:.3f}]"
                        if comp.get("ci_low") is not None else "[n/a]")
            table.add_row(f"  {key}", f"speedup {comp['speedup']:.3f}x {interval} "
                                      f"{decision['verdict']}")
        table.add_row("verdict", f"[bold]{results.verdict}[/bold] {results.verdict_reason}")
    elif outcome.detail:
        table.add_row("detail", outcome.detail[:300])
    table.add_row("record", str(outcome.item_dir))
    console.print(table)


def register(group: click.Group) -> None:
    @group.command("run-commit")
    @click.argument("sha")
    @task_options
    @click.option("--base", help="Base commit (default: the parent of SHA).")
    @agent_options
    @state_dir_option
    @click.option("--run-id", default=None, help="Run id (default: a timestamp).")
    @click.option("--item-id", default=None, help="Item id (default: catalogue id or sha).")
    @bench_options
    @sandbox_options
    def run_commit_cmd(sha, task_file, repo, base, agent_name, patch_file, script_file,
                       state_dir, run_id, item_id, trials, warmup, seed, agent_budget, max_steps, agent_network,
                       skip_bench, gpus, cpus, cpuset, memory, pids):
        """Run one perf commit end to end in fresh containers.

        Builds (or reuses) the images of the parent and of SHA, runs the agent in a fresh
        sandbox at the parent, computes its patch, benchmarks base, human and agent each in
        its own fresh containers, and writes journal.json, manifest.json, model_patch.diff
        and results.json under STATE_DIR/runs/<task>/<agent>/<model>/<run_id>/<item>/.

        Exit status: 0 success; 2 bad input; 10 no patch; 11 patch did not apply; 12 max
        steps; 13 timeout; 14 agent error; 15 benchmark failed; 20 infrastructure; 130
        interrupted.
        """
        sigterm_as_interrupt()
        job = resolve_job(sha, task_file=task_file, repo=repo, item_id=item_id, base=base)
        agent = make_agent(agent_name, patch_file=patch_file, script_file=script_file,
                           default_patch=reference_patch(job))
        removed = reap_orphans(docker_client())
        if removed:
            log_line(f"removed {len(removed)} container(s) left by dead controllers")
        options = run_options(
            state_dir=state_dir, run_id=run_id or new_run_id(), gpus=gpus, cpus=cpus,
            cpuset=cpuset, memory=memory, pids=pids, agent_budget=agent_budget,
            max_steps=max_steps, agent_network=agent_network, skip_bench=skip_bench,
            trials=trials, warmup=warmup, seed=seed)
        log_line(f"{job.task.name} {job.item_id}: human {job.human_sha[:12]}, "
                 f"base {job.base_sha[:12]}, agent {agent_name}")
        try:
            outcome = run_commit(job, agent, options, log=log_line)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/yellow]: attempt journaled as interrupted; "
                          "containers removed")
            sys.exit(EXIT_CODES[RunStatus.INTERRUPTED])
        print_summary(outcome)
        sys.exit(outcome.exit_code)
