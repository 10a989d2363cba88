"""A synthetic ISO-Bench state (their layout, FIELD_NOTES section 2) with the cases that made
`status` answer "where are we?" wrong: overlapping invocations, a must-patch death whose patch
holds the work, agents that write no trajectory, a corrupt journal."""

from __future__ import annotations

import json
from pathlib import Path

from executor.core.task import Plan, PlanItem
from tests.unit.trae_fixtures import (genuine_success, isobench_journal, must_patch_death, step,
                                      trajectory)

PATCH = ("diff --git a/vllm/fast.py b/vllm/fast.py\n--- a/vllm/fast.py\n+++ b/vllm/fast.py\n"
         "@@ -1 +1 @@\n-slow = True\n+slow = False\n")
PLAN = Plan(repo="https://github.com/vllm-project/vllm.git", task_id="vllm_core",
            items=[PlanItem(item_id=f"vllm_core-{n:04d}", human=f"{n:02d}aa{n:02d}bb{n:02d}cc")
                   for n in range(6)])
CLAUDE_RESULT = {"type": "result", "subtype": "success", "is_error": False,
                 "duration_ms": 448075, "num_turns": 44, "result": "Optimization complete",
                 "total_cost_usd": 1.18,
                 "usage": {"input_tokens": 183, "cache_creation_input_tokens": 44566,
                           "cache_read_input_tokens": 1799478, "output_tokens": 18740}}


def _item(runs: Path, agent: str, model: str, stamp: str, n: int, journal: dict | str,
          traj: dict | None = None, patch: str | None = PATCH,
          stdout: str | None = None) -> Path:
    item_id = f"vllm_core-{n:04d}"
    item_dir = runs / "vllm" / agent / model / stamp / item_id
    item_dir.mkdir(parents=True)
    (item_dir / "journal.json").write_text(journal if isinstance(journal, str)
                                           else json.dumps(journal))
    if traj is not None:
        (item_dir / "trajectory.json").write_text(json.dumps(traj))
    if patch is not None:
        (item_dir / "model_patch.diff").write_text(patch)
    if stdout is not None:
        (item_dir / f"{agent}_stdout.txt").write_text(stdout)
    (item_dir / "task.txt").write_text("make it faster")
    return item_dir


def _timed(traj: dict, start: str, end: str) -> dict:
    return {**traj, "start_time": start, "end_time": end}


def _journal(n: int, status: str, **extra) -> dict:
    return isobench_journal(f"vllm_core-{n:04d}", status, PLAN.items[n].human[:8], **extra)


def write_isobench_state(root: Path) -> Path:
    """STATE with two runs of the plan above (trae/gpt-5, claude_code/default).

    trae/gpt-5, two overlapping invocations: the one named 11-00-00 reached items hours later
    than the one named 12-00-00 started them.
      0000 done: success at 12:05 (12-00 dir), then a 401 at 14:00 (11-00 dir).
      0001 left: 401 at 12:05, then 429 at 14:00: by time the last is retryable, not final
           (by directory name the 401 would come last and call it failed).
      0002 done, patch kept: the must-patch death with the work in model_patch.diff.
      0003 done: a plain success.
      0004 left: its only journal is empty (a kill mid-write): listed, not dropped.
      0005 left: never attempted.
    claude_code/default: 0000 done (its result line; cost as it reported), 0001 unknown (no
    output, no patch), the rest left.
    """
    runs = root / "state" / "runs"
    early, late = "2025-11-05_11-00-00", "2025-11-05_12-00-00"
    at = lambda h, m: f"2025-11-05T{h:02d}:{m:02d}:00"  # noqa: E731
    t = ("trae", "gpt-5")
    auth_error = trajectory([step(1, tool=None, error="Error code: 401 - Incorrect API key "
                                                      "provided")], success=False)
    rate_limit = trajectory([step(1, tool=None, error="Error code: 429 - rate limit reached")],
                            success=False)
    _item(runs, *t, late, 0, _journal(0, "success"), _timed(genuine_success(), at(12, 5),
                                                            at(12, 50)))
    _item(runs, *t, early, 0, _journal(0, "error"), _timed(auth_error, at(14, 0), at(14, 1)))
    _item(runs, *t, late, 1, _journal(1, "error"), _timed(auth_error, at(12, 5), at(12, 6)))
    _item(runs, *t, early, 1, _journal(1, "error"), _timed(rate_limit, at(14, 0), at(14, 1)))
    _item(runs, *t, late, 2, _journal(2, "success"), _timed(must_patch_death(), at(12, 10),
                                                            at(12, 40)))
    _item(runs, *t, late, 3, _journal(3, "success"), _timed(genuine_success(), at(12, 20),
                                                            at(12, 30)))
    _item(runs, *t, late, 4, "", None)
    c = ("claude_code", "default")
    claude = lambda n, status, code: {**_journal(n, status), "trae": None,  # noqa: E731
                                      "claude_code": {"cli": "claude", "returncode": code,
                                                      "duration_s": 448.7}}
    _item(runs, *c, late, 0, claude(0, "success", 0), stdout="starting\n"
          + json.dumps(CLAUDE_RESULT) + "\n")
    _item(runs, *c, late, 1, claude(1, "error", 1), patch="", stdout="")
    plan = root / "plan.json"
    plan.write_text(PLAN.model_dump_json())
    return root / "state"


MISFILED_STAMP = "2025-11-05_13-00-00"


def add_misfiled_success(state: Path) -> Path:
    """A trae/gpt-5 directory named vllm_core-0000 whose journal ran vllm_core-0001's commit
    and finished it (ISO-Bench reused item ids for other commits): by its name it would be a
    third attempt of 0000; by its commit it is 0001's success."""
    at = lambda m: f"2025-11-05T13:{m:02d}:00"  # noqa: E731
    return _item(state / "runs", "trae", "gpt-5", MISFILED_STAMP, 0,
                 {**_journal(1, "success"), "task_id": "vllm_core"},
                 _timed(genuine_success(), at(5), at(30)),
                 patch=PATCH.replace("slow = False", "slow = 0001"))


KEPT_STAMP = "2025-11-05_15-00-00"


def add_later_kept_patch(state: Path) -> Path:
    """vllm_core-0003 again, after its verified finish: a must-patch death whose patch was
    kept (a different patch). The verified finish is what the item rests on."""
    at = lambda m: f"2025-11-05T15:{m:02d}:00"  # noqa: E731
    return _item(state / "runs", "trae", "gpt-5", KEPT_STAMP, 3, _journal(3, "success"),
                 _timed(must_patch_death(), at(5), at(40)),
                 patch=PATCH.replace("slow = False", "slow = 'kept later'"))
