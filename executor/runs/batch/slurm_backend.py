"""The Slurm backend: one Slurm job per item attempt, through sbatch/squeue/scontrol/scancel.

The controller (`isobench run --backend slurm`, on a login node) runs the same Dispatcher as
the local and Ray backends: it owns the queue, the item locks, the journals, the retry policy
and the model gateway; only attempts run elsewhere. For attempt n of an item it writes the
attempt's spec into a spool dir on the filesystem the controller and the nodes share
(`--slurm-spool`, default `<state>/.slurm`) and submits one job (`--gres gpu:N`, the batch's
partition, time and memory). The job (slurm_job) runs the attempt in a node-local state dir
with the container engine the run chose, and leaves the item's files and its attempt in the
spool; the controller lands them once Slurm says the job ended.

- **State**: squeue (every `poll_s`) for jobs in flight; once a job left the active states,
  its final state, exit code and reason from scontrol (sacct where slurmctld forgot it).
- **A job that ended without a result, or was cancelled, timed out, preempted or lost with
  its node** is an infrastructure attempt named by Slurm's state (errors.SLURM_*), with the
  state, exit code and reason as its evidence; the policy retries it like any infra failure.
  A cancelled job that managed to write its result still counts as cancelled (its files land).
- **No provider key on a node**: sbatch runs with an environment reduced to what a node
  needs, and the job gets only those names (`--export=NAMES`): never the key's variable nor
  anything named like a secret. LLM agents lease from the controller's gateway over HTTP.
- **Ctrl-C**: the controller scancels its jobs (SIGTERM: each job removes its sandboxes and
  writes an `interrupted` attempt) and waits for them to end.
- **A killed controller**: its jobs run on. The next controller (`--resume`), holding the
  item's lock, scancels any job of that item still active before submitting a new one, and
  waits for it to end; the dispatcher has closed its attempt as `controller_lost`.
- Jobs use `--no-requeue`: Slurm's own requeue would hide a try from the journal.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from executor.core.errors import INTERRUPTED, signature
from executor.core.journal import RunStatus, utcnow, write_bytes_atomic
from executor.core.task import PlanItem
from executor.records.state import PATCH_NAME, attempt_dir_name, path_component
from executor.runs.batch.artifacts import land_item_archive
from executor.runs.batch.base import BatchContext, BatchSummary, Observer
from executor.runs.batch.dispatch import Completion, Dispatcher, Ticket
from executor.runs.batch.leases import GpuLeasePool
from executor.runs.batch.order import Priority
from executor.runs.batch.slurm_cli import JobState, SlurmCli, job_signature
from executor.runs.batch.slurm_job import (
    ARCHIVE_NAME,
    RESULT_NAME,
    SCRIPT_NAME,
    SPEC_NAME,
    AttemptSpec,
    JobFactory,
    JobResult,
)
from executor.runs.cancel import Cancel

SIGNAL_LATENCY_S = 0.5  # the dispatcher's thread comes back this often to let Ctrl-C run
SLURM_OUT_NAME = "slurm.out"  # the job's stdout/stderr, copied into the attempt dir
STALE_JOB_WAIT_S = 300  # a dead controller's job must end this soon after scancel

# What a node may see of the controller's environment: the engine's address, isobench's own
# settings, the basics of a shell. A name that looks like a secret never goes, even if listed.
EXPORT_NAMES = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME",
                "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
                "CONTAINER_HOST", "XDG_RUNTIME_DIR", "VIRTUAL_ENV", "PYTHONPATH",
                "SLURM_CONF")
EXPORT_PREFIXES = ("ISOBENCH_",)
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH", re.IGNORECASE)


class SlurmOptions(BaseModel):
    """Where jobs go and what each asks of the cluster."""

    gres: str | None = Field(default=None, description="--gres of each job, e.g. gpu:1; None "
                                                       "asks for no GPU.")
    partition: str | None = Field(default=None, description="--partition.")
    time_limit: str | None = Field(default=None, description="--time, e.g. 2:00:00.")
    mem: str | None = Field(default=None, description="--mem, e.g. 32G.")
    cpus_per_item: int | None = Field(default=None, ge=1, description="--cpus-per-task.")
    extra_args: list[str] = Field(default_factory=list, description="More sbatch arguments.")
    workers: int = Field(default=8, ge=1, description="Jobs in flight at most.")
    spool: Path = Field(description="Shared dir for specs, results and job output.")
    node_state_dir: str | None = Field(default=None, description="Parent of each job's "
                                                                 "node-local state dir.")
    poll_s: float = Field(default=5.0, gt=0, description="Seconds between squeue polls.")
    python: str = Field(default_factory=lambda: sys.executable,
                        description="The Python with isobench installed, on every node.")
    export: list[str] = Field(default_factory=list, description="More variable names to "
                                                                "pass to jobs.")
    secret_env: list[str] = Field(default_factory=list, description="Names never passed "
                                                                    "(the key's variable).")


def job_environment(options: SlurmOptions, environ: dict[str, str] | None = None
                    ) -> dict[str, str]:
    """The only environment sbatch (and through --export, the job) sees."""
    environ = dict(os.environ if environ is None else environ)
    wanted = set(EXPORT_NAMES) | set(options.export) | {
        n for n in environ if n.startswith(EXPORT_PREFIXES)}
    return {n: v for n, v in environ.items()
            if n in wanted and n not in options.secret_env and not SECRET_NAME.search(n)
            and "," not in v}  # --export cannot carry a comma


def job_name(run_id: str, item_id: str) -> str:
    return f"isobench-{run_id}-{item_id}"


def sbatch_args(options: SlurmOptions, name: str, out_file: Path) -> list[str]:
    args = [f"--job-name={name}", f"--output={out_file}", "--no-requeue",
            f"--chdir={out_file.parent}"]
    if options.gres:
        args.append(f"--gres={options.gres}")
    for flag, value in (("--partition", options.partition), ("--time", options.time_limit),
                        ("--mem", options.mem), ("--cpus-per-task", options.cpus_per_item)):
        if value is not None:
            args.append(f"{flag}={value}")
    return args + list(options.extra_args)


class _Job(BaseModel):
    job_id: str
    name: str
    dir: Path


class SlurmExecutor:
    """Submits attempts as Slurm jobs and turns ended jobs into completions."""

    def __init__(self, ctx: BatchContext, factory: JobFactory, options: SlurmOptions,
                 cli: SlurmCli):
        self.ctx, self.factory, self.options, self.cli = ctx, factory, options, cli
        self.capacity = options.workers
        self.env = job_environment(options)
        self._in_flight: dict[str, tuple[_Job, Ticket]] = {}
        self._woken = threading.Event()
        self._cancel: Cancel | None = None
        self._cancelled: set[str] = set()  # jobs we scancel'ed for Ctrl-C: interrupted
        self._last_poll = 0.0

    # ------------------------------------------------------------------ submit

    def attempt_dir(self, ticket: Ticket) -> Path:
        return (self.options.spool / path_component(self.ctx.run.run_id) /
                path_component(ticket.item.item_id) / attempt_dir_name(ticket.attempt))

    def submit(self, ticket: Ticket, run_item, cancel: Cancel) -> None:
        self._cancel = cancel
        name = job_name(self.ctx.run.run_id, ticket.item.item_id)
        self._end_stale_jobs(name)
        folder = self.attempt_dir(ticket)
        shutil.rmtree(folder, ignore_errors=True)  # a try of an earlier, killed controller
        folder.mkdir(parents=True)
        patch_file = ticket.journal.path.parent / PATCH_NAME
        spec = AttemptSpec(
            factory=self.factory, ctx=self.ctx, item=ticket.item, number=ticket.attempt,
            journal_json=ticket.journal.path.read_text(),
            patch_b64=base64.b64encode(patch_file.read_bytes()).decode()
            if patch_file.is_file() else None, node_state_dir=self.options.node_state_dir)
        spec_file = folder / SPEC_NAME
        fd = os.open(spec_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(spec.dump())
        script = folder / SCRIPT_NAME
        script.write_text(f"#!/bin/sh\nexec {shlex.quote(self.options.python)} -m "
                          f"executor.runs.batch.slurm_job {shlex.quote(str(folder))}\n")
        script.chmod(0o755)
        job_id = self.cli.sbatch(script, sbatch_args(self.options, name,
                                                     folder / SLURM_OUT_NAME), self.env)
        self._in_flight[job_id] = (_Job(job_id=job_id, name=name, dir=folder), ticket)

    def _end_stale_jobs(self, name: str) -> None:
        """A job of this item still active was left by a dead controller (we hold the item's
        lock): scancel it and wait until it ended, so that its sandboxes are gone."""
        stale = [j.job_id for j in self.cli.squeue(name).values() if j.active]
        if not stale:
            return
        self.cli.scancel(stale)
        deadline = time.monotonic() + STALE_JOB_WAIT_S
        while any(j.active for j in self.cli.squeue(name).values() if j.job_id in stale):
            if time.monotonic() > deadline:
                break  # the new attempt runs anyway; the node's reaper removes leftovers
            time.sleep(self.options.poll_s)

    # ------------------------------------------------------------------ wait

    def wait(self, timeout: float | None) -> list[Completion]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._woken.is_set():
            self._cancel_if_asked()
            if self._in_flight and time.monotonic() - self._last_poll >= self.options.poll_s:
                done = self._poll()
                if done:
                    return done
            left = SIGNAL_LATENCY_S if deadline is None else deadline - time.monotonic()
            if left <= 0:
                return []
            self._woken.wait(min(SIGNAL_LATENCY_S, left, self.options.poll_s))
        self._woken.clear()
        return []

    def _poll(self) -> list[Completion]:
        self._last_poll = time.monotonic()
        names = {job.name for job, _ in self._in_flight.values()}
        seen: dict[str, JobState] = {}
        for name in names:
            seen.update(self.cli.squeue(name))
        done = []
        for job_id in list(self._in_flight):
            state = seen.get(job_id)
            if state is not None and state.active:
                continue
            job, ticket = self._in_flight.pop(job_id)
            done.append(self._complete(job, ticket))
        return done

    def _cancel_if_asked(self) -> None:
        if self._cancel is None or not self._cancel.is_set():
            return
        pending = [j for j in self._in_flight if j not in self._cancelled]
        if pending:
            self.cli.scancel(pending)
            self._cancelled.update(pending)

    def wake(self) -> None:
        self._woken.set()

    def shutdown(self) -> None:
        self.cli.scancel(list(self._in_flight))  # only after Ctrl-C abandons them, or a crash

    # ------------------------------------------------------------------ results

    def _complete(self, job: _Job, ticket: Ticket) -> Completion:
        final = self.cli.final_state(job.job_id)
        result_file = job.dir / RESULT_NAME
        result = JobResult.model_validate_json(result_file.read_bytes()) \
            if result_file.is_file() else None
        item_dir = self.ctx.state.item_dir(self.ctx.run, ticket.item.item_id)
        if result is not None and result.attempt is not None and (job.dir / ARCHIVE_NAME).is_file():
            land_item_archive((job.dir / ARCHIVE_NAME).read_bytes(), item_dir)
        self._keep_output(job, item_dir / attempt_dir_name(ticket.attempt))
        shutil.rmtree(job.dir, ignore_errors=True)
        ended_ok = final is None or final.state == "COMPLETED"
        if job.job_id in self._cancelled:  # our own Ctrl-C
            attempt = (result.attempt if result and result.attempt else ticket.begun)
            return Completion(ticket, attempt=attempt.model_copy(update={
                "status": RunStatus.INTERRUPTED, "finished_at": attempt.finished_at or utcnow(),
                "signature": attempt.signature if attempt.status == RunStatus.INTERRUPTED
                else signature(INTERRUPTED, f"scancel of slurm job {job.job_id}", "batch")}))
        if result is not None and result.attempt is not None and ended_ok:
            return Completion(ticket, attempt=result.attempt)
        if result is not None and result.error and ended_ok:
            return Completion(ticket, error=RuntimeError(result.error), error_text=result.error)
        # Slurm ended it (or it ended without a word): Slurm's state is the evidence.
        base = result.attempt if result and result.attempt else ticket.begun
        return Completion(ticket, attempt=base.model_copy(update={
            "status": RunStatus.INFRA_ERROR, "finished_at": utcnow(),
            "signature": job_signature(final, job.job_id)}))

    def _keep_output(self, job: _Job, attempt_dir: Path) -> None:
        """The job's own output beside the attempt's logs (it says why a job died)."""
        out = job.dir / SLURM_OUT_NAME
        if out.is_file():
            write_bytes_atomic(attempt_dir / SLURM_OUT_NAME, out.read_bytes())


def _runs_remotely(*_args):
    raise AssertionError("the Slurm backend builds run_items inside its jobs")


class SlurmBackend:
    """One Slurm job per attempt; the dispatcher stays on the controller."""

    name = "slurm"

    def __init__(self, options: SlurmOptions, cli: SlurmCli | None = None):
        self.options = options
        self.cli = cli or SlurmCli()

    def run(self, items: Sequence[PlanItem], factory: JobFactory, ctx: BatchContext, *,
            cancel: Cancel | None = None, observer: Observer | None = None,
            priority: Priority | None = None) -> BatchSummary:
        """Like LocalBackend.run, but takes a JobFactory (the run_item is built in each job)."""
        executor = SlurmExecutor(ctx, factory, self.options, self.cli)
        leases = GpuLeasePool([], cpu_slots=self.options.workers)  # Slurm picks the devices
        return Dispatcher(ctx, items, _runs_remotely, executor, leases, cancel=cancel,
                          observer=observer, priority=priority).run()
