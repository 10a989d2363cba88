"""The report's data: built once from a state directory, rendered as HTML, Markdown and JSON.

Everything a renderer shows is here, so the three renderings cannot disagree. Sections that
other parts of isobench may or may not have written (integrity findings, NVML telemetry, A/A
summaries, host facts, rerun links) are carried as `extras`: whatever optional results.json
fields are present, shown when present, absent otherwise.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from executor.core.journal import Usage, utcnow


class Interval(BaseModel):
    """A point estimate with its bootstrap interval (None bounds: too few commits)."""

    estimate: float | None = Field(default=None, description="Point estimate.")
    low: float | None = Field(default=None, description="Lower bound of the interval.")
    high: float | None = Field(default=None, description="Upper bound of the interval.")
    n: int = Field(default=0, description="Commits it is computed over.")


class Aggregate(BaseModel):
    """Results across measured commits, each with a bootstrap interval over commits."""

    measured: int = Field(default=0, description="Commits with an agent/base comparison.")
    planned: int = Field(default=0, description="Commits planned (the denominator's whole).")
    endings: dict[str, int] = Field(default_factory=dict, description="Commits by how they "
                                    "ended: measured, the agent's own, budget, provider "
                                    "refusal, infrastructure, not ended (core/denominators).")
    denominator: str = Field(default="", description="'N measured of M planned; the rest: "
                                                     "...' in words.")
    confidence: float = Field(default=0.95, description="Level of every interval.")
    share_improved: Interval = Field(default_factory=Interval,
                                     description="Share of commits the agent improved.")
    share_matching_human: Interval = Field(
        default_factory=Interval,
        description="Share reaching 95% of an improved human speedup (GSO's rule).")
    geomean_agent_vs_base: Interval = Field(default_factory=Interval,
                                            description="Geometric mean of agent/base speedups.")
    geomean_agent_vs_human: Interval = Field(
        default_factory=Interval, description="Geometric mean of agent/human speedups.")
    geomean_human_vs_base: Interval = Field(default_factory=Interval,
                                            description="Geometric mean of human/base speedups.")
    verdicts: dict[str, int] = Field(default_factory=dict, description="Verdict -> commits.")


class NoiseFloor(BaseModel):
    """What identical code measured as: the A/A controls (base2/base) that ran."""

    controls: int = Field(description="Commits with an A/A control.")
    false_changes: int = Field(description="Controls whose verdict was a change.")
    median_abs_pct: float = Field(description="Median |speedup - 1| of the controls, in %.")
    max_abs_pct: float = Field(description="Largest |speedup - 1|, in %.")


class Speedup(BaseModel):
    """One comparison of one commit (e.g. agent/base): >1 means the candidate is better."""

    pair: str = Field(description="'agent/base', 'human/base', 'agent/human' or 'base2/base'.")
    speedup: float = Field(description="Ratio of medians, oriented: > 1 is better.")
    low: float | None = Field(default=None, description="Interval low bound.")
    high: float | None = Field(default=None, description="Interval high bound.")
    verdict: str = Field(default="", description="The comparison's verdict.")


class Trial(BaseModel):
    """One timed trial as measured."""

    variant: str = Field(description="base, human, agent, base2...")
    value: float | None = Field(description="The metric; None if the trial failed.")
    warmup: bool = Field(default=False, description="A warm-up trial (not analysed).")
    error: str | None = Field(default=None, description="Why it produced no value.")
    gpu: dict[str, Any] | None = Field(default=None, description="GPU state around the trial.")
    extra: dict[str, Any] = Field(default_factory=dict,
                                  description="Optional per-trial fields present (telemetry).")


class Step(BaseModel):
    """One agent step, as its trajectory shows it."""

    number: int = Field(description="Step number.")
    tool_calls: list[str] = Field(default_factory=list, description="name(arguments), clipped.")
    output: str = Field(default="", description="Tool results, truncated.")
    error: str | None = Field(default=None, description="The step's error, if any.")
    input_tokens: int | None = Field(default=None, description="Tokens in (its LLM call).")
    output_tokens: int | None = Field(default=None, description="Tokens out.")


class Diff(BaseModel):
    """A patch's text, or why it is not shown."""

    text: str | None = Field(default=None, description="The diff (clipped to a size limit).")
    note: str = Field(default="", description="Why it is absent or clipped.")
    sha256: str | None = Field(default=None, description="sha256 of the full patch bytes.")


class CommitReport(BaseModel):
    """One item of a run: how it ended, what was measured, and the evidence."""

    item_id: str = Field(description="Plan item id.")
    human: str = Field(default="", description="Human commit.")
    base: str = Field(default="", description="Base commit.")
    state: str = Field(description="succeeded | failed | unknown | running | remaining.")
    sequence: list[str] = Field(default_factory=list, description="Outcome per attempt.")
    reason: str = Field(default="", description="Why the item is in that state.")
    signature: str | None = Field(default=None, description="Last failure's signature name.")
    fix: str | None = Field(default=None, description="Failed, to rerun after this fix.")
    evidence: str | None = Field(default=None, description="Its evidence line.")
    cause: str | None = Field(default=None, description="What the signature means.")
    verdict: str | None = Field(default=None, description="Benchmark verdict, if measured.")
    verdict_reason: str = Field(default="", description="The verdict's numbers.")
    metric: dict[str, Any] = Field(default_factory=dict, description="Name, unit, direction.")
    speedups: list[Speedup] = Field(default_factory=list, description="Every comparison.")
    trials: list[Trial] = Field(default_factory=list, description="Every trial.")
    agent_diff: Diff = Field(default_factory=Diff, description="The agent's patch.")
    human_diff: Diff = Field(default_factory=Diff, description="The human commit's diff.")
    steps: list[Step] = Field(default_factory=list, description="The trajectory, step by step.")
    trajectory_note: str = Field(default="", description="Where the steps came from, or why "
                                                         "there are none.")
    usage: Usage | None = Field(default=None, description="Tokens and cost of its attempts.")
    extras: dict[str, Any] = Field(default_factory=dict,
                                   description="Optional results.json sections present.")
    results_file: str | None = Field(default=None, description="results.json read.")


class RunReport(BaseModel):
    """One run (or ISO-Bench task/agent/model, or a bench run): counts, totals, commits."""

    title: str = Field(description="task · agent · model · run id.")
    source: str = Field(description="isobench, iso-bench or bench.")
    task: str = Field(description="Task id.")
    agent: str = Field(description="Agent name.")
    model: str = Field(description="Model name.")
    run_id: str = Field(description="Run id.")
    path: str = Field(description="Where it was read.")
    planned: int = Field(default=0, description="Items planned.")
    done: int = Field(default=0, description="Items truly finished.")
    patch_kept: int = Field(default=0, description="Done by a kept patch.")
    failed: int = Field(default=0, description="Items finally failed.")
    unknown: int = Field(default=0, description="Items with no readable ending.")
    remaining: int = Field(default=0, description="Items not final.")
    fixable: int = Field(default=0, description="Failed items the user can fix and rerun "
                                                "(each commit names its fix).")
    failed_by_cause: dict[str, int] = Field(default_factory=dict,
                                            description="Failed items by last signature.")
    usage: Usage = Field(default_factory=Usage, description="Tokens and cost.")
    agent_hours: float = Field(default=0.0, description="Agent phase wall time, hours.")
    bench_hours: float = Field(default=0.0, description="Benchmark trial time, hours.")
    aggregate: Aggregate = Field(default_factory=Aggregate, description="Across commits.")
    noise_floor: NoiseFloor | None = Field(default=None, description="A/A controls, if any.")
    commits: list[CommitReport] = Field(default_factory=list, description="Per item.")
    warnings: list[str] = Field(default_factory=list, description="Unreadable files.")
    misfiled: list[str] = Field(default_factory=list, description="ISO-Bench directories "
                                "that ran another item's commit than their name (counted by "
                                "commit).")


class CompareRow(BaseModel):
    """One item in two runs."""

    item_id: str = Field(description="Item id.")
    left_state: str = Field(description="State in the left run.")
    right_state: str = Field(description="State in the right run.")
    left_verdict: str | None = Field(default=None, description="Verdict in the left run.")
    right_verdict: str | None = Field(default=None, description="Verdict in the right run.")
    left_speedup: float | None = Field(default=None, description="agent/base, left.")
    right_speedup: float | None = Field(default=None, description="agent/base, right.")
    same_patch: bool | None = Field(default=None, description="Patches byte-identical.")


class Comparison(BaseModel):
    """Two runs side by side (two agents on one plan, or a run and its rerun)."""

    left: str = Field(description="Left run's title.")
    right: str = Field(description="Right run's title.")
    rows: list[CompareRow] = Field(description="Items of either run.")
    agree: int = Field(description="Items with the same verdict (or state) in both.")


class Report(BaseModel):
    """Everything `isobench report` shows."""

    state_dir: Path = Field(description="What was read.")
    generated_at: datetime = Field(default_factory=utcnow, description="When.")
    runs: list[RunReport] = Field(description="The runs shown.")
    comparison: Comparison | None = Field(default=None, description="Two runs side by side.")
    unreadable: list[str] = Field(default_factory=list, description="Unreadable journals.")
