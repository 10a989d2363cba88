"""Options and helpers shared by the commands that run containers."""

from __future__ import annotations

import os
import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console

from executor.sandbox import GpuRequest, SandboxLimits

console = Console(stderr=True, highlight=False)


def default_state_dir() -> Path:
    return Path(os.environ.get("ISOBENCH_STATE", "state"))


def new_run_id() -> str:
    return datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def log_line(message: str) -> None:
    # console.out: no markup parsing, so brackets in build output print as they are
    console.out(f"{datetime.now():%H:%M:%S} {message}", highlight=False)


def parse_gpus(_ctx, _param, value: str) -> GpuRequest:
    try:
        return GpuRequest.parse(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


def sandbox_options(fn):
    """--gpus, --cpus, --cpuset, --memory, --pids for commands that start sandboxes."""
    decorators = [
        click.option("--gpus", default="none", show_default=True, callback=parse_gpus,
                     help="GPUs for the sandboxes: none, all, or ids like 0,1."),
        click.option("--cpus", type=float, default=None, help="CPU quota per container."),
        click.option("--cpuset", default=None, help="Pin containers to host CPUs, e.g. 0-7."),
        click.option("--memory", default=None, help="Memory limit per container, e.g. 32g."),
        click.option("--pids", type=int, default=8192, show_default=True,
                     help="Process limit per container."),
    ]
    return _stack(fn, decorators)


def _stack(fn, decorators):
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return fn


def job_options(fn):
    """--task, --repo, --base, --item-id: what `resolve_job` needs besides the sha."""
    return _stack(fn, [
        click.option("--task", "task_file", type=click.Path(path_type=Path, dir_okay=False),
                     help="Task file (TOML/JSON) saying how to build, test and time the repo."),
        click.option("--repo", help="Repository path or URL (overrides the task's; use "
                                    "mirrors)."),
        click.option("--base", help="Base commit (default: the parent of SHA)."),
        click.option("--item-id", default=None, help="Item id (default: catalogue id or sha)."),
    ])


def record_options(fn):
    """--state-dir, --run-id: where the records of this invocation go."""
    return _stack(fn, [
        click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False),
                     default=default_state_dir, show_default="./state or $ISOBENCH_STATE",
                     help="Where journals, patches and results go."),
        click.option("--run-id", default=None, help="Run id (default: a timestamp)."),
    ])


def trial_options(fn):
    """--trials, --warmup, --seed: how the benchmark repeats and orders its trials."""
    from executor.bench.run import BenchOptions

    defaults = BenchOptions()
    return _stack(fn, [
        click.option("--trials", type=click.IntRange(2), default=defaults.trials,
                     show_default=True,
                     help="Timed trials per variant, each in a fresh container."),
        click.option("--warmup", type=click.IntRange(0), default=defaults.warmup,
                     show_default=True, help="Warm-up blocks (each variant once), not "
                                             "analysed."),
        click.option("--seed", type=int, default=None, help="Trial-order seed (recorded)."),
    ])


def reap_dead_controllers() -> None:
    from executor.sandbox import docker_client, reap_orphans

    removed = reap_orphans(docker_client())
    if removed:
        log_line(f"removed {len(removed)} container(s) left by dead controllers")


def limits_from(cpus, cpuset, memory, pids) -> SandboxLimits:
    return SandboxLimits(cpus=cpus, cpuset=cpuset, memory=memory, pids=pids)


def sigterm_as_interrupt() -> None:
    """SIGTERM (docker stop, a batch scheduler) cleans up exactly like Ctrl-C."""
    def _raise_interrupt(_signum, _frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)


def fail(message: str, code: int = 2) -> None:
    click.echo(f"isobench: error: {message}", err=True)
    sys.exit(code)
