"""Which item an ISO-Bench attempt belongs to: the commit its own journal names.

ISO-Bench reused item ids for different commits: on its real state 22 of 285 trae/gpt-5
vllm_core directories hold another item's commit, and codex/gpt-5's directories are shifted by
one to four. A directory's name is therefore not evidence of what ran in it; the journal's
`commits.human` is. Attempts are grouped by that commit, the group is named by the plan's id for
it (the plan given, else ISO-Bench's own STATE/plan.json), else by the directory name that holds
it most often; every directory whose name says otherwise is reported, never silently moved.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from pydantic import BaseModel, Field

from executor.core.task import Plan

MIN_SHA = 7  # ISO-Bench journals sometimes hold an 8-character prefix
SHORT = 8


class Misfiled(BaseModel):
    """A directory named with the id of another item than the one whose commit it ran."""

    directory: Path = Field(description="The item directory (its name is the id it claims).")
    commit: str = Field(description="The human commit its journal names.")
    item_id: str = Field(description="The item that commit belongs to.")

    def describe(self) -> str:
        return (f"{self.directory.parent.name}/{self.directory.name} ran {self.commit[:SHORT]}, "
                f"the commit of {self.item_id}")


class CommitGroups(BaseModel):
    """One ISO-Bench task/agent/model's directories, grouped by the commit each ran."""

    items: dict[str, list[tuple[Path, dict]]] = Field(
        description="Item id -> its (directory, journal) pairs, all of one commit.")
    commits: dict[str, str] = Field(default_factory=dict,
                                    description="Item id -> the full commit (when known).")
    misfiled: list[Misfiled] = Field(default_factory=list,
                                     description="Directories named for another item.")


def journal_commit(journal: dict) -> str:
    """The human commit a journal names ('' when it names none)."""
    commits = journal.get("commits")
    return str(commits.get("human") or "") if isinstance(commits, dict) else ""


def same_commit(a: str, b: str) -> bool:
    """Equal, or one a prefix of the other of at least MIN_SHA characters."""
    if len(a) < MIN_SHA or len(b) < MIN_SHA:
        return False
    return a.startswith(b) or b.startswith(a)


def plan_id_of(plan: Plan | None, commit: str) -> str | None:
    """The plan's item id for this commit, None when the plan does not hold it."""
    if plan is None:
        return None
    return next((i.item_id for i in plan.items if same_commit(i.human, commit)), None)


def _full(commit: str, known: dict[str, list[str]]) -> str:
    """The longest known spelling of a (possibly abbreviated) commit; `known` is keyed by the
    first MIN_SHA characters (every spelling that can match shares them: one lookup, not a scan
    of all 1,500 journals per journal)."""
    return max((k for k in known.get(commit[:MIN_SHA], ()) if same_commit(k, commit)), key=len,
               default=commit)


def group_by_commit(dirs: list[tuple[Path, dict]], plan: Plan | None = None) -> CommitGroups:
    """Group directories by their journal's commit and name each group (see the module)."""
    known: dict[str, list[str]] = defaultdict(list)
    for spelling in {journal_commit(j) for _, j in dirs} | ({i.human for i in plan.items}
                                                            if plan else set()):
        known[spelling[:MIN_SHA]].append(spelling)
    by_commit: dict[str, list[tuple[Path, dict]]] = defaultdict(list)
    items: dict[str, list[tuple[Path, dict]]] = defaultdict(list)
    for item_dir, journal in dirs:
        commit = journal_commit(journal)
        if len(commit) < MIN_SHA:  # no commit to go by: the directory's name is all there is
            items[item_dir.name].append((item_dir, journal))
        else:
            by_commit[_full(commit, known)].append((item_dir, journal))
    names: dict[str, str] = {c: i for c in by_commit if (i := plan_id_of(plan, c))}
    taken = set(names.values()) | ({i.item_id for i in plan.items} if plan else set())
    # Most directories first: a name goes to the commit that holds it most often.
    for commit in sorted(set(by_commit) - set(names), key=lambda c: (-len(by_commit[c]), c)):
        counts = Counter(d.name for d, _ in by_commit[commit])
        free = [n for n, _ in counts.most_common() if n not in taken]
        names[commit] = free[0] if free else f"{counts.most_common(1)[0][0]}@{commit[:SHORT]}"
        taken.add(names[commit])
    groups = CommitGroups(items={}, commits={names[c]: c for c in by_commit})
    # A name of another naming scheme ('vllm_bedrock_sonnet45-0003', a rerun's) is a rename;
    # only a name that is some other item's id says the wrong thing.
    ids = taken | set(items)
    for commit, found in by_commit.items():
        items[names[commit]].extend(found)
        groups.misfiled += [Misfiled(directory=d, commit=commit, item_id=names[commit])
                            for d, _ in found if d.name != names[commit] and d.name in ids]
    groups.items = dict(items)
    groups.misfiled.sort(key=lambda m: (m.directory.name, m.directory.parent.name))
    return groups
