"""Making plans: from a commit list, from an existing plan (ISO-Bench's plan.json), or from the
catalogue. Every plan is written in ISO-Bench's plan.json format, so their tools and ours read
each other's plans."""

from __future__ import annotations

import re
from pathlib import Path

from executor.core.errors import UserInputError
from executor.core.task import Plan, PlanItem

SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")


def read_commit_list(path: Path) -> list[str]:
    """One sha per line; blank lines and `#` comments skipped; only the first token counts, so
    ISO-Bench's `sha | date | subject` lists (vllm_39_benchmarkable_commits.txt) work as is."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise UserInputError(f"cannot read commit list {path}: {exc.strerror}") from exc
    shas = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        token = re.split(r"[\s|,]+", line, maxsplit=1)[0]
        if not SHA.match(token):
            raise UserInputError(f"{path}:{number}: {token!r} is not a commit sha")
        shas.append(token.lower())
    return shas


def check_shas(shas: list[str]) -> list[str]:
    bad = [s for s in shas if not SHA.match(s)]
    if bad:
        raise UserInputError(f"not commit shas: {', '.join(bad)}")
    seen: dict[str, None] = {}
    for sha in shas:
        seen.setdefault(sha.lower())
    return list(seen)


def _same_commit(a: str, b: str) -> bool:
    """Short and full shas name the same commit when one is a prefix of the other."""
    a, b = a.lower(), b.lower()
    return a.startswith(b) or b.startswith(a)


def select_items(plan: Plan, shas: list[str]) -> Plan:
    """The items of `plan` whose human commit is one of `shas` (plan order, item ids kept)."""
    missing = [s for s in shas if not any(_same_commit(s, i.human) for i in plan.items)]
    if missing:
        raise UserInputError(f"not in plan {plan.task_id}: {', '.join(missing)}")
    items = [i for i in plan.items if any(_same_commit(s, i.human) for s in shas)]
    return plan.model_copy(update={"items": items})


def plan_from_commits(shas: list[str], task_id: str, repo: str) -> Plan:
    """A fresh plan: item ids `<task>-0000...`, base = first parent (ISO-Bench's convention)."""
    return Plan(repo=repo, task_id=task_id,
                items=[PlanItem(item_id=f"{task_id}-{n:04d}", human=sha)
                       for n, sha in enumerate(shas)])


def catalogue_plan(name: str) -> Plan:
    """Every commit of a built-in catalogue (e.g. `vllm_core`), in catalogue order.

    HOOK(catalogue): the catalogue (`executor/parts/catalog`) is written in parallel; this is the only
    place `isobench plan` touches it: `all_entries()` for the commits, `find_commit()` for the
    repository the catalogue would use.
    """
    try:
        from executor.parts.catalog import all_entries, find_commit  # type: ignore[attr-defined]
    except ImportError:
        raise UserInputError(f"--catalogue {name}: this build has no catalogue yet; use "
                             f"--from-plan FILE (e.g. ISO-Bench's vllm_core_plan.json)") from None
    entries = [e for e in all_entries() if e.catalogue == name]
    if not entries:
        known = sorted({e.catalogue for e in all_entries()})
        raise UserInputError(f"--catalogue {name}: no such catalogue ({', '.join(known)})")
    repo = name
    for entry in entries:  # the first runnable entry tells where the catalogue's repo lives
        try:
            repo = find_commit(entry.human)[0].repo
            break
        except UserInputError:
            continue
    return Plan(repo=repo, task_id=name, items=[
        PlanItem(item_id=e.item_id, human=e.human, pre=e.parent or "",
                 pre_parent_index=e.pre_parent_index) for e in entries])


def demo_plan(items: int) -> Plan:
    """`items` rehearsal items of the embedded demo commit: one commit, distinct item ids, so a
    batch (workers, retries, resume, Ray) can be exercised end to end without a GPU."""
    from executor.parts.catalog import find_commit
    from executor.parts.demo import DEMO_HUMAN_SHA

    task, item = find_commit(DEMO_HUMAN_SHA)
    return Plan(repo=task.repo, task_id=task.name, items=[
        item.model_copy(update={"item_id": f"{task.name}-{n:04d}"}) for n in range(items)])


def make_plan(shas: list[str], *, base: Plan | None, task_id: str | None,
              repo: str | None) -> Plan:
    """What `isobench plan` writes: `base` narrowed to `shas`, or a new plan of `shas`."""
    shas = check_shas(shas)
    if base is not None:
        plan = select_items(base, shas) if shas else base
        update = {k: v for k, v in (("task_id", task_id), ("repo", repo)) if v}
        return plan.model_copy(update=update)
    if not shas:
        raise UserInputError("no commits: give shas, --commits FILE, --from-plan or --catalogue")
    if not task_id or not repo:
        raise UserInputError("a plan from commits needs --task-id and --repo")
    return plan_from_commits(shas, task_id, repo)
