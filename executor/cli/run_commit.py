"""`isobench run-commit <sha>`: one commit end to end, and a summary a person can read."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from executor.parts.agents import AgentChoice, LlmAgentOptions, agent_source_pin, make_agent
from executor.runs.attempts import run_commit_with_retries
from executor.parts.bench.run import BenchOptions
from executor.cli.common import (agent_llm, agent_options, commit_retry_options, engine_option,
                                 config_option, console, gateway_options, grouped,
                                 image_input_options, job_options, log_line,
                                 reap_dead_controllers, record_options, run_options,
                                 sandbox_options, sigterm_as_interrupt, skip_bench_option,
                                 trial_options)
from executor.cli.jobfile import JobCommand, command_options
from executor.cli.summary import results_rows
from executor.parts.gateway.options import GatewayFlags, controller_gateway
from executor.core.journal import EXIT_CODES, RunStatus
from executor.runs.pipeline import CommitOutcome
from executor.core.policy import RetryPolicy
from executor.runs.preflight import needs_for, preflight
from executor.runs.resolve import JobSource, on_target_device, reference_patch, resolve_source
from executor.core.resources import Resources
from executor.records.state import new_run_id
from executor.parts.vllm.jobs import VllmBuildOptions


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
    @group.command("run-commit", cls=JobCommand)
    @click.argument("sha")
    @config_option
    @job_options
    @agent_options
    @record_options
    @trial_options
    @skip_bench_option
    @commit_retry_options
    @grouped("Agent", click.option("-v", "--verbose", is_flag=True,
                                   help="Stream the agent's output."))
    @engine_option
    @sandbox_options
    @image_input_options
    @gateway_options
    def run_commit_cmd(sha, job_source: JobSource, agent: AgentChoice, llm: LlmAgentOptions,
                       state_dir, run_id, bench: BenchOptions, skip_bench: bool,
                       retry: RetryPolicy, verbose: bool, resources: Resources,
                       vllm: VllmBuildOptions, gateway: GatewayFlags):
        """Run one perf commit end to end in fresh containers.

        Builds (or reuses) the images of the parent and of SHA, runs the agent in a fresh
        sandbox at the parent, computes its patch, benchmarks base, human and agent each in
        its own fresh containers, and writes journal.json, manifest.json, model_patch.diff
        and results.json under STATE_DIR/runs/<task>/<agent>/<model>/<run_id>/<item>/.

        Exit status: 0 success; 2 bad input or a host not ready (nothing written); 10 no
        patch; 11 patch did not apply; 12 max steps; 13 timeout; 14 agent error; 15 benchmark
        failed; 16 the provider refused (429 rate limit or quota, 5xx) after retries; 20
        infrastructure; 130 interrupted.
        """
        sigterm_as_interrupt()
        job = on_target_device(resolve_source(sha, job_source), vllm.target_device)
        llm = agent_llm(agent, llm, verbose=verbose,
                        key_on_controller=gateway.gateway_replay is not None)
        adapter = make_agent(agent.agent, patch_file=agent.patch_file,
                             script_file=agent.script_file, default_patch=reference_patch(job),
                             llm=llm)
        # what no retry can fix, before anything is written (exit 2, no run record)
        preflight(needs_for(job, gpus=resources.gpus, agent=agent.agent,
                            agent_python=llm.python,
                            agent_source=agent_source_pin(agent.agent, llm)))
        reap_dead_controllers()
        options = run_options(
            state_dir=state_dir, run_id=run_id or new_run_id(), resources=resources,
            bench=bench, agent=agent, skip_bench=skip_bench, vllm=vllm,
            command_options=command_options())
        log_line(f"{job.task.name} {job.item_id}: human {job.human_sha[:12]}, "
                 f"base {job.base_sha[:12]}, agent {agent.agent}")
        try:
            with controller_gateway(adapter, gateway):
                outcome = run_commit_with_retries(job, adapter, options, retry, log=log_line)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/yellow]: attempt journaled as interrupted; "
                          "containers removed")
            sys.exit(EXIT_CODES[RunStatus.INTERRUPTED])
        print_summary(outcome)
        sys.exit(outcome.exit_code)
