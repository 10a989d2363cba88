"""Turn (base image, patch) into the agent variant's image, or a precise reason it cannot be.

The agent variant is prepared once, in its own container: the patch goes through the apply
chain; if it touches native sources (the task's `native_paths`) the task's rebuild command runs,
so kernel changes are measured (ISO-Bench applied patches without rebuilding, and never
measured them); then the container is committed as an image tagged by what went into it. Every
trial then starts a fresh container from that image, exactly like base and human.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel

from executor.parts.bench.hooks import hook_changes, hook_snapshot
from executor.parts.bench.protect import (protected_diff, protected_patterns, restore_protected,
                                    split_patch)
from executor.parts.bench.results import VariantInfo
from executor.engine.images import ImageRef, find_image, sha256_hex
from executor.engine.image_store import image_labels
from executor.parts.patching import apply_patch
from executor.parts.repo import REPO_DIR, changed_paths, touches_paths
from executor.engine.sandbox import Sandbox
from executor.engine.chosen import engine_client
from executor.core.resources import SandboxLimits, SandboxSpec
from executor.core.task import TaskSpec

LABEL_HOOKS = "isobench.startup_hooks"
LABEL_RESTORED = "isobench.protected_restored"

REBUILD_TIMEOUT_S = 4 * 3600


class VariantFailure(BaseModel):
    """Why the agent variant could not be prepared: the verdict and the log that proves it."""

    verdict: str  # apply_failed | build_failed
    reason: str
    log_file: str


def agent_variant_tag(task: TaskSpec, base: ImageRef, patch: bytes, native: bool,
                      reference: str = "", patterns: list[str] | None = None) -> str:
    digest = sha256_hex(base.id, hashlib.sha256(patch).hexdigest(), str(native),
                        task.rebuild_command or "", reference, json.dumps(patterns or []))
    return f"isobench/variant-{task.name}:{digest[:16]}"


def prepare_agent_variant(task: TaskSpec, base: ImageRef, base_sha: str, patch: bytes, *,
                          run_id: str, item_id: str, log_dir: Path,
                          limits: SandboxLimits | None = None, network: str = "bridge",
                          reference_sha: str | None = None) -> VariantInfo | VariantFailure:
    """Build (or reuse) the image of base + patch, rebuilt when native sources changed.

    The patch's sections on the task's protected paths are dropped first (named in
    `protected_dropped`), and after the apply and rebuild the protected paths are restored
    from the reference commit (base unless given), so nothing the patch or its rebuild does
    changes how the variant is measured and judged."""
    patterns = protected_patterns(task)
    reference_sha = reference_sha or base_sha
    split = split_patch(patch, patterns)
    native = touches_paths(changed_paths(split.kept), task.native_paths)
    tag = agent_variant_tag(task, base, split.kept, native, reference_sha, patterns)
    patch_sha = hashlib.sha256(patch).hexdigest()
    log_file = log_dir / "prepare-agent.log"
    log_dir.mkdir(parents=True, exist_ok=True)
    judged = dict(protected_dropped=split.dropped_paths, reference_commit=reference_sha)
    if found := find_image(engine_client(), tag):
        log_file.write_text(f"{tag} was already built from this base image and patch "
                            f"(native rebuild: {native}): reused\n")
        labels = image_labels(tag) or {}
        return VariantInfo(name="agent", image_tag=tag, image_id=found.id, commit=base_sha,
                           patch_sha256=patch_sha, apply_method="cached", rebuilt=native,
                           startup_hooks=json.loads(labels.get(LABEL_HOOKS, "[]")),
                           protected_restored=json.loads(labels.get(LABEL_RESTORED, "[]")),
                           **judged)
    spec = SandboxSpec(image=base.tag, budget_s=REBUILD_TIMEOUT_S + 600, run_id=run_id,
                       item=item_id, phase="prepare-agent", limits=limits or SandboxLimits(),
                       network=network, env=task.env, workdir=REPO_DIR)
    with Sandbox(spec) as sandbox:
        hooks_before = hook_snapshot(sandbox) if native else {}
        applied = apply_patch(sandbox, REPO_DIR, split.kept)
        dropped = "".join(f"dropped (harness path): {p}\n" for p in split.dropped_paths)
        log_file.write_text(dropped + applied.log + "\n")
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
        hooks = hook_changes(hooks_before, hook_snapshot(sandbox), sandbox.changes()) \
            if native else []
        restored = restore_protected(sandbox, REPO_DIR, task.repo, reference_sha, patterns)
        with open(log_file, "a") as fh:
            fh.writelines(f"restored from {reference_sha[:12]}: {p}\n" for p in restored)
            fh.writelines(f"start-up hook outside the repository: {h}\n" for h in hooks)
        labels = {"isobench.image": "variant", "isobench.task": task.name,
                  "isobench.sha": base_sha, "isobench.patch_sha256": patch_sha,
                  LABEL_HOOKS: json.dumps(hooks), LABEL_RESTORED: json.dumps(restored)}
        image_id = sandbox.commit(tag, labels)
    return VariantInfo(name="agent", image_tag=tag, image_id=image_id, commit=base_sha,
                       patch_sha256=patch_sha, apply_method=applied.method, rebuilt=native,
                       startup_hooks=hooks, protected_restored=restored, **judged)


def judged_image_variant(task: TaskSpec, name: str, image: ImageRef, sha: str,
                         reference_sha: str, *, run_id: str, item_id: str,
                         limits: SandboxLimits | None = None) -> VariantInfo:
    """A commit's image as it is measured: when the commit's protected paths differ from the
    reference's (the human commit edited its benchmark or tests, say), an image with them
    restored from the reference (tag = hash of the image, the reference and the patterns)."""
    patterns = protected_patterns(task)
    info = dict(name=name, commit=sha, reference_commit=reference_sha)
    differ = protected_diff(task.repo, reference_sha, sha, patterns) if sha != reference_sha \
        else []
    if not differ:
        return VariantInfo(image_tag=image.tag, image_id=image.id, **info)
    digest = sha256_hex(image.id, reference_sha, json.dumps(patterns))
    tag = f"isobench/judged-{task.name}:{digest[:16]}"
    if found := find_image(engine_client(), tag):
        return VariantInfo(image_tag=tag, image_id=found.id, protected_restored=differ, **info)
    spec = SandboxSpec(image=image.tag, budget_s=1800, run_id=run_id, item=item_id,
                       phase=f"judged-{name}", limits=limits or SandboxLimits(),
                       network="none", env=task.env, workdir=REPO_DIR)
    with Sandbox(spec) as sandbox:
        restored = restore_protected(sandbox, REPO_DIR, task.repo, reference_sha, patterns)
        image_id = sandbox.commit(tag, {"isobench.image": "judged", "isobench.task": task.name,
                                        "isobench.sha": sha, LABEL_RESTORED: json.dumps(restored)})
    return VariantInfo(image_tag=tag, image_id=image_id, protected_restored=restored, **info)
