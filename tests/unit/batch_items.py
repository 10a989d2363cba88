"""Cheap, real run_item implementations for batch tests (no Docker, no mocks).

They follow the run_item contract exactly as the pipeline will: return a finished Attempt,
honour `cancel`. Each execution appends one line to a log file, so tests count how often an
item really ran. The subprocess tests select them with `--run-item tests.unit.batch_items:NAME`
and configure them through environment variables:

  ISOBENCH_TEST_LOG     file that gets "<item_id> <attempt> <pid>" per execution
  ISOBENCH_TEST_SCRIPT  JSON {item_id: [outcome per attempt]}; outcomes: success, rate_limit,
                        auth, server_error (default success)
  ISOBENCH_TEST_GATED   comma-separated item ids that block on their first attempt
  ISOBENCH_TEST_NOTIFY_FD  inherited pipe: a gated item writes "<item_id>\n" when it blocks
  ISOBENCH_TEST_GATE_FD    inherited pipe a gated item reads from (never written: it blocks)
  ISOBENCH_TEST_GATE_MODE  pipe (block on the gate) or cancel (wait for Ctrl-C)
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from executor.runs.batch.base import BatchContext, Cancel
from executor.core.errors import classify_text
from executor.core.journal import Attempt, PhaseTiming, RunStatus, Usage, utcnow
from executor.core.task import PlanItem

# One evidence line per scripted failure, classified by the real rules.
EVIDENCE = {
    "rate_limit": "openai.RateLimitError: Error code: 429 - Too Many Requests",
    "auth": "openai.AuthenticationError: Error code: 401 - invalid_api_key",
    "server_error": "openai.InternalServerError: Error code: 503 - Service Unavailable",
}


def scripted_attempt(number: int, outcome: str, *, duration_s: float = 1.0) -> Attempt:
    """A finished attempt with the given outcome, some usage and one agent phase."""
    started = utcnow()
    usage = Usage(input_tokens=1000, output_tokens=100, llm_calls=2, cost_usd=0.01)
    phases = [PhaseTiming(name="agent", started_at=started, duration_s=duration_s)]
    if outcome == "success":
        return Attempt(attempt=number, status=RunStatus.SUCCESS, started_at=started,
                       finished_at=started + timedelta(seconds=duration_s), usage=usage,
                       phases=phases)
    if outcome == "interrupted":
        return Attempt(attempt=number, status=RunStatus.INTERRUPTED, started_at=started,
                       finished_at=utcnow())
    sig = classify_text(EVIDENCE[outcome], "trajectory")
    return Attempt(attempt=number, status=RunStatus.AGENT_ERROR, signature=sig,
                   started_at=started, finished_at=started + timedelta(seconds=duration_s),
                   usage=usage, phases=phases)


def log_execution(log: Path | None, item: PlanItem, number: int) -> None:
    if log is None:
        return
    # O_APPEND writes of one short line do not interleave between threads or processes.
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{item.item_id} {number} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def executions(log: Path) -> list[tuple[str, int, int]]:
    if not log.exists():
        return []
    rows = [line.split() for line in log.read_text().splitlines()]
    return [(r[0], int(r[1]), int(r[2])) for r in rows]


def _env_path(name: str) -> Path | None:
    return Path(os.environ[name]) if os.environ.get(name) else None


def scripted(ctx: BatchContext):
    """Outcomes from ISOBENCH_TEST_SCRIPT. Gated items announce themselves, then either block
    on the gate pipe (ISOBENCH_TEST_GATE_MODE=pipe, the default: only a kill ends them) or wait
    for Ctrl-C and report themselves interrupted (=cancel)."""
    script_file = _env_path("ISOBENCH_TEST_SCRIPT")
    script = json.loads(script_file.read_text()) if script_file else {}
    log = _env_path("ISOBENCH_TEST_LOG")
    gated = set(filter(None, os.environ.get("ISOBENCH_TEST_GATED", "").split(",")))
    on_cancel = os.environ.get("ISOBENCH_TEST_GATE_MODE", "pipe") == "cancel"

    def run_item(item: PlanItem, attempt_number: int, gpu_ids: list[str],
                 cancel: Cancel) -> Attempt:
        log_execution(log, item, attempt_number)
        if item.item_id in gated and attempt_number == 1:
            os.write(int(os.environ["ISOBENCH_TEST_NOTIFY_FD"]), f"{item.item_id}\n".encode())
            if on_cancel:
                cancel.wait()
                return scripted_attempt(attempt_number, "interrupted")
            os.read(int(os.environ["ISOBENCH_TEST_GATE_FD"]), 1)  # blocks until killed
        outcomes = script.get(item.item_id, ["success"])
        return scripted_attempt(attempt_number,
                                outcomes[min(attempt_number, len(outcomes)) - 1])

    return run_item
