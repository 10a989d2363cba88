"""The record of a run: journal (what happened), manifest (how to rerun it), atomic writes.

The journal is the controller's account, never the agent's: statuses come from evidence the
controller checked (its own patch, the trajectory, exit codes). Attempts are appended and never
rewritten, so a resumed batch can see every try an item had. Every write is temp file + rename,
so a crash or kill -9 leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field

from executor.core.errors import ErrorSignature

JOURNAL_SCHEMA = 1


class RunStatus(StrEnum):
    """How an attempt ended. Only SUCCESS means the agent produced a patch that was measured."""

    SUCCESS = "success"
    NO_PATCH = "no_patch"
    PATCH_APPLY_FAILED = "patch_apply_failed"
    MAX_STEPS = "max_steps"
    TIMEOUT = "timeout"
    AGENT_ERROR = "agent_error"
    BENCH_FAILED = "bench_failed"
    INFRA_ERROR = "infra_error"
    INTERRUPTED = "interrupted"
    RUNNING = "running"  # written when an attempt starts; a crash leaves it visible as unfinished
    # Only read from foreign state (ISO-Bench's claude_code/codex/openhands runs): the agent left
    # no record we can read, so the attempt is neither a success nor a failure.
    UNKNOWN = "unknown"


# One distinct exit code per way a run can end (2 is reserved for bad input).
EXIT_CODES: dict[RunStatus, int] = {
    RunStatus.SUCCESS: 0,
    RunStatus.NO_PATCH: 10,
    RunStatus.PATCH_APPLY_FAILED: 11,
    RunStatus.MAX_STEPS: 12,
    RunStatus.TIMEOUT: 13,
    RunStatus.AGENT_ERROR: 14,
    RunStatus.BENCH_FAILED: 15,
    RunStatus.INFRA_ERROR: 20,
    RunStatus.INTERRUPTED: 130,
    RunStatus.RUNNING: 1,
    RunStatus.UNKNOWN: 1,
}

# An agent error splits by who refused: the provider (throttled, over quota, down: come back
# later or top up) exits 16; everything else the agent or its requests did (a 400 such as the
# must-patch death of FIELD_NOTES section 3, a wrong key, an unknown failure) keeps 14.
EXIT_PROVIDER_REFUSED = 16
PROVIDER_REFUSED_SIGNATURES = frozenset({"rate_limit", "quota_exhausted",
                                         "provider_unavailable"})


def exit_code_for(status: RunStatus, signature: ErrorSignature | None = None) -> int:
    """The process exit code of an attempt that ended so (README: exit status)."""
    if (status == RunStatus.AGENT_ERROR and signature is not None
            and signature.name in PROVIDER_REFUSED_SIGNATURES):
        return EXIT_PROVIDER_REFUSED
    return EXIT_CODES[status]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Usage(BaseModel):
    """Tokens summed over every LLM interaction of an agent run, and what they cost."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_tokens: int = 0
    llm_calls: int = 0
    cost_usd: float | None = Field(default=None, description="None when the model has no price.")


class ModelTraffic(BaseModel):
    """An attempt's model calls as the controller's gateway saw them (executor.parts.gateway): counted
    even when the agent's own client retried a failure and never reported it."""

    record: str = Field(description="The per-call record file in the attempt dir.")
    calls: int = Field(default=0, description="Requests the agent sent.")
    answered_ok: int = Field(default=0, description="Calls the agent got a 2xx for.")
    upstream_429: int = Field(default=0, description="Provider 429s, retried or not.")
    upstream_5xx: int = Field(default=0, description="Provider 5xx answers, retried or not.")
    upstream_timeouts: int = Field(default=0, description="Provider tries that timed out or "
                                                          "lost the connection.")
    gateway_retries: int = Field(default=0, description="Upstream retries the gateway made "
                                                        "itself (after a 429's retry-after).")
    agent_saw_429: int = Field(default=0, description="429s passed on to the agent.")
    agent_saw_5xx: int = Field(default=0, description="5xx passed on to the agent.")
    waited_s: float = Field(default=0.0, description="Time calls were held by the shared "
                                                     "limiter.")
    budget_exhausted: bool = Field(default=False, description="A call was refused because a "
                                                              "token or dollar budget was spent.")
    replay_mismatch: str | None = Field(
        default=None, description="A replayed attempt asked what the record does not hold: the "
                                  "gateway's refusal (None: not replayed, or no refusal).")


class PhaseTiming(BaseModel):
    """Wall time of one phase of an attempt (image, sandbox, prepare, agent, patch, bench)."""

    name: str
    started_at: datetime
    duration_s: float


class PatchStats(BaseModel):
    """Size of the harness patch, measured by the controller."""

    files_changed: int
    lines_added: int
    lines_removed: int
    bytes: int
    sha256: str
    binary_files: int = 0


class Attempt(BaseModel):
    """One try at one item. Appended to the journal, never rewritten once finished."""

    attempt: int = Field(ge=1)
    status: RunStatus = RunStatus.RUNNING
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    phases: list[PhaseTiming] = Field(default_factory=list)
    images: dict[str, str] = Field(default_factory=dict,
                                   description="role (base, human, agent...) -> image id")
    signature: ErrorSignature | None = None
    agent_outcome: str | None = Field(default=None, description="The agent adapter's own view.")
    usage: Usage | None = Field(default=None, description="From the gateway's record when the "
                                "agent's calls went through it, else the agent's own report.")
    model_traffic: ModelTraffic | None = Field(default=None, description="The gateway's "
                                               "counts of this attempt's model calls.")
    patch: PatchStats | None = None
    agent_reused_from: int | None = Field(
        default=None, description="The attempt whose agent run and patch this one took over: "
                                  "that attempt got a patch and then failed in the benchmark "
                                  "(infra, bench failure, interrupted), so only the benchmark "
                                  "runs again. Its usage stays with that attempt.")
    host: str = Field(default_factory=lambda: os.uname().nodename,
                      description="Node the attempt ran on (a Ray worker's, not the driver's).")
    controller_pid: int = Field(default_factory=os.getpid,
                                description="Process that ran it (the pipeline's process).")
    gpu_ids: list[str] = Field(default_factory=list,
                               description="Devices leased to the attempt; recorded even when "
                                           "they were not passed into its sandboxes.")

    @property
    def finished(self) -> bool:
        return self.status != RunStatus.RUNNING


class Journal(BaseModel):
    """Everything that happened to one item of one run, attempt by attempt."""

    schema_version: int = JOURNAL_SCHEMA
    task_id: str
    item_id: str
    run_id: str
    commits: dict[str, str] = Field(description="{'base': sha, 'human': sha}, full shas.")
    agent: str
    model: str
    attempts: list[Attempt] = Field(default_factory=list)
    rerun_of: str | None = Field(default=None, description="For a rerun from a bundle: the "
                                 "run it reproduces, '<task>/<agent>/<model>/<run_id>' and the "
                                 "bundle's digest.")
    written_at: datetime = Field(default_factory=utcnow)

    @property
    def last(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def status(self) -> RunStatus | None:
        return self.last.status if self.last else None


class Manifest(BaseModel):
    """What a person who was not there needs to rerun this item and get the same inputs."""

    isobench_version: str
    command_line: list[str]
    task: dict = Field(description="The TaskSpec as run (no secrets).")
    item_id: str
    commits: dict[str, str]
    images: dict[str, str] = Field(description="role -> image id (content-addressed tags too)")
    image_tags: dict[str, str] = Field(default_factory=dict)
    agent: dict = Field(description="name, version, config with secrets removed")
    prompt_sha256: str | None = None
    bench: dict = Field(default_factory=dict, description="trials, warm-ups, seed, gpus")
    base_recipe: dict | None = Field(default=None, description="The debootstrap recipe of the "
                                     "OS base (None: a named base image, or not recorded).")
    determinism: dict[str, str] = Field(default_factory=dict, description="Environment every "
                                        "container started with (TZ, locale, PYTHONHASHSEED); "
                                        "the benchmark's seeds are in results.json.")
    rerun_of: str | None = Field(default=None, description="The run this one reruns (bundle).")
    command_options: dict | None = Field(
        default=None, description="The command's resolved options: the job file (--config) "
                                  "and its sha256, every option's value by job-file table and "
                                  "key, which came from the file and which from the command "
                                  "line (None: not recorded).")
    created_at: datetime = Field(default_factory=utcnow)


def write_json_atomic(path: Path, data: BaseModel | dict | list) -> None:
    """Write JSON so that readers only ever see the old file or the complete new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (data.model_dump_json(indent=2) if isinstance(data, BaseModel)
            else json.dumps(data, indent=2, default=str))
    write_bytes_atomic(path, text.encode() + b"\n")


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC or EDQUOT: the filesystem (or the user's quota on it) has no room left."""
    import errno

    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def current_umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def write_bytes_atomic(path: Path, payload: bytes, *, shared: bool = False) -> None:
    """Write via a temporary file and rename. mkstemp makes that file 0600; `shared` files
    (reports, predictions: made to be read by others) get 0666 less the umask, as `open` would
    give them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        if shared:
            os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_journal(path: Path) -> Journal | None:
    if not path.exists():
        return None
    return Journal.model_validate_json(path.read_text())
