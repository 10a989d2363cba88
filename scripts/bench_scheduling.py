#!/usr/bin/env python3
"""Scheduling benchmark: how well does the batch dispatcher keep GPU slots busy?

1000 simulated items (seeded random durations) over 64 GPU slots, through the same Dispatcher,
GpuLeasePool, retry policy, item locks and journals as `isobench run --backend local`; only the
executor differs: attempts are placed on a virtual clock instead of being run (see
executor/runs/batch/simulate.py for why a virtual clock and not short real sleeps). No Docker.

Durations model agent runs: log-normal, median 30 min, clipped to [2 min, 2 h] (the agent's
budget). A fraction of items first hit a rate limit after a short attempt and succeed on retry,
so the retry path (backoff without holding a slot) is part of the schedule.

Two batches share one state directory, as in real use:
  1. the first run of the task: no history, plan order (`--order plan` behaves the same);
  2. the next run (another agent/model: each item's durations are the first run's times a
     log-normal factor, `--estimate-noise`), ordered longest-first from estimates that
     `order.history_estimates` reads back from the first run's journals (`--order history`).

Figures:
  utilisation        total work / (slots x makespan)
  ideal makespan     max(total work / slots, longest single item's own chain of attempts and
                     backoffs): no schedule can finish sooner
  % of ideal         ideal makespan / makespan (target >= 95%; exit 1 below it for batch 2)
  controller cost    real wall time of dispatcher bookkeeping (locks, fsync'd journal writes)
                     per attempt: what a real run adds on top of the schedule
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from executor.runs.batch.base import BatchContext, ItemOutcome  # noqa: E402
from executor.runs.batch.order import history_estimates, longest_first  # noqa: E402
from executor.core.policy import RetryPolicy  # noqa: E402
from executor.runs.batch.simulate import SimBackend  # noqa: E402
from executor.core.errors import classify_text  # noqa: E402
from executor.core.journal import Attempt, PhaseTiming, RunStatus, utcnow  # noqa: E402
from executor.records.state import RunKey, StateLayout  # noqa: E402
from executor.core.task import PlanItem  # noqa: E402

RATE_LIMIT = classify_text("Error code: 429 - Too Many Requests", "simulated")


def workload(items: int, seed: int, retry_fraction: float) -> dict[str, list[float]]:
    """item id -> duration of each attempt (all but the last hit a rate limit)."""
    rng = random.Random(seed)
    plan = {}
    for n in range(items):
        full = min(7200.0, max(120.0, rng.lognormvariate(math.log(1800.0), 0.6)))
        short = [rng.uniform(30.0, 300.0)] if rng.random() < retry_fraction else []
        plan[f"sim-{n:04d}"] = short + [full]
    return plan


def simulated_run_item(durations: dict[str, list[float]]):
    def run_item(item: PlanItem, attempt_number: int, gpu_ids: list[str], cancel) -> Attempt:
        seconds = durations[item.item_id][attempt_number - 1]
        last = attempt_number == len(durations[item.item_id])
        started = utcnow()
        return Attempt(attempt=attempt_number,
                       status=RunStatus.SUCCESS if last else RunStatus.AGENT_ERROR,
                       signature=None if last else RATE_LIMIT, started_at=started,
                       finished_at=started + timedelta(seconds=seconds),
                       phases=[PhaseTiming(name="agent", started_at=started,
                                           duration_s=seconds)])
    return run_item


def schedule(durations: dict[str, list[float]], slots: int, state: Path, run_id: str,
             policy: RetryPolicy, seed: int, order: str) -> dict:
    """One batch through SimBackend; figures of its schedule."""
    layout = StateLayout(root=state)
    items = [PlanItem(item_id=i, human=f"{n:07x}") for n, i in enumerate(durations)]
    priority = None
    if order == "history":
        priority = longest_first(history_estimates(layout, "sim", exclude_run=run_id))
    backend = SimBackend(slots=slots)
    ctx = BatchContext(state=layout, run=RunKey(task="sim", agent="sim", model=run_id,
                                                run_id=run_id), policy=policy, seed=seed)
    wall = time.perf_counter()
    summary = backend.run(items, simulated_run_item(durations), ctx, priority=priority)
    wall = time.perf_counter() - wall
    attempts = sum(len(d) for d in durations.values())
    work, makespan = backend.executor.busy_s, backend.clock.now()
    # An item's own chain: its attempts back to back with the policy's backoffs between them.
    chain = max(sum(ds) + sum(policy.backoff_s(k) for k in range(1, len(ds)))
                for ds in durations.values())
    ideal = max(work / slots, chain)
    return {"order": order, "items": len(items), "slots": slots, "attempts": attempts,
            "succeeded": summary.count(ItemOutcome.SUCCEEDED),
            "total_work_h": round(work / 3600, 2), "makespan_h": round(makespan / 3600, 3),
            "ideal_makespan_h": round(ideal / 3600, 3),
            "utilisation": round(work / (slots * makespan), 4),
            "fraction_of_ideal": round(ideal / makespan, 4),
            "controller_wall_s": round(wall, 2),
            "controller_ms_per_attempt": round(1000 * wall / attempts, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--retry-fraction", type=float, default=0.05)
    parser.add_argument("--backoff", type=float, default=60.0, help="first retry delay (s)")
    parser.add_argument("--estimate-noise", type=float, default=0.35,
                        help="log-normal sigma between the two runs' durations of an item")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    policy = RetryPolicy(backoff_base_s=args.backoff, backoff_jitter=0.0)
    first = workload(args.items, args.seed, args.retry_fraction)
    # The same commits under another agent/model: durations correlated, not equal.
    rng = random.Random(args.seed + 1)
    second = {i: [d * rng.lognormvariate(0.0, args.estimate_noise) for d in ds]
              for i, ds in first.items()}
    with tempfile.TemporaryDirectory(prefix="isobench-sched-") as state:
        results = [
            schedule(first, args.slots, Path(state), "first", policy, args.seed, "plan"),
            schedule(second, args.slots, Path(state), "second", policy, args.seed, "history"),
        ]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        labels = {"plan": "first run of the task, plan order (no history)",
                  "history": "next run, longest-first from the first run's journals"}
        for r in results:
            print(f"{labels[r['order']]}:")
            print(f"  {r['items']} items ({r['attempts']} attempts) over {r['slots']} slots, "
                  f"seed {args.seed}; work {r['total_work_h']} h, makespan {r['makespan_h']} h, "
                  f"ideal {r['ideal_makespan_h']} h")
            print(f"  slot utilisation {r['utilisation']:.2%} = {r['fraction_of_ideal']:.2%} "
                  f"of ideal; controller {r['controller_ms_per_attempt']} ms per attempt")
    ok = all(r["succeeded"] == args.items for r in results)
    return 0 if ok and results[-1]["fraction_of_ideal"] >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
