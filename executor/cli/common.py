"""Options and helpers shared by the commands that run containers."""

from __future__ import annotations

import os
import signal
import threading
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console

from executor.agents import AGENTS, LlmAgentOptions
from executor.errors import UserInputError
from executor.bench.run import BenchOptions
from executor.cli.options import model_options
from executor.pipeline import AgentLimits, ImageInputs, RunOptions
from executor.pricing import DEFAULT_PRICES, PriceTable
from executor.sandbox import Resources
from executor.vllm.jobs import VllmBuildOptions

console = Console(stderr=True, highlight=False)


def default_state_dir() -> Path:
    return Path(os.environ.get("ISOBENCH_STATE", "state"))


def log_line(message: str) -> None:
    # console.out: no markup parsing, so brackets in build output print as they are
    console.out(f"{datetime.now():%H:%M:%S} {message}", highlight=False)


# GPUs and limits arrive as one `resources: Resources` (executor/cli/options.py).
sandbox_options = model_options(Resources, "resources")
limit_options = model_options(Resources, "resources", exclude={"gpus"})  # batches lease GPUs


def _stack(fn, decorators):
    for decorator in reversed(decorators):
        fn = decorator(fn)
    return fn


def task_options(fn):
    """--task, --repo: where the task's definition and repository come from."""
    return _stack(fn, [
        click.option("--task", "task_file", type=click.Path(path_type=Path, dir_okay=False),
                     help="Task file (TOML/JSON) saying how to build, test and time the repo."),
        click.option("--repo", help="Repository path or URL (overrides the task's; use "
                                    "mirrors)."),
    ])


def job_options(fn):
    """--task, --repo, --base, --item-id: what `resolve_job` needs besides the sha."""
    return _stack(fn, [
        task_options,
        click.option("--base", help="Base commit (default: the parent of SHA)."),
        click.option("--item-id", default=None, help="Item id (default: catalogue id or sha)."),
    ])


def state_dir_option(fn):
    """--state-dir"""
    return click.option("--state-dir", type=click.Path(path_type=Path, file_okay=False),
                        default=default_state_dir, show_default="./state or $ISOBENCH_STATE",
                        help="Where journals, patches and results go.")(fn)


def record_options(fn):
    """--state-dir, --run-id: where the records of this invocation go."""
    return _stack(fn, [
        state_dir_option,
        click.option("--run-id", default=None, help="Run id (default: a UTC timestamp)."),
    ])


# The agent, as `run-commit` and `run` (each item of a batch) both take it.

def agent_options(fn):
    """--agent and its inputs, budget and network, and the LLM agents' settings."""
    return _stack(fn, [
        click.option("--agent", "agent_name", type=click.Choice(AGENTS), default="replay",
                     show_default=True, help="Agent adapter to run."),
        click.option("--patch", "patch_file", type=click.Path(path_type=Path, dir_okay=False),
                     help="Patch for the replay agent (the demo ships a default)."),
        click.option("--agent-script", "script_file",
                     type=click.Path(path_type=Path, dir_okay=False),
                     help="Shell script for the script agent (runs in the repo, in the "
                          "sandbox; $ISOBENCH_ITEM_ID names the item)."),
        click.option("--agent-budget", type=click.IntRange(1), default=120, show_default=True,
                     help="Agent wall-clock budget in minutes."),
        click.option("--max-steps", type=click.IntRange(1), default=None,
                     help="Agent step limit."),
        click.option("--agent-network", default="bridge", show_default=True,
                     help="Network mode of the agent sandbox (bridge, host, none)."),
        click.option("--model", help="LLM agents: model name served by the endpoint."),
        click.option("--base-url", help="LLM agents: OpenAI-compatible endpoint URL (a "
                     "loopback URL puts the agent sandbox on the host network)."),
        click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True,
                     help="LLM agents: host environment variable holding the API key."),
        click.option("--agent-source", help="trae: local checkout/mirror path or git URL."),
        click.option("--agent-revision", help="trae: source revision; mini-swe-agent: version."),
        click.option("--agent-python", type=click.Path(path_type=Path, file_okay=False,
                                                      exists=True),
                     help="trae: a relocatable CPython >= 3.12 (install prefix) for its "
                          "bundle."),
        click.option("--must-patch", is_flag=True,
                     help="trae: pass TRAE's --must-patch (it rejects an empty `git diff`; "
                          "committed work then dies with a 400: README, Agents)."),
        click.option("--price-table", type=click.Path(path_type=Path, dir_okay=False,
                                                     exists=True),
                     help="TOML/JSON prices added to the defaults, for the cost in the "
                          "journal."),
    ])


def llm_options(*, model, base_url, api_key_env, agent_source, agent_revision, agent_python,
                price_table, max_steps, verbose: bool, must_patch: bool = False,
                key_on_controller: bool = False
                ) -> LlmAgentOptions:
    """LlmAgentOptions from `agent_options`' values."""
    prices = DEFAULT_PRICES.merged(PriceTable.load(price_table)) if price_table else None
    return LlmAgentOptions(model=model, base_url=base_url, api_key_env=api_key_env,
                           source=agent_source, revision=agent_revision, python=agent_python,
                           max_steps=max_steps, prices=prices, verbose=verbose,
                           must_patch=must_patch, key_on_controller=key_on_controller)


def skip_bench_option(fn):
    """--skip-bench"""
    return click.option("--skip-bench", is_flag=True, help="Stop after the agent phase.")(fn)


# --trials, --max-trials, --warmup, --seed arrive as `bench: BenchOptions` (the bench command
# adds more): how the benchmark repeats and orders its trials.
TRIAL_FIELDS = ("trials", "max_trials", "warmup", "seed")
trial_options = model_options(BenchOptions, "bench", only=TRIAL_FIELDS)


def image_input_options(fn):
    """How vLLM sandbox images are built: the same options for `images build`, `run-commit`,
    `bench` and `run`, so each plans (and reuses) exactly the same images."""
    defaults = VllmBuildOptions()
    return _stack(fn, [
        click.option("--gpu-arch", default=defaults.gpu_arch, show_default=True,
                     help="vLLM full builds: TORCH_CUDA_ARCH_LIST (9.0: H100/H200)."),
        click.option("--wheel-dir", type=click.Path(path_type=Path, file_okay=False,
                                                   exists=True),
                     help="vLLM: a local folder of prebuilt wheels (air-gapped hosts)."),
        click.option("--deps-dir", type=click.Path(path_type=Path, file_okay=False,
                                                  exists=True),
                     help="vLLM: pre-fetched FETCHCONTENT sources for offline native builds."),
        click.option("--probe/--no-probe", default=defaults.probe, show_default=True,
                     help="vLLM: HEAD-probe wheel URLs before choosing (an unreachable host "
                          "degrades to unprobed)."),
        click.option("--base-image", help="vLLM: CUDA base to use instead of the planned one."),
        click.option("--base-image-tar", type=click.Path(path_type=Path, dir_okay=False,
                                                        exists=True),
                     help="vLLM: `docker load` the CUDA base from this tarball first."),
        click.option("--offline-base", is_flag=True,
                     help="vLLM wheel strategies: build on the offline Debian base "
                          "(debootstrap, no registry) whose Python fits the commit, not a CUDA "
                          "image; the CUDA runtime comes from torch's nvidia-* wheels."),
        click.option("--torch-index", default=None, metavar="pytorch|pypi|URL",
                     help="vLLM: where torch comes from (default: the PyTorch index of the "
                          "pin's CUDA; pypi for hosts that reach only PyPI)."),
    ])


def vllm_build_options(*, gpu_arch, wheel_dir, deps_dir, probe, base_image,
                       base_image_tar, offline_base=False, torch_index=None
                       ) -> VllmBuildOptions:
    """VllmBuildOptions from `image_input_options`' values."""
    return VllmBuildOptions(gpu_arch=gpu_arch, wheel_dir=wheel_dir, deps_dir=deps_dir,
                            probe=probe, base_image=base_image, base_image_tar=base_image_tar,
                            offline_base=offline_base, torch_index=torch_index)


IMAGE_INPUTS = ("gpu_arch", "wheel_dir", "deps_dir", "probe", "base_image", "base_image_tar",
                "offline_base", "torch_index")


def reap_dead_controllers() -> None:
    from executor.sandbox import docker_client, reap_orphans

    removed = reap_orphans(docker_client())
    if removed:
        log_line(f"removed {len(removed)} container(s) left by dead controllers")


def trial_design(trials: int | None, max_trials: int | None) -> dict:
    """BenchOptions fields from --trials (fixed design) or --max-trials (sequential), for
    callers that hold the two values apart (the flags themselves arrive as BenchOptions)."""
    if trials is not None and max_trials is not None:
        raise UserInputError("give --trials N (a fixed design) or --max-trials N (sequential "
                             "trials), not both")
    if trials is not None:
        return {"trials": trials, "max_trials": None}
    return {} if max_trials is None else {"max_trials": max_trials}


def run_options(*, state_dir: Path, run_id: str, resources: Resources, bench: BenchOptions,
                agent_budget: int, max_steps: int | None, agent_network: str, skip_bench: bool,
                vllm: VllmBuildOptions | None = None) -> RunOptions:
    """The pipeline's RunOptions from the shared options above (budget typed in minutes)."""
    return RunOptions(
        state_dir=state_dir, run_id=run_id, resources=resources,
        agent=AgentLimits(budget_s=agent_budget * 60, max_steps=max_steps,
                          network=agent_network),
        images=ImageInputs(vllm=vllm or VllmBuildOptions()), skip_bench=skip_bench,
        bench=bench)


def sigterm_as_interrupt() -> None:
    """SIGTERM (docker stop, a batch scheduler) cleans up exactly like Ctrl-C."""
    def _raise_interrupt(_signum, _frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupt)

