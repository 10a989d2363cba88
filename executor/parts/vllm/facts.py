"""The facts the vLLM planner stands on, as tables (sources: docs/gpu-hosts.md, FIELD_NOTES 5).

Everything here is data: which CUDA a torch pin was built for, which torch each vLLM release
pinned (the *fallback* when a commit's own requirements cannot be read), and when each wheel
URL pattern was in use. Code elsewhere decides; these tables only say what is true.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple


class TorchBuild(NamedTuple):
    """The CUDA a torch pin is paired with in vLLM's own builds, and where that fact comes from."""

    cuda: str
    source: str


# vLLM builds each torch pin against one CUDA; its wheels and kernels assume it. "field notes"
# entries are stated there; "release default" entries are the CUDA of the torch release's
# default wheels in the same era (vLLM kept CUDA 12.1 from torch 2.1.2 through 2.5.1).
TORCH_CUDA: dict[str, TorchBuild] = {
    "2.1.2": TorchBuild("12.1", "release default (vLLM 0.2.7-0.4.0 built cu121)"),
    "2.2.1": TorchBuild("12.1", "release default"),
    "2.3.0": TorchBuild("12.1", "release default"),
    "2.3.1": TorchBuild("12.1", "release default"),
    "2.4.0": TorchBuild("12.1", "release default"),
    "2.5.1": TorchBuild("12.1", "field notes: vLLM 0.6.4-0.7.3 torch 2.5.1 (CUDA 12.1)"),
    "2.6.0": TorchBuild("12.4", "field notes: vLLM 0.8.x torch 2.6.0 (12.4)"),
    "2.7.0": TorchBuild("12.8", "field notes: vLLM 0.9.x torch 2.7.0 (12.8)"),
    "2.7.1": TorchBuild("12.8", "same CUDA as 2.7.0 (vLLM 0.10.0-0.10.1)"),
    "2.8.0": TorchBuild("12.8", "vLLM 0.10.2-0.11.0 kept CUDA 12.8"),
    "2.9.0": TorchBuild("12.9", "field notes: vLLM 0.11.1-0.12 torch 2.9.0 (12.9)"),
}

# CUDA minor -> the devel image to build on (Ubuntu 22.04: its python3.10 is inside every
# vLLM era's supported range, so no Python download is needed) and the torch wheel index tag.
CUDA_BASE_IMAGES: dict[str, str] = {
    "11.8": "nvidia/cuda:11.8.0-devel-ubuntu22.04",
    "12.1": "nvidia/cuda:12.1.1-devel-ubuntu22.04",
    "12.4": "nvidia/cuda:12.4.1-devel-ubuntu22.04",
    "12.6": "nvidia/cuda:12.6.3-devel-ubuntu22.04",
    "12.8": "nvidia/cuda:12.8.1-devel-ubuntu22.04",
    "12.9": "nvidia/cuda:12.9.1-devel-ubuntu22.04",
    "13.0": "nvidia/cuda:13.0.1-devel-ubuntu22.04",
}
TORCH_INDEX = "https://download.pytorch.org/whl/cu{tag}"
DEFAULT_PYTHON = "3.10"  # Ubuntu 22.04's python3; vLLM wheels are cp38-abi3, any >= 3.8 loads


class Release(NamedTuple):
    """A vLLM release: its date (approximate, to the day) and the torch it pinned."""

    version: str
    date: dt.date
    torch: str


# Date fallback only: used when no requirements file of the commit can be read (no mirror).
# A main-branch commit ships in the *next* release, and pin bumps land before a release, so a
# commit dated d is given the pin of the first release dated on or after d.
RELEASES: tuple[Release, ...] = (
    Release("0.2.7", dt.date(2024, 1, 4), "2.1.2"),
    Release("0.3.0", dt.date(2024, 1, 31), "2.1.2"),
    Release("0.3.3", dt.date(2024, 3, 1), "2.1.2"),
    Release("0.4.0", dt.date(2024, 3, 30), "2.1.2"),
    Release("0.4.1", dt.date(2024, 4, 24), "2.2.1"),
    Release("0.4.2", dt.date(2024, 5, 5), "2.3.0"),
    Release("0.5.0", dt.date(2024, 6, 11), "2.3.0"),
    Release("0.5.2", dt.date(2024, 7, 15), "2.3.0"),
    Release("0.5.3", dt.date(2024, 7, 23), "2.3.1"),
    Release("0.5.4", dt.date(2024, 8, 5), "2.4.0"),
    Release("0.6.3", dt.date(2024, 10, 14), "2.4.0"),
    Release("0.6.4", dt.date(2024, 11, 15), "2.5.1"),
    Release("0.7.3", dt.date(2025, 2, 20), "2.5.1"),
    Release("0.8.0", dt.date(2025, 3, 18), "2.6.0"),
    Release("0.8.5", dt.date(2025, 4, 28), "2.6.0"),
    Release("0.9.0", dt.date(2025, 5, 15), "2.7.0"),
    Release("0.9.2", dt.date(2025, 7, 7), "2.7.0"),
    Release("0.10.0", dt.date(2025, 7, 24), "2.7.1"),
    Release("0.10.1", dt.date(2025, 8, 18), "2.7.1"),
    Release("0.10.2", dt.date(2025, 9, 13), "2.8.0"),
    Release("0.11.0", dt.date(2025, 10, 2), "2.8.0"),
    Release("0.11.1", dt.date(2025, 11, 18), "2.9.0"),
    Release("0.12.0", dt.date(2025, 12, 3), "2.9.0"),
)


def release_for_date(day: dt.date) -> Release:
    """The first release on or after `day` (the one a main commit of that day shipped in)."""
    for release in RELEASES:
        if release.date >= day:
            return release
    return RELEASES[-1]


# Wheel eras (main-branch commits only; tags off main and failed builds have none).
WHEELS_FROM = dt.date(2024, 7, 1)            # first per-commit wheels (S3 bucket)
S3_UNTIL = dt.date(2024, 9, 30)              # S3 pattern, named by version.py's version
PLACEHOLDER_FROM = dt.date(2024, 9, 1)       # wheels.vllm.ai, vllm-1.0.0.dev placeholder name
PLACEHOLDER_UNTIL = dt.date(2025, 12, 15)
METADATA_FROM = dt.date(2025, 11, 15)        # wheels.vllm.ai/<sha>/[cuXXX/]vllm/metadata.json
CU118_TRAP = (dt.date(2024, 9, 1), dt.date(2024, 11, 21))  # placeholder may hold a cu118 build
PRECOMPILED_ANY_VALUE_UNTIL = "0.10.0"       # any non-empty VLLM_USE_PRECOMPILED, even "0", is on

S3_URL = ("https://vllm-wheels.s3.us-west-2.amazonaws.com/{sha}/"
          "vllm-{version}-cp38-abi3-manylinux1_x86_64.whl")
PLACEHOLDER_URL = "https://wheels.vllm.ai/{sha}/vllm-1.0.0.dev-cp38-abi3-manylinux1_x86_64.whl"
METADATA_URL = "https://wheels.vllm.ai/{sha}/{variant}vllm/metadata.json"

# Benchmark-script eras (FIELD_NOTES 6), used to normalise perf commands.
LATENCY_OUTPUT_JSON_FROM = dt.date(2024, 5, 1)
LOAD_FORMAT_DUMMY_FROM = dt.date(2024, 6, 1)
DATASET_NAME_FROM = dt.date(2024, 5, 20)     # --dataset-name/--dataset-path replace --dataset
RANDOM_DATASET_FROM = dt.date(2024, 7, 1)
RESULT_FILENAME_FROM = dt.date(2024, 6, 1)
VLLM_BENCH_CLI_FROM = dt.date(2025, 4, 1)    # `vllm bench serve|latency|throughput`
SCRIPTS_STUBBED_FROM = dt.date(2025, 9, 1)   # benchmarks/benchmark_*.py only point at vllm bench


# When each torch pin's last wheel reached PyPI (PyPI's upload time of the release's files).
# The shared torch layer resolves torch's own dependencies (sympy, networkx, nvidia-*) as of
# that moment: any commit that pins this torch is younger, so the layer never holds a package
# newer than the commit's own cut-off, and commits with the same pin still share the layer.
TORCH_RELEASED: dict[str, str] = {
    "2.1.2": "2023-12-14T21:49:11Z", "2.2.1": "2024-02-22T19:18:38Z",
    "2.3.0": "2024-04-24T15:47:35Z", "2.3.1": "2024-06-05T16:42:33Z",
    "2.4.0": "2024-07-24T15:30:20Z", "2.5.1": "2024-10-29T17:39:51Z",
    "2.6.0": "2025-01-29T16:27:50Z", "2.7.0": "2025-04-23T14:35:39Z",
    "2.7.1": "2025-06-04T17:39:38Z", "2.8.0": "2025-08-06T14:57:28Z",
    "2.9.0": "2025-10-15T15:50:40Z",
}

# The newest CPython each torch pin has x86_64 wheels for on PyPI (cp313 from 2.5, cp314 from
# 2.9). A base whose Python is newer cannot install the pin at all.
TORCH_MAX_PYTHON: dict[str, str] = {
    "2.1.2": "3.11", "2.2.1": "3.12", "2.3.0": "3.12", "2.3.1": "3.12", "2.4.0": "3.12",
    "2.5.1": "3.13", "2.6.0": "3.13", "2.7.0": "3.13", "2.7.1": "3.13", "2.8.0": "3.13",
    "2.9.0": "3.14",
}

# The CUDA of the torch wheels PyPI itself serves (no local tag), for `--torch-index pypi`:
# where it equals the pin's CUDA (TORCH_CUDA) PyPI's torch is the very build vLLM used.
PYPI_TORCH_CUDA: dict[str, str] = {
    "2.1.2": "12.1", "2.2.1": "12.1", "2.3.0": "12.1", "2.3.1": "12.1", "2.4.0": "12.1",
    "2.5.1": "12.4", "2.6.0": "12.4", "2.7.0": "12.6", "2.7.1": "12.6", "2.8.0": "12.8",
    "2.9.0": "12.8",
}
PYPI_INDEX = "https://pypi.org/simple"

# The offline base (executor/engine/images.py BaseImageRecipe: debootstrap + docker import, no
# registry) per Debian suite, and the python3 each suite ships. Wheel strategies need no nvcc:
# the CUDA runtime comes from torch's nvidia-* wheels, so such a base serves them.
DEBIAN_SUITE_PYTHON: dict[str, str] = {"bookworm": "3.11", "trixie": "3.13"}

# Packages whose files of the time are gone from PyPI, each with what its name holds now. Letting
# the cut-off through would install whatever holds the name today: pyairports 0.0.1 (uploaded
# 2025-09-25) is an unrelated package (a `sample` module and a `byted-wandb` script), not the
# airport list outlines 0.0.43-0.0.46 import. Such a package is replaced, through a uv override,
# by a local stand-in with the importable names (install_script.STAND_INS), and the plan says so.
VANISHED: dict[str, str] = {
    "pyairports": "gone from PyPI; the name now holds an unrelated 2025-09-25 upload",
}
