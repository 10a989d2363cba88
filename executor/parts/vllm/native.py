"""Which changes need a native rebuild.

One rule for two callers: the install planner (may a commit reuse another commit's compiled
binaries?) and the benchmark's agent variant (must the agent's patch be rebuilt before timing?).
ISO-Bench applied agent patches without rebuilding, so kernel changes were never measured.
"""

from __future__ import annotations

import fnmatch
from typing import Iterable

# Triton kernels are Python and need no rebuild; requirements* pins decide the torch ABI the
# binaries were compiled against, so a changed pin invalidates them like a changed kernel.
VLLM_NATIVE_PATHS: tuple[str, ...] = (
    "csrc/", "CMakeLists.txt", "cmake/", "setup.py", "pyproject.toml", "requirements*",
)


def _matches(path: str, pattern: str) -> bool:
    """`dir/` is a folder prefix, a pattern with `*` is a glob (`requirements*` covers
    requirements-cuda.txt and requirements/cuda.txt), anything else is one exact path (so
    `setup.py` does not match tools/setup.py)."""
    path = path.removeprefix("./")
    if pattern.endswith("/"):
        return path.startswith(pattern)
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(path, pattern)
    return path == pattern


def native_hits(paths: Iterable[str], native_paths: Iterable[str] = VLLM_NATIVE_PATHS
                ) -> list[str]:
    """The paths among `paths` that fall under a native pattern, in input order."""
    patterns = list(native_paths)
    return [p for p in paths if any(_matches(p, pattern) for pattern in patterns)]


def touches_native(paths: Iterable[str], native_paths: Iterable[str] = VLLM_NATIVE_PATHS
                   ) -> bool:
    """True when any path needs a native rebuild under `native_paths` (TaskSpec.native_paths)."""
    return bool(native_hits(paths, native_paths))
