"""`isobench compare RUN_A RUN_B`: do two runs of the same items say the same thing?

Per item: both verdicts, both speedups (agent/base, human/base) with their 95% intervals, the
ratio of the agent speedups (B / A), and `replay_valid`: the verdicts agree and every speedup's
intervals are consistent. Two intervals are *consistent* when they overlap once each is widened
by the tolerance (default 2%, the benchmark's smallest effect that counts): a difference smaller
than an effect isobench would report is not called a disagreement. Totals: the agreement rate,
the items whose verdict flipped, and what differed between the hosts (recorded host facts and
benchmark options). A run is a run directory (STATE/runs/<task>/<agent>/<model>/<run_id>) or a
bundle; two agents' runs of one plan compare the same way.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

from executor.parts.bench.results import BenchResults
from executor.core.errors import UserInputError
from executor.core.denominators import counts, denominator_line, ending
from executor.engine.hostfacts import HostFacts, host_differences
from executor.core.journal import load_journal
from executor.runs.rerun.bundle import ITEMS_DIR, open_bundle
from executor.records.state import BUNDLE_INDEX_NAME, JOURNAL_NAME, PATCH_NAME, RESULTS_NAME

DEFAULT_TOLERANCE = 0.02
SPEEDUPS = ("agent/base", "human/base")
COMPARED_OPTIONS = ("trials", "warmup", "min_effect", "alpha", "timeout_s", "network",
                    "python_hash_seed")


class Speedup(BaseModel):
    """One speedup of one run, with its interval."""

    speedup: float = Field(description="Ratio of medians, > 1 means faster.")
    ci_low: float | None = Field(default=None, description="Lower 95% bound.")
    ci_high: float | None = Field(default=None, description="Upper 95% bound.")

    def widened(self, tolerance: float) -> tuple[float, float]:
        low = self.ci_low if self.ci_low is not None else self.speedup
        high = self.ci_high if self.ci_high is not None else self.speedup
        return low * (1 - tolerance), high * (1 + tolerance)

    def __str__(self) -> str:
        if self.ci_low is None or self.ci_high is None:
            return f"{self.speedup:.3f}"
        return f"{self.speedup:.3f} [{self.ci_low:.3f}, {self.ci_high:.3f}]"


class RunSide(BaseModel):
    """What one run says about one item."""

    status: str | None = Field(default=None, description="Journal status.")
    signature: str | None = Field(default=None, description="The last attempt's failure "
                                  "signature (None: none).")
    verdict: str | None = Field(default=None, description="Benchmark verdict (None: none).")
    speedups: dict[str, Speedup] = Field(default_factory=dict, description="agent/base, "
                                         "human/base.")
    patch_sha256: str | None = Field(default=None, description="sha256 of the item's patch "
                                     "(model_patch.diff; None: no patch file).")
    host: HostFacts | None = Field(default=None, description="Host facts (None: not recorded).")
    options: dict = Field(default_factory=dict, description="Benchmark options.")


class ItemComparison(BaseModel):
    """One item in both runs."""

    item_id: str
    a: RunSide | None = Field(default=None, description="Run A (None: not in it).")
    b: RunSide | None = Field(default=None, description="Run B (None: not in it).")
    same_verdict: bool = Field(description="Both verdicts exist and are equal.")
    intervals_consistent: bool | None = Field(
        default=None, description="Every speedup both runs have overlaps after widening; "
                                  "None: no speedup to compare.")
    ratio: float | None = Field(default=None, description="B's agent/base speedup over A's "
                                "(human/base when there is no agent).")
    replay_valid: bool = Field(description="Same verdict and consistent intervals.")
    same_patch: bool | None = Field(default=None, description="Both patches byte for byte "
                                    "equal (an agent's rerun: it did the same work); None: a "
                                    "side has none.")
    why: str = Field(default="", description="What made it invalid.")


class CompareReport(BaseModel):
    """The comparison of two runs."""

    run_a: str
    run_b: str
    tolerance: float = Field(description="Relative widening of intervals before overlap.")
    items: list[ItemComparison] = Field(default_factory=list)
    agreement_rate: float = Field(description="Items with the same verdict / items in both.")
    flipped: list[str] = Field(default_factory=list, description="Items whose verdict differs.")
    invalid: list[str] = Field(default_factory=list, description="Items not replay_valid.")
    host_differences: list[str] = Field(default_factory=list,
                                        description="Recorded host facts that differ.")
    option_differences: list[str] = Field(default_factory=list,
                                          description="Benchmark options that differ.")
    denominators: dict[str, str] = Field(default_factory=dict, description="Per run (A, B): "
                                         "'N measured of M planned; the rest: ...'.")


def load_run(path: Path, work: Path) -> dict[str, RunSide]:
    """item id -> what the run says: a run directory or a bundle (dir or .tar)."""
    if path.is_file() or (path / BUNDLE_INDEX_NAME).is_file():
        path = open_bundle(path, work) / ITEMS_DIR
    if not path.is_dir():
        raise UserInputError(f"{path}: not a run directory or a bundle")
    sides = {}
    for item_dir in sorted(p for p in path.iterdir() if (p / JOURNAL_NAME).is_file()):
        journal = load_journal(item_dir / JOURNAL_NAME)
        last = journal.attempts[-1] if journal and journal.attempts else None
        patch = item_dir / PATCH_NAME
        side = RunSide(status=journal.status.value if journal and journal.status else None,
                       signature=last.signature.name if last and last.signature else None,
                       patch_sha256=hashlib.sha256(patch.read_bytes()).hexdigest()
                       if patch.is_file() else None)
        results_path = item_dir / RESULTS_NAME
        if results_path.is_file():
            results = BenchResults.model_validate_json(results_path.read_text())
            side.verdict, side.host, side.options = results.verdict, results.host, \
                results.options
            comparisons = (results.analysis or {}).get("comparisons", {})
            for pair in SPEEDUPS:
                numbers = (comparisons.get(pair) or {}).get("comparison")
                if numbers:
                    side.speedups[pair] = Speedup(speedup=numbers["speedup"],
                                                  ci_low=numbers.get("ci_low"),
                                                  ci_high=numbers.get("ci_high"))
        sides[journal.item_id if journal else item_dir.name] = side
    if not sides:
        raise UserInputError(f"{path}: no items (no {JOURNAL_NAME} under it)")
    return sides


def compare_item(item_id: str, a: RunSide | None, b: RunSide | None,
                 tolerance: float) -> ItemComparison:
    if a is None or b is None:
        return ItemComparison(item_id=item_id, a=a, b=b, same_verdict=False, replay_valid=False,
                              why=f"only in run {'B' if a is None else 'A'}")
    same = a.verdict is not None and a.verdict == b.verdict
    why = [] if same else [f"verdict {a.verdict} -> {b.verdict}"]
    consistent = None
    for pair in SPEEDUPS:
        if pair in a.speedups and pair in b.speedups:
            low_a, high_a = a.speedups[pair].widened(tolerance)
            low_b, high_b = b.speedups[pair].widened(tolerance)
            overlap = low_a <= high_b and low_b <= high_a
            consistent = overlap if consistent is None else consistent and overlap
            if not overlap:
                why.append(f"{pair} {a.speedups[pair]} vs {b.speedups[pair]}")
    pair = next((p for p in SPEEDUPS if p in a.speedups and p in b.speedups), None)
    ratio = (b.speedups[pair].speedup / a.speedups[pair].speedup
             if pair and a.speedups[pair].speedup else None)
    same_patch = (a.patch_sha256 == b.patch_sha256
                  if a.patch_sha256 is not None and b.patch_sha256 is not None else None)
    return ItemComparison(item_id=item_id, a=a, b=b, same_verdict=same,
                          intervals_consistent=consistent, ratio=ratio,
                          replay_valid=same and consistent is not False, same_patch=same_patch,
                          why="; ".join(why))


def compare_runs(path_a: Path, path_b: Path, tolerance: float = DEFAULT_TOLERANCE
                 ) -> CompareReport:
    with tempfile.TemporaryDirectory(prefix="isobench-compare-") as tmp:
        runs_a = load_run(path_a, Path(tmp) / "a")
        runs_b = load_run(path_b, Path(tmp) / "b")
    items = [compare_item(i, runs_a.get(i), runs_b.get(i), tolerance)
             for i in sorted(set(runs_a) | set(runs_b))]
    both = [c for c in items if c.a is not None and c.b is not None]
    hosts, options = set(), set()
    for c in both:
        hosts.update(host_differences(c.a.host, c.b.host))
        for name in COMPARED_OPTIONS:
            if c.a.options.get(name) != c.b.options.get(name):
                options.add(f"{name}: {c.a.options.get(name)} -> {c.b.options.get(name)}")
        limits_a, limits_b = c.a.options.get("limits") or {}, c.b.options.get("limits") or {}
        for name in sorted(set(limits_a) | set(limits_b)):
            if limits_a.get(name) != limits_b.get(name):
                options.add(f"limits.{name}: {limits_a.get(name)} -> {limits_b.get(name)}")
    return CompareReport(
        run_a=str(path_a), run_b=str(path_b), tolerance=tolerance, items=items,
        agreement_rate=(sum(c.same_verdict for c in both) / len(both)) if both else 0.0,
        flipped=[c.item_id for c in both if not c.same_verdict],
        invalid=[c.item_id for c in items if not c.replay_valid],
        host_differences=sorted(hosts), option_differences=sorted(options),
        denominators={"A": _denominator(runs_a), "B": _denominator(runs_b)})


def _denominator(sides: dict[str, RunSide]) -> str:
    """How many items of one run were measured, and how the rest ended (core/denominators):
    an item lost to a budget, the provider or our infrastructure is not the agent's zero."""
    endings = counts(ending(measured="agent/base" in side.speedups, state=None,
                            status=side.status, signature=side.signature)
                     for side in sides.values())
    return denominator_line(endings, len(sides))


# --------------------------------------------------------------------------- rendering


def rows(report: CompareReport) -> list[list[str]]:
    """The table both renderings print: one row per item."""
    out = []
    for c in report.items:
        side = lambda s, pair: str(s.speedups[pair]) if s and pair in s.speedups else "-"  # noqa: E731
        out.append([c.item_id, (c.a.verdict or c.a.status or "-") if c.a else "-",
                    (c.b.verdict or c.b.status or "-") if c.b else "-",
                    side(c.a, "agent/base"), side(c.b, "agent/base"),
                    f"{c.ratio:.3f}" if c.ratio is not None else "-",
                    {True: "same", False: "DIFFERS", None: "-"}[c.same_patch],
                    "yes" if c.replay_valid else "NO", c.why])
    return out


HEADER = ["item", "verdict A", "verdict B", "agent/base A [95%]", "agent/base B [95%]",
          "B/A", "patch", "replay_valid", "why not"]


def summary_lines(report: CompareReport) -> list[str]:
    both = [c for c in report.items if c.a is not None and c.b is not None]
    lines = [f"agreement: {report.agreement_rate:.0%} of {len(both)} item(s); flipped: "
             f"{', '.join(report.flipped) or 'none'}; replay_valid: "
             f"{len(report.items) - len(report.invalid)} of {len(report.items)} "
             f"(intervals widened by {report.tolerance:.0%})"]
    patched = [c for c in both if c.same_patch is not None]
    if patched:
        lines.append(f"patches: {sum(c.same_patch for c in patched)} of {len(patched)} "
                     f"byte for byte the same")
    for name, line in report.denominators.items():
        lines.append(f"run {name}: {line}")
    lines.append("host differences: " + ("; ".join(report.host_differences) or "none"))
    if report.option_differences:
        lines.append("option differences: " + "; ".join(report.option_differences))
    return lines


def render_markdown(report: CompareReport) -> str:
    table = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    table += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |"
              for row in rows(report)]
    return "\n".join([f"**{report.run_a}** vs **{report.run_b}**", "", *table, "",
                      *[f"- {line}" for line in summary_lines(report)]])
