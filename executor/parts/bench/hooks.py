"""Code that runs before the benchmark's own: start-up hooks a rebuild could plant.

A patch only changes the repository, whose start-up hook files (sitecustomize.py,
usercustomize.py, *.pth) are protected paths (protect.py). What runs outside the repository can
change only through the native rebuild a patch to setup.py or csrc/ triggers: it could drop a
.pth file or a sitecustomize.py into site-packages, or replace the interpreter. The agent
variant's preparation therefore hashes every hook file of the container's filesystem before the
patch and after the rebuild, and reads `docker diff` for changed interpreters; what changed is
named (`startup_hooks`) and the verdict is `suspect` (integrity.py). Hook files whose content
did not change (an editable install rewriting its own .pth identically) are not named.
"""

from __future__ import annotations

import fnmatch
import re

from executor.parts.repo import REPO_DIR

_HOOK_FIND = (
    "find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path {repo} \\) -prune "
    "-o -type f \\( -name '*.pth' -o -name sitecustomize.py -o -name usercustomize.py \\) "
    "-print0 2>/dev/null | xargs -0 -r sha256sum")
# An interpreter or its shared library, wherever a venv or the OS keeps it.
_INTERPRETER = re.compile(r"(^|/)(bin/python[0-9.]*|lib[^/]*/libpython[^/]*)$")
# Outside these, a rebuild has no business changing files (package installs go to
# site-packages, which the hook rule covers; caches and temporary files are harmless).
_SCRATCH = ("/tmp/", "/var/tmp/", "/root/.cache/", "/run/", REPO_DIR + "/")


def hook_snapshot(sandbox) -> dict[str, str]:
    """{path: sha256} of every start-up hook file outside the repository."""
    out = sandbox.exec(_HOOK_FIND.format(repo=REPO_DIR), 600).stdout
    sums = {}
    for line in out.splitlines():
        digest, _, path = line.partition("  ")
        if path:
            sums[path] = digest
    return sums


def hook_changes(before: dict[str, str], after: dict[str, str],
                 changes: list[tuple[str, str]]) -> list[str]:
    """Hook files added or changed between the snapshots, and changed interpreters."""
    named = [f"{'added' if path not in before else 'changed'} {path}"
             for path, digest in sorted(after.items()) if before.get(path) != digest]
    named += [f"interpreter changed: {path}" for kind, path in changes
              if kind in ("A", "C") and _INTERPRETER.search(path)
              and not path.startswith(_SCRATCH)]
    return named


def is_hook_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(name, p) for p in ("sitecustomize.py", "usercustomize.py",
                                                      "*.pth"))
