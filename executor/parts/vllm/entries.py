"""The catalogue's entries, read from the data files shipped in executor/parts/vllm/data.

The files are ISO-Bench's own, copied unchanged; every correction is made here in code (or in
commands.py), so a diff against the source data is always empty and each fix has a reason.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from importlib import resources

from pydantic import BaseModel, Field

from executor.core.errors import UserInputError
from executor.parts.vllm.commands import BenchCommand, normalise_command

DATA = resources.files("executor.parts.vllm") / "data"
PLAN_FILE = "vllm_core_plan.json"
MAPPING_FILE = "vllm_benchmark_mapping.json"
DATED_FILE = "vllm_39_benchmarkable_commits.txt"

# Workloads ISO-Bench itself excluded as not perf benchmarks at all (their list's own words).
SOURCE_EXCLUSIONS: dict[str, str] = {
    "ce6bf3a2": "TPU-specific benchmark (excluded by ISO-Bench): nothing to time on a CUDA GPU",
    "ccf02fcb": "lm_eval accuracy run (excluded by ISO-Bench), not a performance benchmark",
}


class CatalogEntry(BaseModel):
    """One commit of a built-in catalogue, as the source data describes it."""

    catalogue: str = Field(description="Catalogue name: 'vllm_core' or 'demo'.")
    item_id: str = Field(description="ISO-Bench item id, e.g. vllm_core-0000.")
    human: str = Field(description="Full sha of the perf commit.")
    parent: str | None = Field(default=None, description="Full sha of its parent, if recorded.")
    pre_parent_index: int = Field(default=1, description="Parent number when parent is None.")
    commit_date: dt.date | None = Field(default=None, description="From the dated subset.")
    subject: str | None = Field(default=None, description="Commit subject, where recorded.")
    benchmark_mode: str | None = Field(default=None,
                                       description="serving | standalone | prefix_caching.")
    perf_command: str | None = Field(default=None, description="The source's command, as is.")
    model: str | None = Field(default=None, description="The source's model.")
    in_paper_subset: bool = Field(default=False,
                                  description="One of the 39 commits ISO-Bench's paper kept.")
    excluded: str | None = Field(default=None, description="Source-level exclusion reason.")

    @property
    def short(self) -> str:
        return self.human[:8]

    def bench(self, day: dt.date | None = None, scripts_stubbed: bool | None = None
              ) -> BenchCommand:
        """The normalised benchmark; `day` (a mirror's exact date) overrides commit_date."""
        return normalise_command(self.perf_command, self.model, self.benchmark_mode,
                                 day or self.commit_date, scripts_stubbed=scripts_stubbed,
                                 excluded=self.excluded)


def _read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def _dated() -> dict[str, tuple[dt.date, str]]:
    out: dict[str, tuple[dt.date, str]] = {}
    for line in _read(DATED_FILE).splitlines():
        if m := re.match(r"^([0-9a-f]{8}) \| (\d{4}-\d{2}-\d{2}) \| (.*)$", line.strip()):
            out[m.group(1)] = (dt.date.fromisoformat(m.group(2)), m.group(3).strip())
    return out


@functools.cache
def vllm_core_entries() -> tuple[CatalogEntry, ...]:
    plan = json.loads(_read(PLAN_FILE))
    mapping = json.loads(_read(MAPPING_FILE))
    dated = _dated()
    entries = []
    for item in plan["items"]:
        human = item["human"].lower()
        info = mapping.get(human[:8], {})
        parent = item.get("pre") or info.get("parent_commit") or None
        date, subject = dated.get(human[:8], (None, None))
        entries.append(CatalogEntry(
            catalogue=plan["task_id"], item_id=item["item_id"], human=human,
            parent=parent.lower() if parent else None,
            pre_parent_index=item.get("pre_parent_index", 1), commit_date=date,
            subject=subject, benchmark_mode=info.get("benchmark_mode"),
            perf_command=info.get("perf_command"), model=info.get("model"),
            in_paper_subset=human[:8] in dated, excluded=SOURCE_EXCLUSIONS.get(human[:8])))
    return tuple(entries)


def vllm_core_entry(human_sha: str) -> CatalogEntry:
    """The vllm_core entry of a full commit sha (a job's, already resolved)."""
    sha = human_sha.strip().lower()
    for entry in vllm_core_entries():
        if entry.human == sha:
            return entry
    raise UserInputError(f"commit {human_sha[:12]} is not in the vllm_core catalogue")
