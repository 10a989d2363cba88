"""`isobench run-commit <sha>`: one commit end to end, and a summary a person can read."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from executor.agents import make_agent
from executor.attempts import RetryPolicy, run_commit_with_retries
from executor.cli.common import (agent_options, console, image_input_options, job_options,
                                 llm_options, log_line, new_run_id, reap_dead_controllers,
                                 record_options, run_options, sandbox_options,
                                 sigterm_as_interrupt, skip_bench_option, trial_options,
                                 vllm_build_options)
from executor.cli.summary import results_rows
from executor.gateway.options import controller_gateway, gateway_options, pop_gateway_values
from executor.journal import EXIT_CODES, RunStatus
from executor.pipeline import CommitOutcome
from executor.resolve import reference_patch, resolve_job


def print_summary(outcome: CommitOutcome) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("status", f"[bold]{outcome.status.value}[/bold] (exit {outcome.exit_code})")
    if outcome.signature:
        table.add_row("cause", f"{outcome.signature.name} ({outcome.signature.error_class}): "
                               f"{outcome.signature.evidence[:160]}")
    table.add_row("patch", f"{outcome.patch_bytes} bytes")
    if outcome.results is not None:
        for label, text in results_rows(outcome.results):
            table.add_row(label, text)
    elif outcome.detail:
        table.add_row("detail", outcome.detail[:300])
    table.add_row("record", str(outcome.item_dir))
    console.print(table)


def register(group: click.Group) -> None:
    @group.command("run-commit")
    @click.argument("sha")
    @job_options
    @agent_options
    @record_options
    @trial_options
    @skip_bench_option
    @click.option("--max-attempts", type=click.IntRange(1), default=3, show_default=True,
                  help="Attempts in all; only retryable and infra failures are tried again.")
    @click.option("--retry-wait-max", type=click.FloatRange(0), default=300, show_default=True,
                  help="Cap in seconds of one backoff wait between attempts.")
    @click.option("-v", "--verbose", is_flag=True, help="Stream the agent's output.")
    @sandbox_options
    @image_input_options
    @gateway_options
    def run_commit_cmd(sha, task_file, repo, base, agent_name, patch_file, script_file,
                       state_dir, run_id, item_id, trials, max_trials, warmup, seed, agent_budget, max_steps,
                       agent_network, skip_bench, model, base_url, api_key_env, agent_source,
                       agent_revision, agent_python, price_table, max_attempts, retry_wait_max,
                       verbose, gpus, cpus, cpuset, memory, pids, **image_inputs):
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
        gateway = pop_gateway_values(image_inputs)
        job = resolve_job(sha, task_file=task_file, repo=repo, item_id=item_id, base=base)
        llm = llm_options(model=model, base_url=base_url, api_key_env=api_key_env,
                          agent_source=agent_source, agent_revision=agent_revision,
                          agent_python=agent_python, price_table=price_table,
                          max_steps=max_steps, verbose=verbose,
                          key_on_controller=gateway["gateway_replay"] is not None)
        agent = make_agent(agent_name, patch_file=patch_file, script_file=script_file,
                           default_patch=reference_patch(job), llm=llm)
        reap_dead_controllers()
        options = run_options(
            state_dir=state_dir, run_id=run_id or new_run_id(), gpus=gpus, cpus=cpus,
            cpuset=cpuset, memory=memory, pids=pids, agent_budget=agent_budget,
            max_steps=max_steps, agent_network=agent_network, skip_bench=skip_bench,
            trials=trials, max_trials=max_trials, warmup=warmup, seed=seed,
            vllm=vllm_build_options(**image_inputs))
        log_line(f"{job.task.name} {job.item_id}: human {job.human_sha[:12]}, "
                 f"base {job.base_sha[:12]}, agent {agent_name}")
        try:
            with controller_gateway(agent, **gateway):
                outcome = run_commit_with_retries(
                    job, agent, options, RetryPolicy(max_attempts=max_attempts,
                                                     backoff_max_s=retry_wait_max),
                    log=log_line)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/yellow]: attempt journaled as interrupted; "
                          "containers removed")
            sys.exit(EXIT_CODES[RunStatus.INTERRUPTED])
        print_summary(outcome)
        sys.exit(outcome.exit_code)
