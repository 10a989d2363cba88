"""The timing core: run an interleaved schedule through a TrialRunner, look, decide, stop.

Shared by `benchmark()` (containers) and scripts/gpu_timing_check.py (host processes), so a
check on a GPU box exercises exactly the schedule, stopping rule and statistics that isobench
runs use. Imports nothing of Docker.

`measure()` runs blocks (each variant once, in a seeded random order) and looks at the data
after the planned numbers of trials (sequential.SequentialDesign): each look decides every
comparison it can at its own alpha and freezes it; the trials stop when every comparison with
base is decided, or at the last look. A fixed design (`--trials N`) is the one-look case.

Trials that GPU telemetry flags (throttling, another process on the GPU, an Xid or ECC error;
gpu_telemetry.py) are excluded from the decision and re-run at once, up to `max_reruns` for the
whole benchmark. Past that the disturbance is the machine's normal state rather than an
accident, every variant meets it alike, and excluding it would end in too few trials: later
flagged trials count, and `Stopping.flagged_kept` says how many.
"""

from __future__ import annotations

import time
from typing import Callable

from pydantic import BaseModel, Field

from executor.parts.bench.results import TrialRecord, block_pairs, timed_values
from executor.parts.bench.schedule import TrialSpec, interleaved_schedule
from executor.parts.bench.sequential import SequentialDesign
from executor.parts.bench.stats import Decision, Verdict, compare_variants
from executor.parts.bench.trial import TrialRunner

Log = Callable[[str], None]
MIN_GOOD_TRIALS = 2
DEFAULT_MAX_RERUNS = 6


class TrialsVerdict(BaseModel):
    """The verdict on a set of trials, with the statistics behind it."""

    verdict: str = Field(description="A stats verdict, or bench_failed.")
    reason: str = Field(description="Why, in one line.")
    analysis: dict | None = Field(default=None, description="ComparisonReport as JSON; None "
                                                            "when too few trials succeeded.")


class Look(BaseModel):
    """One look at the data."""

    look: int = Field(description="From 1.")
    trials_per_variant: int = Field(description="Timed blocks done at this look.")
    alpha: float = Field(description="The alpha this look spent (alpha/2 per direction).")
    decided: list[str] = Field(description="Comparisons decided at this look.")
    undecided: list[str] = Field(description="Comparisons with base still undecided after it.")


class Stopping(BaseModel):
    """How many trials ran and why they stopped (results.json `stopping`)."""

    mode: str = Field(description="sequential | fixed (one look).")
    design: SequentialDesign = Field(description="Planned looks, alpha, spending function.")
    looks: list[Look] = Field(default_factory=list, description="The looks taken.")
    reason: str = Field(description="decided | max_trials | bench_failed | stopped (the "
                                    "stop callback, e.g. the agent's evidence differs) | "
                                    "not_run")
    blocks: int = Field(default=0, description="Timed blocks run (trials per variant, before "
                                               "exclusions).")
    trials_used: dict[str, int] = Field(default_factory=dict, description="Per variant, the "
                                        "timed values the decision used.")
    reruns: int = Field(default=0, description="Flagged trials run again.")
    excluded: int = Field(default=0, description="Trials left out of the decision (flagged).")
    flagged_kept: int = Field(default=0, description="Flagged trials that count: no re-runs "
                                                     "were left.")


def run_trials(variants: list[str], runner: TrialRunner, *, trials: int, warmup: int,
               seed: int, log: Log = print) -> list[TrialRecord]:
    """`warmup` blocks then `trials` blocks, each variant once per block in a random order."""
    schedule = interleaved_schedule(variants, trials, warmup, seed)
    records: list[TrialRecord] = []
    started = time.monotonic()
    for spec in schedule:
        record = runner(spec)
        records.append(record)
        _log_trial(log, record, f"{spec.index + 1}/{len(schedule)}")
    log(f"bench: {len(schedule)} trials in {time.monotonic() - started:.1f}s")
    return records


def _log_trial(log: Log, record: TrialRecord, position: str) -> None:
    status = f"{record.value:.6g}" if record.ok else f"FAILED ({record.error})"
    flag = f" EXCLUDED ({record.excluded})" if record.excluded else ""
    log(f"bench: trial {position} {record.variant:<6}"
        f"{' (warm-up)' if record.warmup else ''}: {status}{flag}")


def decide_trials(records: list[TrialRecord], variants: list[str], *, lower_is_better: bool,
                  min_effect: float, alpha: float, seed: int, fast_mode: bool = True,
                  decided: dict[str, Decision] | None = None) -> TrialsVerdict:
    """Statistics on the timed trials; bench_failed when a variant has too few values."""
    values = {name: timed_values(records, name) for name in variants}
    pairs = block_pairs(records, "agent", "human") if {"agent", "human"} <= set(variants) \
        else None
    short = [name for name, vals in values.items() if len(vals) < MIN_GOOD_TRIALS]
    if short:
        failures = [t.error for t in records if not t.ok]
        return TrialsVerdict(verdict="bench_failed",
                        reason=f"fewer than {MIN_GOOD_TRIALS} good trials for "
                               f"{', '.join(short)}; first error: "
                               f"{failures[0] if failures else 'none'}")
    report = compare_variants(values, lower_is_better=lower_is_better, min_effect=min_effect,
                              alpha=alpha, seed=seed, fast_mode=fast_mode, decided=decided,
                              human_pairs=pairs)
    return TrialsVerdict(verdict=report.verdict, reason=report.reason,
                    analysis=report.model_dump(mode="json"))


Flagger = Callable[[TrialRecord], str | None]
# Looks at every trial so far after each block; a reason stops the trials (an agent whose timed
# runs computed something else than base's: more trials cannot change that verdict).
Stopper = Callable[[list[TrialRecord]], str | None]


def no_flags(_record: TrialRecord) -> str | None:
    return None


def measure(variants: list[str], runner: TrialRunner, design: SequentialDesign, *,
            warmup: int, seed: int, min_effect: float, lower_is_better: bool | None = None,
            flagged: Flagger = no_flags, max_reruns: int = DEFAULT_MAX_RERUNS,
            fixed: bool = False, fast_mode: bool = True, log: Log = print,
            stop: Stopper | None = None
            ) -> tuple[list[TrialRecord], TrialsVerdict, Stopping]:
    """Blocks until every comparison with base is decided or the last look; see the module doc.

    `lower_is_better` None: the runner's metric says (after its first parsed trial).
    `flagged(record)`: why a trial must not count (GPU telemetry), or None.
    `fast_mode` False compares all values (no mode split): only for contrast in scripts.
    """
    looks, levels = design.looks(), design.levels()
    schedule = interleaved_schedule(variants, design.max_trials, warmup, seed)
    blocks = [[s for s in schedule if s.block == b] for b in range(-warmup, design.max_trials)]
    stopping = Stopping(mode="fixed" if fixed else "sequential", design=design, reason="not_run")
    required = [f"{name}/base" for name in variants if name != "base"]
    records: list[TrialRecord] = []
    frozen: dict[str, Decision] = {}
    verdict = TrialsVerdict(verdict="bench_failed", reason="no trials ran")
    started = time.monotonic()
    for block in blocks:
        for spec in block:
            planned = len(schedule) + stopping.reruns  # the cap: sequential trials may stop early
            record = _run_slot(runner, spec, len(records), planned, records, log)
            reason = None if spec.warmup else flagged(record)
            while reason is not None:
                if stopping.reruns >= max_reruns:
                    stopping.flagged_kept += 1
                    log(f"bench: trial {record.index + 1} flagged ({reason}) but kept: no "
                        f"re-runs left ({max_reruns})")
                    break
                record.excluded = reason
                stopping.excluded += 1
                stopping.reruns += 1
                log(f"bench: trial {record.index + 1} excluded ({reason}); running it again")
                record = _run_slot(runner, spec, len(records), len(schedule) + stopping.reruns,
                                   records, log)
                reason = flagged(record)
        timed = block[0].block + 1
        if stop is not None and (why := stop(records)) is not None:
            stopping.reason, stopping.blocks = "stopped", max(timed, 0)
            verdict = TrialsVerdict(verdict="bench_failed", reason=f"trials stopped: {why}")
            log(f"bench: trials stopped after block {timed}: {why}")
            break
        if block[0].warmup or timed not in looks:
            continue
        k = looks.index(timed)
        direction = lower_is_better if lower_is_better is not None else \
            (runner.metric_info or {}).get("lower_is_better", True)
        verdict = decide_trials(records, variants, lower_is_better=direction,
                                min_effect=min_effect, alpha=levels[k], seed=seed,
                                fast_mode=fast_mode, decided=frozen)
        stopping.blocks = timed
        if verdict.analysis is None:
            stopping.reason = "bench_failed"
            break
        newly = _freeze(verdict.analysis, frozen, k + 1, timed)
        undecided = [key for key in required + _human_match_question(frozen)
                     if key not in frozen]
        stopping.looks.append(Look(look=k + 1, trials_per_variant=timed, alpha=levels[k],
                                   decided=newly, undecided=undecided))
        log(f"bench: look {k + 1}/{len(looks)} at {timed} trials/variant (alpha {levels[k]:.4g})"
            f": {verdict.verdict}; decided {', '.join(newly) or 'nothing new'}"
            f"{'; undecided ' + ', '.join(undecided) if undecided else ''}")
        if not undecided:
            stopping.reason = "decided"
            break
        if k == len(looks) - 1:
            stopping.reason = "max_trials"
    stopping.trials_used = {name: len(timed_values(records, name)) for name in variants}
    log(f"bench: {len(records)} trials in {time.monotonic() - started:.1f}s, stopped: "
        f"{stopping.reason} after {stopping.blocks} trials/variant")
    if verdict.analysis is not None:
        verdict.reason += f" [{stopping.mode}: {stopping.reason} after {stopping.blocks} " \
                          f"trials/variant]"
    return records, verdict, stopping


def _run_slot(runner: TrialRunner, spec: TrialSpec, index: int, planned: int,
              records: list[TrialRecord], log: Log) -> TrialRecord:
    """Runs `spec` as trial number `index` of at most `planned` (re-runs shift the numbers of
    later trials)."""
    record = runner(spec.model_copy(update={"index": index}))
    records.append(record)
    _log_trial(log, record, f"{index + 1}/{planned}")
    return record


def _human_match_question(frozen: dict[str, Decision]) -> list[str]:
    """agent/human must be decided too once the agent and the human are both improved over
    base: whether the agent matches the human is then the question the verdict answers
    (stats.decide_human_match), and stopping before it is decided would leave it to noise."""
    improved = [frozen.get(key) for key in ("agent/base", "human/base")]
    if all(d is not None and d.verdict is Verdict.IMPROVED for d in improved):
        return ["agent/human"]
    return []


def _freeze(analysis: dict, frozen: dict[str, Decision], look: int, trials: int) -> list[str]:
    """Keep every comparison decided for the first time at this look; returns their keys."""
    newly = []
    for key, data in analysis["comparisons"].items():
        if key in frozen or data["verdict"] == Verdict.INCONCLUSIVE:
            continue
        data.update(look=look, trials_per_variant=trials)
        frozen[key] = Decision.model_validate(data)
        newly.append(key)
    return newly
