"""Build the Report model from a state directory: the status of each run (the same reading
`isobench status` does), the benchmark results of each item, and its evidence.

results.json is read generically: the fields this module knows (trials, analysis, verdict) are
mapped to the model; every other top-level field that is present and not empty (integrity
findings, telemetry, A/A summaries, host facts, rerun links written by newer isobench
versions) is carried into `CommitReport.extras`, so new sections appear without a change here
and old files still load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from executor.core.journal import Usage
from executor.views.report.aggregate import aggregate, noise_floor
from executor.views.legacy.isobench_runs import TrajectorySeen
from executor.views.report.evidence import (StepsFields, human_diff, read_diff, steps_from,
                                           trajectory_steps)
from executor.views.report.model import (CommitReport, Comparison, CompareRow, Report, RunReport,
                                   Speedup, Step, Trial)
from executor.core.errors import UserInputError
from executor.records.state import (BENCH_DIR_NAME, BENCH_PATCH_NAME, MANIFEST_NAME, PATCH_NAME,
                            RESULTS_NAME, TRAJECTORY_NAME, read_json)
from executor.views.status import (ItemStatus, RunStatusReport, _Item, _Run, by_plan_item,
                             deciding_success, read_runs, runs_dir, summarize_run, sum_usage)
from executor.core.task import Plan

# The results.json fields mapped above; anything else present is shown as an extra section.
KNOWN_RESULT_FIELDS = frozenset((
    "schema_version", "item_id", "commits", "metric", "seed", "trials_per_variant",
    "warmup_blocks", "variants", "trials", "gate", "analysis", "verdict", "verdict_reason",
    "log_file", "options", "created_at"))
KNOWN_TRIAL_FIELDS = frozenset(("index", "block", "variant", "warmup", "value", "ok", "error",
                                "duration_s", "started_at", "container", "gpu"))
PAIRS = ("human/base", "agent/base", "agent/human", "base2/base")
HOUR = 3600.0


# --------------------------------------------------------------------------- results


def commit_from_results(commit: CommitReport, data: dict[str, Any], path: Path) -> None:
    """Fill the measured part of `commit` from one results.json (any schema version)."""
    commit.results_file = str(path)
    commit.verdict = data.get("verdict")
    commit.verdict_reason = str(data.get("verdict_reason") or "")
    commit.metric = data.get("metric") or {}
    commits = data.get("commits") or {}
    commit.base = commits.get("base") or commit.base
    commit.human = commits.get("human") or commit.human
    comparisons = ((data.get("analysis") or {}).get("comparisons") or {})
    for pair in PAIRS:
        decision = comparisons.get(pair)
        if not isinstance(decision, dict):
            continue
        numbers = decision.get("comparison") or {}
        if isinstance(numbers.get("speedup"), (int, float)):
            commit.speedups.append(Speedup(pair=pair, speedup=numbers["speedup"],
                                           low=numbers.get("ci_low"),
                                           high=numbers.get("ci_high"),
                                           verdict=str(decision.get("verdict") or "")))
    for t in data.get("trials") or []:
        if isinstance(t, dict) and "variant" in t:
            commit.trials.append(Trial(variant=t["variant"], value=t.get("value"),
                                       warmup=bool(t.get("warmup")), error=t.get("error"),
                                       gpu=t.get("gpu") if isinstance(t.get("gpu"), dict)
                                       else None,
                                       extra={k: v for k, v in t.items()
                                              if k not in KNOWN_TRIAL_FIELDS
                                              and v not in (None, {}, [], "")}))
    commit.extras = {k: v for k, v in data.items()
                     if k not in KNOWN_RESULT_FIELDS and v not in (None, {}, [], "")}
    analysis_extras = {k: v for k, v in (data.get("analysis") or {}).items()
                       if k not in ("summaries", "comparisons", "lower_is_better", "min_effect",
                                    "alpha", "seed", "subject", "verdict", "reason",
                                    "calibration_ok") and v not in (None, {}, [], "")}
    if analysis_extras:
        commit.extras["analysis"] = analysis_extras
    gate = data.get("gate")
    if isinstance(gate, dict):
        commit.extras["gate"] = {k: gate.get(k) for k in ("command", "passed", "exit_code")}


def bench_seconds(commit: CommitReport, data: dict[str, Any]) -> float:
    return sum(float(t.get("duration_s") or 0) for t in data.get("trials") or []
               if isinstance(t, dict))


# --------------------------------------------------------------------------- runs


def _repo_of(run: _Run, item_dir: Path | None) -> str | None:
    manifest = read_json(item_dir / MANIFEST_NAME) if item_dir else None
    if isinstance(manifest, dict):
        repo = (manifest.get("task") or {}).get("repo")
        if repo:
            return str(repo)
    return run.plan.repo if run.plan else None


def latest_file(item_dir: Path, name: str) -> Path | None:
    """`name` in the item dir, else in its newest attempt-<n>/ that has one."""
    if (item_dir / name).is_file():
        return item_dir / name
    attempts = sorted(item_dir.glob(f"attempt-*/{name}"),
                      key=lambda p: int(p.parent.name.split("-")[-1] or 0))
    return attempts[-1] if attempts else None


def commit_report(run: _Run, status: ItemStatus, item: _Item | None, human_diffs: bool,
                  steps: dict[Path, tuple[list[Step], str]] | None = None
                  ) -> tuple[CommitReport, float, float]:
    """One item's report, its agent seconds and benchmark seconds (`steps`: trajectories
    already read, by path)."""
    journal = item.journal if item else None
    failed = next((a for a in reversed(journal.attempts) if a.signature), None) \
        if journal else None
    commit = CommitReport(
        item_id=status.item_id, state=status.state, sequence=status.sequence,
        reason=status.reason, fix=status.fix,
        human=(journal.commits.get("human") if journal else "") or status.plan_item.human,
        base=(journal.commits.get("base") if journal else "") or status.plan_item.pre,
        usage=sum_usage(journal.attempts) if journal else None)
    if failed and status.state != "succeeded":
        commit.signature = failed.signature.name
        commit.evidence = failed.signature.evidence
        commit.cause = failed.signature.cause
    item_dir = evidence_dir(item, status)
    bench_s = 0.0
    if item_dir is not None:
        results = latest_file(item_dir, RESULTS_NAME)
        data = read_json(results) if results else None
        if isinstance(data, dict):
            commit_from_results(commit, data, results)
            bench_s = bench_seconds(commit, data)
        commit.agent_diff = read_diff(latest_file(item_dir, PATCH_NAME))
        trajectory = latest_file(item_dir, TRAJECTORY_NAME)
        known = (steps or {}).get(trajectory) if trajectory else None
        commit.steps, commit.trajectory_note = known or trajectory_steps(trajectory)
    else:
        commit.trajectory_note = "not attempted"
    if human_diffs:
        commit.human_diff = human_diff(_repo_of(run, item_dir), _parent(commit.base,
                                                                        commit.human),
                                       commit.human)
    agent_s = sum(p.duration_s for a in (journal.attempts if journal else [])
                  for p in a.phases if p.name == "agent")
    return commit, agent_s, bench_s


def _parent(base: str, human: str) -> str:
    """The plan's 'parent n' placeholder (`<human>^n`) or empty base: git's own spelling."""
    return base or (f"{human}^1" if human else "")


def evidence_dir(item: _Item | None, status: ItemStatus) -> Path | None:
    """Ours: the item directory. ISO-Bench: the directory of the attempt that decided its
    state (when done, the success it rests on: deciding_success; else the last attempt)."""
    if item is None or not item.dirs:
        return None
    if len(item.dirs) == 1:
        return item.dirs[0]
    attempts = item.journal.attempts
    finish = deciding_success(attempts) if status.state == "succeeded" else None
    wanted = attempts.index(finish) if finish is not None else len(attempts) - 1
    return item.dirs[min(wanted, len(item.dirs) - 1)]


def run_report(run: _Run, plan: Plan | None, human_diffs: bool,
               steps: dict[Path, tuple[list[Step], str]] | None = None) -> RunReport:
    status: RunStatusReport = summarize_run(run, plan=plan)
    plan_used = plan or run.plan
    items = (by_plan_item(run.items, plan_used) if plan_used
             else {i.journal.item_id: i for i in run.items})
    commits, agent_s, bench_s = [], 0.0, 0.0
    for item_status in status.items:
        commit, a, b = commit_report(run, item_status, items.get(item_status.item_id),
                                     human_diffs, steps)
        commits.append(commit)
        agent_s += a
        bench_s += b
    causes: dict[str, int] = {}
    for c in commits:
        if c.state == "failed":
            causes[c.signature or "unsigned"] = causes.get(c.signature or "unsigned", 0) + 1
    title = " · ".join([status.task, status.agent, status.model]
                       + ([] if status.runs else [status.run_id]))
    return RunReport(
        title=title, source=status.source, task=status.task, agent=status.agent,
        model=status.model, run_id=status.run_id, path=str(status.path),
        planned=status.planned, done=status.succeeded, patch_kept=status.patch_kept,
        failed=status.failed, unknown=status.unknown, remaining=status.remaining,
        fixable=status.fixable,
        failed_by_cause=dict(sorted(causes.items(), key=lambda kv: -kv[1])),
        usage=status.usage, agent_hours=round(agent_s / HOUR, 3),
        bench_hours=round(bench_s / HOUR, 4), aggregate=aggregate(commits),
        noise_floor=noise_floor(commits), commits=commits, warnings=status.warnings,
        misfiled=status.misfiled)


def bench_runs(root: Path, human_diffs: bool) -> list[RunReport]:
    """`isobench bench` results: STATE/bench/<task>/<run_id>/<item>/results.json."""
    reports = []
    for run_dir in sorted(p for p in root.glob(f"{BENCH_DIR_NAME}/*/*") if p.is_dir()):
        commits, bench_s = [], 0.0
        for results in sorted(run_dir.glob(f"*/{RESULTS_NAME}")):
            data = read_json(results)
            if not isinstance(data, dict):
                continue
            commit = CommitReport(item_id=str(data.get("item_id") or results.parent.name),
                                  state="succeeded")
            commit_from_results(commit, data, results)
            commit.agent_diff = read_diff(results.parent / BENCH_PATCH_NAME)
            commit.trajectory_note = "benchmark only: no agent ran"
            if human_diffs:
                repo = (data.get("options") or {}).get("repo")
                commit.human_diff = human_diff(repo, commit.base, commit.human)
            bench_s += bench_seconds(commit, data)
            commits.append(commit)
        if not commits:
            continue
        task, run_id = run_dir.parent.name, run_dir.name
        reports.append(RunReport(
            title=f"{task} · bench · {run_id}", source="bench", task=task, agent="bench",
            model="-", run_id=run_id, path=str(run_dir), planned=len(commits),
            done=len(commits), usage=Usage(), bench_hours=round(bench_s / HOUR, 4),
            aggregate=aggregate(commits), noise_floor=noise_floor(commits), commits=commits))
    return reports


def compare(left: RunReport, right: RunReport) -> Comparison:
    """Item by item: state, verdict, agent/base speedup, and whether the patches are equal."""
    a, b = {c.item_id: c for c in left.commits}, {c.item_id: c for c in right.commits}
    rows = []
    for item_id in list(a) + [i for i in b if i not in a]:
        x, y = a.get(item_id), b.get(item_id)
        sx = next((s.speedup for s in x.speedups if s.pair == "agent/base"), None) if x else None
        sy = next((s.speedup for s in y.speedups if s.pair == "agent/base"), None) if y else None
        same = (x.agent_diff.sha256 == y.agent_diff.sha256
                if x and y and x.agent_diff.sha256 and y.agent_diff.sha256 else None)
        rows.append(CompareRow(item_id=item_id, left_state=x.state if x else "absent",
                               right_state=y.state if y else "absent",
                               left_verdict=x.verdict if x else None,
                               right_verdict=y.verdict if y else None,
                               left_speedup=sx, right_speedup=sy, same_patch=same))
    agree = sum(1 for r in rows if (r.left_verdict or r.left_state)
                == (r.right_verdict or r.right_state))
    return Comparison(left=left.title, right=right.title, rows=rows, agree=agree)


def build_report(state: Path, *, run_ids: tuple[str, ...] = (), plan: Plan | None = None,
                 human_diffs: bool = True, compare_ids: tuple[str, str] | None = None) -> Report:
    """The whole report. `run_ids` selects runs (by run id, ISO-Bench's by 'task/agent/model'
    or by title substring); `compare_ids` puts two of them side by side."""
    unreadable: list[str] = []
    runs = []
    # Steps of each ISO-Bench trajectory as the reading parses it: a second parse of 284 MB
    # was a third of `report`. Only what a page shows is kept (80 steps, clipped).
    steps: dict[Path, tuple[list[Step], str]] = {}
    seen = TrajectorySeen(StepsFields,
                          lambda path, data: steps.__setitem__(path, steps_from(path, data)))
    for run in read_runs(state, unreadable, plan, seen):
        tasks = (run.names[0], run.items[0].journal.task_id if run.items else "")
        applies = plan is not None and plan.task_id in tasks
        runs.append(run_report(run, plan if applies else None, human_diffs, steps))
    root = runs_dir(state)[0].parent
    runs += bench_runs(root, human_diffs)
    wanted = set(run_ids) | set(compare_ids or ())
    if wanted:
        runs = [r for r in runs if any(_selects(w, r) for w in wanted)]
        unreadable = [u for u in unreadable if any(u.startswith(f"{r.path}/") for r in runs)]
    comparison = None
    if compare_ids:
        left, right = (next((r for r in runs if _selects(w, r)), None) for w in compare_ids)
        if left is None or right is None:
            missing = compare_ids[0] if left is None else compare_ids[1]
            raise UserInputError(f"--compare: no run matches {missing!r}")
        comparison = compare(left, right)
    return Report(state_dir=state, runs=runs, comparison=comparison, unreadable=unreadable)


def _selects(wanted: str, run: RunReport) -> bool:
    return wanted in (run.run_id, f"{run.task}/{run.agent}/{run.model}") or (
        run.run_id == "iso-bench" and wanted in run.title)


