"""The seam between the controller and any coding agent.

An agent adapter knows how to get its code into a sandbox and how to run it there; it knows
nothing of benchmarks, images or journals. It reports how the agent *ended* (read from evidence:
trajectory, exit code, timeouts), never whether the run succeeded: that verdict belongs to the
controller, which also computes the patch itself (repo.harness_patch).
"""

from __future__ import annotations

import hashlib

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from executor.core.errors import ErrorSignature
from executor.core.journal import Usage
from executor.core.resources import Mount

if TYPE_CHECKING:  # an annotation only: readers of agents' records (status, report) must not
    # load the engine and its docker SDK
    from executor.engine.sandbox import Sandbox


class AgentEnding(StrEnum):
    """How the agent process ended, as far as the evidence shows."""

    FINISHED = "finished"  # the agent declared completion (task_done / submit / replay applied)
    MAX_STEPS = "max_steps"
    TIMEOUT = "timeout"
    PATCH_APPLY_FAILED = "patch_apply_failed"  # replay agent: the given patch does not apply
    ERROR = "error"  # the agent or its LLM provider failed (see signature)
    INFRA = "infra"  # the sandbox failed under the agent (OOM, Docker, GPU detached)


class AgentTask(BaseModel):
    """What the agent is asked to do, and where (paths are inside the sandbox)."""

    item_id: str = Field(description="Plan item being worked on.")
    repo_dir: str = Field(description="The repository's working tree, at the base commit.")
    scratch_dir: str = Field(description="Scratch space inside the repo, excluded from the patch.")
    prompt: str = Field(description="The rendered task prompt.")
    budget_s: int = Field(description="Wall-clock budget for the whole agent run.")
    max_steps: int | None = Field(default=None, description="Step limit, if the agent has one.")


class AgentInfo(BaseModel):
    """Identity of an agent as recorded in the manifest (secrets removed)."""

    name: str
    version: str = Field(description="Package version or source revision actually run.")
    model: str = Field(default="none", description="LLM model name; 'none' for replay.")
    config: dict = Field(default_factory=dict, description="Settings, secrets masked.")


class PrepareContext(BaseModel):
    """Where the agent will run, as far as building its bundle needs to know."""

    base_image: str = Field(description="Tag of the OS base image the sandbox image is built FROM.")
    base_image_id: str = Field(description="Docker id of that base image (part of bundle tags).")
    toolchain_command: str = Field(
        default="true", description="The sandbox's TOOLCHAIN_COMMAND (Python on CUDA bases); a "
        "bundle runs it too so that its interpreter is the sandbox's.")
    log_dir: Path = Field(description="Where build logs go (the attempt dir).")


class AgentPrep(BaseModel):
    """What a sandbox needs so that this agent can run in it."""

    mounts: list[Mount] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict, description="Non-secret environment.")
    network: str | None = Field(default=None, description="Override the sandbox network mode.")


class AgentRun(BaseModel):
    """The agent adapter's report of one run."""

    ending: AgentEnding
    signature: ErrorSignature | None = None
    usage: Usage | None = None
    exit_code: int | None = None
    duration_s: float = 0.0
    steps: int | None = None
    artifacts: list[str] = Field(default_factory=list,
                                 description="Files written under the attempt dir.")
    detail: str = Field(default="", description="One line for humans.")


Log = Callable[[str], None]


@runtime_checkable
class Agent(Protocol):
    """An agent adapter. New agents (Codex CLI, Claude Code, OpenHands) are one file each."""

    name: str

    def info(self) -> AgentInfo:
        """Name, version, model and masked config, for the manifest."""
        ...

    def prepare(self, log: Log, context: PrepareContext) -> AgentPrep:
        """Build or find what the sandbox needs (bundle, mounts); called once per run."""
        ...

    def secret_env(self) -> dict[str, str]:
        """Secrets passed at exec time only (API keys); never written anywhere."""
        ...

    def run(self, sandbox: Sandbox, task: AgentTask, out_dir: Path, log: Log) -> AgentRun:
        """Run the agent in the sandbox; write logs and trajectory under out_dir."""
        ...


class OfflineAgent:
    """Shared by agents that need no LLM, no key and nothing installed (replay, script): they
    carry one payload (a patch, a script) and are identified by its hash."""

    name = "offline"
    payload_kind = "payload"  # the config key naming the payload in the manifest

    def __init__(self, payload: bytes, source: str):
        self.payload = payload
        self.source = source

    def info(self) -> AgentInfo:
        from executor import __version__

        return AgentInfo(name=self.name, version=__version__, model="none",
                         config={self.payload_kind: self.source,
                                 f"{self.payload_kind}_sha256":
                                     hashlib.sha256(self.payload).hexdigest()})

    def prepare(self, log: Log, context: PrepareContext) -> AgentPrep:
        return AgentPrep()

    def secret_env(self) -> dict[str, str]:
        return {}
