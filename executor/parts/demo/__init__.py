"""The embedded demo: a real miniature repository with a genuine perf commit.

`minivllm` is a KV-cache block manager (allocator + per-sequence block tables) whose human
commit replaces an O(num_blocks) scan for free blocks with a free-block stack. Its history is
generated from the text files beside this module with fixed authors and dates, so the shas are
the same on every machine and `isobench run-commit <DEMO_HUMAN_SHA>` needs no network, no GPU
and no API key (the replay agent applies `reference_agent.patch`, a different, heap-based fix).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import tomllib
from pathlib import Path

from pydantic import BaseModel

from executor.core.task import TaskSpec

DEMO_DIR = Path(__file__).parent
TREE_DIR = DEMO_DIR / "tree"
REFERENCE_AGENT_PATCH = DEMO_DIR / "reference_agent.patch"

# Shas of the generated history; tests/unit/test_demo.py proves generation reproduces them.
DEMO_ROOT_SHA = "e9f1659e44680b17c1777d8336700b097d1982d0"
DEMO_BASE_SHA = "d2563e98b26ceb5325b8d32b1060244baf312c25"
DEMO_HUMAN_SHA = "a0476e8c179f2c96a96fb947122d8507cc1de560"
DEMO_LATEST_SHA = "9d29f3c8232c2e1165e0a5703027edf24251a41d"


class DemoCommit(BaseModel):
    message: str
    date: str
    patch: str | None = None
    role: str | None = None
    tag: str | None = None


def _history() -> tuple[str, list[DemoCommit]]:
    data = tomllib.loads((DEMO_DIR / "commits.toml").read_text())
    return data["author"], [DemoCommit.model_validate(c) for c in data["commit"]]


def _source_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(DEMO_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(DEMO_DIR)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _git(repo: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false",
                           "-c", "core.autocrlf=false", *args], cwd=repo, capture_output=True,
                          text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"demo generation: git {args[0]} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def _copy_tree(src: Path, dest: Path) -> None:
    """Copy file contents with fixed modes, so the tree sha does not depend on how this
    package was installed."""
    for path in sorted(src.rglob("*")):
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        target = dest / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
            target.chmod(0o644)


def generate_demo_repo(dest: Path) -> dict[str, str]:
    """Write the demo history into `dest` (a new directory); returns {role: sha}."""
    author, commits = _history()
    name, email = author[: author.index("<")].strip(), author[author.index("<") + 1:-1]
    dest.mkdir(parents=True)
    _git(dest, "init", "--quiet", "--initial-branch=main")
    _copy_tree(TREE_DIR, dest)
    shas: dict[str, str] = {}
    for index, commit in enumerate(commits):
        if commit.patch:
            _git(dest, "apply", "--whitespace=nowarn", str(DEMO_DIR / commit.patch))
        env = {**os.environ, "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
               "GIT_AUTHOR_DATE": commit.date, "GIT_COMMITTER_NAME": name,
               "GIT_COMMITTER_EMAIL": email, "GIT_COMMITTER_DATE": commit.date}
        _git(dest, "add", "--all")
        _git(dest, "commit", "--quiet", "--no-verify", "-m", commit.message, env=env)
        sha = _git(dest, "rev-parse", "HEAD")
        if index == 0:
            shas["root"] = sha
        if commit.role:
            shas[commit.role] = sha
            shas["base"] = _git(dest, "rev-parse", "HEAD~1")
        if commit.tag:
            _git(dest, "tag", commit.tag, env=env)
        shas["latest"] = sha
    return shas


def demo_repo_path() -> Path:
    """The generated demo repository, made once per version of its sources and reused."""
    from executor.parts.repo import cache_root

    final = cache_root() / "demo" / f"minivllm-{_source_digest()}"
    if (final / ".git").exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".minivllm-", dir=final.parent))
    try:
        generate_demo_repo(tmp / "repo")
        try:
            os.rename(tmp / "repo", final)
        except OSError:
            if not (final / ".git").exists():  # lost a race to a concurrent generator: fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


# The demo's output check, owned by the harness (not the repository, whose tree the shas pin):
# the decode loop's observable behaviour, step by step: free blocks, sequences admitted and
# running, preemptions, blocks held, and that no block is in two tables. Block ids are left
# out on purpose: which free block comes first is the allocator's business (the human commit's
# stack hands them out in another order than base's scan), the counts are not.
OUTPUT_CHECK = """python - <<'PY'
import random
from minivllm import BlockAllocator, BlockManager, OutOfBlocks
for seed in range(3):
    rng = random.Random(seed)
    manager = BlockManager(BlockAllocator(256, 16))
    next_seq = preempted = 0
    for step in range(20):
        while manager.allocator.num_free > 4 * 16:
            manager.allocate_sequence(next_seq, rng.randint(1, 48))
            next_seq += 1
        for seq_id in manager.running:
            if rng.random() < 0.03:
                manager.free_sequence(seq_id)
                continue
            try:
                manager.append_token(seq_id)
            except OutOfBlocks:
                manager.free_sequence(seq_id)
                preempted += 1
        held = [b for s in manager.running for b in manager.block_table(s)]
        print(seed, step, manager.allocator.num_free, next_seq, len(manager.running),
              preempted, len(held), len(held) == len(set(held)))
PY"""


# Evidence from the timed process itself (executor/parts/bench/evidence_hook.py), owned by the
# harness like the output check: every call of the benchmark's decode_loop is one iteration,
# and the loop's state at its end (sequences admitted, free blocks, running sequences, the
# next draw of its generator) must be base's in every trial of the agent.
# Each block of trials runs on its own --seed, so recorded answers for the default seed (a
# cache shipped in a patch) meet a workload they have not seen.
EVIDENCE = {"script": "benchmarks/benchmark_latency.py", "function": "decode_loop",
            "state": "demo_block_manager", "seed_flag": "--seed"}


def demo_task(repo: Path | None = None) -> TaskSpec:
    """The demo's TaskSpec, read from the `isobench.toml` its repository carries, plus the
    harness's output check."""
    data = tomllib.loads((TREE_DIR / "isobench.toml").read_text())
    data["repo"] = str(repo or demo_repo_path())
    data.setdefault("output_check_command", OUTPUT_CHECK)
    data.setdefault("evidence", EVIDENCE)
    return TaskSpec.model_validate(data)


def reference_agent_patch() -> bytes:
    return REFERENCE_AGENT_PATCH.read_bytes()
