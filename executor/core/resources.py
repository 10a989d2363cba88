"""What a container may use and what a command did: pure models, shared by every engine.

Resources are what a run's flags ask for (GPUs, CPUs, memory, processes); a SandboxSpec is one
container's request; an ExecResult is one command's outcome. Engines (executor/engine/) turn
these into engine calls; nothing here talks to an engine.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator


class GpuRequest(BaseModel):
    """Which GPUs a container gets: none, all, or explicit device ids."""

    mode: Literal["none", "all", "ids"] = "none"
    ids: list[str] = Field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> "GpuRequest":
        text = text.strip()
        if text in ("", "none"):
            return cls(mode="none")
        if text == "all":
            return cls(mode="all")
        ids = [part.strip() for part in text.split(",") if part.strip()]
        if not all(re.fullmatch(r"\d+|GPU-[0-9a-fA-F-]+|MIG-[0-9a-zA-Z/-]+", i) for i in ids):
            raise ValueError(f"--gpus takes none, all, or ids like 0,1 (got {text!r})")
        return cls(mode="ids", ids=ids)

    def __str__(self) -> str:
        return ",".join(self.ids) if self.mode == "ids" else self.mode


class SandboxLimits(BaseModel):
    """Resource limits for one container; None leaves Docker's default."""

    cpus: float | None = Field(default=None, description="CPU quota, e.g. 2.0")
    cpuset: str | None = Field(default=None, description="Pin to these host CPUs, e.g. '0-7'")
    memory: str | None = Field(default=None, description="Memory limit, e.g. '16g'")
    pids: int | None = Field(default=8192, description="Max processes (fork-bomb guard)")
    shm_size: str | None = Field(default="2g", description="/dev/shm size when IPC is private")


class Resources(BaseModel):
    """What every container of a run may use: its GPUs and limits, held in this one model
    (run-commit, bench and batches take them as the same flags)."""

    gpus: GpuRequest = Field(default_factory=GpuRequest, json_schema_extra={"flag": "--gpus"},
                             description="GPUs for the sandboxes: none, all, or ids like 0,1.")
    cpus: float | None = Field(default=None, json_schema_extra={"flag": "--cpus"},
                               description="CPU quota per container.")
    cpuset: str | None = Field(default=None, json_schema_extra={"flag": "--cpuset"},
                               description="Pin containers to host CPUs, e.g. 0-7.")
    memory: str | None = Field(default=None, json_schema_extra={"flag": "--memory"},
                               description="Memory limit per container, e.g. 32g.")
    pids: int | None = Field(default=8192, json_schema_extra={"flag": "--pids"},
                             description="Process limit per container.")

    @field_validator("gpus", mode="before")
    @classmethod
    def _gpus_from_text(cls, value):
        return GpuRequest.parse(value) if isinstance(value, str) else value

    @property
    def limits(self) -> SandboxLimits:
        return SandboxLimits(cpus=self.cpus, cpuset=self.cpuset, memory=self.memory,
                             pids=self.pids)


class Mount(BaseModel):
    host_path: str
    container_path: str
    read_only: bool = True


class SandboxSpec(BaseModel):
    """Everything needed to start one sandbox container."""

    image: str
    budget_s: int = Field(description="Lifetime; the container expires and removes itself after.")
    run_id: str
    item: str
    phase: str
    limits: SandboxLimits = Field(default_factory=SandboxLimits)
    gpus: GpuRequest = Field(default_factory=GpuRequest)
    network: str = Field(default="bridge", description="bridge | host | none")
    env: dict[str, str] = Field(default_factory=dict, description="Non-secret environment only.")
    mounts: list[Mount] = Field(default_factory=list)
    workdir: str | None = None


class ExecResult(BaseModel):
    """What one command did. Output is redacted and capped; files receive the whole stream."""

    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def tail(self, lines: int = 20) -> str:
        text = (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr)
        return "\n".join(text.strip().splitlines()[-lines:])
