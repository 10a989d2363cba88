"""When a retry may skip the agent: an earlier attempt's patch that only the benchmark failed on.

An agent run costs up to two hours and real money, and an LLM agent does not do the same thing
twice. So when an attempt got through the agent phase with a patch (the agent finished, the
harness patch is non-empty) and then failed in the benchmark for a reason that is not the
agent's choice of patch being judged (a Docker hiccup, a benchmark that failed, Ctrl-C, a killed
controller), the next attempt of the same item and run benchmarks that same patch instead of
asking the agent again. The journal says so (`agent_reused_from`), and the usage stays with the
attempt that spent it, so costs are counted once.

The patch comes from the item's `model_patch.diff`, checked against the sha256 the earlier
attempt journaled: a file that was edited, lost or overwritten is never benchmarked as the
agent's. A fresh run id starts with a fresh agent.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel

from executor.parts.agents.base import AgentEnding
from executor.core.journal import Attempt, Journal, RunStatus
from executor.records.state import PATCH_NAME

# Ways an attempt can end after its agent phase that say nothing against the agent's patch.
AFTER_AGENT_FAILURES = frozenset({RunStatus.INFRA_ERROR, RunStatus.BENCH_FAILED,
                                  RunStatus.INTERRUPTED})


class ReusedAgentResult(BaseModel):
    """What a new attempt takes over from an earlier one."""

    origin: int  # the attempt whose agent actually ran
    agent_outcome: str
    patch: bytes


def earlier_agent_result(journal: Journal, number: int, item_dir: Path
                         ) -> ReusedAgentResult | None:
    """The agent result attempt `number` may reuse, or None when the agent must run."""
    earlier = [a for a in journal.attempts if a.attempt < number]
    if not earlier or not _failed_after_agent(earlier[-1]):
        return None
    last = earlier[-1]
    patch_file = item_dir / PATCH_NAME
    if not patch_file.is_file():
        return None
    patch = patch_file.read_bytes()
    if hashlib.sha256(patch).hexdigest() != last.patch.sha256:
        return None
    return ReusedAgentResult(origin=last.agent_reused_from or last.attempt,
                             agent_outcome=last.agent_outcome, patch=patch)


def _failed_after_agent(attempt: Attempt) -> bool:
    return (attempt.status in AFTER_AGENT_FAILURES
            and attempt.agent_outcome == AgentEnding.FINISHED.value
            and attempt.patch is not None and attempt.patch.bytes > 0)
