"""The state directory: where every run, item and attempt lives, and who may write it.

Layout (the README copies this block)::

    STATE/
      runs/<task>/<agent>/<model>/<run_id>/
        plan.json              the plan this run executes (ISO-Bench plan.json format; resumes
                               add items, never drop them)
        policy.json            the retry policy the last controller of this run used
        options.json           the options it ran with (job file, sha256, every value)
        rerun.json             a rerun's origin (bundle, digest) and its image checks
        noise_floor.json       A/A controls of the run (--aa-sample): false-change rate, MDE
        <item_id>/
          journal.json         Journal: one Attempt per try, appended, finished ones never rewritten
                               (a batch appends attempt n as `running`; the pipeline fills it in)
          item.lock            flock(2) target; holds the current holder's host/pid as JSON
          manifest.json        how to rerun the item (written by the one-commit pipeline)
          results.json         benchmark results of the last measured attempt
          model_patch.diff     the harness patch of the last attempt that produced one
          attempt-<n>/         everything attempt n wrote (controller.log, agent logs,
                               trajectory, prompt, patch, bench logs), wherever it ran
            model_calls.jsonl  every model call through the controller's gateway (redacted)

Every component is passed through `path_component`, so a model called `openai/gpt-5` lives in
`openai_gpt-5/` while the journal keeps the real name. Writes are atomic (temp file + rename,
journal.write_json_atomic): a kill -9 leaves the old file or the new one.

Two controllers never run the same item: a controller takes `item.lock` with
`flock(LOCK_EX | LOCK_NB)` before it reads the journal to decide, and keeps it until the attempt
is recorded. The kernel drops the lock when the holding process dies, however it dies, so kill -9
never leaves a stale lock; the host/pid written inside only tells `status` who held it.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, Field

from executor.core.errors import CONTROLLER_LOST, signature
from executor.core.journal import (Attempt, Journal, Manifest, RunStatus, is_disk_full,
                                   load_journal, utcnow, write_json_atomic)
from executor.core.task import Plan, PlanItem

JOURNAL_NAME = "journal.json"
PATCH_NAME = "model_patch.diff"
LOCK_NAME = "item.lock"
PLAN_NAME = "plan.json"
POLICY_NAME = "policy.json"
OPTIONS_NAME = "options.json"  # a command's resolved options (executor/cli/jobfile.py)
# What an item's directory holds besides its journal and patch (and each attempt-<n>/ too).
MANIFEST_NAME = "manifest.json"
RESULTS_NAME = "results.json"
PROMPT_NAME = "prompt.txt"
TRACEBACK_NAME = "controller_traceback.txt"
CONTROLLER_LOG_NAME = "controller.log"
TRAJECTORY_NAME = "trajectory.json"
AGENT_STDOUT_NAME = "agent_stdout.txt"
AGENT_STDERR_NAME = "agent_stderr.txt"
# `isobench bench` records: STATE/bench/<task>/<run_id>/<item>/{results.json, agent.patch, logs/}
BENCH_DIR_NAME = "bench"
BENCH_PATCH_NAME = "agent.patch"
LOGS_DIR_NAME = "logs"
# `isobench images build` of a commit outside the catalogue: plan + resolved package set, in
# the build-log folder beside build-<sha12>.log
IMAGE_MANIFEST_NAME = "image-{sha12}.json"
# Benchmark logs of the behaviour checks (bench/checks.py), beside the trial logs.
GATE_LOG = "gate.log"
GATE_BASE_LOG = "gate-base.log"
OUTPUT_CHECK_BASE_LOG = "output-check-base.log"
OUTPUT_CHECK_AGENT_LOG = "output-check-agent.log"
# A rerun's run dir records where it came from and what its images did (executor/runs/rerun).
RERUN_NAME = "rerun.json"
# The index at the top of an exported bundle (executor/runs/rerun/bundle.py).
BUNDLE_INDEX_NAME = "bundle.json"
# The run's A/A noise floor (bench/noise.py RunNoiseFloor): which items got A/A controls
# (`isobench run --aa-sample`), their false changes and minimum detectable effects.
NOISE_FLOOR_NAME = "noise_floor.json"
# attempt-<n>/: every model call of the attempt through the gateway (executor.parts.gateway.record)
MODEL_CALLS_NAME = "model_calls.jsonl"


def attempt_dir_name(attempt: int) -> str:
    """attempt-<n>: one attempt's files inside its item's directory."""
    return f"attempt-{attempt}"


def new_run_id() -> str:
    """The one run-id function: a sortable timestamp in UTC (the shape of ISO-Bench's run
    directories), so that ids from any host and any command sort by when they started."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d_%H-%M-%S")


def path_component(name: str) -> str:
    """A name made safe as one directory level (batches and the one-commit pipeline alike)."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    # '.' and '..' are legal characters but not legal directory names here.
    return safe if safe.strip(".") else safe.replace(".", "_") or "_"


class RunKey(BaseModel):
    """Names one run: a task, run by one agent with one model, under one run id."""

    task: str = Field(description="Task id, e.g. 'vllm_core' or 'demo'.")
    agent: str = Field(description="Agent name, e.g. 'trae'.")
    model: str = Field(description="LLM model name as given; 'none' for replay agents.")
    run_id: str = Field(description="Run id; a resume continues the same run id.")


class StateLayout(BaseModel):
    """Paths inside one state directory. Pure path arithmetic: creates nothing."""

    root: Path = Field(description="The state directory (holds runs/).")

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run_dir(self, key: RunKey) -> Path:
        return (self.runs / path_component(key.task) / path_component(key.agent)
                / path_component(key.model) / path_component(key.run_id))

    def item_dir(self, key: RunKey, item_id: str) -> Path:
        return self.run_dir(key) / path_component(item_id)

    def journal_path(self, key: RunKey, item_id: str) -> Path:
        return self.item_dir(key, item_id) / JOURNAL_NAME

    def attempt_dir(self, key: RunKey, item_id: str, attempt: int) -> Path:
        return self.item_dir(key, item_id) / attempt_dir_name(attempt)

    def plan_path(self, key: RunKey) -> Path:
        return self.run_dir(key) / PLAN_NAME

    def policy_path(self, key: RunKey) -> Path:
        return self.run_dir(key) / POLICY_NAME

    def noise_floor_path(self, key: RunKey) -> Path:
        return self.run_dir(key) / NOISE_FLOOR_NAME

    def lock(self, key: RunKey, item_id: str) -> "ItemLock":
        return ItemLock(self.item_dir(key, item_id))


def merge_run_plan(path: Path, plan: Plan) -> Plan:
    """Record the plan of a run; a resume with more items adds them, never drops earlier ones."""
    if path.exists():
        old = Plan.model_validate_json(path.read_text())
        known = {i.item_id for i in old.items}
        plan = old.model_copy(update={"items": old.items + [i for i in plan.items
                                                             if i.item_id not in known]})
    write_json_atomic(path, plan)
    return plan


# --------------------------------------------------------------------------- locks


class LockHolder(BaseModel):
    """Who holds (or last held) an item lock, as written inside the lock file."""

    host: str = Field(description="Node name of the holding controller.")
    pid: int = Field(description="Process id of the holding controller.")
    acquired_at: datetime = Field(default_factory=utcnow, description="When it took the lock.")
    purpose: str = Field(default="", description="What it holds the lock for, e.g. the run id.")

    @classmethod
    def me(cls, purpose: str = "") -> "LockHolder":
        return cls(host=os.uname().nodename, pid=os.getpid(), purpose=purpose)


class LockHeld(Exception):
    """Another process (or another ItemLock object in this one) holds the item."""

    def __init__(self, path: Path, holder: LockHolder | None):
        who = f"{holder.host}:{holder.pid}" if holder else "an unknown holder"
        super().__init__(f"{path} is held by {who}")
        self.path, self.holder = path, holder


class ItemLock:
    """An exclusive, non-blocking flock on `<item_dir>/item.lock`.

    flock locks belong to the open file description, so two ItemLock objects conflict even in
    one process, and the kernel releases the lock when the holder dies (no stale locks).
    """

    def __init__(self, item_dir: Path):
        self.path = item_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, holder: LockHolder | None = None) -> None:
        """Take the lock now or raise LockHeld; never waits."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this ItemLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(self.path, read_lock_holder(self.path)) from None
        self._fd = fd
        payload = (holder or LockHolder.me()).model_dump_json().encode()
        # Written in place, not renamed: the lock lives on this inode.
        os.ftruncate(fd, 0)
        os.pwrite(fd, payload, 0)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # an empty file means "nobody"; a dead holder leaves its name
        finally:
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> "ItemLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def read_lock_holder(path: Path) -> LockHolder | None:
    """The holder named in a lock file; None when empty (released cleanly) or unreadable."""
    try:
        text = path.read_text()
        return LockHolder.model_validate_json(text) if text.strip() else None
    except (OSError, ValueError):
        return None


class LockState(BaseModel):
    """What status can say about an item lock without taking it."""

    held: bool | None = Field(description="True held, False free, None unknown (other host).")
    holder: LockHolder | None = Field(default=None, description="Name in the file, if any.")

    @property
    def stale(self) -> bool:
        """A holder is named but the lock is free: that controller died without releasing."""
        return self.held is False and self.holder is not None


def lock_state(item_dir: Path) -> LockState:
    """Is the item lock held right now? Read-only: never takes the lock, because a probing
    `status` must not make a controller think the item belongs to someone else."""
    path = item_dir / LOCK_NAME
    if not path.exists():
        return LockState(held=False)
    holder = read_lock_holder(path)
    held = _flock_listed(path)
    if held is None and holder is not None and holder.host == os.uname().nodename:
        held = _pid_alive(holder.pid)
    return LockState(held=held, holder=holder)


def _flock_listed(path: Path) -> bool | None:
    """Whether /proc/locks lists a FLOCK on this file's inode (None: cannot tell)."""
    try:
        st = path.stat()
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        # e.g. "1: FLOCK  ADVISORY  WRITE 27472 fe:00:2146321 0 EOF": major:minor (hex):inode
        try:
            major, minor, inode = fields[5].split(":")
            if (int(inode) == st.st_ino and int(major, 16) == os.major(st.st_dev)
                    and int(minor, 16) == os.minor(st.st_dev)):
                return True
        except ValueError:
            continue
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------- journals


def save_journal(journal_path: Path, journal: Journal) -> None:
    """The one writer of journal.json (batch, pipeline and rerun all write through here):
    stamped with the time of writing, atomic, so a reader sees the old or the new one."""
    journal.written_at = utcnow()
    try:
        write_json_atomic(journal_path, journal)
    except OSError as exc:
        # A full disk must not leave the attempt `running` for ever (the one record of what
        # happened): rewritten in place, which needs only the bytes the journal grew by (on
        # most filesystems none: it stays in its last block). Not atomic, so only when the
        # atomic write could not be.
        if not is_disk_full(exc) or not journal_path.is_file():
            raise
        with open(journal_path, "r+b") as handle:
            handle.write(journal.model_dump_json(indent=2).encode() + b"\n")
            handle.truncate()
            handle.flush()
            os.fsync(handle.fileno())


def save_manifest(item_dir: Path, manifest: Manifest) -> None:
    """The one writer of manifest.json (the pipeline's, a rerun's copy, a rerun's mark)."""
    write_json_atomic(item_dir / MANIFEST_NAME, manifest)


class JournalConflict(Exception):
    """Someone tried to rewrite a finished attempt or skip an attempt number."""


class ItemJournal:
    """One item's journal.json: create it, append attempts, finish them; never rewrite a
    finished attempt. Callers hold the item lock, so there is one writer at a time."""

    def __init__(self, path: Path, header: Journal):
        self.path = path
        self.header = header  # used only when the journal does not exist yet

    @classmethod
    def for_item(cls, layout: StateLayout, key: RunKey, item: PlanItem) -> "ItemJournal":
        header = Journal(task_id=key.task, item_id=item.item_id, run_id=key.run_id,
                         commits=plan_commits(item), agent=key.agent, model=key.model)
        return cls(layout.journal_path(key, item.item_id), header)

    def load(self) -> Journal:
        return load_journal(self.path) or self.header.model_copy(deep=True)

    def save(self, journal: Journal) -> None:
        save_journal(self.path, journal)

    def close_abandoned(self, journal: Journal, taken_by: LockHolder) -> list[Attempt]:
        """Mark attempts left `running` by a dead controller as interrupted, and save.

        Only valid while holding the item lock: holding it proves no live process is still
        running those attempts.
        """
        closed = []
        for i, att in enumerate(journal.attempts):
            if att.status != RunStatus.RUNNING:
                continue
            evidence = (f"attempt {att.attempt} left running by {att.host}:{att.controller_pid}; "
                        f"lock free when {taken_by.host}:{taken_by.pid} took the item")
            journal.attempts[i] = att.model_copy(update={
                "status": RunStatus.INTERRUPTED, "finished_at": utcnow(),
                "signature": signature(CONTROLLER_LOST, evidence, "batch")})
            closed.append(journal.attempts[i])
        if closed:
            self.save(journal)
        return closed

    def begin(self, journal: Journal, number: int, gpu_ids: tuple[str, ...] = ()) -> Attempt:
        """Append attempt `number` as running (before any work: a crash leaves it visible)."""
        if number != len(journal.attempts) + 1:
            raise JournalConflict(f"{self.path}: attempt {number} after "
                                  f"{len(journal.attempts)} attempts")
        attempt = Attempt(attempt=number, gpu_ids=list(gpu_ids))
        journal.attempts.append(attempt)
        self.save(journal)
        return attempt

    def finish(self, attempt: Attempt) -> tuple[Journal, Attempt]:
        """Record a finished attempt; returns the journal and the attempt as recorded.

        When the attempt is already finished on disk (run_item journaled it itself, as the
        one-commit pipeline does) the disk copy wins: finished attempts are never rewritten.
        """
        if not attempt.finished:
            raise JournalConflict(f"{self.path}: finish() needs a finished attempt")
        journal = self.load()
        for i, old in enumerate(journal.attempts):
            if old.attempt != attempt.attempt:
                continue
            if old.finished:
                return journal, old
            journal.attempts[i] = attempt
            break
        else:
            if attempt.attempt != len(journal.attempts) + 1:
                raise JournalConflict(f"{self.path}: attempt {attempt.attempt} is missing "
                                      f"after {len(journal.attempts)} attempts")
            journal.attempts.append(attempt)
        self.save(journal)
        return journal, attempt


def plan_commits(item: PlanItem) -> dict[str, str]:
    """Commits as far as the plan knows them; the pipeline replaces them with full shas.

    An empty `pre` means parent `pre_parent_index` of `human`: written as a git revision
    (`<human>^<n>`), which resolves to exactly that commit.
    """
    base = item.pre or f"{item.human}^{item.pre_parent_index}"
    return {"base": base, "human": item.human}


def read_json(path: Path) -> dict | list | None:
    """A JSON file, or None when it is missing or half-written by a foreign tool."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
