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
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return fn


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
