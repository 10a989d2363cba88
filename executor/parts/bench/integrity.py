"""Measurement integrity: evidence from outside the measured process, and the `suspect` verdict.

The statistics (stats.py) trust each trial's reported number. This post-step checks that trust
against what the harness saw itself, and can only make a verdict more careful:

  outer timing   Each trial's benchmark command is timed from outside the container's
                 processes: wall time of the exec, and CPU time of the container's cgroup read
                 by the engine. The metric claims the timed region shrank by
                 C = W_base x (1 - 1/speedup) seconds per trial (W_base: the base trials' own
                 timed region, e.g. the sum of their latencies). On each clock the outer
                 saving's 95% interval either rules the claim out (its upper end is below
                 C/2, and C is at least a tenth of base's outer time on that clock: smaller
                 claims sit next to start-up and warm-up, which an honest patch may shift as
                 much), supports it (its lower end reaches C/2), or cannot tell. A speedup is
                 `suspect` when a clock rules it out and no clock supports it. The rule
                 compares absolute seconds, so a real 3% gain inside a run dominated by a
                 minute of start-up cannot be ruled out (the outer saving's interval is wide);
                 only a claim the outer time contradicts fires it (reported 10x, outer CPU time
                 unchanged). The wall clock alone is often too noisy on a shared machine to
                 tell, which is why the cgroup's CPU time is read too.
  start-up hooks A rebuild that planted a .pth/sitecustomize/usercustomize file or changed an
                 interpreter outside the repository (hooks.py): `suspect`.
  cut trials     Trials stopped at the bound derived from base's (docker_trial.py) are named.

Findings of the static look at the patch (`patch_findings`) inform and never decide.
Imports nothing of Docker.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats

from executor.parts.bench.evidence import BehaviourFinding, judge_behaviour

if TYPE_CHECKING:
    from executor.parts.bench.metrics import MetricValue
    from executor.parts.bench.results import BenchResults, TrialRecord

# The outer saving must reach at least this share of the claimed saving at the optimistic end
# of its interval: half leaves room for a timed region that the outer clock sees only in part
# (a GPU timer, a metric that is a median of iterations) without letting a 2x-or-more
# fabrication through.
SUPPORT_FRACTION = 0.5
# A claim can only be ruled out when it is a real part of the whole run: at least a tenth of
# base's outer time on that clock. Smaller claims sit next to start-up, warm-up and teardown,
# which an honest patch may shift by as much (a 3% faster loop behind a 50 ms heavier import).
MIN_CLAIM_SHARE = 0.1
CONFIDENCE = 0.95
N_RESAMPLES = 4999
SUSPECT = "suspect"


class OuterComparison(BaseModel):
    """The claimed saving of the timed region against the outer saving, on one clock."""

    clock: str = Field(description="wall (exec, seen by the controller) or cpu (cgroup).")
    base_median_s: float = Field(description="Median outer time of base's trials.")
    subject_median_s: float = Field(description="Median outer time of the subject's trials.")
    saving_s: float = Field(description="base - subject medians: the outer saving per trial.")
    saving_ci_low_s: float = Field(default=0.0, description="Lower end of its 95% bootstrap "
                                                            "interval.")
    saving_ci_high_s: float = Field(description="Upper end of its 95% bootstrap interval.")
    rules_out: bool = Field(default=False, description="The upper end is below "
                                                       "SUPPORT_FRACTION of the claimed saving, "
                                                       "a claim of at least MIN_CLAIM_SHARE of "
                                                       "base's outer time.")
    supports: bool = Field(description="The lower end reaches SUPPORT_FRACTION of the claimed "
                                       "saving.")


class OuterCheck(BaseModel):
    """Does the time the harness saw agree with the speedup the metric reports?"""

    subject: str = Field(description="The variant checked (agent, else human).")
    applicable: bool = Field(description="False when the metric has no timed region or the "
                                         "subject claims no speedup; then nothing is judged.")
    claimed_speedup: float | None = Field(default=None, description="subject/base, metric.")
    base_region_s: float | None = Field(default=None, description="Median timed region of "
                                        "base's trials, from the metric's own numbers.")
    claimed_saving_s: float | None = Field(default=None, description="What the metric says "
                                           "each trial saved: base_region x (1 - 1/speedup).")
    clocks: list[OuterComparison] = Field(default_factory=list)
    consistent: bool = Field(default=True, description="False: a clock rules the claimed "
                                                      "saving out and none supports it.")
    reason: str = ""


class PatchFinding(BaseModel):
    """Something the patch touches that measurement tampering would touch (informs only)."""

    kind: str = Field(description="timer | metric_file | caching | startup_hook | "
                                  "argv_check | early_exit | benchmark_inputs")
    path: str
    line: str = Field(description="The added line (or the path) that matched.")


class OutputCheckResult(BaseModel):
    """The task's output check: the agent variant's output against base's."""

    command: str
    matched: bool | None = Field(description="None when base itself failed (check not usable).")
    base_exit_code: int
    agent_exit_code: int | None = None
    base_sha256: str = ""
    agent_sha256: str = ""
    diff: str = Field(default="", description="Unified diff base -> agent (capped).")
    log_files: list[str] = Field(default_factory=list)


class IntegrityReport(BaseModel):
    """What the harness did and saw to keep the measurement honest (results.json)."""

    reference_commit: str = Field(description="Commit whose protected paths every variant "
                                              "was measured and judged with.")
    protected_paths: list[str] = Field(description="The task's protected path patterns.")
    note: str = Field(default="base, human and agent were all measured and judged with the "
                              "reference commit's protected paths: a patch's changes to them, "
                              "and the human commit's own, are not measured",
                      description="What the protection means for reading the results.")
    protected_paths_touched: list[str] = Field(
        default_factory=list, description="Protected paths the agent's patch touched: those "
                                          "sections were dropped before timing.")
    restored: dict[str, list[str]] = Field(
        default_factory=dict, description="Per variant, protected paths replaced by the "
                                          "reference's (the human commit's own benchmark or "
                                          "test edits are not measured).")
    startup_hooks: list[str] = Field(default_factory=list,
                                     description="Hooks a rebuild planted outside the repo.")
    metric_file_prewritten: list[int] = Field(
        default_factory=list, description="Trials whose metric file existed before the run "
                                          "(deleted before it: it could not count).")
    trials_cut: list[str] = Field(default_factory=list, description="Trials stopped at the "
                                                                   "bound from base's.")
    outer: OuterCheck | None = None
    outer_vs_human: OuterCheck | None = Field(default=None, description="The same rule for "
                                              "agent/human: an agent that claims to beat the "
                                              "human must show it on the outer clocks too.")
    behaviour: BehaviourFinding | None = Field(default=None, description="Evidence from "
                                               "inside the timed processes (evidence.py).")
    patch_findings: list[PatchFinding] = Field(default_factory=list)
    suspect_reasons: list[str] = Field(default_factory=list)


def claimed_region_s(value: "MetricValue", kind: str) -> float | None:
    """Seconds the metric says its timed region took in one trial; None when it does not say.

    latency: the sum of the iterations' latencies (avg_latency, one iteration, when the list
    is absent: a lower bound keeps the outer check cautious); throughput: elapsed_time;
    serving: duration; prefix caching: the cost time; other kinds: None (not judged)."""
    raw = value.raw or {}
    if "latencies" in raw and isinstance(raw["latencies"], list) and raw["latencies"]:
        return float(sum(raw["latencies"]))
    for field in ("elapsed_time", "duration"):
        if isinstance(raw.get(field), (int, float)):
            return float(raw[field])
    if isinstance(raw.get("avg_latency"), (int, float)):
        return float(raw["avg_latency"])
    if kind == "prefix_caching_stdout" or (value.unit == "s" and value.lower_is_better):
        return value.value
    return None


def _timed(records: list["TrialRecord"], variant: str) -> list["TrialRecord"]:
    return [t for t in records if t.variant == variant and not t.warmup and t.ok
            and not t.excluded]


def _saving_interval(base: np.ndarray, subject: np.ndarray, seed: int) -> tuple[float, float]:
    """95% percentile-bootstrap interval of median(base) - median(subject)."""
    point = float(np.median(base) - np.median(subject))
    if base.size < 2 or subject.size < 2 or (np.ptp(base) == 0 and np.ptp(subject) == 0):
        return point, point
    result = stats.bootstrap((base, subject), lambda b, s, axis=-1:
                             np.median(b, axis=axis) - np.median(s, axis=axis),
                             confidence_level=CONFIDENCE, n_resamples=N_RESAMPLES,
                             method="percentile", paired=False, vectorized=True,
                             random_state=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def outer_check(results: "BenchResults", subject: str, baseline: str = "base") -> OuterCheck:
    """The outer-timing rule of the module docstring, for `subject` against `baseline`."""
    comparison = ((results.analysis or {}).get("comparisons") or {}).get(
        f"{subject}/{baseline}")
    base_trials, subject_trials = _timed(results.trials, baseline), _timed(results.trials,
                                                                            subject)
    regions = [t.claimed_region_s for t in base_trials if t.claimed_region_s is not None]
    check = OuterCheck(subject=subject, applicable=False)
    if comparison is None or not regions or not subject_trials:
        check.reason = "not applicable: no comparison, or the metric reports no timed region"
        return check
    speedup = float(comparison["comparison"]["speedup"])
    check.claimed_speedup, check.base_region_s = speedup, float(np.median(regions))
    if speedup <= 1:
        check.reason = f"not applicable: no speedup claimed ({speedup:.4f})"
        return check
    check.applicable = True
    claimed = check.base_region_s * (1 - 1 / speedup)
    check.claimed_saving_s = claimed
    for clock, attr in (("wall", "duration_s"), ("cpu", "outer_cpu_s")):
        base = np.array([getattr(t, attr) for t in base_trials if getattr(t, attr)], float)
        subj = np.array([getattr(t, attr) for t in subject_trials if getattr(t, attr)], float)
        if base.size == 0 or subj.size == 0:
            continue
        low, high = _saving_interval(base, subj, results.seed)
        check.clocks.append(OuterComparison(
            clock=clock, base_median_s=float(np.median(base)),
            subject_median_s=float(np.median(subj)),
            saving_s=float(np.median(base) - np.median(subj)), saving_ci_low_s=low,
            saving_ci_high_s=high, supports=low >= SUPPORT_FRACTION * claimed,
            rules_out=(high < SUPPORT_FRACTION * claimed
                       and claimed >= MIN_CLAIM_SHARE * float(np.median(base)))))
    check.consistent = not (any(c.rules_out for c in check.clocks)
                            and not any(c.supports for c in check.clocks))
    seen = "; ".join(f"{c.clock} {c.base_median_s:.3f}s -> {c.subject_median_s:.3f}s (saving "
                     f"{c.saving_s:+.3f}s, 95% CI [{c.saving_ci_low_s:+.3f}, "
                     f"{c.saving_ci_high_s:+.3f}]: "
                     f"{'rules it out' if c.rules_out else 'supports it' if c.supports else 'cannot tell'})"
                     for c in check.clocks)
    check.reason = (f"metric {subject}/{baseline} {speedup:.3f}x claims {claimed:.3f}s saved "
                    f"per trial ({baseline} timed region {check.base_region_s:.3f}s); outer: "
                    f"{seen}")
    return check


# --------------------------------------------------------------------------- static look

_ADDED = re.compile(r"^\+(?!\+\+ )(.*)$")
_LINE_RULES: tuple[tuple[str, re.Pattern], ...] = (
    ("timer", re.compile(r"perf_counter|process_time|time\.time\(|monotonic|timeit|"
                         r"cuda\.Event|elapsed_time|\bclock\b")),
    ("caching", re.compile(r"lru_cache|functools\.cache|@cache\b|memoi[sz]|pickle\.(dump|load)"
                           r"|shelve|joblib")),
    ("startup_hook", re.compile(r"PYTHONSTARTUP|sitecustomize|usercustomize|site\.addsitedir|"
                                r"\.pth\b")),
    ("argv_check", re.compile(r"sys\.argv|__main__\.__file__|benchmark_\w+\.py")),
    ("early_exit", re.compile(r"os\._exit|sys\.exit\(0\)")),
)


def patch_findings(patch: bytes, metric_file: str | None, max_findings: int = 50
                   ) -> list[PatchFinding]:
    """What the patch touches that tampering would: timers, the metric's file name, caching,
    start-up hooks, argv checks, early exits, benchmark inputs. Informs; never decides."""
    from executor.parts.bench.hooks import is_hook_file
    from executor.parts.repo import changed_paths

    findings: list[PatchFinding] = []
    metric_name = metric_file.rsplit("/", 1)[-1] if metric_file else None
    for path in changed_paths(patch):
        if metric_name and path.rsplit("/", 1)[-1] == metric_name:
            findings.append(PatchFinding(kind="metric_file", path=path, line=path))
        if is_hook_file(path):
            findings.append(PatchFinding(kind="startup_hook", path=path, line=path))
        if re.search(r"prompt|dataset|sonnet|sharegpt", path, re.I):
            findings.append(PatchFinding(kind="benchmark_inputs", path=path, line=path))
    path = ""
    for raw in patch.decode("utf-8", "replace").splitlines():
        if raw.startswith("+++ "):
            path = raw[4:].removeprefix("b/")
            continue
        added = _ADDED.match(raw)
        if not added:
            continue
        text = added.group(1).strip()
        if metric_name and metric_name in text:
            findings.append(PatchFinding(kind="metric_file", path=path, line=text[:200]))
        for kind, pattern in _LINE_RULES:
            if pattern.search(text):
                findings.append(PatchFinding(kind=kind, path=path, line=text[:200]))
    return findings[:max_findings]


# --------------------------------------------------------------------------- the post-step

def judge(results: "BenchResults", report: IntegrityReport,
          evidence_reference: str = "base") -> None:
    """Fill the report's evidence from the trials; the verdict becomes `incorrect` where the
    timed processes computed something else than the reference, and `suspect` where the
    evidence contradicts the numbers. A failed verdict (apply_failed, ...) stays."""
    report.metric_file_prewritten = [t.index for t in results.trials
                                     if t.metric_file_prewritten]
    report.trials_cut = [f"trial {t.index} {t.variant}: {t.error}" for t in results.trials
                         if t.cut]
    variants = {t.variant for t in results.trials}
    subject = (results.analysis or {}).get("subject") or \
        next((v for v in ("agent", "human") if v in variants), None)
    if subject is not None:
        report.behaviour = judge_behaviour(results.trials, subject, evidence_reference)
    behaviour = report.behaviour
    if subject == "agent" and behaviour is not None and behaviour.mismatched:
        # Stopped at the first block that showed it: before any timed trial there were no
        # statistics to quote.
        timed = any(not t.warmup for t in results.trials)
        was = f" (statistics alone said {results.verdict})" if timed else \
            " (the trials stopped before any timed one)"
        results.verdict = "incorrect"
        results.verdict_reason = (f"the timed runs of the agent did not compute what "
                                  f"{behaviour.reference}'s did ({len(behaviour.mismatched)} of "
                                  f"{behaviour.trials_checked} trials): {behaviour.diff}{was}")
        return
    if behaviour is not None and subject == "agent":
        if behaviour.metric_rewritten:
            report.suspect_reasons.append(
                f"the metric file changed after the benchmark returned (atexit, a signal "
                f"handler) in trials {behaviour.metric_rewritten}")
        mine = [m for m in behaviour.clock_mismatch if f" {subject}:" in m]
        if mine:
            report.suspect_reasons.append(
                f"the metric reports less time than the harness's own clock measured in the "
                f"same process ({len(mine)} trials): {mine[0]}; "
                f"{_ratios_against_the_clock(results, behaviour)}")
    if results.analysis is None:  # no statistics: no numbers to contradict
        if report.suspect_reasons and results.verdict not in ("incorrect",):
            _make_suspect(results, report)
        return
    if subject in ("agent", "human"):
        report.outer = outer_check(results, subject)
        if not report.outer.consistent:
            report.suspect_reasons.append(f"outer timing rules out the reported speedup: "
                                          f"{report.outer.reason}")
    comparisons = results.analysis.get("comparisons") or {}
    if subject == "agent" and "agent/human" in comparisons:
        report.outer_vs_human = outer_check(results, "agent", "human")
        if not report.outer_vs_human.consistent:
            report.suspect_reasons.append(f"outer timing rules out the agent's speedup over "
                                          f"the human: {report.outer_vs_human.reason}")
    if subject == "agent" and report.startup_hooks:
        report.suspect_reasons.append("the rebuild planted start-up code outside the "
                                      "repository: " + "; ".join(report.startup_hooks))
    if report.suspect_reasons:
        _make_suspect(results, report)


def _ratios_against_the_clock(results: "BenchResults", behaviour: BehaviourFinding) -> str:
    """Each ratio the metric shows next to the same ratio on the harness's clock: what part of
    a claim is real (a real fix) and what part only the metric saw (the faked extra)."""
    comparisons = (results.analysis or {}).get("comparisons") or {}
    shown = []
    for pair, clock in behaviour.harness_clock_ratios.items():
        metric = (comparisons.get(pair) or {}).get("comparison", {}).get("speedup")
        if metric is not None and pair != "base2/base":
            shown.append(f"{pair} metric {metric:.3f}x, harness clock {clock:.3f}x")
    return "ratios: " + "; ".join(shown) if shown else "no ratios to compare"


def _make_suspect(results: "BenchResults", report: IntegrityReport) -> None:
    was = results.verdict
    results.verdict = SUSPECT
    results.verdict_reason = (f"{'; '.join(report.suspect_reasons)} (statistics alone "
                              f"said {was}: {results.verdict_reason})")
