"""run_commit: one perf commit through fresh containers, leaving a complete, honest record.

    images      base + human sandbox images (content-addressed: reused when present)
    agent       fresh sandbox at base; prove no leak; agent runs; controller computes patch
                (skipped when the previous attempt's patch failed only in the benchmark:
                see agent_reuse)
    bench       base / human / agent, each trial in its own fresh container
    record      journal.json (attempts), manifest.json, results.json, model_patch.diff

`isobench run-commit`, batches (local or Ray) and reruns all call this one function. It never
raises for a failed run: the failure is classified, journaled and returned. It raises only for
bad input found before an attempt starts (UserInputError) and re-raises KeyboardInterrupt after
journaling the attempt as interrupted.

One record per attempt. Alone (`run-commit`), run_commit appends attempt n+1 to the item's
journal. In a batch, the batch layer has already journaled attempt n as `running` under the
item lock (so a crash before any work is visible); it passes an `AttemptSlot` and run_commit
fills in that same record, phase by phase, instead of appending another. A `cancel` token set
meanwhile (Ctrl-C on a batch) removes the item's sandboxes and refuses new ones; the attempt is
journaled `interrupted`, never as the failure that the removal caused.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, Iterator

from pydantic import BaseModel, Field, model_validator

from executor import __version__
from executor.runs.agent_reuse import earlier_agent_result
from executor.parts.agents.base import Agent, AgentEnding, AgentRun, AgentTask, PrepareContext
from executor.parts.bench.results import BenchResults
from executor.parts.bench.run import BenchOptions, bench_record, benchmark
from executor.engine.images import (BaseImageRecipe, ImageRef, base_identity, ensure_base_image,
                            ensure_sandbox_image, resolve_named_base, sandbox_recipe)
from executor.core.determinism import DETERMINISM_ENV
from executor.core.errors import (DISK_FULL, EngineUnavailable, IMAGE_BUILD_FAILED, INTERRUPTED, LEAK_DETECTED,
                             ErrorSignature, ImageBuildError, IsobenchError, LeakDetected,
                             classify_engine, classify_text, unclassified)
from executor.core.errors import signature as error_signature
from executor.core.journal import (Attempt, Journal, Manifest, PhaseTiming, RunStatus, exit_code_for,
                              is_disk_full, load_journal, utcnow, write_bytes_atomic,
                              write_json_atomic)
from executor.parts.gateway.attempt import route_attempt
from executor.parts.prompt import render_prompt
from executor.core.redact import Redactor
from executor.parts.repo import (REPO_DIR, SCRATCH_DIR, export_leakproof, harness_patch, open_repo,
                           patch_stats, verify_no_leak)
from executor.runs.cancel import CancelToken
from executor.engine.sandbox import (ENGINE_ERRORS, Sandbox, allow_item_sandboxes,
                                     refuse_item_sandboxes, remove_item_sandboxes)
from executor.core.resources import Resources, SandboxSpec
from executor.records.state import (save_journal, save_manifest, JOURNAL_NAME, PATCH_NAME, PROMPT_NAME, RESULTS_NAME,
                            TRACEBACK_NAME, JournalConflict, RunKey, StateLayout,
                            attempt_dir_name)
from executor.core.task import CommitJob
from executor.parts.vllm.jobs import VllmBuildOptions

Log = Callable[[str], None]
AGENT_SANDBOX_GRACE_S = 900  # room after the agent's budget to collect patch and trajectory
# How long an attempt that was cancelled waits for its sandboxes' removal before it ends.
CANCEL_REMOVAL_WAIT_S = 60


class AgentLimits(BaseModel):
    """What bounds the agent of an attempt: time, steps and network."""

    budget_s: int = Field(default=7200, description="Agent wall-clock budget.")
    max_steps: int | None = Field(default=None, description="Agent step limit.")
    network: str = Field(default="bridge", description="Network of the agent sandbox.")


class ImageInputs(BaseModel):
    """How the sandbox images are built."""

    base_recipe: BaseImageRecipe = Field(default_factory=BaseImageRecipe,
                                         description="The offline Debian base (non-vLLM tasks).")
    vllm: VllmBuildOptions = Field(default_factory=VllmBuildOptions,
                                   description="Image inputs for vLLM tasks.")


# RunOptions' keys before it was split by concern, and the part each moved to: callers written
# against the flat shape (other branches, scripts) still construct it.
_FLAT_KEYS = {"agent_budget_s": ("agent", "budget_s"), "max_steps": ("agent", "max_steps"),
              "agent_network": ("agent", "network"), "base_recipe": ("images", "base_recipe"),
              "vllm": ("images", "vllm")}


class RunOptions(BaseModel):
    """How to run one commit (shared by run-commit, batches and reruns), by concern: where it
    is recorded, what its containers may use, how the agent is bounded, how images are built,
    how the benchmark measures."""

    state_dir: Path = Field(description="Root of the state layout.")
    run_id: str = Field(description="Groups the items of one invocation or batch.")
    command_line: list[str] = Field(default_factory=lambda: list(sys.argv),
                                    description="Recorded in the manifest (redacted).")
    resources: Resources = Field(default_factory=Resources,
                                 description="GPUs and limits of every container.")
    agent: AgentLimits = Field(default_factory=AgentLimits, description="The agent's bounds.")
    images: ImageInputs = Field(default_factory=ImageInputs, description="Image inputs.")
    bench: BenchOptions = Field(default_factory=BenchOptions, description="How to measure.")
    skip_bench: bool = Field(default=False, description="Stop after the agent phase.")
    command_options: dict | None = Field(
        default=None, description="The command's resolved options (job file, every option's "
                                  "value), recorded in the manifest (executor/cli/jobfile.py).")

    @model_validator(mode="before")
    @classmethod
    def _from_flat_keys(cls, data):
        if not isinstance(data, dict) or not set(data) & set(_FLAT_KEYS):
            return data
        data = dict(data)
        for key, (part, field) in _FLAT_KEYS.items():
            if key in data:
                section = data.setdefault(part, {})
                if isinstance(section, BaseModel):
                    section = data[part] = section.model_dump()
                section[field] = data.pop(key)
        return data


class AttemptSlot(BaseModel):
    """An attempt the batch layer journaled as `running`: run_commit fills in that record."""

    item_dir: Path = Field(description="The item's directory in the batch's layout.")
    number: int = Field(ge=1, description="The running attempt's number in its journal.")
    gpu_ids: list[str] = Field(default_factory=list,
                               description="Devices leased to it (recorded even when not "
                                           "passed into sandboxes).")


class CommitOutcome(BaseModel):
    """What run_commit returns: the status, where everything is, and the numbers."""

    status: RunStatus
    exit_code: int
    item_dir: Path
    attempt: int
    signature: ErrorSignature | None = None
    patch_bytes: int = 0
    results: BenchResults | None = None
    detail: str = ""


def item_dir_for(options: RunOptions, job: CommitJob, agent: Agent) -> Path:
    """STATE/runs/<task>/<agent>/<model>/<run_id>/<item_id>/, the layout batches use too."""
    info = agent.info()
    key = RunKey(task=job.task.name, agent=info.name, model=info.model, run_id=options.run_id)
    return StateLayout(root=options.state_dir).item_dir(key, job.item_id)


# --------------------------------------------------------------------------- images


def ensure_images(job: CommitJob, options: RunOptions, log_dir: Path, log: Log
                  ) -> tuple[ImageRef, dict[str, ImageRef]]:
    """The base tier, then one sandbox image per commit (base and human)."""
    task = job.task
    if task.builder == "vllm":  # CUDA base, torch pin and install strategy planned per commit
        from executor.parts.vllm.jobs import ensure_vllm_job_images

        base, images, _ = ensure_vllm_job_images(job, options.images.vllm, log_dir, log)
        return base, images
    base = (resolve_named_base(task.base_image, log=log) if task.base_image
            else ensure_base_image(options.images.base_recipe, log=log))
    repo = open_repo(task.repo)
    images: dict[str, ImageRef] = {}
    for role, sha in (("base", job.base_sha), ("human", job.human_sha)):
        recipe = sandbox_recipe(task.name, sha, base_identity(base),
                                {"INSTALL_COMMAND": task.install_command, "REPO_DIR": REPO_DIR,
                                 **task.build_args})
        images[role] = ensure_sandbox_image(
            recipe, lambda dest, sha=sha: export_leakproof(repo, sha, dest),
            base_tag=base.tag, log_dir=log_dir, log=log)
    return base, images


# --------------------------------------------------------------------------- attempt helpers


class _Stopped(IsobenchError):
    """The attempt was cancelled between phases."""


class _AttemptRecorder:
    """Keeps the journal on disk in step with the attempt, phase by phase."""

    def __init__(self, journal: Journal, attempt: Attempt, path: Path,
                 cancel: CancelToken | None = None):
        self.journal, self.attempt, self.path, self.cancel = journal, attempt, path, cancel

    def save(self) -> None:
        save_journal(self.path, self.journal)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if self.cancel is not None and self.cancel.is_set():
            raise _Stopped(f"cancelled before {name}")
        started, t0 = utcnow(), time.monotonic()
        try:
            yield
        finally:
            self.attempt.phases.append(PhaseTiming(name=name, started_at=started,
                                                   duration_s=round(time.monotonic() - t0, 3)))
            self.save()

    def finish(self, status: RunStatus, signature: ErrorSignature | None = None) -> None:
        self.attempt.status = status
        self.attempt.signature = signature or self.attempt.signature
        self.attempt.finished_at = utcnow()
        self.save()


def _open_attempt(path: Path, job: CommitJob, agent: Agent, options: RunOptions,
                  slot: AttemptSlot | None) -> tuple[Journal, Attempt]:
    """The journal and the attempt this run records: a new one appended, or the batch's."""
    info = agent.info()
    journal = load_journal(path) or Journal(
        task_id=job.task.name, item_id=job.item_id, run_id=options.run_id,
        commits={}, agent=info.name, model=info.model)
    journal.commits = {"base": job.base_sha, "human": job.human_sha}  # plans may say `sha^1`
    if slot is None:
        attempt = Attempt(attempt=len(journal.attempts) + 1,
                          gpu_ids=options.resources.gpus.ids)
        journal.attempts.append(attempt)
        return journal, attempt
    found = [a for a in journal.attempts if a.attempt == slot.number]
    if not found or found[0].finished:
        raise JournalConflict(f"{path}: attempt {slot.number} is not a running attempt")
    attempt = found[0]
    # Where it really runs: a Ray task's node and process, not the driver that journaled it.
    attempt.host, attempt.controller_pid = os.uname().nodename, os.getpid()
    attempt.gpu_ids = list(slot.gpu_ids)
    return journal, attempt


@contextlib.contextmanager
def stop_on_cancel(cancel: CancelToken | None, run_id: str, item: str, log: Log
                   ) -> Iterator[None]:
    """While the attempt runs, a set `cancel` stops the item's sandboxes."""
    if cancel is None:
        yield
        return
    guard = threading.RLock()  # re-entrant: a SIGINT handler may set `cancel` on this thread
    live = [True]
    removers: list[threading.Thread] = []

    def remove() -> None:
        try:
            removed = remove_item_sandboxes(run_id, item)
            log(f"cancelled: removed {len(removed)} sandbox(es)")
        except Exception as exc:  # noqa: BLE001 - they expire on their own; say so, go on
            log(f"cancelled: could not remove sandboxes now ({exc}); they expire on their own")

    def stop() -> None:
        with guard:  # never after the `finally` below has allowed the item again
            if live[0]:
                refuse_item_sandboxes(run_id, item)
                # Removal off the caller's thread: cancel is set from a signal handler, which
                # must return at once; Docker calls take a while.
                remover = threading.Thread(target=remove, name=f"stop-{item}", daemon=True)
                removers.append(remover)
                remover.start()

    cancel.on_set(stop)
    try:
        yield
    finally:
        with guard:
            live[0] = False
        # The attempt is over only once its remover has logged: a Ray task packs and then
        # deletes the attempt's dir right after this, and a late log line would recreate it.
        for remover in removers:
            remover.join(CANCEL_REMOVAL_WAIT_S)
        allow_item_sandboxes(run_id, item)


def _status_for(run: AgentRun, patch: bytes) -> RunStatus:
    """The controller's verdict on the agent phase: only a finished agent with a non-empty
    harness patch goes on to the benchmark."""
    mapping = {AgentEnding.MAX_STEPS: RunStatus.MAX_STEPS, AgentEnding.TIMEOUT: RunStatus.TIMEOUT,
               AgentEnding.PATCH_APPLY_FAILED: RunStatus.PATCH_APPLY_FAILED,
               AgentEnding.ERROR: RunStatus.AGENT_ERROR, AgentEnding.INFRA: RunStatus.INFRA_ERROR}
    if run.ending in mapping:
        return mapping[run.ending]
    return RunStatus.SUCCESS if patch.strip() else RunStatus.NO_PATCH


def _infra_signature(exc: BaseException, source: str) -> ErrorSignature:
    if isinstance(exc, IsobenchError) and exc.signature:
        return exc.signature
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (*ENGINE_ERRORS, EngineUnavailable)):  # never the provider's fault
        return classify_engine(text, source) or unclassified(text, source)
    return classify_text(text, source) or unclassified(text, source)


# --------------------------------------------------------------------------- the function


def run_commit(job: CommitJob, agent: Agent, options: RunOptions, log: Log = print,
               redactor: Redactor | None = None, *, slot: AttemptSlot | None = None,
               cancel: CancelToken | None = None) -> CommitOutcome:
    """Run one commit end to end. See the module docstring for the contract."""
    with stop_on_cancel(cancel, options.run_id, job.item_id, log):
        return _run_commit(job, agent, options, log, redactor, slot, cancel)


def _run_commit(job: CommitJob, agent: Agent, options: RunOptions, log: Log,
                redactor: Redactor | None, slot: AttemptSlot | None,
                cancel: CancelToken | None) -> CommitOutcome:
    redactor = (redactor or Redactor()).with_secrets(agent.secret_env().values())
    item_dir = slot.item_dir if slot else item_dir_for(options, job, agent)
    journal_path = item_dir / JOURNAL_NAME
    journal, attempt = _open_attempt(journal_path, job, agent, options, slot)
    number = attempt.attempt
    rec = _AttemptRecorder(journal, attempt, journal_path, cancel)
    rec.save()
    attempt_dir = item_dir / attempt_dir_name(number)
    attempt_dir.mkdir(parents=True, exist_ok=True)
    outcome = CommitOutcome(status=RunStatus.RUNNING, exit_code=1, item_dir=item_dir,
                            attempt=number)

    def done(status: RunStatus, signature: ErrorSignature | None = None,
             detail: str = "") -> CommitOutcome:
        if cancel is not None and cancel.is_set():
            # Whatever ended it (a removed sandbox, a refused one), the user stopped it; even
            # a result that got through may be short of trials. Resume runs it again.
            status, detail = RunStatus.INTERRUPTED, "cancelled"
            signature = error_signature(INTERRUPTED, "cancel requested", "controller")
        rec.finish(status, signature)
        outcome.status = status
        outcome.exit_code = exit_code_for(status, rec.attempt.signature)
        outcome.signature, outcome.detail = rec.attempt.signature, detail
        return outcome

    try:
        with rec.phase("images"):
            base, images = ensure_images(job, options, attempt_dir, log)
        rec.attempt.images = {"os_base": base.id, **{k: v.id for k, v in images.items()}}
        reused = earlier_agent_result(journal, number, item_dir)
        if reused is not None:
            log(f"agent: not run again; attempt {reused.origin}'s patch failed only in the "
                f"benchmark, so this attempt benchmarks it again")
            rec.attempt.agent_reused_from = reused.origin
            run, patch = AgentRun(ending=AgentEnding(reused.agent_outcome)), reused.patch
        else:
            # Through the controller's gateway when one is active: the journal's usage and
            # model-call counts then come from its record, not from the agent's report.
            traffic = None
            try:
                with route_attempt(agent, attempt_dir, redactor) as traffic:
                    run, patch = _agent_phase(job, agent, options, base, images, item_dir,
                                              attempt_dir, rec, redactor, log)
            finally:  # journaled however the agent phase ended
                if traffic is not None:
                    rec.attempt.model_traffic = traffic.traffic
                    rec.attempt.usage = traffic.usage or rec.attempt.usage
            run = traffic.apply(run)
        rec.attempt.agent_outcome, rec.attempt.usage = run.ending.value, run.usage
        write_bytes_atomic(attempt_dir / PATCH_NAME, patch)
        write_bytes_atomic(item_dir / PATCH_NAME, patch)
        rec.attempt.patch = patch_stats(patch)
        rec.save()  # a controller killed in the benchmark leaves a patch the retry can reuse
        outcome.patch_bytes = len(patch)
        status = _status_for(run, patch)
        log(f"agent: {run.ending.value}; harness patch {rec.attempt.patch.files_changed} "
            f"file(s), +{rec.attempt.patch.lines_added}/-{rec.attempt.patch.lines_removed}")
        if status != RunStatus.SUCCESS or options.skip_bench:
            return done(status, run.signature, run.detail)

        with rec.phase("bench"):
            results = benchmark(job, images, patch, options.bench, attempt_dir / "bench",
                                options.run_id, log, resources=options.resources)
        write_json_atomic(attempt_dir / RESULTS_NAME, results)
        write_json_atomic(item_dir / RESULTS_NAME, results)
        outcome.results = results
        if results.verdict == "bench_failed":
            sig = (classify_text(results.verdict_reason, "bench")
                   or unclassified(results.verdict_reason, "bench"))
            return done(RunStatus.BENCH_FAILED, sig, results.verdict_reason)
        return done(RunStatus.SUCCESS, None, f"verdict {results.verdict}")
    except KeyboardInterrupt:
        done(RunStatus.INTERRUPTED, error_signature(INTERRUPTED, "KeyboardInterrupt",
                                                    "controller"))
        raise
    except LeakDetected as exc:
        return done(RunStatus.INFRA_ERROR,
                    error_signature(LEAK_DETECTED, str(exc), "leak_check"))
    except ImageBuildError as exc:
        return done(RunStatus.INFRA_ERROR,
                    error_signature(IMAGE_BUILD_FAILED, str(exc), "build"), str(exc))
    except (IsobenchError, *ENGINE_ERRORS) as exc:
        return done(RunStatus.INFRA_ERROR, _infra_signature(exc, "docker"), str(exc))
    except Exception as exc:  # a bug in isobench: record it, never call it success
        if is_disk_full(exc):  # not a bug: the state dir's disk is full (no room for a trace)
            return done(RunStatus.INFRA_ERROR, error_signature(DISK_FULL, f"{exc}", "controller"),
                        str(exc))
        (attempt_dir / TRACEBACK_NAME).write_text(
            redactor.text(traceback.format_exc()))
        return done(RunStatus.INFRA_ERROR, unclassified(f"{type(exc).__name__}: {exc}",
                                                        "controller"), str(exc))


def _agent_phase(job: CommitJob, agent: Agent, options: RunOptions, base: ImageRef,
                 images: dict[str, ImageRef], item_dir: Path, attempt_dir: Path,
                 rec: _AttemptRecorder, redactor: Redactor, log: Log) -> tuple[AgentRun, bytes]:
    """Prompt, agent sandbox, leak check, the agent's run, and the controller's patch."""
    info = agent.info()
    prompt = render_prompt(job.task, repo_dir=REPO_DIR,
                           scratch_dir=f"{REPO_DIR}/{SCRATCH_DIR}", base_sha=job.base_sha)
    (attempt_dir / PROMPT_NAME).write_text(prompt.text)
    _write_manifest(item_dir, job, agent, options, images, prompt.sha256)

    with rec.phase("agent_prepare"):
        prep = agent.prepare(log, PrepareContext(
            base_image=base.tag, base_image_id=base.id, log_dir=attempt_dir,
            toolchain_command=job.task.build_args.get("TOOLCHAIN_COMMAND", "true")))
    # Again: what prepare() built or resolved (bundle, frozen packages) is in info() now.
    _write_manifest(item_dir, job, agent, options, images, prompt.sha256)
    spec = SandboxSpec(image=images["base"].tag, run_id=options.run_id, item=job.item_id,
                       phase="agent", budget_s=options.agent.budget_s + AGENT_SANDBOX_GRACE_S,
                       limits=options.resources.limits, gpus=options.resources.gpus,
                       network=prep.network or options.agent.network,
                       env={**job.task.env, **prep.env}, mounts=prep.mounts,
                       workdir=REPO_DIR)
    with Sandbox(spec, redactor=redactor) as sandbox:
        with rec.phase("leak_check"):
            verify_no_leak(sandbox, REPO_DIR, job.base_sha, job.human_sha)
        task = AgentTask(item_id=job.item_id, repo_dir=REPO_DIR,
                         scratch_dir=f"{REPO_DIR}/{SCRATCH_DIR}", prompt=prompt.text,
                         budget_s=options.agent.budget_s, max_steps=options.agent.max_steps)
        log(f"agent: {info.name} ({info.model}) working, budget {options.agent.budget_s}s")
        with rec.phase("agent"):
            run = agent.run(sandbox, task, attempt_dir, log)
        if sandbox.oom_killed():
            run = run.model_copy(update={"ending": AgentEnding.INFRA, "signature":
                                         classify_text("OOMKilled", "docker")})
        with rec.phase("patch"):
            patch = harness_patch(sandbox, REPO_DIR, job.base_sha)
    return run, patch


def _write_manifest(item_dir: Path, job: CommitJob, agent: Agent, options: RunOptions,
                    images: dict[str, ImageRef], prompt_sha: str) -> None:
    info = agent.info()
    redactor = Redactor(agent.secret_env().values())
    manifest = Manifest(
        isobench_version=__version__, command_line=[redactor.text(a)
                                                    for a in options.command_line],
        task=redactor.mapping(job.task.model_dump(mode="json")), item_id=job.item_id,
        commits={"base": job.base_sha, "human": job.human_sha},
        images={k: v.id for k, v in images.items()},
        image_tags={k: v.tag for k, v in images.items()},
        agent=redactor.mapping(info.model_dump(mode="json")), prompt_sha256=prompt_sha,
        bench=bench_record(options.bench, options.resources),
        command_options=(redactor.mapping(options.command_options)
                         if options.command_options is not None else None),
        base_recipe=(None if job.task.base_image or job.task.builder == "vllm"
                     else options.images.base_recipe.model_dump(mode="json")),
        determinism=dict(DETERMINISM_ENV))
    save_manifest(item_dir, manifest)
