"""An agent's source tree at one revision, from a local checkout, a mirror, or a git URL.

GitHub is unreachable on air-gapped GPU hosts (and on ours), so a local path is the normal case:
a checkout or a bare mirror is read with `git archive` at the revision (never its working tree,
so local edits cannot slip into a bundle unrecorded); a plain directory without git is copied
and identified by a hash of its files. A URL is cloned once into a bare mirror under the cache.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import io
from pathlib import Path

from pydantic import BaseModel, Field

from executor.core.errors import UserInputError
from executor.core.tarballs import safe_extract

SKIP_DIRS = {".git", ".venv", "__pycache__", "node_modules"}


class SourceTree(BaseModel):
    """What ended up in a bundle's src/: which revision, and a digest of exactly those files."""

    origin: str = Field(description="The path or URL it came from.")
    revision: str = Field(description="Full commit sha, or 'tree-<digest>' for a plain dir.")
    digest: str = Field(description="Git tree id or file-content hash of the exported tree.")


def _git(git_dir: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "--git-dir", str(git_dir), *args], capture_output=True)


def _git_dir(path: Path) -> Path | None:
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "--absolute-git-dir"],
                          capture_output=True, text=True)
    return Path(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else None


def _mirror(url: str, cache: Path) -> Path:
    """A bare mirror of `url` under the cache, cloned once and fetched on later calls."""
    mirror = cache / "mirrors" / hashlib.sha256(url.encode()).hexdigest()[:16]
    if mirror.is_dir():
        subprocess.run(["git", "--git-dir", str(mirror), "fetch", "--quiet", "--prune", "origin"],
                       capture_output=True)
        return mirror
    tmp = mirror.with_name(mirror.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    proc = subprocess.run(["git", "clone", "--quiet", "--mirror", url, str(tmp)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserInputError(f"cannot clone {url} ({proc.stderr.strip()[-200:]}); pass "
                             "--agent-source PATH to a local checkout or mirror")
    tmp.rename(mirror)
    return mirror


def _is_url(source: str) -> bool:
    return "://" in source or (source.startswith("git@") and not Path(source).exists())


def _local_commit(source: str, revision: str | None) -> tuple[Path | None, str | None]:
    """(git dir, full sha of `revision`) of a local source; (None, None) for a plain folder.
    Raises UserInputError for what no retry can fix: a missing path, a folder that cannot
    have the revision asked for, a revision the repository does not hold."""
    path = Path(source).expanduser()
    if not path.exists():
        raise UserInputError(f"agent source {source} does not exist")
    git_dir = _git_dir(path)
    if git_dir is None:
        if revision:
            nested = sorted(str(p.parent) for p in path.glob("*/HEAD"))
            raise UserInputError(
                f"agent source {source} is not a git repository, so it has no revision "
                f"{revision[:12]}; give a checkout or a mirror"
                + (f" (a repository is inside: {nested[0]})" if nested else ""))
        return None, None
    return git_dir, _resolve(git_dir, revision, source)


def _resolve(git_dir: Path, revision: str | None, source: str) -> str:
    rev = revision or "HEAD"
    resolved = _git(git_dir, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if resolved.returncode != 0:
        raise UserInputError(f"revision {rev} is not in {source}; fetch it into the mirror "
                             "or pass another --agent-revision")
    return resolved.stdout.decode().strip()


def check_source(source: str, revision: str | None) -> None:
    """Before a run writes anything: a local source has the revision its bundle needs (a URL
    is checked when it is cloned)."""
    if not _is_url(source):
        _local_commit(source, revision)


def export_source(source: str, revision: str | None, dest: Path, cache: Path) -> SourceTree:
    """Write the tree of `source` at `revision` into `dest` (created) and say what it was."""
    if _is_url(source):
        git_dir = _mirror(source, cache)
        sha = _resolve(git_dir, revision, source)
    else:
        git_dir, sha = _local_commit(source, revision)
    dest.mkdir(parents=True, exist_ok=True)
    if git_dir is None or sha is None:
        path = Path(source).expanduser()
        digest = _copy_plain(path, dest)
        return SourceTree(origin=str(path), revision=f"tree-{digest[:12]}", digest=digest)
    tree = _git(git_dir, "rev-parse", f"{sha}^{{tree}}").stdout.decode().strip()
    archive = _git(git_dir, "archive", "--format=tar", sha)
    if archive.returncode != 0:
        raise UserInputError(f"git archive {sha[:12]} failed in {source}: "
                             f"{archive.stderr.decode().strip()[-200:]}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        safe_extract(tar, dest)
    return SourceTree(origin=source, revision=sha, digest=tree)


def _copy_plain(src: Path, dest: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = file.relative_to(src)
        if SKIP_DIRS & set(rel.parts):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target)
        digest.update(str(rel).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def tree_digest(path: Path) -> str:
    """A digest of a directory's file names, sizes and modes (used for a CPython install, where
    hashing hundreds of MB of content per run would cost more than it proves), plus the full
    content of its bin/ (the interpreter itself)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() or p.is_symlink()):
        rel = file.relative_to(path)
        if "__pycache__" in rel.parts:
            continue
        stat = file.lstat()
        digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mode}\0".encode())
        if rel.parts[0] == "bin" and file.is_file() and not file.is_symlink():
            digest.update(file.read_bytes())
    return digest.hexdigest()
