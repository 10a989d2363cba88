"""`isobench doctor`: is this host ready, and if not, what exactly to do about it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from executor import __version__
from executor.engine.images import BaseImageRecipe, find_image
from executor.core.errors import EngineUnavailable
from executor.engine.sandbox import list_managed
from executor.engine.chosen import current_engine

GIB = 1024**3


class Check(BaseModel):
    name: str
    level: Literal["ok", "warn", "fail"]
    finding: str
    action: str = ""


def _free_gib(path: Path) -> float:
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free / GIB


def host_gpus() -> list[str]:
    """GPU names as the host driver reports them; empty without nvidia-smi or a GPU."""
    if not shutil.which("nvidia-smi"):
        return []
    proc = subprocess.run(["nvidia-smi", "--query-gpu=index,name,driver_version",
                           "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()] \
        if proc.returncode == 0 else []


def run_checks(state_dir: Path) -> list[Check]:
    checks = [Check(name="isobench", level="ok",
                    finding=f"{__version__} on Python {sys.version.split()[0]}")]
    engine = current_engine()
    label = f"{engine.name} engine"
    try:
        client = engine.client(timeout=30)
        facts = engine.facts()
    except EngineUnavailable as exc:
        checks.append(Check(name=label, level="fail", finding=str(exc).split(";")[0],
                            action=engine.start_hint()))
        return checks
    checks.append(Check(name=label, level="ok",
                        finding=f"{facts.get('engine_version')} ({facts.get('storage_driver')}, "
                                f"{'rootless, ' if facts.get('rootless') == 'true' else ''}"
                                f"root {engine.data_root()})"))
    if unenforced := engine.unenforced_limits():
        checks.append(Check(name="limits", level="warn",
                            finding=f"{engine.name} cannot enforce {', '.join(unenforced)} "
                                    f"limits here (rootless on cgroup v{facts.get('cgroup_version')})",
                            action="sandboxes run without them; for enforced limits use a cgroup "
                                   "v2 host with delegated controllers (docs/podman.md) or "
                                   "--engine docker"))

    gpus = host_gpus()
    if gpus and engine.gpu_ready():
        checks.append(Check(name="gpu runtime", level="ok",
                            finding=f"{len(gpus)} GPU(s): {'; '.join(gpus)}; {engine.name} "
                                    f"can pass them"))
    elif gpus:
        checks.append(Check(name="gpu runtime", level="fail",
                            finding=f"{len(gpus)} GPU(s) but {engine.name} cannot pass them",
                            action=engine.gpu_setup_hint()))
    else:
        checks.append(Check(name="gpu runtime", level="warn", finding="no GPU on this host",
                            action="fine for the CPU demo; vLLM commits need a GPU host "
                                   "(see docs/gpu-hosts.md)"))

    for label, path, need in ((f"disk ({engine.name} root)", Path(engine.data_root()), 100),
                              ("disk (state dir)", state_dir.resolve(), 5)):
        free = _free_gib(path)
        level = "ok" if free >= need else ("warn" if free >= need / 10 else "fail")
        checks.append(Check(name=label, level=level, finding=f"{free:.0f} GiB free at {path}",
                            action="" if level == "ok" else
                            f"vLLM sandboxes take ~{need} GiB here; `isobench images prune` "
                            f"frees isobench images"))

    recipe = BaseImageRecipe()
    if find_image(client, recipe.tag):
        checks.append(Check(name="base image", level="ok", finding=f"{recipe.tag} present"))
    else:
        # no base image and no way to build one blocks the demo: a failure, not a warning
        can_build = os.geteuid() == 0 and shutil.which("debootstrap")
        checks.append(Check(name="base image", level="warn" if can_build else "fail",
                            finding=f"{recipe.tag} not built yet" + (
                                "" if can_build else ", and this host cannot build it"),
                            action="built on first use; now: `isobench images base`" if can_build
                            else "needs root and debootstrap (scripts/ensure-docker.sh installs it), "
                                 "or pass a registry image with --base-image"))

    leftovers = list_managed(client)
    checks.append(Check(name="containers", level="ok" if not leftovers else "warn",
                        finding=f"{len(leftovers)} isobench container(s) on this engine",
                        action="" if not leftovers else
                        "those of dead controllers are removed by the next run"))
    return checks
