"""Small real git repositories written from text, for benchmark integration tests."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

GIT_ENV = {"GIT_AUTHOR_NAME": "Fixture", "GIT_AUTHOR_EMAIL": "fixture@example.com",
           "GIT_COMMITTER_NAME": "Fixture", "GIT_COMMITTER_EMAIL": "fixture@example.com",
           "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+00:00",
           "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+00:00", "PATH": "/usr/bin:/bin"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "commit.gpgsign=false", *args], cwd=repo, check=True,
                          capture_output=True, text=True, env=GIT_ENV).stdout.strip()


def make_repo(path: Path, commits: list[dict[str, str]]) -> list[str]:
    """One commit per dict of {relative path: text} (dedented); returns the shas in order."""
    path.mkdir(parents=True)
    git(path, "init", "--quiet", "--initial-branch=main")
    shas = []
    for number, files in enumerate(commits):
        for name, text in files.items():
            target = path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(textwrap.dedent(text).lstrip("\n"))
        git(path, "add", "--all")
        git(path, "commit", "--quiet", "-m", f"commit {number}")
        shas.append(git(path, "rev-parse", "HEAD"))
    return shas


def diff_of(repo: Path, edits: dict[str, tuple[str, str]], at: str = "HEAD") -> bytes:
    """A patch against commit `at` that replaces old with new text in each file; the
    repository is left clean, on its branch."""
    git(repo, "checkout", "--quiet", "--detach", at)
    for name, (old, new) in edits.items():
        target = repo / name
        text = target.read_text()
        assert old in text, f"{old!r} not in {name}"
        target.write_text(text.replace(old, new))
    patch = subprocess.run(["git", "diff"], cwd=repo, check=True, capture_output=True).stdout
    git(repo, "checkout", "--quiet", "--", ".")
    git(repo, "checkout", "--quiet", "main")
    return patch
