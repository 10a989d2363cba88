"""Built-in task catalogues: the embedded demo and vllm_core (ISO-Bench's 96 vLLM commits).

`find_commit(sha)` is the one entry point the CLI uses: a short or full sha, from any
catalogue, to the TaskSpec and PlanItem that run it. Unknown, ambiguous and not-runnable
shas are one-line UserInputErrors, raised before anything starts.
"""

from __future__ import annotations

import re

from executor.parts.vllm.entries import CatalogEntry, vllm_core_entries
from executor.parts.vllm.catalog_task import vllm_task
from executor.core.errors import UserInputError
from executor.core.task import PlanItem, TaskSpec

MIN_PREFIX = 4
DEMO_ITEM_ID = "demo-0000"
__all__ = ["CatalogEntry", "NotCatalogued", "all_entries", "find_commit", "lookup",
           "vllm_core_entries"]


def demo_entry() -> CatalogEntry:
    from executor.parts.demo import DEMO_BASE_SHA, DEMO_HUMAN_SHA

    return CatalogEntry(catalogue="demo", item_id=DEMO_ITEM_ID, human=DEMO_HUMAN_SHA,
                        parent=DEMO_BASE_SHA, benchmark_mode="standalone",
                        subject="free-block stack (embedded demo; needs no GPU)")


class NotCatalogued(UserInputError):
    """No built-in catalogue holds this sha (or it is not a sha at all): callers that have
    other ways to find a task (a task file, the repo's own isobench.toml) go on with those."""


def all_entries() -> tuple[CatalogEntry, ...]:
    return (demo_entry(),) + vllm_core_entries()


def lookup(sha: str) -> CatalogEntry:
    """The entry whose human sha starts with `sha` (at least 4 hex digits), across catalogues."""
    ref = sha.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{%d,40}" % MIN_PREFIX, ref):
        raise NotCatalogued(f"{sha!r} is not a commit sha (at least {MIN_PREFIX} hex digits)")
    matches = [e for e in all_entries() if e.human.startswith(ref)]
    if not matches:
        raise NotCatalogued(f"commit {sha} is in no built-in catalogue (demo, vllm_core); "
                             f"`isobench images plan --all-catalogue` lists them")
    if len(matches) > 1:
        listed = ", ".join(f"{e.human[:12]} ({e.item_id})" for e in matches)
        raise UserInputError(f"commit prefix {sha} is ambiguous: {listed}; give more digits")
    return matches[0]


def find_commit(sha: str, *, repo: str | None = None) -> tuple[TaskSpec, PlanItem]:
    """TaskSpec and PlanItem for a catalogued commit (short or full sha)."""
    entry = lookup(sha)
    item = PlanItem(item_id=entry.item_id, human=entry.human, pre=entry.parent or "",
                    pre_parent_index=entry.pre_parent_index)
    if entry.catalogue == "demo":
        from executor.parts.demo import demo_task

        task = demo_task()
        return (task.model_copy(update={"repo": repo}) if repo else task), item
    bench = entry.bench()
    if not bench.runnable:
        raise UserInputError(f"{entry.short} ({entry.item_id}) is catalogued as not "
                             f"runnable: {bench.not_runnable}")
    return vllm_task(entry, bench, repo=repo), item
