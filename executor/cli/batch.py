"""`isobench plan` and `isobench run` (batches); `isobench status` is in status.py."""

from __future__ import annotations

import contextlib
import functools
import shlex
import tempfile
from pathlib import Path
from typing import Literal

import click
from pydantic import BaseModel, Field

from executor.runs.batch.base import Cancel, ItemOutcome
from executor.runs.batch.commit_item import CommitItemSpec, InlineFile, commit_run_item, item_job
from executor.cli.predictions import predictions_option
from executor.records.predictions import load_predictions, plan_patches
from executor.runs.batch.leases import parse_gpus
from executor.runs.batch.local import LocalBackend, LocalOptions, print_stopping, sigint_cancels
from executor.runs.batch.order import history_estimates, longest_first
from executor.runs.batch.plans import catalogue_plan, demo_plan, make_plan, read_commit_list
from executor.core.policy import RetryPolicy
from executor.runs.batch.progress import BatchProgress
from executor.runs.batch.runner import load_run_item_factory, prepare_run, resolve_run_key
from executor.runs.batch.slurm_backend import SlurmBackend, SlurmOptions
from executor.runs.batch.slurm_cli import SlurmCli
from executor.runs.batch.slurm_job import JobFactory
from executor.parts.agents import AgentChoice, LlmAgentOptions, agent_source_pin
from executor.cli.common import (agent_llm, agent_options, batch_retry_options, engine_option,
                                 config_option, gateway_options, grouped, image_input_options,
                                 limit_options, run_options, skip_bench_option,
                                 state_dir_option, task_options, trial_options)
from executor.cli.jobfile import JobCommand, command_options
from executor.cli.options import model_options
from executor.runs.doctor import host_gpus
from executor.cli.noise_floor import aa_sample_option, finish_noise_floor, plan_aa_controls
from executor.core.errors import UserInputError
from executor.runs.preflight import PreflightNeeds, needs_for, preflight
from executor.parts.gateway.options import GatewayFlags, controller_gateway, probe_agent
from executor.core.journal import write_json_atomic
from executor.parts.bench.run import BenchOptions
from executor.engine.sandbox import reap_orphans
from executor.engine.chosen import engine_client
from executor.core.resources import GpuRequest, Resources
from executor.runs.resolve import JobSource
from executor.records.state import OPTIONS_NAME, RunKey, StateLayout
from executor.parts.vllm.jobs import VllmBuildOptions
from executor.core.task import load_plan

FILE = click.Path(dir_okay=False, path_type=Path)


class BatchFlags(BaseModel):
    """How `run` spreads a plan's attempts: backend, workers, GPU leases, order, output."""

    backend: Literal["local", "ray", "slurm"] = Field(
        default="local", json_schema_extra={"flag": "--backend"},
        description="local: worker threads on this host; ray: one Ray task per attempt on a "
                    "cluster's GPU nodes; slurm: one Slurm job per attempt (sbatch), from a "
                    "login node whose state dir the nodes share.")
    ray_address: str | None = Field(
        default=None, json_schema_extra={"flag": "--ray-address"},
        description="ray: the cluster ('auto' on a node of it, or HOST:6379); default "
                    "$RAY_ADDRESS, else a Ray instance on this host.")
    workers: int | None = Field(
        default=None, ge=1, json_schema_extra={"flag": "--workers"},
        description="Attempts at once (default: one per GPU lease, or 1 without GPUs; ray: the "
                    "cluster's GPUs / --gpus-per-item).")
    slurm_gres: str | None = Field(
        default=None, json_schema_extra={"flag": "--slurm-gres"},
        description="slurm: --gres of each job (default gpu:<--gpus-per-item>; 'none' asks "
                    "for no GPU).")
    slurm_partition: str | None = Field(default=None, json_schema_extra={
        "flag": "--slurm-partition"}, description="slurm: the partition jobs go to.")
    slurm_time: str | None = Field(default=None, json_schema_extra={"flag": "--slurm-time"},
                                   description="slurm: each job's time limit (e.g. 2:00:00).")
    slurm_mem: str | None = Field(default=None, json_schema_extra={"flag": "--slurm-mem"},
                                  description="slurm: each job's memory (e.g. 64G).")
    slurm_cpus: int | None = Field(default=None, ge=1, json_schema_extra={
        "flag": "--slurm-cpus"}, description="slurm: --cpus-per-task of each job.")
    slurm_args: str | None = Field(default=None, json_schema_extra={"flag": "--slurm-args"},
                                   description="slurm: more sbatch arguments, as one string "
                                               "(e.g. '--account=perf --qos=high').")
    slurm_spool: Path | None = Field(
        default=None, json_schema_extra={"flag": "--slurm-spool"},
        description="slurm: where job specs, results and output go; must be on a filesystem "
                    "every node sees (default <state-dir>/.slurm).")
    slurm_node_dir: str | None = Field(
        default=None, json_schema_extra={"flag": "--slurm-node-dir"},
        description="slurm: parent of each job's node-local working dir (default the node's "
                    "temp dir).")
    slurm_poll: float = Field(default=5.0, gt=0, json_schema_extra={"flag": "--slurm-poll"},
                              description="slurm: seconds between squeue polls.")
    gpus: str = Field(default="none", json_schema_extra={"flag": "--gpus"},
                      description="local: GPU ids to lease, e.g. 0,1,2,3; 'none' for CPU slots. "
                                  "ray: leave it; Ray assigns devices.")
    gpus_per_item: int = Field(default=1, ge=1, json_schema_extra={"flag": "--gpus-per-item"},
                               description="Devices per item: the size of a local lease; "
                                           "num_gpus of a Ray task.")
    gpu_passthrough: bool | None = Field(
        default=None, json_schema_extra={"flag": "--gpu-passthrough/--no-gpu-passthrough"},
        description="Pass each attempt's leased GPUs into its sandboxes. Default: where "
                    "nvidia-smi sees GPUs on the node (logical GPUs are only recorded).")
    run_item: str | None = Field(
        default=None, json_schema_extra={"flag": "--run-item", "metavar": "MODULE:NAME"},
        description="Instead of the one-commit pipeline: factory NAME(ctx) -> run_item; MODULE "
                    "may be a FILE.py (with ray: importable on every node).")
    progress: bool = Field(default=True, json_schema_extra={"flag": "--progress/--no-progress"},
                           description="Progress bar and one line per attempt on stderr (the "
                                       "bar redraws only on a terminal).")
    verbose: bool = Field(default=False, json_schema_extra={"flag": "--verbose", "short": "-v"},
                          description="Echo each item's pipeline log on stderr (always in "
                                      "attempt-<n>/controller.log).")
    order: Literal["history", "plan"] = Field(
        default="history", json_schema_extra={"flag": "--order"},
        description="history: longest first, estimated from earlier runs of the task (plan "
                    "order where none); plan: plan order.")


@click.command("plan")
@click.argument("shas", nargs=-1)
@click.option("--commits", "commit_file", type=FILE,
              help="File with one sha per line ('#' comments; 'sha | date | subject' works).")
@click.option("--from-plan", "from_plan", type=FILE,
              help="Start from this plan.json (ISO-Bench format); shas then select items.")
@click.option("--catalogue", help="A catalogue task, e.g. vllm_core.")
@click.option("--demo", "demo_items", type=click.IntRange(min=1), metavar="N",
              help="A rehearsal plan: N items of the embedded demo commit (no GPU needed).")
@click.option("--task-id", help="Task id of a plan made from commits (e.g. demo).")
@click.option("--repo", help="Repository (path or URL) of a plan made from commits.")
@click.option("-o", "--out", type=FILE, help="Write the plan here (default: stdout).")
def plan_command(shas, commit_file, from_plan, catalogue, demo_items, task_id, repo, out) -> None:
    """Make a plan.json from commits, an existing plan, or the catalogue.

    \b
      isobench plan --task-id demo --repo ./demo a0476e8c 9d29f3c8 -o plan.json
      isobench plan --from-plan vllm_core_plan.json --commits vllm_39.txt -o plan39.json
      isobench plan --demo 6 -o demo-plan.json
    """
    if sum(map(bool, (from_plan, catalogue, demo_items))) > 1:
        raise UserInputError("give one of --from-plan, --catalogue and --demo")
    wanted = list(shas) + (read_commit_list(commit_file) if commit_file else [])
    if demo_items:
        if wanted:
            raise UserInputError("--demo makes its own items; give no commits with it")
        plan = demo_plan(demo_items)
    else:
        base = (load_plan(from_plan) if from_plan else catalogue_plan(catalogue) if catalogue
                else None)
        plan = make_plan(wanted, base=base, task_id=task_id, repo=repo)
    if out:
        write_json_atomic(out, plan)
        click.echo(f"{out}: {len(plan.items)} items of {plan.task_id}", err=True)
    else:
        click.echo(plan.model_dump_json(indent=2))


@click.command("run", cls=JobCommand)
@click.argument("plan_file", metavar="PLAN", type=FILE)
@config_option
@state_dir_option
@grouped("Record", click.option("--run-id", help="Run id (default: a new UTC timestamp; with "
                                                 "--resume the latest)."))
@grouped("Batch", click.option(
    "--resume", is_flag=True,
    help="Continue the run: skip items the policy calls final, re-run the rest."))
@agent_options
@task_options
@grouped("Batch", model_options(BatchFlags, "batch", headings={"gpus": "Resources"}))
@batch_retry_options
@trial_options
@grouped("Benchmark", aa_sample_option)
@skip_bench_option
@engine_option
@limit_options
@image_input_options
@gateway_options
@grouped("Benchmark", predictions_option)
@click.pass_context
def run_command(ctx, plan_file, state_dir, run_id, resume, agent: AgentChoice,
                llm: LlmAgentOptions, job_source: JobSource, batch: BatchFlags,
                retry: RetryPolicy, bench: BenchOptions, aa_sample, skip_bench: bool,
                resources: Resources, vllm: VllmBuildOptions, gateway: GatewayFlags,
                predictions_path) -> None:
    """Run a plan: every item through the one-commit pipeline, on GPU leases (local) or Ray
    tasks (ray), with retries and resume.

    \b
      isobench run plan.json --gpus 0,1,2,3 --agent replay
      isobench run plan.json --resume
      isobench run plan.json --backend ray --ray-address auto

    Exit 0 when every item succeeded, 1 when some failed or remain, 130 after Ctrl-C.
    """
    plan = load_plan(plan_file)
    seed = bench.seed
    patches = None
    if predictions_path is not None:
        plan, patches = plan_from_predictions(plan, predictions_path, agent)
    gpu_ids = parse_gpus(batch.gpus)
    if batch.backend in ("ray", "slurm") and gpu_ids:
        raise UserInputError(f"--gpus names local devices; with --backend {batch.backend}, "
                             f"{batch.backend.capitalize()} assigns them (--gpus-per-item sets "
                             f"how many)")
    if batch.backend == "slurm":
        SlurmCli().check()
    if vllm.target_device == "cpu" and plan.task_id == "vllm_core":
        # the CPU track's runs live apart from the CUDA benchmark's, as run-commit's do
        from executor.parts.vllm.catalog_task import CPU_TASK

        plan = plan.model_copy(update={"task_id": CPU_TASK})
    layout = StateLayout(root=state_dir)
    # The layout names the model as the agent reports it: LLM agents their --model, others none.
    key = resolve_run_key(layout, plan, agent.agent, llm.model or "none", run_id, resume)
    gateways = contextlib.ExitStack()
    if batch.run_item:  # before anything is written
        factory = load_run_item_factory(batch.run_item)
    else:
        spec = commit_item_spec(key, state_dir, batch, bench, resources, agent, llm,
                                job_source, skip_bench, vllm,
                                key_on_controller=gateway.gateway_replay is not None)
        preflight(batch_needs(plan, spec, gpu_ids if batch.backend == "local" else []))
        # One gateway for the whole batch: local workers and Ray tasks share its limiter and
        # budgets; its key check runs before anything is written.
        served = gateways.enter_context(controller_gateway(probe_agent(spec), gateway))
        if served is not None and batch.backend in ("ray", "slurm"):
            # Tasks and jobs lease from it over HTTP; their nodes need no key.
            spec.gateway = served.remote()
            spec.llm = spec.llm.model_copy(update={"key_on_controller": True})
        spec = spec.model_copy(update={"patches": patches or {}})
        factory = functools.partial(commit_run_item, plan_aa_controls(
            spec, layout, key, plan, aa_sample, seed))
        if batch.backend == "local":  # Ray tasks reap on their own nodes
            removed = reap_orphans(engine_client())
            if removed:
                click.echo(f"removed {len(removed)} container(s) left by dead controllers",
                           err=True)
    state = prepare_run(layout, key, plan, retry, resume=resume, seed=seed)
    if (resolved := command_options()) is not None:  # beside policy.json: what this run used
        write_json_atomic(layout.run_dir(key) / OPTIONS_NAME, resolved)
    priority = (longest_first(history_estimates(layout, key.task, exclude_run=key.run_id))
                if batch.order == "history" else None)
    cancel = Cancel()
    if batch.backend == "slurm":
        run = functools.partial(
            SlurmBackend(slurm_options(batch, layout, llm)).run, plan.items,
            job_factory(batch, factory), state, cancel=cancel, priority=priority)
    elif batch.backend == "ray":
        run = functools.partial(ray_backend(batch.ray_address, batch.workers,
                                            batch.gpus_per_item, batch.verbose).run,
                                plan.items, factory, state, cancel=cancel, priority=priority)
    else:
        leases = len(gpu_ids) // batch.gpus_per_item if gpu_ids else 1
        options = LocalOptions(workers=batch.workers or max(1, leases), gpu_ids=gpu_ids,
                               gpus_per_item=batch.gpus_per_item)
        run = functools.partial(LocalBackend(options).run, plan.items, factory(state), state,
                                cancel=cancel, priority=priority)
    click.echo(f"run {key.run_id}: {len(plan.items)} items -> {layout.run_dir(key)}", err=True)
    try:
        with gateways, sigint_cancels(cancel, on_first=print_stopping):
            if batch.progress:
                with BatchProgress(len(plan.items), title=key.task) as bar:
                    summary = run(observer=bar)
            else:
                summary = run()
    except KeyboardInterrupt:
        click.echo("isobench: abandoned running items; their journals say running and the "
                   "next --resume closes them as interrupted", err=True)
        ctx.exit(130)
    finish_noise_floor(layout, key)
    click.echo(f"run {key.run_id}: {summary.count(ItemOutcome.SUCCEEDED)} succeeded, "
               f"{summary.count(ItemOutcome.FAILED)} failed, "
               f"{summary.count(ItemOutcome.REMAINING)} remaining"
               + (" (interrupted)" if summary.interrupted else ""), err=True)
    ctx.exit(summary.exit_code)


def plan_from_predictions(plan, path: Path, agent: AgentChoice) -> tuple:
    """The plan's items that have a prediction, and their patches (the replay agent applies
    each item's own); items without one are left out, and said so."""
    if agent.agent != "replay" or agent.patch_file:
        raise UserInputError("--predictions gives each item its patch: use it with the "
                             "replay agent (the default) and without --patch")
    chosen, missing = plan_patches(load_predictions(path), plan.items)
    if not chosen:
        raise UserInputError(f"--predictions {path}: no prediction matches an item of the plan")
    if missing:
        click.echo(f"--predictions: {len(missing)} plan item(s) have no prediction and are "
                   f"left out: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}",
                   err=True)
    kept = plan.model_copy(update={"items": [i for i in plan.items if i.item_id in chosen]})
    return kept, {item_id: InlineFile(path=Path(f"{item_id}.diff"), data=p.patch_bytes)
                  for item_id, p in chosen.items()}


def commit_item_spec(key: RunKey, state_dir: Path, batch: BatchFlags, bench: BenchOptions,
                     resources: Resources, agent: AgentChoice, llm: LlmAgentOptions,
                     source: JobSource, skip_bench: bool, vllm: VllmBuildOptions,
                     key_on_controller: bool = False) -> CommitItemSpec:
    """The pipeline's spec from the shared run-commit options; input files are read now, so a
    missing one is bad input before anything runs, and their bytes travel to Ray nodes."""
    llm.check_model(agent.agent)
    read = lambda path, what: InlineFile.read(path, what) if path else None  # noqa: E731
    # verbose=False: a batch keeps each agent's output in its attempt dir, not on the console.
    llm = agent_llm(agent, llm, verbose=False, key_on_controller=key_on_controller)
    run = run_options(state_dir=state_dir, run_id=key.run_id, resources=resources, bench=bench,
                      agent=agent, skip_bench=skip_bench, vllm=vllm,
                      command_options=command_options())
    return CommitItemSpec(agent=agent.agent, patch=read(agent.patch_file, "patch"),
                          script=read(agent.script_file, "agent script"),
                          task_file=read(source.task_file, "task file"), repo=source.repo,
                          llm=llm, run=run, gpu_passthrough=batch.gpu_passthrough,
                          echo=batch.verbose)


def batch_needs(plan, spec: CommitItemSpec, gpu_ids: list[str]) -> PreflightNeeds:
    """What the plan's attempts need from this host, judged from its first item (a plan holds
    one task); an item that does not resolve is left to fail as that item's bad input."""
    gpus = GpuRequest(mode="ids", ids=gpu_ids) if gpu_ids and (
        spec.gpu_passthrough or (spec.gpu_passthrough is None and host_gpus())) \
        else GpuRequest()
    job = None
    if plan.items:
        with tempfile.TemporaryDirectory(prefix="isobench-preflight-") as spool:
            try:
                job = item_job(spec, plan.repo, plan.items[0], Path(spool))
            except UserInputError:
                pass
    return needs_for(job, gpus=gpus, agent=spec.agent, agent_python=spec.llm.python,
                     agent_source=agent_source_pin(spec.agent, spec.llm),
                     base_recipe=spec.run.images.base_recipe)


def slurm_options(batch: BatchFlags, layout: StateLayout, llm: LlmAgentOptions
                  ) -> SlurmOptions:
    gres = batch.slurm_gres or f"gpu:{batch.gpus_per_item}"
    return SlurmOptions(
        gres=None if gres.lower() == "none" else gres, partition=batch.slurm_partition,
        time_limit=batch.slurm_time, mem=batch.slurm_mem, cpus_per_item=batch.slurm_cpus,
        extra_args=shlex.split(batch.slurm_args or ""), workers=batch.workers or 8,
        spool=(batch.slurm_spool or layout.root / ".slurm").absolute(),
        node_state_dir=batch.slurm_node_dir, poll_s=batch.slurm_poll,
        secret_env=[llm.api_key_env])


def job_factory(batch: BatchFlags, factory) -> JobFactory:
    """What a Slurm job builds its run_item from: data, not a pickled function."""
    if batch.run_item:
        return JobFactory(run_item=batch.run_item)
    spec: CommitItemSpec = factory.args[0]
    gateway = spec.gateway
    # exclude_unset: validators that read which fields were given (--trials vs --max-trials)
    # see the same on the node.
    return JobFactory(commit=spec.model_dump(mode="json", exclude={"gateway"}, exclude_unset=True),
                      gateway_url=gateway.url if gateway else None,
                      gateway_secret=gateway.admin_secret if gateway else None)


def ray_backend(address: str | None, workers: int | None, gpus_per_item: int, verbose: bool):
    try:
        from executor.runs.batch.ray_backend import RayBackend, RayOptions
    except ImportError as exc:
        raise UserInputError(f"--backend ray needs Ray: pip install 'isobench[ray]' ({exc})") \
            from exc
    return RayBackend(RayOptions(address=address, workers=workers, gpus_per_item=gpus_per_item,
                                 log_to_driver=verbose))


def register(group: click.Group) -> None:
    for command in (plan_command, run_command):
        group.add_command(command)
