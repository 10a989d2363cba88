"""Evidence from inside the timed process: what the benchmark computed, and how long it took.

Outer timing (integrity.py) sees a whole run from outside; the output check runs a process of
its own, which code that recognises the benchmark can treat differently. The hook
(evidence_hook.py) closes that gap: every benchmark run of every variant, warm-up and timed
alike, goes through it, so a check and a timed run are the same thing to the measured code
(same argv, environment, paths and inputs). From each run it brings back, signed with a key
that exists only for that run:
  * a digest of the state each iteration computed, which the agent's runs must reproduce
    (base's, or the human's where the task says behaviour changes): a patch that recognises
    the benchmark and skips or changes work there is `incorrect`, with the first differing
    iteration as the diff;
  * the CPU and wall time of each iteration on the harness's own references to the real
    clocks: a metric that reports less time than that (a replaced clock, faked latencies)
    is `suspect`, with both numbers;
  * the metric file's sha256 as the benchmark left it: a file that differs after the process
    exits was rewritten after the benchmark (atexit, a signal handler), `suspect`.
Missing or unsigned evidence in an agent trial (the process left through os._exit inside the
benchmark, or something replaced the file) makes the trial count as not reproducing base.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
import secrets
import tarfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from executor.core.task import EvidenceSpec

if TYPE_CHECKING:
    from executor.parts.bench.results import TrialRecord

HOOK_SOURCE = Path(__file__).with_name("evidence_hook.py")
HOOK_PATH = "/isobench/evidence_hook.py"
CONFIG_PATH = "/isobench/evidence.json"
OUT_PATH = "/tmp/isobench_evidence.json"
# A metric may not report less than this share of the time the harness's own clock measured
# for the same iterations in the same process. Honest code reports more (the benchmark's clock
# reads bracket the hook's); 0.9 leaves room for clock granularity, nothing for a faked 2x.
CLOCK_FLOOR = 0.9


class TrialEvidence(BaseModel):
    """What the hook recorded in one trial's process (or why there is nothing)."""

    valid: bool = Field(description="Present, signed with this run's key, and complete.")
    problem: str | None = Field(default=None, description="Why not valid.")
    digest: str | None = Field(default=None, description="sha256 over every iteration's state "
                               "and every recorded result, in order.")
    iterations: int = 0
    states: list[str] = Field(default_factory=list, description="Per iteration, a readable "
                              "summary of the state (capped).")
    results: list[str] = Field(default_factory=list, description="Per recorded call, a "
                               "summary of its result (vLLM: token ids).")
    cpu_s: list[float] = Field(default_factory=list, description="Per iteration, CPU seconds "
                               "on the harness's own clock.")
    wall_s: list[float] = Field(default_factory=list, description="Per iteration, wall "
                                "seconds on the harness's own clock.")
    script_sha256: str | None = None
    input_seed: int | None = Field(default=None, description="The seed this run's inputs "
                                   "were drawn with (EvidenceSpec.seed_flag).")
    metric_rewritten: bool = Field(default=False, description="The metric file after the "
                                   "process exited differs from the one the benchmark left.")


def hook_command(bench_command: str, spec: EvidenceSpec) -> str:
    """The bench command with `python <script>` run through the hook (same argv for the
    script: the hook sets sys.argv to exactly what Python would)."""
    pattern = re.compile(r"(^|\s)(python3?|\S*/python3?)(\s+)" + re.escape(spec.script)
                         + r"(?=\s|$)")
    if not pattern.search(bench_command):
        raise ValueError(f"evidence: the bench command does not run `python {spec.script}`")
    return pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{HOOK_PATH} "
                                 f"{spec.script}", bench_command, count=1)


def input_seed(seed: int, block: int) -> int:
    """The benchmark seed of one block of trials: fresh per block, the same for every variant
    in it (so their evidence can be compared), reproducible from the benchmark's seed."""
    digest = hashlib.sha256(f"{seed}:{block}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 1_000_000


def hook_config(spec: EvidenceSpec, metric_file: str | None, seed: int | None = None
                ) -> tuple[str, bytes]:
    """A fresh key and the hook's configuration for one run (with the block's seed appended
    to the script's arguments when the task names its seed option: the last one wins in
    argparse)."""
    key = secrets.token_hex(16)
    config = {"key": key, "function": spec.function, "state": spec.state,
              "calls": spec.calls, "result": spec.result, "metric_file": metric_file,
              "out": OUT_PATH, "input_seed": seed,
              "argv_append": [spec.seed_flag, str(seed)] if spec.seed_flag and seed is not None
              else []}
    return key, json.dumps(config).encode()


def hook_archive(config: bytes) -> bytes:
    """A tar of the hook and its configuration, to unpack at / (one copy into the
    container instead of a mkdir and two copies: this runs before every trial)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        folder = tarfile.TarInfo(HOOK_PATH.lstrip("/").rsplit("/", 1)[0])
        folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
        tar.addfile(folder)
        for path, data, mode in ((HOOK_PATH, HOOK_SOURCE.read_bytes(), 0o644),
                                 (CONFIG_PATH, config, 0o600)):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def read_evidence(raw: bytes | None, key: str, metric_after: bytes | None) -> TrialEvidence:
    """Check the hook's file: present, signed with `key`, complete; and the metric file."""
    if raw is None:
        return TrialEvidence(valid=False, problem="the process left no evidence (it ended "
                             "inside the benchmark, e.g. os._exit, or the file was removed)")
    try:
        envelope = json.loads(raw)
        body, signature = envelope["body"], envelope["hmac"]
        expected = hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()
        data = json.loads(body)
    except (ValueError, KeyError, TypeError, AttributeError):
        return TrialEvidence(valid=False, problem="the evidence file is not the hook's")
    if not hmac.compare_digest(expected, str(signature)):
        return TrialEvidence(valid=False, problem="the evidence file is not signed with this "
                                                  "run's key: written by something else")
    evidence = TrialEvidence(
        valid=bool(data.get("completed")), digest=data.get("digest"),
        iterations=int(data.get("iterations") or 0), states=list(data.get("states") or [])[:64],
        results=list(data.get("results") or [])[:64], cpu_s=list(data.get("cpu_s") or []),
        wall_s=list(data.get("wall_s") or []), script_sha256=data.get("script_sha256"),
        input_seed=data.get("input_seed"))
    if not evidence.valid:
        evidence.problem = f"the benchmark did not complete (exit {data.get('exit')})"
    if not data.get("hooks"):
        evidence.valid, evidence.problem = False, "the hook found nothing to record"
    recorded = data.get("metric_sha256")
    if recorded is not None and metric_after is not None:
        evidence.metric_rewritten = hashlib.sha256(metric_after).hexdigest() != recorded
    return evidence


# --------------------------------------------------------------------------- judging

class BehaviourFinding(BaseModel):
    """What the evidence of the timed trials says about the subject (results.json)."""

    reference: str = Field(description="Variant whose evidence the subject must reproduce.")
    reference_digest: str | None = Field(default=None, description="Its digest on the first "
                                         "inputs seen (each seed has its own; the most "
                                         "common over the reference's trials on it).")
    trials_checked: int = 0
    mismatched: list[int] = Field(default_factory=list, description="Subject trials whose "
                                  "evidence differs or is missing.")
    diff: str = Field(default="", description="The first difference, iteration by iteration.")
    metric_rewritten: list[int] = Field(default_factory=list, description="Subject trials "
                                        "whose metric file changed after the benchmark.")
    clock_mismatch: list[str] = Field(default_factory=list, description="Trials whose metric "
                                      "reports less time than the harness's clock measured.")
    harness_clock_ratios: dict[str, float] = Field(
        default_factory=dict, description="Per pair, the speedup of medians of the per-trial "
                                          "timed region on the harness's own clock.")


def _timed(trials: list["TrialRecord"], variant: str) -> list["TrialRecord"]:
    return [t for t in trials if t.variant == variant and not t.warmup and t.ok]


def _first_difference(reference: TrialEvidence, subject: TrialEvidence) -> str:
    if not subject.valid:
        return subject.problem or "no evidence"
    for name, ours, theirs in (("iteration", reference.states, subject.states),
                               ("result", reference.results, subject.results)):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            if a != b:
                return f"{name} {i + 1}: reference `{a}`, agent `{b}`"
        if len(ours) != len(theirs):
            return f"{len(ours)} {name}s recorded on the reference, {len(theirs)} on the agent"
    if reference.script_sha256 != subject.script_sha256:
        return "the benchmark script that ran differs from the reference's"
    return "the digests differ (beyond the recorded summaries)"


def _region(trial: "TrialRecord") -> float | None:
    """The harness-clock timed region of a trial: the iterations the metric timed (the last
    ones; warm-up iterations come first), the lesser of CPU and wall per iteration."""
    ev = trial.evidence
    if ev is None or not ev.valid or not ev.cpu_s:
        return None
    return sum(min(c, w) for c, w in zip(ev.cpu_s, ev.wall_s))


def clock_mismatch(trial: "TrialRecord") -> str | None:
    """The metric's timed region against the harness's clock over the same iterations."""
    ev, claimed = trial.evidence, trial.claimed_region_s
    if ev is None or not ev.valid or claimed is None or trial.claimed_iterations is None:
        return None
    n = trial.claimed_iterations
    if n <= 0 or n > len(ev.cpu_s):
        return None
    seen = sum(min(c, w) for c, w in zip(ev.cpu_s[-n:], ev.wall_s[-n:]))
    if seen > 0 and claimed < CLOCK_FLOOR * seen:
        return (f"trial {trial.index} {trial.variant}: the metric reports {claimed:.4f}s for "
                f"{n} iterations, the harness's clock in the same process measured "
                f"{seen:.4f}s ({claimed / seen:.2f}x)")
    return None


def judge_behaviour(trials: list["TrialRecord"], subject: str, reference: str
                    ) -> BehaviourFinding | None:
    """The subject's evidence against the reference's; None when no trial carries any."""
    if not any(t.evidence is not None for t in trials):
        return None
    finding = BehaviourFinding(reference=reference)
    ref_trials = [t for t in trials if t.variant == reference and t.evidence is not None
                  and t.evidence.valid]
    by_seed: dict[int | None, TrialEvidence] = {}
    for seed in {t.evidence.input_seed for t in ref_trials}:
        same = [t.evidence for t in ref_trials if t.evidence.input_seed == seed]
        common = Counter(e.digest for e in same).most_common(1)[0][0]
        by_seed[seed] = next(e for e in same if e.digest == common)
    if by_seed:
        finding.reference_digest = next(iter(by_seed.values())).digest
    for trial in trials:
        if trial.evidence is None or trial.cut:
            continue
        if (why := clock_mismatch(trial)) is not None:
            finding.clock_mismatch.append(why)
        if trial.variant != subject:
            continue
        finding.trials_checked += 1
        if trial.evidence.metric_rewritten:
            finding.metric_rewritten.append(trial.index)
        ref_evidence = by_seed.get(trial.evidence.input_seed) if trial.evidence.valid else \
            next(iter(by_seed.values()), None)
        if ref_evidence is None or subject == reference:
            continue  # no reference run on these inputs (its trial failed): nothing to hold
        same = trial.evidence.valid and trial.evidence.digest == ref_evidence.digest \
            and trial.evidence.script_sha256 == ref_evidence.script_sha256
        if not same:
            finding.mismatched.append(trial.index)
            if not finding.diff:
                finding.diff = f"trial {trial.index}: " + _first_difference(ref_evidence,
                                                                            trial.evidence)
    finding.harness_clock_ratios = harness_ratios(trials)
    return finding


def harness_ratios(trials: list["TrialRecord"]) -> dict[str, float]:
    """Speedups of medians on the harness's clock (lower is better: it is a time)."""
    import statistics

    medians = {}
    for variant in ("base", "human", "agent", "base2"):
        regions = [r for t in _timed(trials, variant) if (r := _region(t)) is not None]
        if regions:
            medians[variant] = statistics.median(regions)
    return {f"{a}/{b}": medians[b] / medians[a]
            for a, b in (("human", "base"), ("agent", "base"), ("agent", "human"),
                         ("base2", "base")) if a in medians and b in medians and medians[a] > 0}
