"""The default run_item of `isobench run`: one plan item through the one-commit pipeline.

`commit_run_item(spec, ctx)` is a run_item factory (batch.runner.RunItemFactory once `spec` is
bound with functools.partial). The spec is data only (agent, task, pipeline options, and the
small input files read on the controller), so the same factory runs in a local worker thread
against the controller's state dir, or inside a Ray task on another node against that node's
own state dir (ray_backend).

Per attempt: resolve the item to a CommitJob, build the agent, and call `run_commit` with an
`AttemptSlot`, so the pipeline fills in the attempt the dispatcher journaled as `running` (one
record per attempt) and with the batch's cancel token (Ctrl-C removes the item's sandboxes).
The leased devices go into the sandboxes only where a real GPU runtime exists
(`gpu_passthrough`); they are journaled either way.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import threading
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from executor.parts.agents import LlmAgentOptions, make_agent
from executor.runs.batch.base import BatchContext, RunItem
from executor.runs.cancel import Cancel
from executor.parts.catalog import find_commit
from executor.runs.doctor import host_gpus
from executor.core.errors import BAD_INPUT, UserInputError, signature
from executor.parts.gateway.attempt import activate
from executor.parts.gateway.remote import RemoteGateway
from executor.core.journal import Attempt, RunStatus, load_journal, utcnow, write_bytes_atomic
from executor.runs.pipeline import AttemptSlot, Log, RunOptions, run_commit
from executor.runs.resolve import on_target_device, reference_patch, resolve_job
from executor.core.resources import GpuRequest
from executor.records.state import CONTROLLER_LOG_NAME, JOURNAL_NAME, attempt_dir_name
from executor.core.task import CommitJob, PlanItem

CONTROLLER_LOG = CONTROLLER_LOG_NAME


class InlineFile(BaseModel):
    """A small input file (patch, script, task), read once on the controller so that it can
    travel to nodes that do not share its filesystem."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    path: Path = Field(description="The path as given on the command line.")
    data: bytes = Field(description="Its content when the batch started.")

    @classmethod
    def read(cls, path: Path, what: str) -> "InlineFile":
        try:
            return cls(path=path, data=path.read_bytes())
        except OSError as exc:
            raise UserInputError(f"cannot read {what} {path}: {exc.strerror}") from exc

    def local(self, spool: Path) -> Path:
        """This file on this node: the given path where it still holds the same bytes (this
        host, a shared filesystem), else a copy under `spool` named by its content."""
        try:
            if self.path.read_bytes() == self.data:
                return self.path
        except OSError:
            pass
        copy = spool / hashlib.sha256(self.data).hexdigest()[:16] / self.path.name
        if not copy.exists():
            write_bytes_atomic(copy, self.data)
        return copy


class CommitItemSpec(BaseModel):
    """How every item of a batch runs through the pipeline (the `isobench run` options)."""

    agent: str = Field(description="Agent adapter name (executor.parts.agents.AGENTS).")
    patch: InlineFile | None = Field(default=None, description="--patch for the replay agent.")
    patches: dict[str, InlineFile] = Field(default_factory=dict,
                                           description="Per-item patches for the replay agent "
                                                       "(--predictions), by item id.")
    script: InlineFile | None = Field(default=None, description="--agent-script (script agent).")
    task_file: InlineFile | None = Field(default=None, description="--task FILE, if given.")
    repo: str | None = Field(default=None, description="--repo: overrides the task's repository "
                                                       "(a path that exists on every node).")
    llm: LlmAgentOptions = Field(default_factory=LlmAgentOptions,
                                 description="LLM agents' settings (the key stays in the env "
                                             "of whichever node runs the agent).")
    run: RunOptions = Field(description="Pipeline options; the state dir, run id and GPUs are "
                                        "set per attempt.")
    gpu_passthrough: bool | None = Field(
        default=None, description="Pass leased GPUs into sandboxes; None: only on nodes where "
                                  "nvidia-smi sees GPUs (logical Ray GPUs are recorded only).")
    echo: bool = Field(default=False, description="Also print each item's log lines on stderr.")
    aa_items: list[str] = Field(default_factory=list, description="Items benchmarked with an "
                                "A/A control (base2), chosen by --aa-sample (bench/noise.py).")
    gateway: RemoteGateway | None = Field(
        default=None, description="Ray batches: the driver's model gateway, which each task "
                                  "leases from (local workers use it in-process).")


@functools.lru_cache(maxsize=1)
def _node_has_gpus() -> bool:
    return bool(host_gpus())


def attempt_options(spec: CommitItemSpec, ctx: BatchContext, gpu_ids: list[str]) -> RunOptions:
    """The pipeline options of one attempt: this process's state dir, the batch's run id, and
    the lease's devices in the sandboxes when passthrough applies."""
    passthrough = spec.gpu_passthrough if spec.gpu_passthrough is not None else _node_has_gpus()
    gpus = GpuRequest(mode="ids", ids=list(gpu_ids)) if gpu_ids and passthrough \
        else GpuRequest()
    return spec.run.model_copy(update={
        "state_dir": ctx.state.root, "run_id": ctx.run.run_id,
        "resources": spec.run.resources.model_copy(update={"gpus": gpus})})


def resolve_item(spec: CommitItemSpec, ctx: BatchContext, item: PlanItem, spool: Path
                 ) -> CommitJob:
    """The plan item as a CommitJob: --task, else the catalogue, else the repository's own
    isobench.toml (in --repo, or in the plan's repo for commits no catalogue knows)."""
    return item_job(spec, ctx.repo, item, spool)


def item_job(spec: CommitItemSpec, plan_repo: str | None, item: PlanItem, spool: Path
             ) -> CommitJob:
    """resolve_item given the plan's repository (also used before a batch exists: preflight)."""
    task_file = spec.task_file.local(spool) if spec.task_file else None
    repo = spec.repo
    if repo is None and task_file is None and plan_repo and not _catalogued(item.human):
        repo = plan_repo
    job = resolve_job(item.human, task_file=task_file, repo=repo, item_id=item.item_id,
                      base=item.pre or None, parent_index=item.pre_parent_index)
    return on_target_device(job, spec.run.images.vllm.target_device)


def _catalogued(sha: str) -> bool:
    try:
        find_commit(sha)
        return True
    except UserInputError as exc:
        return "in no built-in catalogue" not in str(exc)  # catalogued but not runnable: say so


def item_log(path: Path, item_id: str, echo: bool) -> Log:
    """The pipeline's log for one attempt: appended to attempt-<n>/controller.log (it travels
    back from Ray nodes with the attempt), and echoed on stderr with the item id if asked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()

    def log(message: str) -> None:
        line = f"{datetime.now():%H:%M:%S} {message}\n"
        with lock, open(path, "a", encoding="utf-8") as handle:
            handle.write(line)
        if echo:
            sys.stderr.write(f"{item_id}: {line}")
            sys.stderr.flush()

    return log


def bad_input_attempt(number: int, gpu_ids: list[str], exc: UserInputError) -> Attempt:
    """An item that cannot run as planned: a permanent failure of this item, not of the batch."""
    return Attempt(attempt=number, status=RunStatus.INFRA_ERROR, finished_at=utcnow(),
                   gpu_ids=list(gpu_ids),
                   signature=signature(BAD_INPUT, str(exc), "resolve"))


def commit_run_item(spec: CommitItemSpec, ctx: BatchContext) -> RunItem:
    """The pipeline behind the run_item contract (executor.runs.batch.base)."""

    def run_item(item: PlanItem, attempt_number: int, gpu_ids: list[str],
                 cancel: Cancel) -> Attempt:
        item_dir = ctx.state.item_dir(ctx.run, item.item_id)
        log = item_log(item_dir / attempt_dir_name(attempt_number) / CONTROLLER_LOG, item.item_id,
                       spec.echo)
        spool = ctx.state.root / ".inputs"
        try:
            job = resolve_item(spec, ctx, item, spool)
            patch = spec.patches.get(item.item_id) or spec.patch
            agent = make_agent(spec.agent, patch_file=patch.local(spool) if patch else None,
                               script_file=spec.script.local(spool) if spec.script else None,
                               default_patch=reference_patch(job), llm=spec.llm)
        except UserInputError as exc:
            log(f"not runnable: {exc}")
            return bad_input_attempt(attempt_number, gpu_ids, exc)
        log(f"{job.task.name} {job.item_id}: human {job.human_sha[:12]}, base "
            f"{job.base_sha[:12]}, agent {spec.agent}, gpus {','.join(gpu_ids) or 'none'}")
        options = attempt_options(spec, ctx, gpu_ids)
        if item.item_id in spec.aa_items:
            options.bench = options.bench.model_copy(update={"aa": True})
        with activate(spec.gateway):
            outcome = run_commit(job, agent, options, log,
                                 slot=AttemptSlot(item_dir=item_dir, number=attempt_number,
                                                  gpu_ids=gpu_ids), cancel=cancel)
        log(f"attempt {attempt_number}: {outcome.status.value}")
        journal = load_journal(item_dir / JOURNAL_NAME)
        return next(a for a in journal.attempts if a.attempt == attempt_number)

    return run_item
