"""Behaviour checks before any timing: the tests and the task's output check, base first.

Both run on base before the agent variant, in fresh containers: base's run shows the check
works at all, and its duration bounds the agent's (TrialBound: an agent whose code loops
forever is cut in seconds, not after the hour-long default). The output check compares what
the workload computes (its stdout) between base and agent: a patch that makes the tests pass
but changes the results, or skips the work, is `incorrect` with the diff.
"""

from __future__ import annotations

import difflib
import hashlib
from pathlib import Path

from executor.parts.bench.docker_trial import TIMED_ENV, TrialBound
from executor.parts.bench.integrity import OutputCheckResult
from executor.parts.bench.results import GateResult, VariantInfo
from executor.parts.repo import REPO_DIR
from executor.engine.sandbox import Sandbox
from executor.core.resources import ExecResult, GpuRequest, SandboxLimits, SandboxSpec
from executor.records.state import (GATE_BASE_LOG, GATE_LOG, OUTPUT_CHECK_AGENT_LOG,
                            OUTPUT_CHECK_BASE_LOG)

CHECK_TIMEOUT_S = 3600
DIFF_LINES = 80


def run_in_variant(command: str, variant: VariantInfo, task, *, phase: str, timeout_s: float,
                   run_id: str, item_id: str, log_file: Path, limits: SandboxLimits,
                   gpus: GpuRequest, network: str) -> ExecResult:
    """One command in a fresh container of a variant, output to `log_file`."""
    spec = SandboxSpec(image=variant.image_tag, budget_s=int(timeout_s) + 300, run_id=run_id,
                       item=item_id, phase=phase, limits=limits, gpus=gpus, network=network,
                       env=task.env, workdir=REPO_DIR)
    with Sandbox(spec) as sandbox:
        return sandbox.exec(command, timeout_s, env=TIMED_ENV, workdir=REPO_DIR,
                            stdout_file=log_file, stderr_file=log_file)


def _gate(result: ExecResult, command: str, log_file: Path, limit_s: float | None
          ) -> GateResult:
    tail = result.tail(15)
    if result.timed_out and limit_s is not None:
        tail += f"\n[isobench] cut after {limit_s:.0f}s: over the bound from base's run"
    return GateResult(command=command, passed=result.ok, exit_code=result.exit_code,
                      duration_s=result.duration_s, output_tail=tail, log_file=str(log_file))


def gates(task, base: VariantInfo, agent: VariantInfo, bound: TrialBound, *, log_dir: Path,
          **common) -> tuple[GateResult, GateResult]:
    """The tests on base, then on the agent variant under the bound from base's duration."""
    base_log, agent_log = log_dir / GATE_BASE_LOG, log_dir / GATE_LOG
    on_base = run_in_variant(task.test_command, base, task, phase="gate-base",
                             timeout_s=CHECK_TIMEOUT_S, log_file=base_log, **common)
    limit = bound.seconds(on_base.duration_s) if on_base.ok else None
    on_agent = run_in_variant(task.test_command, agent, task, phase="gate",
                              timeout_s=limit or CHECK_TIMEOUT_S, log_file=agent_log, **common)
    return (_gate(on_base, task.test_command, base_log, None),
            _gate(on_agent, task.test_command, agent_log, limit))


def output_check(task, base: VariantInfo, agent: VariantInfo, bound: TrialBound, *,
                 log_dir: Path, **common) -> OutputCheckResult:
    """The task's output check on base and on the agent variant; stdout must be equal."""
    command = task.output_check_command
    logs = [log_dir / OUTPUT_CHECK_BASE_LOG, log_dir / OUTPUT_CHECK_AGENT_LOG]
    on_base = run_in_variant(command, base, task, phase="check-base",
                             timeout_s=CHECK_TIMEOUT_S, log_file=logs[0], **common)
    result = OutputCheckResult(command=command, matched=None, base_exit_code=on_base.exit_code,
                               base_sha256=_sha(on_base.stdout),
                               log_files=[str(p) for p in logs])
    if not on_base.ok:
        result.diff = f"the check failed on base (exit {on_base.exit_code}): not applied"
        return result
    limit = bound.seconds(on_base.duration_s)
    on_agent = run_in_variant(command, agent, task, phase="check-agent", timeout_s=limit,
                              log_file=logs[1], **common)
    result.agent_exit_code, result.agent_sha256 = on_agent.exit_code, _sha(on_agent.stdout)
    if on_agent.timed_out:
        result.matched = False
        result.diff = f"cut after {limit:.0f}s on the agent variant (base took " \
                      f"{on_base.duration_s:.1f}s)"
        return result
    result.matched = on_agent.ok and on_agent.stdout == on_base.stdout
    if not result.matched:
        lines = list(difflib.unified_diff(on_base.stdout.splitlines(),
                                          on_agent.stdout.splitlines(), "base", "agent",
                                          lineterm="", n=1))
        if not on_agent.ok:
            lines.insert(0, f"exit {on_agent.exit_code} on the agent variant: "
                            f"{on_agent.tail(3)[-300:]}")
        result.diff = "\n".join(lines[:DIFF_LINES])
    return result


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
