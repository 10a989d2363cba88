"""A commit's files, date and changes, read from a local git mirror without a checkout.

`git show <sha>:<path>` reads one file of any commit in a bare mirror in milliseconds, so the
planner can look at 96 commits' requirements files without exporting a single tree. Anything
that can answer these five questions can stand in for a mirror (tests use a dict).
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from typing import Protocol, Sequence

from executor.core.errors import UserInputError


class CommitSource(Protocol):
    """What the planner asks of a repository."""

    def resolve(self, ref: str) -> str | None: ...
    def read(self, sha: str, path: str) -> str | None: ...
    def commit_date(self, sha: str) -> dt.datetime | None: ...
    def changed_paths(self, old: str, new: str, paths: Sequence[str] = ()) -> list[str]: ...
    def first_parent_ancestors(self, sha: str, limit: int) -> list[str]: ...


class GitMirror:
    """A local repository (bare or not) read through plain `git`."""

    def __init__(self, path: Path | str):
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise UserInputError(f"mirror {self.path} does not exist")
        proc = subprocess.run(["git", "-C", str(self.path), "rev-parse", "--git-dir"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise UserInputError(f"mirror {self.path} is not a git repository")
        self.git_dir = (self.path / proc.stdout.strip()).resolve()

    def _git(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "--git-dir", str(self.git_dir), *args],
                              capture_output=True, text=True)

    def resolve(self, ref: str) -> str | None:
        proc = self._git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if proc.returncode != 0:
            return None
        return proc.stdout.strip() or None

    def read(self, sha: str, path: str) -> str | None:
        proc = self._git("show", f"{sha}:{path}")
        return proc.stdout if proc.returncode == 0 else None

    def commit_date(self, sha: str) -> dt.datetime | None:
        # Committer date: when the commit landed on main, which is what wheel eras and
        # dependency cut-offs follow (an old author date on a late merge would mislead).
        proc = self._git("show", "-s", "--format=%cI", sha)
        if proc.returncode != 0 or not proc.stdout.strip():
            return None
        return dt.datetime.fromisoformat(proc.stdout.strip())

    def changed_paths(self, old: str, new: str, paths: Sequence[str] = ()) -> list[str]:
        # `paths` (folders or files) lets git skip the rest of both trees: ten times faster
        # when only csrc/ and cmake/ matter.
        proc = self._git("diff", "--name-only", "--no-renames", old, new, "--", *paths)
        if proc.returncode != 0:
            raise UserInputError(f"cannot diff {old[:12]}..{new[:12]} in {self.path}: "
                                 f"{proc.stderr.strip()[-200:]}")
        return [line for line in proc.stdout.splitlines() if line]

    def first_parent_ancestors(self, sha: str, limit: int) -> list[str]:
        proc = self._git("rev-list", "--first-parent", f"--max-count={limit + 1}", sha)
        if proc.returncode != 0:
            return []
        return proc.stdout.split()[1:]
