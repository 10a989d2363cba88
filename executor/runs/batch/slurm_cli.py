"""Slurm through its own command-line tools: sbatch, squeue, scontrol/sacct, scancel.

Not pyslurm: it is built against one Slurm version, while the CLI's formats used here are the
same from Slurm 20 to 24. Every call is a subprocess with a timeout; a tool that is missing,
refuses, or hangs is one-line bad input (before the batch) or an InfraError (during it).

What a job's state means for its attempt (`job_signature`): a job that ends in CANCELLED,
TIMEOUT, PREEMPTED, NODE_FAIL, OUT_OF_MEMORY, FAILED or BOOT_FAIL is an infrastructure attempt
with Slurm's state, exit code and reason as its evidence.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from executor.core.errors import (
    SLURM_CANCELLED,
    SLURM_JOB_FAILED,
    SLURM_JOB_LOST,
    SLURM_NODE_LOST,
    SLURM_OOM,
    SLURM_PREEMPTED,
    SLURM_TIMEOUT,
    ErrorSignature,
    InfraError,
    UserInputError,
    signature,
)

CLI_TIMEOUT_S = 60

# Slurm's job states (squeue %T, sacct State, scontrol JobState), by what they mean here.
ACTIVE_STATES = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED",
                           "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "SIGNALING",
                           "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD", "SPECIAL_EXIT"})
STATE_SIGNATURES = {"CANCELLED": SLURM_CANCELLED, "TIMEOUT": SLURM_TIMEOUT,
                    "DEADLINE": SLURM_TIMEOUT, "PREEMPTED": SLURM_PREEMPTED,
                    "NODE_FAIL": SLURM_NODE_LOST, "OUT_OF_MEMORY": SLURM_OOM,
                    "FAILED": SLURM_JOB_FAILED, "BOOT_FAIL": SLURM_JOB_FAILED,
                    "COMPLETED": SLURM_JOB_FAILED}  # completed without a result


class JobState(BaseModel):
    """One job as Slurm reports it."""

    job_id: str = Field(description="Slurm's job id.")
    state: str = Field(description="Base state, e.g. RUNNING, CANCELLED (no '+' or 'by N').")
    reason: str = Field(default="", description="Slurm's reason, where it gives one.")
    exit_code: str = Field(default="", description="EXIT:SIGNAL as scontrol/sacct print it.")
    node: str = Field(default="", description="Node(s) the job ran on.")

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def evidence(self) -> str:
        parts = [f"slurm job {self.job_id} {self.state}"]
        if self.exit_code:
            parts.append(f"exit {self.exit_code}")
        if self.reason and self.reason not in ("None", "(null)"):
            parts.append(f"reason {self.reason}")
        if self.node:
            parts.append(f"node {self.node}")
        return ", ".join(parts)


def base_state(raw: str) -> str:
    """'CANCELLED by 0' -> 'CANCELLED'; 'RUNNING+' -> 'RUNNING'."""
    return raw.strip().split()[0].rstrip("+").upper() if raw.strip() else "UNKNOWN"


def job_signature(job: JobState | None, job_id: str) -> ErrorSignature:
    """The infrastructure signature of a job that ended without a result."""
    if job is None:
        return signature(SLURM_JOB_LOST, f"slurm job {job_id} unknown to squeue, scontrol "
                                         f"and sacct, and no result", "slurm")
    spec = STATE_SIGNATURES.get(job.state, SLURM_JOB_FAILED)
    return signature(spec, job.evidence(), "slurm")


def parse_squeue(text: str) -> dict[str, JobState]:
    """Lines of `squeue --format=%i|%T|%r|%N`."""
    jobs = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 3 or not fields[0]:
            continue
        job = JobState(job_id=fields[0], state=base_state(fields[1]), reason=fields[2],
                       node=fields[3] if len(fields) > 3 else "")
        jobs[job.job_id] = job
    return jobs


def parse_scontrol(text: str) -> JobState | None:
    """One line of `scontrol show job -o ID`: KEY=VALUE pairs separated by spaces."""
    pairs = dict(part.split("=", 1) for part in text.split() if "=" in part)
    if "JobId" not in pairs:
        return None
    return JobState(job_id=pairs["JobId"], state=base_state(pairs.get("JobState", "")),
                    reason=pairs.get("Reason", ""), exit_code=pairs.get("ExitCode", ""),
                    node=pairs.get("NodeList", "").replace("(null)", ""))


def parse_sacct(text: str, job_id: str) -> JobState | None:
    """`sacct -n -P -o JobID,State,ExitCode,Reason,NodeList -j ID`: the job's own line."""
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) >= 3 and fields[0] == job_id:
            return JobState(job_id=job_id, state=base_state(fields[1]), exit_code=fields[2],
                            reason=fields[3] if len(fields) > 3 else "",
                            node=fields[4] if len(fields) > 4 else "")
    return None


class SlurmCli:
    """The four tools, run with an environment of our choosing (see `sbatch`)."""

    def __init__(self, env: dict[str, str] | None = None):
        self.env = env if env is not None else dict(os.environ)

    def check(self) -> None:
        """One-line bad input when the tools are not here or the controller does not answer."""
        for tool in ("sbatch", "squeue", "scancel", "scontrol"):
            if shutil.which(tool, path=self.env.get("PATH")) is None:
                raise UserInputError(f"--backend slurm: `{tool}` is not on PATH; run isobench "
                                     f"on a Slurm login node (Debian: apt-get install slurm-client)")
        out = self._run(["squeue", "-h", "--me", "--format=%i"], fatal=False)
        if out.returncode != 0:
            raise UserInputError(f"--backend slurm: squeue failed: {_last_line(out)}")

    def _run(self, args: Sequence[str], *, fatal: bool = True,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        try:
            out = subprocess.run(list(args), capture_output=True, text=True, check=False,
                                 timeout=CLI_TIMEOUT_S, env=env or self.env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InfraError(f"{args[0]}: {exc}") from exc
        if fatal and out.returncode != 0:
            raise InfraError(f"{' '.join(args[:2])} failed: {_last_line(out)}")
        return out

    def sbatch(self, script: Path, args: Sequence[str], env: dict[str, str]) -> str:
        """Submit `script`; the job id. `env` is the only environment sbatch sees, and the
        job gets only its names (--export): nothing else of the controller's reaches a node."""
        export = ",".join(sorted(env)) or "NIL"
        out = self._run(["sbatch", "--parsable", f"--export={export}", *args, str(script)],
                        env=env)
        return out.stdout.strip().split(";")[0]

    def squeue(self, name: str) -> dict[str, JobState]:
        """Jobs named `name`, in any state squeue still remembers (MinJobAge)."""
        out = self._run(["squeue", "-h", "-t", "all", f"--name={name}",
                         "--format=%i|%T|%r|%N"])
        return parse_squeue(out.stdout)

    def final_state(self, job_id: str) -> JobState | None:
        """An ended job's state, exit code and reason: scontrol while slurmctld remembers
        it, else sacct where accounting runs; None when neither knows it."""
        out = self._run(["scontrol", "show", "job", "-o", job_id], fatal=False)
        if out.returncode == 0 and (job := parse_scontrol(out.stdout)) is not None:
            return job
        if shutil.which("sacct", path=self.env.get("PATH")):
            out = self._run(["sacct", "-n", "-P", "-X", "-o", ("JobID,State,ExitCode,Reason,"
                             "NodeList"), "-j", job_id], fatal=False)
            if out.returncode == 0:
                return parse_sacct(out.stdout, job_id)
        return None

    def scancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self._run(["scancel", *job_ids], fatal=False)  # an ended job is not an error


def _last_line(out: subprocess.CompletedProcess) -> str:
    lines = (out.stderr or out.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit {out.returncode}"
