"""A catalogue commit's two images (base = parent, human = the perf commit), planned.

With a mirror, shas, dates and files come from git; without one, from the catalogue's
metadata (dated for 39 of 96 commits), and every plan says which it was.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from executor.parts.vllm.commands import BenchCommand
from executor.parts.vllm.entries import CatalogEntry
from executor.core.errors import UserInputError
from executor.parts.vllm.image import provisional_tag, torch_layer_key
from executor.parts.vllm.mirror import CommitSource
from executor.parts.vllm.strategy import InstallPlan, PlanOptions, plan_install
from executor.parts.vllm.wheels import Prober

STUB_MAX_CHARS = 3000  # the v0.10.2 stubs are a few lines pointing at `vllm bench`


class VariantPlan(BaseModel):
    """One image of a commit."""

    role: Literal["base", "human"]
    install: InstallPlan
    tag: str = Field(description="Sandbox tag, base image named (its id is known at build).")
    torch_layer: str = Field(description="Key of the shared torch layer.")


class CommitPlan(BaseModel):
    """Both images of a catalogue commit and its normalised benchmark."""

    entry_short: str
    item_id: str
    runnable: bool
    bench: BenchCommand
    base: VariantPlan
    human: VariantPlan


def scripts_are_stubs(source: CommitSource, sha: str) -> bool | None:
    text = source.read(sha, "benchmarks/benchmark_serving.py")
    if text is None:
        return None
    return len(text) < STUB_MAX_CHARS and "vllm bench" in text


def _variant(role, sha, when, date_source, source, options, prober, deps) -> VariantPlan:
    if options.target_device == "cpu":
        from executor.parts.vllm.cpu_route import plan_cpu_install

        install = plan_cpu_install(sha, source=source, commit_date=when,
                                   date_source=date_source, options=options)
    else:
        install = plan_install(sha, source=source, commit_date=when, date_source=date_source,
                               options=options, prober=prober)
    return VariantPlan(role=role, install=install, tag=provisional_tag(install, deps_dir=deps),
                       torch_layer=torch_layer_key(install))


def plan_entry(entry: CatalogEntry, source: CommitSource | None, options: PlanOptions,
               prober: Prober) -> CommitPlan:
    if source is not None:
        human = source.resolve(entry.human)
        if human is None:
            raise UserInputError(f"{entry.short} ({entry.item_id}) is not in the mirror; "
                                 f"update it (git fetch) or give another --mirror")
        base = source.resolve(entry.parent) if entry.parent else None
        if base is None:
            parents = source.first_parent_ancestors(human, 1)
            base = parents[0] if parents else None
        if base is None:
            raise UserInputError(f"{entry.short} has no parent in the mirror")
        human_when, base_when = source.commit_date(human), source.commit_date(base)
        date_source = "mirror"
        stubs = scripts_are_stubs(source, human)
    else:
        human = entry.human
        base = entry.parent or f"{entry.human}~{entry.pre_parent_index}"
        # noon UTC: a day's precision is all the catalogue has
        human_when = (dt.datetime.combine(entry.commit_date, dt.time(12), dt.timezone.utc)
                      if entry.commit_date else None)
        base_when = human_when
        date_source = "catalogue" if human_when else "unknown"
        stubs = None
    bench = entry.bench(human_when.date() if human_when else None, stubs)
    deps = options.deps_dir
    base_plan = _variant("base", base, base_when, date_source, source, options, prober, deps)
    if source is None and base_when is not None:
        base_plan.install.reasons.append("date: the human commit's (its parent's own date is "
                                         "unknown without a mirror)")
    human_plan = _variant("human", human, human_when, date_source, source, options, prober,
                          deps)
    return CommitPlan(entry_short=entry.short, item_id=entry.item_id, runnable=bench.runnable,
                      bench=bench, base=base_plan, human=human_plan)
