"""The CPython an agent's bundle is built on, when the OS base's own does not fit its lock.

TRAE's lock and OpenHands' CLI take Python 3.12 (OpenHands: 3.12 exactly), the base has 3.13,
and uv's managed Pythons come from GitHub, which isobench's hosts may not reach. So the user
gives a relocatable CPython install prefix with `--agent-python DIR`; it is checked here
before anything is written, and a refusal names the prefixes of that version found on this host
(pyenv's, uv's), so that the fix is one copy-paste away.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from executor.core.errors import EnvironmentNotReady


class PythonNeed(BaseModel):
    model_config = ConfigDict(frozen=True)

    lowest: tuple[int, int] = Field(description="The oldest minor version it takes.")
    exact: bool = Field(default=False, description="Only that minor version.")
    why: str = Field(description="Where the requirement comes from.")

    def wanted(self) -> str:
        version = f"{self.lowest[0]}.{self.lowest[1]}"
        return version if self.exact else f">= {version}"

    def admits(self, version: tuple[int, int]) -> bool:
        return version == self.lowest if self.exact else version >= self.lowest


AGENT_PYTHON_NEEDS = {
    "trae": PythonNeed(lowest=(3, 12), why="TRAE's lock pins cp312 wheels"),
    "openhands": PythonNeed(lowest=(3, 12), exact=True,
                            why="the openhands CLI requires Python ==3.12.*"),
}


def candidate_prefixes(need: PythonNeed) -> list[Path]:
    """Install prefixes on this host whose name says a version the agent takes: pyenv's
    versions and uv's managed Pythons (names only; the check runs the one given)."""
    roots = [Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions",
             Path.home() / ".local" / "share" / "uv" / "python"]
    found = []
    for root in roots:
        if not root.is_dir():
            continue
        for prefix in sorted(root.iterdir()):
            match = re.search(r"(?:^|cpython-)(\d+)\.(\d+)\.\d+", prefix.name)
            if match and need.admits((int(match[1]), int(match[2]))) and (
                    prefix / "bin" / "python3").is_file():
                found.append(prefix)
    return found


def hint(need: PythonNeed) -> str:
    found = candidate_prefixes(need)
    where = (f"found on this host: {', '.join(str(p) for p in found[:3])}" if found else
             "e.g. python-build-standalone's install_only tree, or a pyenv version")
    return (f"give --agent-python DIR, a relocatable CPython {need.wanted()} install prefix "
            f"({where})")


def prefix_version(prefix: Path) -> tuple[int, int] | None:
    """The (major, minor) that prefix's bin/python3 reports when run; None if it does not."""
    python = prefix / "bin" / "python3"
    env = {**os.environ, "LD_LIBRARY_PATH": str(prefix / "lib")}
    try:
        proc = subprocess.run([str(python), "-c", "import sys; print(*sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=60, env=env)
    except OSError:
        return None
    found = re.fullmatch(r"(\d+) (\d+)", proc.stdout.strip())
    if proc.returncode != 0 or not found:
        return None
    return int(found[1]), int(found[2])


def check_agent_python(agent: str, prefix: Path | None) -> None:
    """Raise EnvironmentNotReady (exit 2) unless `prefix` is a CPython the agent takes."""
    need = AGENT_PYTHON_NEEDS.get(agent)
    if need is None:
        return
    if prefix is None:
        raise EnvironmentNotReady(f"the {agent} agent needs a Python {need.wanted()} for its "
                                  f"bundle ({need.why}): {hint(need)}")
    if not (prefix / "bin" / "python3").is_file():
        raise EnvironmentNotReady(f"--agent-python {prefix}: no bin/python3 there; "
                                  f"{hint(need)}")
    version = prefix_version(prefix)
    if version is None:
        raise EnvironmentNotReady(f"--agent-python {prefix}: {prefix / 'bin' / 'python3'} "
                                  f"does not run; {hint(need)}")
    if not need.admits(version):
        raise EnvironmentNotReady(f"--agent-python {prefix}: Python {version[0]}.{version[1]}"
                                  f" does not fit {agent} ({need.why}); {hint(need)}")
