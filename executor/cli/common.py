"""Options and helpers shared by the commands that run containers."""

from __future__ import annotations

import functools
import os
import signal
import threading
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console

from executor.parts.agents import AgentChoice, LlmAgentOptions
from executor.parts.bench.run import BenchOptions
from executor.cli.jobfile import config_option, grouped  # noqa: F401 (the commands' --config)
from executor.cli.options import model_options
from executor.parts.gateway.options import GatewayFlags
from executor.runs.pipeline import AgentLimits, ImageInputs, RunOptions
from executor.core.policy import RetryPolicy
from executor.runs.resolve import JobSource
from executor.core.resources import Resources
from executor.parts.vllm.jobs import VllmBuildOptions

console = Console(stderr=True, highlight=False)


def default_state_dir() -> Path:
    return Path(os.environ.get("ISOBENCH_STATE", "state"))


def log_line(message: str) -> None:
    # console.out: no markup parsing, so brackets in build output print as they are
    console.out(f"{datetime.now():%H:%M:%S} {message}", highlight=False)


# Each option is filed under one heading of --help and one table of a job file
# (executor/cli/jobfile.py): `grouped(heading, ...)`.

# GPUs and limits arrive as one `resources: Resources` (executor/cli/options.py).
sandbox_options = grouped("Resources", model_options(Resources, "resources"))
limit_options = grouped("Resources", model_options(Resources, "resources",
                                                   exclude={"gpus"}))  # batches lease GPUs


def engine_option(fn):
    """--engine docker|podman: which container engine this command's containers and images
    live on, chosen before anything touches an engine (use_engine also hands it to the
    command's workers through $ISOBENCH_ENGINE). Recorded with the options and, as the
    engine's facts, with every benchmark's host facts."""
    from executor.engine.chosen import ENGINE_NAMES

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from executor.engine.chosen import use_engine

        use_engine(kwargs.pop("engine"))
        return fn(*args, **kwargs)

    return grouped("Resources", click.option(
        "--engine", type=click.Choice(ENGINE_NAMES),
        default=lambda: os.environ.get("ISOBENCH_ENGINE") or "docker",
        show_default="docker, or $ISOBENCH_ENGINE",
        help="Container engine: docker (the root daemon) or podman (rootless: its API "
             "service, GPUs through CDI; docs/podman.md)."))(wrapper)


# --task, --repo (and for one commit --base, --item-id) arrive as `job_source: JobSource`.
job_options = grouped("Benchmark", model_options(JobSource, "job_source"))
task_options = grouped("Benchmark", model_options(JobSource, "job_source",
                                                  only=("task_file", "repo")))


def state_dir_option(fn):
    """--state-dir"""
    return grouped("Record", click.option(
        "--state-dir", type=click.Path(path_type=Path, file_okay=False),
        default=default_state_dir, show_default="./state or $ISOBENCH_STATE",
        help="Where journals, patches and results go."))(fn)


def record_options(fn):
    """--state-dir, --run-id: where the records of this invocation go."""
    return grouped("Record", state_dir_option, click.option(
        "--run-id", default=None, help="Run id (default: a UTC timestamp)."))(fn)


# The agent, as `run-commit` and `run` (each item of a batch) both take it: `agent:
# AgentChoice` (which agent, its input file, budget, steps, network) and `llm: LlmAgentOptions`
# (the LLM agents' model, endpoint, source and prices): in --help, the agent's own source and
# build under Agent, the model, its endpoint and prices under Model and gateway.
_agent_choice = grouped("Agent", model_options(AgentChoice, "agent"))
_llm_settings = grouped("Model and gateway", model_options(
    LlmAgentOptions, "llm", headings=dict.fromkeys(
        ("source", "revision", "python", "must_patch"), "Agent")))


def agent_options(fn):
    """--agent and its inputs, budget and network, and the LLM agents' settings."""
    return _agent_choice(_llm_settings(fn))


def agent_llm(agent: AgentChoice, llm: LlmAgentOptions, *, verbose: bool,
              key_on_controller: bool) -> LlmAgentOptions:
    """The LLM settings an agent is built with: the flags' plus what other flags decide
    (--max-steps is the agent's bound; a replayed or Ray-served gateway holds the key)."""
    return llm.model_copy(update={"max_steps": agent.max_steps, "verbose": verbose,
                                  "key_on_controller": key_on_controller})


def skip_bench_option(fn):
    """--skip-bench"""
    return grouped("Benchmark", click.option("--skip-bench", is_flag=True,
                                             help="Stop after the agent phase."))(fn)


# --trials, --max-trials, --warmup, --seed arrive as `bench: BenchOptions` (the bench command
# adds more): how the benchmark repeats and orders its trials.
TRIAL_FIELDS = ("trials", "max_trials", "warmup", "seed")
trial_options = grouped("Benchmark", model_options(BenchOptions, "bench", only=TRIAL_FIELDS))


# How vLLM sandbox images are built, as `vllm: VllmBuildOptions`: the same flags for
# `images build`, `run-commit`, `bench` and `run`, so each plans (and reuses) the same images.
image_input_options = grouped("Images", model_options(VllmBuildOptions, "vllm"))

# The model gateway's flags, as `gateway: GatewayFlags`.
gateway_options = grouped("Model and gateway", model_options(GatewayFlags, "gateway"))

# run-commit's retries (`retry: RetryPolicy`): one interactive commit tries less and waits less
# than a batch left running overnight (the model's defaults); a batch takes the per-class counts.
# Both under the heading Batch: how attempts are repeated.
commit_retry_options = grouped("Batch", model_options(
    RetryPolicy, "retry", only=("max_attempts", "backoff_max_s"),
    defaults={"max_attempts": 3, "backoff_max_s": 300}))
batch_retry_options = grouped("Batch", model_options(
    RetryPolicy, "retry", only=("retryable_attempts", "infra_attempts", "backoff_base_s")))


def reap_dead_controllers() -> None:
    from executor.engine.sandbox import reap_orphans
    from executor.engine.chosen import engine_client

    removed = reap_orphans(engine_client())
    if removed:
        log_line(f"removed {len(removed)} container(s) left by dead controllers")


def run_options(*, state_dir: Path, run_id: str, resources: Resources, bench: BenchOptions,
                agent: AgentChoice, skip_bench: bool,
                vllm: VllmBuildOptions | None = None,
                command_options: dict | None = None) -> RunOptions:
    """The pipeline's RunOptions from the shared options above (budget typed in minutes);
    `command_options`: the command's resolved options, for the manifest (jobfile.py)."""
    return RunOptions(
        state_dir=state_dir, run_id=run_id, resources=resources,
        agent=AgentLimits(budget_s=agent.budget_min * 60, max_steps=agent.max_steps,
                          network=agent.network),
        images=ImageInputs(vllm=vllm or VllmBuildOptions()), skip_bench=skip_bench,
        bench=bench, command_options=command_options)


def sigterm_as_interrupt() -> None:
    """SIGTERM (docker stop, a batch scheduler) cleans up exactly like Ctrl-C."""
    def _raise_interrupt(_signum, _frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)

