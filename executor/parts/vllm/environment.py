"""Torch, CUDA, Python and the CUDA base image for one vLLM commit, each with its reason.

The commit's own files decide: the torch pin from its requirements (requirements/cuda.txt,
requirements-cuda.txt, requirements.txt, pyproject.toml build requires, in that order of
authority), CUDA from that pin (facts.TORCH_CUDA, cross-checked with setup.py's
MAIN_CUDA_VERSION), Python from python_requires / requires-python. The release date table is a
fallback used only when no file can be read, and the record says so.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from typing import Literal

from pydantic import BaseModel, Field

from executor.parts.vllm import facts
from executor.parts.vllm.mirror import CommitSource

# Files that can carry the torch pin, most authoritative first: the CUDA runtime list is what
# the wheel was built and tested against; build requires can lag or float.
TORCH_PIN_FILES: tuple[str, ...] = (
    "requirements/cuda.txt", "requirements-cuda.txt", "requirements.txt",
    "pyproject.toml", "requirements/build.txt", "requirements-build.txt",
)
# Where a tree states its version: a literal in version.py (mid-2024 on) or __init__.py (before);
# from late 2024 setuptools-scm writes _version.py, which a release sdist carries and a git
# checkout does not (there the version is unknown until the build).
VERSION_FILES: tuple[str, ...] = ("vllm/version.py", "vllm/__init__.py", "vllm/_version.py")
HINT_FILES: tuple[str, ...] = ("setup.py", "CMakeLists.txt", *VERSION_FILES,
                               "requirements/common.txt", "requirements-common.txt")
COMMIT_FILES: tuple[str, ...] = TORCH_PIN_FILES + HINT_FILES

_REQ_TORCH = re.compile(r"^\s*torch\s*(==|~=|>=|<=|>|<)\s*([0-9][0-9a-zA-Z.+*]*)")
_MAIN_CUDA = re.compile(r"MAIN_CUDA_VERSION\s*=\s*[\"']([0-9.]+)[\"']")
_PYTHON_REQUIRES = re.compile(r"python_requires\s*=\s*[\"']([^\"']+)[\"']")
_CMAKE_TORCH = re.compile(r"TORCH_SUPPORTED_VERSION_CUDA\s+\"([0-9.]+)\"")
# `__version__ = "0.5.4"`, or setuptools-scm's `__version__ = version = '0.8.5.post1'`
_VERSION_LITERAL = re.compile(r"^__version__\s*=\s*(?:version\s*=\s*)?[\"']([0-9][^\"']*)[\"']",
                              re.MULTILINE)
PYTHON_CANDIDATES = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")


class TorchPin(BaseModel):
    """A torch requirement found in one file."""

    version: str = Field(description="Version as written, local tag (+cu121) removed.")
    operator: str = Field(description="'==' is a pin; anything else is a floor or range.")
    file: str = Field(description="The file it came from.")


class Environment(BaseModel):
    """Everything below the repository in a vLLM image, and why each part was chosen."""

    torch: str = Field(description="Torch version to install (exact).")
    torch_source: Literal["requirements", "date_table"] = Field(
        description="requirements: read from the commit; date_table: estimated from its date.")
    torch_file: str | None = Field(default=None, description="File the pin came from.")
    cuda: str = Field(description="CUDA major.minor the torch pin and vLLM kernels use.")
    python: str = Field(description="Python major.minor for the venv.")
    python_requires: str | None = Field(default=None, description="The commit's own range.")
    base_image: str = Field(description="CUDA devel image the toolchain stage starts from.")
    torch_index_url: str = Field(description="Wheel index that serves this torch for this CUDA.")
    vllm_version: str | None = Field(
        default=None, description="Literal __version__ at the commit (names S3-era wheels).")
    base_kind: Literal["cuda", "debian"] = Field(
        default="cuda", description="cuda: an nvidia/cuda devel image; debian: the offline "
                                    "base (debootstrap, no registry; wheel strategies only).")
    debian_suite: str | None = Field(default=None, description="Suite of the offline base.")
    torch_exclude_newer: str | None = Field(
        default=None, description="Cut-off for torch's own dependencies in the torch layer.")
    reasons: list[str] = Field(default_factory=list, description="One line per decision.")


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0].strip()


def torch_pin_from_requirements(text: str, file: str) -> TorchPin | None:
    """The torch line of a requirements file (markers for other platforms are skipped)."""
    for raw in text.splitlines():
        line = _strip_comment(raw)
        requirement, _, marker = line.partition(";")
        # e.g. `torch==2.5.1; platform_machine == "aarch64"` is not the x86_64 CUDA pin
        if marker and ("aarch64" in marker or "darwin" in marker.lower()) and "!=" not in marker:
            continue
        if m := _REQ_TORCH.match(requirement):
            return TorchPin(version=m.group(2).split("+")[0], operator=m.group(1), file=file)
    return None


def torch_pin_from_pyproject(text: str, file: str = "pyproject.toml") -> TorchPin | None:
    """The torch entry of [build-system] requires (what the kernels were compiled against)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    for requirement in data.get("build-system", {}).get("requires", []):
        if m := _REQ_TORCH.match(requirement.split(";")[0]):
            return TorchPin(version=m.group(2).split("+")[0], operator=m.group(1), file=file)
    return None


def python_requires(files: dict[str, str]) -> str | None:
    """requires-python from pyproject.toml, else python_requires from setup.py."""
    if text := files.get("pyproject.toml"):
        try:
            if spec := tomllib.loads(text).get("project", {}).get("requires-python"):
                return spec
        except tomllib.TOMLDecodeError:
            pass
    if (text := files.get("setup.py")) and (m := _PYTHON_REQUIRES.search(text)):
        return m.group(1)
    return None


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def python_allowed(version: str, spec: str) -> bool:
    """Does Python `version` (major.minor) satisfy a specifier like '>=3.9,<3.14'?"""
    have = _version_tuple(version)
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        m = re.match(r"(==|!=|>=|<=|~=|>|<)\s*([0-9.*]+)", clause)
        if not m:
            continue
        op, raw = m.groups()
        want = _version_tuple(raw.replace("*", "0"))
        mine = have[: len(want)] if raw.endswith("*") else have + (0,) * (len(want) - len(have))
        ok = {"==": mine == want, "!=": mine != want, ">=": mine >= want, "<=": mine <= want,
              ">": mine > want, "<": mine < want, "~=": mine >= want}[op]
        if not ok:
            return False
    return True


def choose_python(spec: str | None) -> tuple[str, str]:
    """Ubuntu 22.04's 3.10 when the commit allows it (no download), else the lowest allowed."""
    if spec is None:
        return facts.DEFAULT_PYTHON, (f"Python {facts.DEFAULT_PYTHON}: no python_requires found; "
                                      f"Ubuntu 22.04's own python3")
    if python_allowed(facts.DEFAULT_PYTHON, spec):
        return facts.DEFAULT_PYTHON, (f"Python {facts.DEFAULT_PYTHON}: inside the commit's "
                                      f"range {spec!r} and the base image's own python3")
    for candidate in PYTHON_CANDIDATES:
        if python_allowed(candidate, spec):
            return candidate, f"Python {candidate}: lowest version inside {spec!r}"
    return facts.DEFAULT_PYTHON, (f"Python {facts.DEFAULT_PYTHON}: no known version satisfies "
                                  f"{spec!r}; using the base image's python3")


def find_torch_pin(files: dict[str, str]) -> TorchPin | None:
    """The most authoritative exact pin; a floor only when no file pins exactly."""
    found: list[TorchPin] = []
    for name in TORCH_PIN_FILES:
        if (text := files.get(name)) is None:
            continue
        pin = (torch_pin_from_pyproject(text, name) if name.endswith(".toml")
               else torch_pin_from_requirements(text, name))
        if pin:
            found.append(pin)
    exact = [p for p in found if p.operator == "=="]
    return (exact or found or [None])[0]


def vllm_version(files: dict[str, str]) -> str | None:
    """A literal __version__ (vllm/version.py from mid-2024, vllm/__init__.py before,
    setuptools-scm's vllm/_version.py in release sdists)."""
    for name in VERSION_FILES:
        if (text := files.get(name)) and (m := _VERSION_LITERAL.search(text)):
            return m.group(1)
    return None


def _cuda_for(torch: str, files: dict[str, str], reasons: list[str]) -> str:
    main_cuda = None
    if (text := files.get("setup.py")) and (m := _MAIN_CUDA.search(text)):
        main_cuda = m.group(1)
    known = facts.TORCH_CUDA.get(torch)
    if known:
        reasons.append(f"CUDA {known.cuda}: torch {torch} is built for it ({known.source})")
        if main_cuda and main_cuda != known.cuda:
            reasons.append(f"note: setup.py says MAIN_CUDA_VERSION={main_cuda}; the torch "
                           f"pin's CUDA wins because the kernels link against torch's runtime")
        return known.cuda
    if main_cuda:
        reasons.append(f"CUDA {main_cuda}: torch {torch} is not in the fact table; "
                       f"setup.py's MAIN_CUDA_VERSION")
        return main_cuda
    newest = max(facts.TORCH_CUDA, key=_version_tuple)
    cuda = facts.TORCH_CUDA[newest].cuda
    reasons.append(f"CUDA {cuda}: torch {torch} is unknown and setup.py names no CUDA; "
                   f"using the newest known pairing (torch {newest})")
    return cuda


def _cuda_tag(cuda: str) -> str:
    return cuda.replace(".", "")


def derive_environment(files: dict[str, str], commit_date: dt.date | None) -> Environment:
    """Decide torch, CUDA, Python and base image from a commit's files (path -> text).

    `files` holds whatever could be read; an empty dict (no mirror) falls back to the release
    date table, and with no date either, to the newest release's pin, each said in `reasons`.
    """
    reasons: list[str] = []
    pin = find_torch_pin(files)
    if pin is not None:
        torch, source, torch_file = pin.version, "requirements", pin.file
        how = "pinned" if pin.operator == "==" else f"constrained {pin.operator}"
        reasons.append(f"torch {torch}: {how} in the commit's {pin.file}")
        if pin.operator != "==":
            reasons.append(f"note: {pin.file} has no exact pin; the floor {torch} is installed "
                           f"so later torch releases cannot drift in")
    else:
        source, torch_file = "date_table", None
        if commit_date is not None:
            release = facts.release_for_date(commit_date)
            torch = release.torch
            reasons.append(f"torch {torch}: no requirements file could be read (no mirror); "
                           f"date table: a commit of {commit_date} ships in vLLM "
                           f"{release.version} ({release.date}), which pins torch {torch}")
        else:
            release = facts.RELEASES[-1]
            torch = release.torch
            reasons.append(f"torch {torch}: neither requirements nor commit date known; "
                           f"assuming the newest tabled release {release.version}")
    if (text := files.get("CMakeLists.txt")) and (m := _CMAKE_TORCH.search(text)):
        if m.group(1) != torch:
            reasons.append(f"note: CMakeLists.txt supports torch {m.group(1)} for CUDA, "
                           f"requirements say {torch}")
    cuda = _cuda_for(torch, files, reasons)
    base_image = facts.CUDA_BASE_IMAGES.get(cuda) or f"nvidia/cuda:{cuda}.0-devel-ubuntu22.04"
    reasons.append(f"base image {base_image}: CUDA {cuda} devel (nvcc for native builds)")
    spec = python_requires(files)
    python, why = choose_python(spec)
    reasons.append(why)
    torch_cutoff = facts.TORCH_RELEASED.get(torch)
    if torch_cutoff:
        reasons.append(f"torch layer: torch's own dependencies as of its release "
                       f"({torch_cutoff}), older than any commit that pins it")
    return Environment(
        torch=torch, torch_source=source, torch_file=torch_file, cuda=cuda, python=python,
        python_requires=spec, base_image=base_image,
        torch_index_url=facts.TORCH_INDEX.format(tag=_cuda_tag(cuda)),
        vllm_version=vllm_version(files), torch_exclude_newer=torch_cutoff, reasons=reasons)


def read_commit_files(source: CommitSource, sha: str) -> dict[str, str]:
    """The files derive_environment looks at, as they are at `sha` (missing ones left out)."""
    files: dict[str, str] = {}
    for name in COMMIT_FILES:
        if (text := source.read(sha, name)) is not None:
            files[name] = text
    return files
