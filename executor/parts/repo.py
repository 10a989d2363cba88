"""Git, on both sides of the container wall.

Host side: open a repository (local path, or a URL mirrored once into the cache), resolve shas,
find the base, and export a *leak-proof* copy of the repository at the base commit: a fresh
repository that fetched only the base commit, so no ref, tag, reflog entry or object of the
human commit or anything newer can exist in it.

Container side: `verify_no_leak` proves that inside the sandbox, and `harness_patch` computes
the agent's change against the controller's private base snapshot (/opt/isobench/base.git),
whatever the agent did to its own .git: commits, staged work and new files are all included,
binary-safe, the scratch dir and install outputs excluded.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import git
from pydantic import BaseModel

from executor.core.errors import InfraError, LeakDetected, UserInputError
from executor.core.journal import PatchStats

REPO_DIR = "/workspace/repo"  # where Dockerfile.gpu puts the repository in every sandbox
BASE_GIT_DIR = "/opt/isobench/base.git"
SCRATCH_DIR = ".isobench_scratch"
DEFAULT_BRANCH = "main"
SHA_RE = re.compile(r"^[0-9a-fA-F]{4,40}$")


def cache_root() -> Path:
    import os

    root = Path(os.environ.get("ISOBENCH_CACHE", Path.home() / ".cache" / "isobench"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def _run_git(args: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise InfraError(f"git {' '.join(args[:3])} failed: {proc.stderr.strip()[-300:]}")
    return proc.stdout


def open_repo(source: str) -> git.Repo:
    """A local repository, or a URL mirrored (bare) into the cache and refreshed."""
    path = Path(source).expanduser()
    if path.exists():
        try:
            return git.Repo(path, search_parent_directories=False)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise UserInputError(f"{source} is not a git repository") from None
    if re.match(r"^(https?|ssh|git|file)://|^[\w.-]+@[\w.-]+:", source):
        mirror = cache_root() / "mirrors" / hashlib.sha256(source.encode()).hexdigest()[:16]
        if mirror.exists():
            proc = subprocess.run(["git", "-C", str(mirror), "remote", "update", "--prune"],
                                  capture_output=True, text=True)
            if proc.returncode != 0:  # offline is fine if the mirror already has the commit
                pass
        else:
            mirror.parent.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run(["git", "clone", "--mirror", source, str(mirror)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                shutil.rmtree(mirror, ignore_errors=True)
                raise UserInputError(f"cannot clone {source}: "
                                     f"{proc.stderr.strip().splitlines()[-1:]}; give a local "
                                     f"path or mirror with --repo")
        return git.Repo(mirror)
    raise UserInputError(f"{source} is neither an existing path nor a git URL")


def resolve_sha(repo: git.Repo, ref: str) -> str:
    """Full sha of a commit named by a (short) sha; unknown or ambiguous is a user error."""
    if not SHA_RE.match(ref):
        raise UserInputError(f"{ref!r} is not a commit sha")
    try:
        return repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except git.GitCommandError:
        raise UserInputError(f"unknown commit {ref} in {repo.git_dir}") from None


def parent_sha(repo: git.Repo, sha: str, index: int = 1) -> str:
    commit = repo.commit(sha)
    if not commit.parents:
        raise UserInputError(f"commit {sha[:12]} is a root commit: it has no parent to start "
                             f"from")
    if index > len(commit.parents):
        raise UserInputError(f"commit {sha[:12]} has {len(commit.parents)} parent(s), "
                             f"not {index}")
    return commit.parents[index - 1].hexsha


def export_leakproof(repo: git.Repo, base_sha: str, dest: Path) -> None:
    """A fresh repository holding exactly the history of `base_sha`, checked out, no remote.

    Fetching one commit by id transfers only its ancestry: the human commit and anything newer
    never enter the object store, so they cannot be found by refs, reflogs or fsck either.
    """
    dest.mkdir(parents=True, exist_ok=True)
    _run_git(["init", "--quiet", f"--initial-branch={DEFAULT_BRANCH}", str(dest)])
    upload_pack = "git -c uploadpack.allowAnySHA1InWant=true upload-pack"
    _run_git(["fetch", "--quiet", "--no-tags", f"--upload-pack={upload_pack}",
              str(Path(repo.git_dir).resolve()), base_sha], cwd=dest)
    _run_git(["checkout", "--quiet", "-B", DEFAULT_BRANCH, base_sha], cwd=dest)
    for leftover in ("FETCH_HEAD", "ORIG_HEAD"):
        (dest / ".git" / leftover).unlink(missing_ok=True)
    _run_git(["reflog", "expire", "--expire=now", "--all"], cwd=dest)
    _run_git(["gc", "--quiet", "--prune=now"], cwd=dest)


# --------------------------------------------------------------------------- container side


class LeakReport(BaseModel):
    commits_total: int
    outside_base: list[str]
    bad_refs: list[str]
    human_present: bool

    @property
    def clean(self) -> bool:
        return not self.outside_base and not self.bad_refs and not self.human_present


def leak_check_script(repo_dir: str, base_sha: str, human_sha: str) -> str:
    """Shell that lists every commit object and ref not in base's ancestry (and the human)."""
    return f"""set -eu
cd '{repo_dir}'
git rev-list '{base_sha}' | sort > /tmp/.isobench_anc
git cat-file --batch-all-objects --batch-check='%(objecttype) %(objectname)' \\
  | awk '$1=="commit"{{print $2}}' | sort > /tmp/.isobench_all
echo "TOTAL $(wc -l < /tmp/.isobench_all)"
comm -23 /tmp/.isobench_all /tmp/.isobench_anc | sed 's/^/OUTSIDE /'
git for-each-ref --format='%(objectname) %(refname)' | while read -r obj ref; do
  git merge-base --is-ancestor "$obj" '{base_sha}' 2>/dev/null || echo "REF $ref $obj"
done
git reflog --all --format='%H' 2>/dev/null | sort -u | while read -r obj; do
  git merge-base --is-ancestor "$obj" '{base_sha}' 2>/dev/null || echo "REF reflog $obj"
done
if git cat-file -e '{human_sha}^{{commit}}' 2>/dev/null; then echo HUMAN; fi
rm -f /tmp/.isobench_anc /tmp/.isobench_all
"""


def parse_leak_report(output: str) -> LeakReport:
    total, outside, refs, human = 0, [], [], False
    for line in output.splitlines():
        if line.startswith("TOTAL "):
            total = int(line.split()[1])
        elif line.startswith("OUTSIDE "):
            outside.append(line.split()[1])
        elif line.startswith("REF "):
            refs.append(line[4:])
        elif line.strip() == "HUMAN":
            human = True
    return LeakReport(commits_total=total, outside_base=outside, bad_refs=refs,
                      human_present=human)


def verify_no_leak(sandbox, repo_dir: str, base_sha: str, human_sha: str) -> LeakReport:
    """Prove inside the sandbox that nothing newer than base is reachable; raise otherwise."""
    result = sandbox.check(leak_check_script(repo_dir, base_sha, human_sha), timeout_s=600)
    report = parse_leak_report(result.stdout)
    if not report.clean or report.commits_total == 0:
        raise LeakDetected(f"the agent's tree can reach commits beyond base: "
                           f"{report.model_dump_json()}")
    return report


def harness_patch_script(repo_dir: str, base_sha: str, out_path: str) -> str:
    """Diff base -> current working tree using the controller's private git dir and index."""
    return f"""set -eu
export GIT_DIR='{BASE_GIT_DIR}' GIT_WORK_TREE='{repo_dir}'
export GIT_INDEX_FILE=$(mktemp /tmp/.isobench_index.XXXXXX)
trap 'rm -f "$GIT_INDEX_FILE"' EXIT
cd '{repo_dir}'
git read-tree '{base_sha}'
# The scratch dir and install outputs are in base.git's info/exclude (Dockerfile.gpu), a file
# the agent never sees, so `add --all` cannot pick them up whatever the agent's .gitignore says.
git -c advice.addIgnoredFile=false add --all -- .
git diff --cached --binary --no-color --no-ext-diff --no-renames '{base_sha}' > '{out_path}'
"""


def harness_patch(sandbox, repo_dir: str, base_sha: str) -> bytes:
    """The agent's change as a binary-safe patch, computed by the controller."""
    out = "/tmp/isobench_harness.diff"
    sandbox.check(harness_patch_script(repo_dir, base_sha, out), timeout_s=600)
    return sandbox.get_file(out)


def patch_stats(patch: bytes) -> PatchStats:
    files = added = removed = binary = 0
    for line in patch.split(b"\n"):
        if line.startswith(b"diff --git "):
            files += 1
        elif line.startswith(b"GIT binary patch"):
            binary += 1
        elif line.startswith(b"+") and not line.startswith(b"+++ "):
            added += 1
        elif line.startswith(b"-") and not line.startswith(b"--- "):
            removed += 1
    return PatchStats(files_changed=files, lines_added=added, lines_removed=removed,
                      bytes=len(patch), sha256=hashlib.sha256(patch).hexdigest(),
                      binary_files=binary)


def changed_paths(patch: bytes) -> list[str]:
    """Paths a patch touches (both sides of renames), from its `diff --git` headers."""
    paths: list[str] = []
    for line in patch.decode("utf-8", "replace").splitlines():
        if m := re.match(r"^diff --git a/(.+?) b/(.+)$", line):
            for p in m.groups():
                if p not in paths:
                    paths.append(p)
    return paths


def touches_paths(paths: list[str], prefixes: list[str]) -> bool:
    """Whether any path is one of `prefixes` or lies under one (prefix 'csrc/' or 'setup.py';
    a trailing '*' matches any suffix, e.g. 'requirements*')."""
    for path in paths:
        for prefix in prefixes:
            if prefix.endswith("*"):
                if path.startswith(prefix[:-1]):
                    return True
            elif path == prefix.rstrip("/") or path.startswith(prefix.rstrip("/") + "/"):
                return True
    return False
