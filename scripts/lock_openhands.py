"""Regenerate OpenHands' lock: every package its bundle installs, pinned, with the sha256 of
each file that a Linux CPython 3.12 (x86_64 or aarch64, glibc) could install for it.

    .venv/bin/python scripts/lock_openhands.py [--uv PATH] [-o executor/parts/agents/locks/...]

Resolution is uv's (`uv pip compile --python-platform linux --python-version 3.12` of the four
pinned OpenHands packages); the hashes are PyPI's own (its simple index, PEP 691 JSON), kept only for the files
this bundle can use, so the lock stays a reviewable size (uv's `--generate-hashes` lists every
file of every version: 4,110 lines, mostly macOS and Windows wheels). The bundle installs it
with `uv pip install --require-hashes --no-deps`: nothing outside the lock, nothing unchecked.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from packaging.utils import (InvalidSdistFilename, InvalidWheelFilename, parse_sdist_filename,
                             parse_wheel_filename)
from packaging.version import Version

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from executor.parts.agents.openhands_lock import (  # noqa: E402
    LOCK_PATH, OPENHANDS_REQUIREMENTS, PYTHON_TAG, render_lock)

INDEX = "https://pypi.org"
MACHINES = ("x86_64", "aarch64")


def usable(filename: str) -> bool:
    """An sdist, or a wheel a glibc Linux CPython 3.12 on x86_64/aarch64 can install."""
    if not filename.endswith(".whl"):
        return filename.endswith((".tar.gz", ".zip"))
    _, _, _, tags = parse_wheel_filename(filename)
    for tag in tags:
        python_ok = tag.interpreter in ("py3", PYTHON_TAG) or (
            tag.abi == "abi3" and tag.interpreter.startswith("cp3")
            and int(tag.interpreter[3:]) <= int(PYTHON_TAG[3:]))
        abi_ok = tag.abi in ("none", "abi3", PYTHON_TAG)
        platform_ok = tag.platform == "any" or (
            tag.platform.startswith(("manylinux", "linux"))
            and tag.platform.endswith(MACHINES))
        if python_ok and abi_ok and platform_ok:
            return True
    return False


def resolve(uv: str) -> list[tuple[str, str]]:
    """(name, version) of every package uv resolves for the pins on Linux, CPython 3.12."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in.txt"
        source.write_text("\n".join(OPENHANDS_REQUIREMENTS) + "\n")
        out = subprocess.run(
            [uv, "pip", "compile", str(source), "--python-platform", "linux",
             "--python-version", "3.12", "--index-url", f"{INDEX}/simple", "--no-header",
             "--no-annotate", "--quiet"], check=True, capture_output=True, text=True).stdout
    pins = []
    for line in out.splitlines():
        line = line.split(";")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins.append((name.strip(), version.strip()))
    return pins


def file_version(filename: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def file_hashes(name: str, version: str) -> list[str]:
    """PyPI's sha256 of the version's usable files, from its simple index (PEP 691 JSON)."""
    request = urllib.request.Request(f"{INDEX}/simple/{name}/", headers={
        "Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        files = json.load(answer)["files"]
    wanted = Version(version)
    hashes = sorted(f["hashes"]["sha256"] for f in files
                    if file_version(f["filename"]) == wanted and usable(f["filename"]))
    if not hashes:
        raise SystemExit(f"{name}=={version}: no file on PyPI for Linux CPython 3.12")
    return hashes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uv", default=shutil.which("uv") or "uv", help="the uv to resolve with")
    parser.add_argument("-o", "--output", type=Path, default=LOCK_PATH)
    args = parser.parse_args()
    pins = resolve(args.uv)
    locked = [(name, version, file_hashes(name, version)) for name, version in pins]
    args.output.write_text(render_lock(locked))
    print(f"{args.output}: {len(locked)} packages, "
          f"{sum(len(h) for _, _, h in locked)} file hashes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
