"""The judge's files: which paths measure and judge a task, and how a patch is kept off them.

A task's benchmark script, its tests, conftest files and interpreter start-up hooks decide how
the code is measured and judged. They belong to the harness: a patch hunk that touches one is
dropped before the agent variant is built (and named in the results), and in every variant
(base, human, agent) these paths are restored from one reference tree (the base commit unless
the task says the human commit). The human commit's own edits to its benchmark or tests are
therefore not measured either: every variant is timed by the same script.

Patterns are a small subset of gitignore's:
  `dir/`          the directory at the repository root and everything under it
  `name`          (no slash) a file or directory of that name anywhere, globs allowed: `*.pth`
  `path/to/file`  that path from the root (globs allowed), or everything under it
This module imports nothing of Docker: the sandbox is passed in.
"""

from __future__ import annotations

import fnmatch
import functools
import io
import re
import shlex
import subprocess
import tarfile
from pathlib import PurePosixPath

from pydantic import BaseModel, Field

from executor.parts.repo import REPO_DIR
from executor.core.task import TaskSpec

# Always the harness's: where benchmarks and tests live, pytest's conftest files, and the files
# an interpreter runs before any benchmark code (an editable install puts the repository root
# on sys.path, so a sitecustomize.py committed there really runs at every start-up).
DEFAULT_PROTECTED = ("benchmarks/", "tests/", "conftest.py", "sitecustomize.py",
                     "usercustomize.py", "*.pth")

SCRIPT_SUFFIXES = (".py", ".sh", ".bash")


def _command_scripts(command: str | None) -> list[str]:
    """Relative script paths a shell command runs (`python benchmarks/x.py`, `bash run.sh`,
    `pytest tests/test_a.py::case`): the files that measure or judge."""
    if not command:
        return []
    try:
        tokens = shlex.split(command)
    except ValueError:
        tokens = command.split()
    found = []
    for token in tokens:
        path = token.split("::", 1)[0]
        if (path.endswith(SCRIPT_SUFFIXES) and not path.startswith(("-", "/", "$"))
                and "=" not in path and path not in found):
            found.append(path.removeprefix("./"))
    return found


def protected_patterns(task: TaskSpec) -> list[str]:
    """The task's judged paths: its own list when it gives one, else the defaults plus the
    scripts its bench, server, test and output-check commands run and a relative metric file."""
    if task.protected_paths is not None:
        return list(task.protected_paths)
    patterns = list(DEFAULT_PROTECTED)
    for command in (task.bench_command, task.server_command, task.test_command,
                    task.output_check_command):
        patterns += [p for p in _command_scripts(command) if not is_protected(p, patterns)]
    output = (task.metric.output_file or "").removeprefix(REPO_DIR + "/").removeprefix("./")
    if output and not output.startswith("/") and not is_protected(output, patterns):
        patterns.append(output)  # a metric file inside the repository: no patch may ship one
    return patterns


def is_protected(path: str, patterns: list[str]) -> bool:
    """Whether a repository-relative path falls under one of the patterns (module docstring)."""
    path = path.strip("/")
    parts = PurePosixPath(path).parts
    for pattern in patterns:
        if pattern.endswith("/"):
            root = pattern.strip("/")
            if path == root or path.startswith(root + "/"):
                return True
        elif "/" not in pattern:
            if any(fnmatch.fnmatchcase(part, pattern) for part in parts):
                return True
        elif fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern.rstrip("/") + "/"):
            return True
    return False


class PatchSplit(BaseModel):
    """A patch with the hunks on protected paths taken out."""

    kept: bytes = Field(description="The patch without the sections on protected paths.")
    dropped_paths: list[str] = Field(default_factory=list,
                                     description="Protected paths the patch touched.")


_GIT_HEADER = re.compile(r"^diff --git (?:\"?a/(.+?)\"?) (?:\"?b/(.+?)\"?)$")
_PLAIN_OLD = re.compile(r"^--- (?:a/)?(\S+)")
_PLAIN_NEW = re.compile(r"^\+\+\+ (?:b/)?(\S+)")


def _sections(lines: list[str]) -> list[tuple[list[str], list[str]]]:
    """The patch cut into per-file sections: (paths the section touches, its lines). Lines
    before the first section (a commit message, say) form a section that touches nothing."""
    sections: list[tuple[list[str], list[str]]] = [([], [])]
    in_git = False
    for i, line in enumerate(lines):
        header = _GIT_HEADER.match(line.rstrip("\n"))
        plain = (not in_git and line.startswith("--- ") and i + 1 < len(lines)
                 and lines[i + 1].startswith("+++ "))
        if header:
            in_git = True
            sections.append(([p for p in header.groups() if p], [line]))
        elif plain:
            old, new = _PLAIN_OLD.match(line), _PLAIN_NEW.match(lines[i + 1])
            paths = [m.group(1) for m in (old, new) if m and m.group(1) != "/dev/null"]
            sections.append((paths, [line]))
        else:
            sections[-1][1].append(line)
    return sections


def split_patch(patch: bytes, patterns: list[str]) -> PatchSplit:
    """Drop every file section of `patch` that touches a protected path."""
    lines = patch.decode("utf-8", "surrogateescape").splitlines(keepends=True)
    kept: list[str] = []
    dropped: list[str] = []
    for paths, body in _sections(lines):
        hit = [p for p in paths if is_protected(p, patterns)]
        if hit:
            dropped += [p for p in dict.fromkeys(hit) if p not in dropped]
        else:
            kept += body
    return PatchSplit(kept="".join(kept).encode("utf-8", "surrogateescape"),
                      dropped_paths=dropped)


def protected_diff(repo_path: str, a: str, b: str, patterns: list[str]) -> list[str]:
    """Protected paths whose content differs between two commits of the host repository."""
    names = _git(repo_path, "diff", "--no-renames", "--name-only", a, b).decode().splitlines()
    return [n for n in names if n and is_protected(n, patterns)]


def reference_archive(repo_path: str, sha: str, patterns: list[str]) -> tuple[bytes, list[str]]:
    """A tar of the reference commit's protected files (from the host's repository, which no
    agent can touch), and their paths."""
    names = _git(repo_path, "ls-tree", "-r", "--name-only", "-z", sha).decode().split("\0")
    files = [n for n in names if n and is_protected(n, patterns)]
    if not files:
        return _empty_tar(), []
    return _git(repo_path, "archive", "--format=tar", sha, "--", *files), files


def _empty_tar() -> bytes:
    buffer = io.BytesIO()
    tarfile.open(fileobj=buffer, mode="w").close()
    return buffer.getvalue()


@functools.lru_cache(maxsize=16)
def _git_dir(source: str) -> str:
    """The host git dir of a task's repository (a path, or a URL's cached mirror)."""
    from executor.parts.repo import open_repo

    return str(open_repo(source).git_dir)


def _git(repo_path: str, *args: str) -> bytes:
    proc = subprocess.run(["git", f"--git-dir={_git_dir(repo_path)}", *args],
                          capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"git {args[0]} in {repo_path} failed: "
                           f"{proc.stderr.decode(errors='replace').strip()[-300:]}")
    return proc.stdout


# Lists every file and symlink of the tree except git's own dir, NUL-separated.
_LIST_TREE = "find . -path ./.git -prune -o \\( -type f -o -type l \\) -print0"


def restore_protected(sandbox, repo_dir: str, repo_path: str, reference_sha: str,
                      patterns: list[str]) -> list[str]:
    """Make the protected paths of the container's tree exactly the reference commit's: remove
    every protected file there (added ones included), then unpack the reference's. Returns the
    paths that were removed or differ, for the record."""
    listed = sandbox.exec(_LIST_TREE, 300, workdir=repo_dir)
    present = [p.removeprefix("./") for p in listed.stdout.split("\0") if p.strip()]
    protected_now = [p for p in present if is_protected(p, patterns)]
    archive, reference_files = reference_archive(repo_path, reference_sha, patterns)
    before = sandbox.exec("sha256sum -z -- " + " ".join(shlex.quote(p) for p in protected_now)
                          if protected_now else "true", 300, workdir=repo_dir).stdout
    for start in range(0, len(protected_now), 200):  # argument lists stay short
        chunk = protected_now[start:start + 200]
        sandbox.check("rm -f -- " + " ".join(shlex.quote(p) for p in chunk), 300,
                      workdir=repo_dir)
    sandbox.put_archive(repo_dir, archive)
    after = sandbox.exec("sha256sum -z -- " + " ".join(shlex.quote(p) for p in reference_files)
                         if reference_files else "true", 300, workdir=repo_dir).stdout
    old, new = _sums(before), _sums(after)
    return sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))


def _sums(output: str) -> dict[str, str]:
    sums = {}
    for entry in output.split("\0"):
        digest, _, path = entry.strip("\n").partition("  ")
        if path:
            sums[path.removeprefix("./")] = digest
    return sums
