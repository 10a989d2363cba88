"""OpenHands' lock file: every package of its bundle pinned, each with the sha256 of the files
it may be installed from (written by scripts/lock_openhands.py, read here and by the bundle's
`uv pip install --require-hashes --no-deps`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

OPENHANDS_VERSION = "1.16.0"
# The CLI and the SDK packages it pins exactly: the artifacts that are OpenHands. The rest of
# the lock is their dependencies, resolved once, by uv, when the lock was written.
OPENHANDS_REQUIREMENTS = ("openhands==1.16.0", "openhands-sdk==1.21.0",
                          "openhands-tools==1.21.0", "openhands-workspace==1.11.1")
PYTHON_TAG = "cp312"  # the CLI's Requires-Python is ==3.12.*
LOCK_PATH = Path(__file__).parent / "locks" / f"openhands-{OPENHANDS_VERSION}.txt"
HEADER = (f"# OpenHands {OPENHANDS_VERSION} for glibc Linux CPython 3.12 (x86_64, aarch64).\n"
          "# Written by scripts/lock_openhands.py: uv's resolution of the four OpenHands pins,\n"
          "# each package with PyPI's sha256 of its files that such a host can install.\n")


class LockedPackage(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Project name as PyPI spells it.")
    version: str
    sha256: tuple[str, ...] = Field(description="The files it may come from.")

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


def render_lock(locked: list[tuple[str, str, list[str]]]) -> str:
    blocks = []
    for name, version, hashes in sorted(locked, key=lambda p: p[0].lower()):
        lines = [f"{name}=={version}"] + [f"    --hash=sha256:{h}" for h in hashes]
        blocks.append(" \\\n".join(lines))
    return HEADER + "\n".join(blocks) + "\n"


def read_lock(text: str) -> list[LockedPackage]:
    """The packages of a lock in render_lock's format (a requirement, then its hashes, joined
    by line continuations)."""
    packages = []
    logical = text.replace("\\\n", " ")
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        requirement, *options = line.split()
        name, version = requirement.split("==")
        hashes = tuple(o.removeprefix("--hash=sha256:") for o in options
                       if o.startswith("--hash=sha256:"))
        packages.append(LockedPackage(name=name, version=version, sha256=hashes))
    return packages


def lock_text() -> str:
    return LOCK_PATH.read_text()
