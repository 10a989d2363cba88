"""Apply a patch inside a sandbox, robustly, and say exactly how (or why not).

Agent patches are made against the base tree but meet it again in a fresh container, maybe
after the human's or someone else's edits. The chain tries the strict method first and gets
more lenient, resetting the tree between tries so a half-applied attempt never leaks into the
next: `git apply` -> `git apply --3way` -> GNU `patch --fuzz`. A patch that is already in the
tree is recognised (reverse-applies cleanly) instead of being reported as a conflict.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from executor.parts.repo import SCRATCH_DIR

PATCH_PATH = "/tmp/isobench_apply.patch"

_METHODS: tuple[tuple[str, str], ...] = (
    ("git-apply", f"git apply --binary --whitespace=nowarn {PATCH_PATH}"),
    ("git-apply-3way", f"git apply --3way --binary --whitespace=nowarn {PATCH_PATH}"),
    ("patch-fuzz", f"patch -p1 --forward --batch --fuzz=3 --no-backup-if-mismatch "
                   f"-i {PATCH_PATH}"),
)


class ApplyResult(BaseModel):
    """Outcome of applying one patch."""

    applied: bool = Field(description="The tree now contains the patch.")
    method: str | None = Field(default=None, description="Which method worked.")
    already_applied: bool = Field(default=False, description="The tree had it already.")
    log: str = Field(default="", description="What each method said, for the journal.")


def _reset_command(repo_dir: str) -> str:
    # Back to HEAD (the base commit); untracked files the patch created go too, but ignored
    # build outputs and the scratch dir stay (no -x).
    return (f"cd '{repo_dir}' && git reset --quiet --hard HEAD && "
            f"git clean -fdq -e '{SCRATCH_DIR}'")


def apply_patch(sandbox, repo_dir: str, patch: bytes) -> ApplyResult:
    """Apply `patch` to the working tree at `repo_dir`, trying each method in turn."""
    if not patch.strip():
        return ApplyResult(applied=True, method="empty", log="empty patch: nothing to apply")
    sandbox.put_file(PATCH_PATH, patch)
    log: list[str] = []
    reverse = sandbox.exec(f"cd '{repo_dir}' && git apply --reverse --check --binary "
                           f"{PATCH_PATH}", 120)
    if reverse.ok:
        return ApplyResult(applied=True, method="already-applied", already_applied=True,
                           log="patch reverse-applies cleanly: already in the tree")
    for name, command in _METHODS:
        result = sandbox.exec(f"cd '{repo_dir}' && {command}", 300)
        log.append(f"[{name}] exit {result.exit_code}: {result.tail(8)}")
        if result.ok and "conflict" not in (result.stdout + result.stderr).lower():
            return ApplyResult(applied=True, method=name, log="\n".join(log))
        sandbox.exec(_reset_command(repo_dir), 120)
    return ApplyResult(applied=False, log="\n".join(log))
