"""`isobench status`: where a state directory stands and why things failed. Only reads.

Reads isobench's layout (executor/records/state.py) and ISO-Bench's (executor/views/legacy): for each run it
reports planned, attempted, succeeded, failed and remaining items; attempts and error rate; the
most retried items with their outcome sequences; error signatures ranked; tokens, cost and
durations. An item counts as succeeded or failed only when the retry policy calls its last
attempt final, the same rule `isobench run --resume` uses to skip it; ISO-Bench runs are judged
on their trajectories, not on their own `status`.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, Field

from executor.runs.batch.order import attempt_seconds
from executor.parts.bench.noise import RunNoiseFloor, read_run_noise_floor
from executor.core.policy import DecisionKind, RetryPolicy, decide, failure_class
from executor.core.errors import ErrorClass, UserInputError
from executor.core.journal import Attempt, Journal, RunStatus, Usage, utcnow
from executor.views.legacy.commit_keys import Misfiled, group_by_commit, same_commit
from executor.views.legacy.isobench_runs import SOURCE as ISO_SOURCE
from executor.views.legacy.isobench_runs import (TrajectorySeen, is_isobench_journal,
                                                 legacy_item)
from executor.views.fixes import user_fix
from executor.views.legacy.journal_less import find_journal_less
from executor.records.state import (JOURNAL_NAME, NOISE_FLOOR_NAME, PLAN_NAME, POLICY_NAME,
                            LockState, lock_state, read_json)
from executor.core.task import Plan, PlanItem

OURS = "isobench"
ITEM_DEPTH = "*/*/*/*/*"  # runs/<task>/<agent>/<model>/<run_id>/<item_id>


class ItemStatus(BaseModel):
    """One item: where it stands and how it got there."""

    item_id: str = Field(description="Plan item id.")
    state: str = Field(description="succeeded | failed | running | unknown | remaining.")
    attempts: int = Field(description="Attempts recorded (interrupted ones included).")
    sequence: list[str] = Field(description="Each attempt's outcome: success or signature.")
    reason: str = Field(default="", description="The policy's reason for the state.")
    claimed: list[str | None] = Field(default_factory=list,
                                      description="ISO-Bench's own status per attempt.")
    holder: str | None = Field(default=None, description="host:pid holding the lock, if held.")
    patch_kept: bool = Field(default=False, description="Done by a run that died after its work "
                                                        "was in the patch (benchmarkable).")
    fix: str | None = Field(default=None, description="A failure the user can fix: what to do "
                                                      "before rerunning it (remaining plan).")
    plan_item: PlanItem = Field(description="The item as a plan entry (for remaining plans).")


class SignatureCount(BaseModel):
    """One failure signature across a run's attempts."""

    name: str = Field(description="Signature name, or the status of an unsigned failure.")
    error_class: ErrorClass = Field(description="retryable, permanent or infra.")
    attempts: int = Field(description="Attempts that ended with it.")
    items: int = Field(description="Distinct items that hit it.")
    example: str = Field(description="An evidence line (the latest seen).")
    cause: str = Field(default="", description="What it means.")


class Durations(BaseModel):
    """Wall time of finished attempts, and time per phase."""

    attempts: int = Field(default=0, description="Finished attempts measured.")
    total_s: float = Field(default=0.0, description="Sum of attempt durations.")
    mean_s: float | None = Field(default=None, description="Mean attempt duration.")
    median_s: float | None = Field(default=None, description="Median attempt duration.")
    max_s: float | None = Field(default=None, description="Longest attempt.")
    phases_s: dict[str, float] = Field(default_factory=dict, description="Total per phase.")


class RunStatusReport(BaseModel):
    """One run (ISO-Bench: one task/agent/model over all its timestamp runs)."""

    source: str = Field(description="'isobench' or 'iso-bench' (the layout it was read from).")
    task: str = Field(description="Task id.")
    agent: str = Field(description="Agent name.")
    model: str = Field(description="Model name.")
    run_id: str = Field(description="Run id; for ISO-Bench 'iso-bench' (runs listed apart).")
    runs: list[str] = Field(default_factory=list, description="ISO-Bench timestamp dirs.")
    path: Path = Field(description="The run directory (ISO-Bench: the model directory).")
    repo: str = Field(default="", description="Repository of the plan, where known.")
    planned: int = Field(description="Items in the plan (or seen, without a plan).")
    attempted: int = Field(description="Items with at least one attempt.")
    succeeded: int = Field(description="Items whose last attempt succeeded.")
    failed: int = Field(description="Items the policy calls finally failed.")
    running: int = Field(description="Items whose lock a live controller holds.")
    unknown: int = Field(default=0, description="Items whose agent left no readable ending "
                                                "(ISO-Bench's trajectory-less agents).")
    patch_kept: int = Field(default=0, description="Succeeded items done by a kept patch.")
    fixable: int = Field(default=0, description="Failed items the user can fix and rerun "
                                                "(each with its fix; in the remaining plan).")
    remaining: int = Field(description="planned - succeeded - failed - unknown (running "
                                       "included).")
    attempts: int = Field(description="All attempts.")
    failed_attempts: int = Field(description="Attempts that ended in a failure.")
    interrupted_attempts: int = Field(description="Attempts stopped by Ctrl-C or a dead "
                                                  "controller.")
    error_rate: float | None = Field(description="failed / (finished, not interrupted).")
    overturned: list[str] = Field(default_factory=list,
                                  description="ISO-Bench items it called success that were not.")
    most_retried: list[ItemStatus] = Field(description="Items with most attempts (>1).")
    signatures: list[SignatureCount] = Field(description="Failures ranked by attempts.")
    usage: Usage = Field(description="Tokens summed over attempts; cost over priced ones.")
    unpriced_attempts: int = Field(default=0, description="Attempts with usage but no cost.")
    durations: Durations = Field(description="Attempt and phase durations.")
    items: list[ItemStatus] = Field(description="Every planned or seen item.")
    warnings: list[str] = Field(default_factory=list,
                                description="Files of this run that exist but are unreadable.")
    misfiled: list[str] = Field(default_factory=list,
                                description="ISO-Bench directories named for another item than "
                                            "the commit their journal ran (counted by commit).")
    journal_less: list[str] = Field(default_factory=list,
                                    description="ISO-Bench directories with a trajectory and no "
                                                "journal.json, each with its outcome (counted "
                                                "as attempts).")
    empty_dirs: list[str] = Field(default_factory=list,
                                  description="ISO-Bench directories with neither journal nor "
                                              "trajectory (nothing shows the agent ran).")
    noise_floor: RunNoiseFloor | None = Field(default=None, description="The run's A/A noise "
                                              "floor (noise_floor.json); None without one.")


class StatusReport(BaseModel):
    """Everything `isobench status` knows about a state directory."""

    state_dir: Path = Field(description="What was read.")
    generated_at: datetime = Field(default_factory=utcnow, description="When.")
    runs: list[RunStatusReport] = Field(description="One entry per run.")
    unreadable: list[str] = Field(default_factory=list,
                                  description="Journals that exist but are empty or not JSON: "
                                              "counted here, never silently dropped.")


# --------------------------------------------------------------------------- reading


class _Item(BaseModel):
    """A journal as read, with what only the reader knows."""

    journal: Journal
    claimed: list[str | None] = Field(default_factory=list)
    runs: list[str] = Field(default_factory=list)
    dirs: list[Path] = Field(default_factory=list, description="Item directory per attempt "
                                                               "(ISO-Bench) or the one (ours).")
    lock: LockState | None = None


class _Run(BaseModel):
    source: str
    path: Path
    names: tuple[str, str, str, str]  # task, agent, model, run_id as found in the path
    items: list[_Item] = Field(default_factory=list)
    plan: Plan | None = None
    policy: RetryPolicy | None = None
    warnings: list[str] = Field(default_factory=list)
    misfiled: list[Misfiled] = Field(default_factory=list)
    journal_less: list[Path] = Field(default_factory=list)
    empty_dirs: list[Path] = Field(default_factory=list)


def runs_dir(state: Path) -> tuple[Path, Path]:
    """(the runs/ directory, the part of it asked about) for STATE, STATE/runs or below."""
    state = state.resolve()
    if (state / "runs").is_dir():
        return state / "runs", state / "runs"
    for parent in (state, *state.parents):
        if parent.name == "runs":
            return parent, state
    raise UserInputError(f"{state} is not a state directory (no runs/ in or above it)")


def read_runs(state: Path, unreadable: list[str] | None = None,
              plan: Plan | None = None, seen: TrajectorySeen | None = None) -> list[_Run]:
    """Every run under STATE; journals that exist but cannot be read go to `unreadable`.
    ISO-Bench attempts are grouped by the commit their journal ran, named by `plan` (else the
    state's own plan.json) where it holds that commit. `seen` is told each ISO-Bench trajectory
    parsed (the report takes its steps from there)."""
    root, scope = runs_dir(state)
    runs: dict[tuple[str, Path], _Run] = {}
    legacy: dict[tuple[Path, str], list[tuple[Path, dict]]] = defaultdict(list)
    no_journal: list[Path] = []
    for item_dir in sorted(root.glob(ITEM_DEPTH)):
        if scope != root and not _within(item_dir, scope):  # all of root: no test per dir
            continue
        journal_path = item_dir / JOURNAL_NAME
        if not journal_path.exists():
            no_journal.append(item_dir)
            continue
        data = read_json(journal_path)
        if is_isobench_journal(data):
            # One ISO-Bench model directory mixes tasks: each task is its own run.
            task = str(data.get("task_id") or item_dir.parent.parent.parent.parent.name)
            legacy[(item_dir.parent.parent, task)].append((item_dir, data))
        elif isinstance(data, dict) and "attempts" in data:
            run = _our_run(runs, item_dir.parent, root)
            run.items.append(_Item(journal=Journal.model_validate(data), dirs=[item_dir],
                                   lock=lock_state(item_dir)))
        elif unreadable is not None:
            unreadable.append(f"{journal_path}: " + ("empty or not JSON" if data is None
                                                     else "not a journal"))
    for plan_path in root.glob(f"*/*/*/*/{PLAN_NAME}"):  # runs planned, maybe not started
        if _within(plan_path.parent, scope) or _within(scope, plan_path.parent):
            _our_run(runs, plan_path.parent, root)
    own_plan = _state_plan(root.parent)
    journal_less = find_journal_less([d for d in no_journal if d.is_dir()], legacy)
    for key, found in journal_less.items():
        legacy[key] += found.with_trajectory
    for (model_dir, task), dirs in sorted(legacy.items()):
        _, agent, model = model_dir.relative_to(root).parts
        run = runs.setdefault((ISO_SOURCE, model_dir / task), _Run(
            source=ISO_SOURCE, path=model_dir, names=(task, agent, model, ISO_SOURCE)))
        if (extra := journal_less.get((model_dir, task))) is not None:
            run.journal_less += [d for d, _ in extra.with_trajectory]
            run.empty_dirs += extra.empty
        naming = next((p for p in (plan, own_plan) if p is not None and p.task_id == task), None)
        groups = group_by_commit(dirs, naming)
        for item_id, found in sorted(groups.items.items()):
            item = legacy_item(task, agent, model, found, item_id=item_id,
                               commit=groups.commits.get(item_id), seen=seen)
            run.items.append(_Item(journal=item.journal, claimed=item.claimed, runs=item.runs,
                                   dirs=item.item_dirs))
            run.warnings += item.warnings
        run.misfiled += groups.misfiled
    return sorted(runs.values(), key=lambda r: (r.names, r.source))


def _state_plan(state: Path) -> Plan | None:
    """ISO-Bench's own STATE/plan.json (isobench keeps plans per run, never there)."""
    data = read_json(state / PLAN_NAME)
    try:
        return Plan.model_validate(data) if isinstance(data, dict) else None
    except ValueError:
        return None


def _our_run(runs: dict, run_dir: Path, root: Path) -> _Run:
    key = (OURS, run_dir)
    if key not in runs:
        plan = read_json(run_dir / PLAN_NAME)
        policy = read_json(run_dir / POLICY_NAME)
        runs[key] = _Run(source=OURS, path=run_dir, names=tuple(run_dir.relative_to(root).parts),
                         plan=Plan.model_validate(plan) if isinstance(plan, dict) else None,
                         policy=RetryPolicy.model_validate(policy)
                         if isinstance(policy, dict) else None)
    return runs[key]


def _within(path: Path, scope: Path) -> bool:
    return path == scope or scope in path.parents


# --------------------------------------------------------------------------- judging


def attempt_label(attempt: Attempt) -> str:
    """success, interrupted, running, or the failure's signature name."""
    if attempt.status in (RunStatus.SUCCESS, RunStatus.INTERRUPTED, RunStatus.RUNNING):
        return attempt.status.value
    return attempt.signature.name if attempt.signature else attempt.status.value


def judge_item(item: _Item, policy: RetryPolicy, plan_item: PlanItem | None,
               any_success: bool = False) -> ItemStatus:
    """The policy's view of the item. `any_success` (ISO-Bench): done when any attempt truly
    finished, whatever ran after it; unknown when nothing finished and some attempt's ending
    cannot be read."""
    journal = item.journal
    decision = decide(journal.attempts, policy)
    holder = None
    finish = deciding_success(journal.attempts)
    if any_success and finish is not None:
        return ItemStatus(item_id=journal.item_id, state="succeeded",
                          attempts=len(journal.attempts),
                          sequence=[attempt_label(a) for a in journal.attempts],
                          reason=f"attempt {finish.attempt}: {finish.agent_outcome}",
                          claimed=item.claimed, plan_item=plan_item or _plan_item_from(journal),
                          patch_kept=_kept(finish))
    if any_success and any(a.status == RunStatus.UNKNOWN for a in journal.attempts):
        unknown = next(a for a in reversed(journal.attempts) if a.status == RunStatus.UNKNOWN)
        return ItemStatus(item_id=journal.item_id, state="unknown",
                          attempts=len(journal.attempts),
                          sequence=[attempt_label(a) for a in journal.attempts],
                          reason=unknown.agent_outcome or "unknown", claimed=item.claimed,
                          plan_item=plan_item or _plan_item_from(journal))
    fix = None
    if decision.kind == DecisionKind.SUCCESS:
        state = "succeeded"
    elif decision.final:
        # Final for the policy (a retry would send the same inputs), yet the user can change
        # the inputs: named, and in the remaining plan, while `run` and `status` agree it failed.
        fix = user_fix(journal.attempts[-1] if journal.attempts else None)
        state = "failed"
    elif decision.kind == DecisionKind.ABANDONED and item.lock and item.lock.held is not False:
        state = "running"
        who = item.lock.holder
        holder = f"{who.host}:{who.pid}" if who else None
    else:
        state = "remaining"
    reason = decision.reason
    if decision.kind == DecisionKind.ABANDONED and state == "remaining":
        reason += "; its controller is gone (resume closes it as interrupted)"
    if fix:
        reason += f"; can be rerun {fix}"
    return ItemStatus(item_id=journal.item_id, state=state, attempts=len(journal.attempts),
                      sequence=[attempt_label(a) for a in journal.attempts], reason=reason,
                      claimed=item.claimed, holder=holder, fix=fix,
                      plan_item=plan_item or _plan_item_from(journal))


def deciding_success(attempts: list[Attempt]) -> Attempt | None:
    """The success an item rests on: the last verified finish, else the last kept patch (a
    must-patch death's patch is benchmarkable, but a finish the agent reported is better
    evidence, whatever ran after it)."""
    done = [a for a in attempts if a.status == RunStatus.SUCCESS]
    verified = [a for a in done if not _kept(a)]
    return (verified or done or [None])[-1]


def _kept(attempt: Attempt) -> bool:
    return (attempt.agent_outcome or "").startswith("finished, patch kept")


def _plan_item_from(journal: Journal) -> PlanItem:
    base = journal.commits.get("base", "")
    human = journal.commits.get("human", "")
    if "^" in base:  # our "<human>^<n>" placeholder: the plan said "parent n"
        sha, _, n = base.partition("^")
        return PlanItem(item_id=journal.item_id, human=human or sha, pre="",
                        pre_parent_index=int(n or 1))
    return PlanItem(item_id=journal.item_id, human=human, pre=base)


def summarize_run(run: _Run, policy: RetryPolicy | None = None, plan: Plan | None = None,
                  top: int = 5) -> RunStatusReport:
    policy = policy or run.policy or RetryPolicy()
    plan = plan or run.plan
    planned = {i.item_id: i for i in plan.items} if plan else {}
    seen = by_plan_item(run.items, plan) if plan else {i.journal.item_id: i for i in run.items}
    order = list(planned) + [i for i in seen if i not in planned]
    empty = lambda item_id: _Item(journal=Journal(  # noqa: E731 - planned, never attempted
        task_id=run.names[0], item_id=item_id, run_id=run.names[3], agent=run.names[1],
        model=run.names[2], commits={}))
    legacy = run.source == ISO_SOURCE
    items = [judge_item(seen.get(i) or empty(i), policy, planned.get(i), legacy) for i in order]
    attempts = [a for i in run.items for a in i.journal.attempts]
    finished = [a for a in attempts if a.finished and a.status != RunStatus.INTERRUPTED]
    failed = [a for a in finished if failure_class(a) is not None]
    first = run.items[0].journal if run.items else None
    count = Counter(i.state for i in items)
    return RunStatusReport(
        source=run.source, task=first.task_id if first else run.names[0],
        agent=first.agent if first else run.names[1],
        model=first.model if first else run.names[2], run_id=run.names[3],
        runs=sorted({r for i in run.items for r in i.runs}), path=run.path,
        repo=plan.repo if plan else "", planned=len(items),
        attempted=sum(1 for i in items if i.attempts), succeeded=count["succeeded"],
        failed=count["failed"], running=count["running"], unknown=count["unknown"],
        patch_kept=sum(1 for i in items if i.patch_kept),
        fixable=sum(1 for i in items if i.fix),
        remaining=len(items) - count["succeeded"] - count["failed"] - count["unknown"],
        attempts=len(attempts), failed_attempts=len(failed),
        interrupted_attempts=sum(1 for a in attempts if a.status == RunStatus.INTERRUPTED),
        error_rate=round(len(failed) / len(finished), 4) if finished else None,
        overturned=sorted({i.journal.item_id for i in run.items
                           for claim, a in zip(i.claimed, i.journal.attempts)
                           if claim == "success" and a.status != RunStatus.SUCCESS}),
        most_retried=sorted((i for i in items if i.attempts > 1),
                            key=lambda i: (-i.attempts, i.item_id))[:top],
        signatures=rank_signatures(run.items),
        usage=sum_usage(attempts),
        unpriced_attempts=sum(1 for a in attempts if a.usage and a.usage.cost_usd is None),
        durations=durations(attempts), items=items, warnings=run.warnings,
        misfiled=[m.describe() for m in run.misfiled],
        journal_less=_journal_less(run), empty_dirs=[_short(d) for d in run.empty_dirs],
        noise_floor=read_run_noise_floor(run.path / NOISE_FLOOR_NAME)
        if run.source == OURS else None)


def _short(item_dir: Path) -> str:
    return f"{item_dir.parent.name}/{item_dir.name}"


def _journal_less(run: _Run) -> list[str]:
    """Each journal-less directory with the outcome its trajectory shows."""
    wanted = set(run.journal_less)
    return sorted(f"{_short(d)}: {attempt_label(a)}" for i in run.items
                  for d, a in zip(i.dirs, i.journal.attempts) if d in wanted)


def by_plan_item(items: list[_Item], plan: Plan) -> dict[str, _Item]:
    """Items keyed by the plan's item id, found by the commit the item ran: ISO-Bench named
    items per invocation ('vllm_bedrock_sonnet45-0003' for the plan's 'vllm_core-0002') and
    reused ids for other commits, so an id counts only when the plan gives that id the same
    commit (or the item names none). Items that meet on one plan item are one item, attempts
    in time order."""
    human_of = {i.item_id: i.human for i in plan.items}
    merged: dict[str, list[_Item]] = defaultdict(list)
    for item in items:
        key = item.journal.item_id
        human = item.journal.commits.get("human", "")
        if len(human) >= 7 and not same_commit(human_of.get(key, ""), human):
            key = next((i.item_id for i in plan.items if same_commit(i.human, human)), key)
        merged[key].append(item)
    return {key: group[0] if len(group) == 1 else _merge(key, group)
            for key, group in merged.items()}


def _merge(item_id: str, group: list[_Item]) -> _Item:
    rows = sorted(((a, c, r, d) for g in group for a, c, r, d in
                   itertools.zip_longest(g.journal.attempts, g.claimed, g.runs, g.dirs)),
                  key=lambda row: _aware(row[0].started_at))
    attempts = [a.model_copy(update={"attempt": n}) for n, (a, *_) in enumerate(rows, 1)]
    journal = group[0].journal.model_copy(update={"item_id": item_id, "attempts": attempts})
    return _Item(journal=journal, claimed=[c for _, c, _, _ in rows],
                 runs=[r for _, _, r, _ in rows if r], dirs=[d for _, _, _, d in rows if d])


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)



def rank_signatures(items: list[_Item]) -> list[SignatureCount]:
    """Every failure (and every interruption with a cause), most frequent first."""
    counts: dict[str, SignatureCount] = {}
    hit: dict[str, set[str]] = defaultdict(set)
    for item in items:
        for a in item.journal.attempts:
            cls = failure_class(a)
            if a.signature is None and cls is None:
                continue
            name = a.signature.name if a.signature else a.status.value
            entry = counts.get(name) or SignatureCount(
                name=name, error_class=a.signature.error_class if a.signature else cls,
                attempts=0, items=0, example="",
                cause=a.signature.cause if a.signature else "")
            entry.attempts += 1
            entry.example = (a.signature.evidence if a.signature
                             else f"(no signature: status {a.status.value})")
            hit[name].add(item.journal.item_id)
            counts[name] = entry
    for name, entry in counts.items():
        entry.items = len(hit[name])
    return sorted(counts.values(), key=lambda s: (-s.attempts, s.name))


def sum_usage(attempts: list[Attempt]) -> Usage:
    total = Usage()
    priced = False
    for a in attempts:
        if a.usage is None:
            continue
        for name in ("input_tokens", "output_tokens", "cached_input_tokens",
                     "cache_creation_input_tokens", "reasoning_tokens", "llm_calls"):
            setattr(total, name, getattr(total, name) + getattr(a.usage, name))
        if a.usage.cost_usd is not None:
            total.cost_usd = (total.cost_usd or 0.0) + a.usage.cost_usd
            priced = True
    if priced:
        total.cost_usd = round(total.cost_usd, 4)
    return total


def durations(attempts: list[Attempt]) -> Durations:
    walls = [d for d in map(attempt_seconds, attempts) if d is not None]
    phases: dict[str, float] = defaultdict(float)
    for a in attempts:
        for p in a.phases:
            phases[p.name] += p.duration_s
    if not walls:
        return Durations(phases_s=dict(phases))
    return Durations(attempts=len(walls), total_s=round(sum(walls), 3),
                     mean_s=round(statistics.fmean(walls), 3),
                     median_s=round(statistics.median(walls), 3), max_s=round(max(walls), 3),
                     phases_s={k: round(v, 3) for k, v in phases.items()})


# --------------------------------------------------------------------------- entry points


def build_report(state: Path, *, plan: Plan | None = None, policy: RetryPolicy | None = None,
                 top: int = 5) -> StatusReport:
    """Read STATE (a state dir, its runs/, or any directory below) into a report.

    `plan` applies to runs of its task (ISO-Bench runs keep no plan; pass theirs to count the
    items never attempted). `policy` overrides the one each run recorded.
    """
    reports = []
    unreadable: list[str] = []
    for run in read_runs(state, unreadable, plan):
        applies = plan is not None and plan.task_id in (run.names[0], _task_of(run))
        reports.append(summarize_run(run, policy, plan if applies else None, top))
    return StatusReport(state_dir=state, runs=reports, unreadable=unreadable)


def _task_of(run: _Run) -> str:
    return run.items[0].journal.task_id if run.items else run.names[0]


def is_left(item: ItemStatus) -> bool:
    """Worth running again: not final, or failed in a way the user can fix first."""
    return item.state not in ("succeeded", "failed") or item.fix is not None


def remaining_plan(report: RunStatusReport) -> Plan:
    """The items of one run worth running again, as a plan (ISO-Bench plan.json format): those
    not final (unknown included: nothing shows they were done) and the failures the user can
    fix (remaining_plan_json names each fix); the agent's own final outcomes are not in it."""
    return Plan(repo=report.repo or report.task, task_id=report.task,
                items=[i.plan_item for i in report.items if is_left(i)])


def remaining_plan_json(report: RunStatusReport) -> dict:
    """remaining_plan with why each item is left (`left`: its state, or the failure to fix)
    and the fix (`fix`) beside it: a plan reader ignores fields it does not know, so
    `isobench run` takes this file as is."""
    plan = remaining_plan(report).model_dump(mode="json")
    left = {i.item_id: i for i in report.items if is_left(i)}
    for entry in plan["items"]:
        item = left[entry["item_id"]]
        entry["left"] = item.state if not item.fix else (item.sequence or ["failed"])[-1]
        if item.fix:
            entry["fix"] = item.fix
    return plan
