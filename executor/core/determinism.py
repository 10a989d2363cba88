"""The environment every container starts with, so that a rerun elsewhere starts the same.

Time zone, locale and Python's string hashing otherwise come from whatever the image or the
host happens to say; the seeds come from the run (the schedule seed, recorded in results.json),
so a benchmark that wants randomness can take it from ISOBENCH_SEED and be replayed. Task
environment wins over these defaults (a task that needs another locale says so).
"""

from __future__ import annotations

# Applied to every sandbox (sandbox.container_kwargs); the benchmark adds the seeds.
DETERMINISM_ENV: dict[str, str] = {"TZ": "UTC", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
                                   "PYTHONHASHSEED": "0"}


def seeded_env(seed: int, python_hash_seed: int) -> dict[str, str]:
    """The determinism environment of one benchmark: the defaults plus its recorded seeds."""
    return {**DETERMINISM_ENV, "PYTHONHASHSEED": str(python_hash_seed),
            "ISOBENCH_SEED": str(seed)}
