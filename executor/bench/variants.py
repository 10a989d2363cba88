"""Turn (base image, patch) into the agent variant's image, or a precise reason it cannot be.

The agent variant is prepared once, in its own container: the patch goes through the apply
chain; if it touches native sources (the task's `native_paths`) the task's rebuild command runs,
so kernel changes are measured (ISO-Bench applied patches without rebuilding, and never
measured them); then the container is committed as an image tagged by what went into it. Every
trial then starts a fresh container from that image, exactly like base and human.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel

from executor.bench.results import VariantInfo
from executor.build import ImageRef, find_image, sha256_hex
from executor.patching import apply_patch
from executor.repo import REPO_DIR, changed_paths, touches_paths
from executor.sandbox import Sandbox, SandboxLimits, SandboxSpec, docker_client
from executor.task import TaskSpec

REBUILD_TIMEOUT_S = 4 * 3600


class VariantFailure(BaseModel):
    """Why the agent variant could not be prepared: the verdict and the log that proves it."""

    verdict: str  # apply_failed | build_failed
    reason: str
    log_file: str


def agent_variant_tag(task: TaskSpec, base: ImageRef, patch: bytes, native: bool) -> str:
    digest = sha256_hex(base.id, hashlib.sha256(patch).hexdigest(), str(native),
                        task.rebuild_command or "")
    return f"isobench/variant-{task.name}:{digest[:16]}"


def prepare_agent_variant(task: TaskSpec, base: ImageRef, base_sha: str, patch: bytes, *,
                          run_id: str, item_id: str, log_dir: Path,
                          limits: SandboxLimits | None = None,
                          network: str = "bridge") -> VariantInfo | VariantFailure:
    """Build (or reuse) the image of base + patch, rebuilt when native sources changed."""
    native = touches_paths(changed_paths(patch), task.native_paths)
    tag = agent_variant_tag(task, base, patch, native)
    patch_sha = hashlib.sha256(patch).hexdigest()
    log_file = log_dir / "prepare-agent.log"
    log_dir.mkdir(parents=True, exist_ok=True)
    if found := find_image(docker_client(), tag):
        log_file.write_text(f"{tag} was already built from this base image and patch "
                            f"(native rebuild: {native}): reused\n")
        return VariantInfo(name="agent", image_tag=tag, image_id=found.id, commit=base_sha,
                           patch_sha256=patch_sha, apply_method="cached", rebuilt=native)
    spec = SandboxSpec(image=base.tag, budget_s=REBUILD_TIMEOUT_S + 600, run_id=run_id,
                       item=item_id, phase="prepare-agent", limits=limits or SandboxLimits(),
                       network=network, env=task.env, workdir=REPO_DIR)
    with Sandbox(spec) as sandbox:
        applied = apply_patch(sandbox, REPO_DIR, patch)
        log_file.write_text(applied.log + "\n")
        if not applied.applied:
            return VariantFailure(verdict="apply_failed", log_file=str(log_file),
                                  reason="the agent patch does not apply to the base tree")
        if native:
            if not task.rebuild_command:
                return VariantFailure(verdict="build_failed", log_file=str(log_file),
                                      reason="the patch changes native sources but the task "
                                             "has no rebuild_command")
            with open(log_file, "a") as fh:
                fh.write(f"\n$ {task.rebuild_command}\n")
            rebuilt = sandbox.exec(task.rebuild_command, REBUILD_TIMEOUT_S, workdir=REPO_DIR,
                                   stdout_file=log_file, stderr_file=log_file)
            if not rebuilt.ok:
                return VariantFailure(verdict="build_failed", log_file=str(log_file),
                                      reason=f"rebuild after a native change failed "
                                             f"(exit {rebuilt.exit_code})")
        labels = {"isobench.image": "variant", "isobench.task": task.name,
                  "isobench.sha": base_sha, "isobench.patch_sha256": patch_sha}
        image_id = sandbox.commit(tag, labels)
    return VariantInfo(name="agent", image_tag=tag, image_id=image_id, commit=base_sha,
                       patch_sha256=patch_sha, apply_method=applied.method, rebuilt=native)
