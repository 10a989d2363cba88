"""The replay agent: applies a given patch, so pipelines run without an LLM or an API key.

It is the demo's and CI's agent (the demo ships a reference patch), and the way to re-measure
a patch someone else's agent produced. It goes through the same sandbox, the same patch-apply
chain and the same harness diff as a real agent, so everything downstream is exercised.
"""

from __future__ import annotations

from pathlib import Path

from executor.parts.agents.base import AgentEnding, AgentRun, AgentTask, Log, OfflineAgent
from executor.core.errors import PATCH_APPLY_FAILED, signature
from executor.parts.patching import apply_patch
from executor.engine.sandbox import Sandbox


class ReplayAgent(OfflineAgent):
    """Applies `patch` to the working tree and declares itself finished."""

    name = "replay"
    payload_kind = "patch"

    @property
    def patch(self) -> bytes:
        return self.payload

    def run(self, sandbox: Sandbox, task: AgentTask, out_dir: Path, log: Log) -> AgentRun:
        result = apply_patch(sandbox, task.repo_dir, self.patch)
        (out_dir / "replay_apply.log").write_text(result.log + "\n")
        if not result.applied:
            last = result.log.strip().splitlines()[-1] if result.log.strip() else "no output"
            return AgentRun(
                ending=AgentEnding.PATCH_APPLY_FAILED, artifacts=["replay_apply.log"],
                signature=signature(PATCH_APPLY_FAILED, last, "replay"),
                detail=f"{self.source} does not apply to the base commit")
        log(f"replay: applied {self.source} ({result.method})")
        return AgentRun(ending=AgentEnding.FINISHED, artifacts=["replay_apply.log"],
                        detail=f"applied with {result.method}")
