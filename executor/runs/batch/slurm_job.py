"""The body of one Slurm job: one attempt of one item, on whichever node Slurm chose.

`python -m executor.runs.batch.slurm_job ATTEMPT_DIR`, where ATTEMPT_DIR is the attempt's
spool dir on the filesystem the controller and the nodes share. The controller wrote
`spec.json` there (mode 0600: it may hold the lease secret of the controller's gateway, never
the provider key); this job runs the attempt in a node-local state dir (node_attempt), then
writes `item.tar` (the item's files) and, last, `result.json` (attempt n, or the error that
ended it), both atomically: the controller trusts a result only once the job has ended.

SIGTERM (scancel, the time limit, preemption: Slurm sends it and waits KillWait before
SIGKILL) sets the attempt's cancel token, which removes the item's sandboxes; the attempt
comes back `interrupted` and the controller names it by Slurm's state.
"""

from __future__ import annotations

import base64
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from executor.core.journal import Attempt, write_bytes_atomic
from executor.core.task import PlanItem
from executor.runs.batch.base import BatchContext, RunItem
from executor.runs.batch.node_attempt import run_on_node
from executor.runs.cancel import Cancel

SPEC_NAME, RESULT_NAME, ARCHIVE_NAME, SCRIPT_NAME = ("spec.json", "result.json", "item.tar",
                                                     "job.sh")
JOIN_S = 0.5  # how often the job's main thread looks at its SIGTERM flag


class JobFactory(BaseModel):
    """How the job builds its run_item: the one-commit pipeline's spec, or --run-item."""

    commit: dict | None = Field(default=None, description="CommitItemSpec as JSON data, its "
                                                          "gateway left out (see below).")
    run_item: str | None = Field(default=None, description="--run-item MODULE:NAME.")
    gateway_url: str | None = Field(default=None, description="The controller's gateway.")
    gateway_secret: SecretStr | None = Field(default=None,
                                             description="Its lease secret (not the key).")

    def build(self) -> Callable[[BatchContext], RunItem]:
        if self.run_item:
            from executor.runs.batch.runner import load_run_item_factory

            return load_run_item_factory(self.run_item)
        import functools

        from executor.parts.gateway.remote import RemoteGateway
        from executor.runs.batch.commit_item import CommitItemSpec, commit_run_item

        spec = CommitItemSpec.model_validate(self.commit)
        if self.gateway_url and self.gateway_secret:
            spec.gateway = RemoteGateway(url=self.gateway_url, admin_secret=self.gateway_secret)
        return functools.partial(commit_run_item, spec)


class AttemptSpec(BaseModel):
    """Everything one job needs, written by the controller before sbatch."""

    factory: JobFactory
    ctx: BatchContext
    item: PlanItem
    number: int
    journal_json: str = Field(description="The item's journal, attempt n `running`.")
    patch_b64: str | None = Field(default=None, description="model_patch.diff so far.")
    node_state_dir: str | None = Field(default=None, description="Parent of node-local dirs.")

    def dump(self) -> bytes:
        """JSON with the gateway secret revealed: only for the 0600 spec file."""
        data = self.model_dump(mode="json")
        if self.factory.gateway_secret is not None:
            data["factory"]["gateway_secret"] = self.factory.gateway_secret.get_secret_value()
        import json

        return json.dumps(data).encode()


class JobResult(BaseModel):
    """What the job leaves for the controller."""

    attempt: Attempt | None = None
    error: str = Field(default="", description="Why run_item raised (one line), if it did.")
    host: str = Field(default_factory=lambda: os.uname().nodename)


def slurm_gpu_ids() -> list[str]:
    """The node's device ids Slurm gave the job (--gres gpu:N): the host's numbering, which
    the container engine needs, not CUDA_VISIBLE_DEVICES's renumbering under cgroups."""
    for name in ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS"):
        value = os.environ.get(name, "").strip()
        if value:
            return [g.strip() for g in value.split(",") if g.strip()]
    return []


def _on_thread(run: Callable[[Cancel], Attempt], cancel: Cancel) -> Attempt:
    """`run` on a worker thread while the main thread (where Python runs signal handlers)
    waits in short joins, so SIGTERM is seen promptly even while the attempt is blocked in a
    socket read."""
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["value"] = run(cancel)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread below
            outcome["error"] = exc

    thread = threading.Thread(target=work, name="isobench-slurm-attempt", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(JOIN_S)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def run_job(attempt_dir: Path) -> int:
    spec = AttemptSpec.model_validate_json((attempt_dir / SPEC_NAME).read_bytes())
    cancel = Cancel()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    signal.signal(signal.SIGINT, lambda *_: cancel.set())
    patch = base64.b64decode(spec.patch_b64) if spec.patch_b64 is not None else None
    try:
        attempt, archive = run_on_node(
            spec.factory.build(), spec.ctx, spec.item, spec.number, spec.journal_json, patch,
            spec.node_state_dir, slurm_gpu_ids(), lambda run: _on_thread(run, cancel))
        write_bytes_atomic(attempt_dir / ARCHIVE_NAME, archive)
        result = JobResult(attempt=attempt)
    except Exception as exc:  # noqa: BLE001 - the controller records it as the attempt's end
        traceback.print_exc()
        result = JobResult(error=f"{type(exc).__name__}: {exc}".splitlines()[0])
    write_bytes_atomic(attempt_dir / RESULT_NAME, result.model_dump_json().encode())
    return 0


if __name__ == "__main__":
    sys.exit(run_job(Path(sys.argv[1])))
