"""From an InstallPlan to an image, through the same builder the CPU demo uses (build.py).

Build args carry the whole recipe (toolchain, torch pin, install script), so the sandbox
tag, a hash of every input, changes whenever the plan does and never otherwise. A local wheel
is pinned by its sha256 inside the install script; pre-fetched FETCHCONTENT sources by a digest
of their file list and sizes (hashing gigabytes of sources on every plan would cost more than
it protects).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from executor.engine.images import (BaseImageRecipe, ImageRef, Log, ensure_base_image,
                                    ensure_sandbox_image, resolve_named_base, sandbox_recipe,
                                    sha256_hex)
from executor.engine.image_store import load_image_archive
from executor.parts.vllm.install_script import install_command, toolchain_command, torch_command
from executor.parts.vllm.strategy import InstallPlan

REPO_DIR = "/workspace/repo"


def _noop(_: str) -> None:
    pass


def deps_digest(deps_dir: Path | None) -> str:
    if deps_dir is None:
        return ""
    entries = sorted(f"{p.relative_to(deps_dir)}:{p.stat().st_size}"
                     for p in deps_dir.rglob("*") if p.is_file())
    return sha256_hex(*entries)[:16]


def build_args(plan: InstallPlan, deps_dir: Path | None = None, agent_bundle: str = "",
               models_digest: str = "") -> dict[str, str]:
    """Dockerfile.gpu build args for one plan (BASE_IMAGE is added by the builder)."""
    env = plan.environment
    install = install_command(plan)
    if plan.wheel is not None and plan.wheel.sha256:
        install = f'echo "{plan.wheel.sha256}  $(ls /opt/isobench/wheels/*.whl)" | ' \
                  f"sha256sum -c -\n" + install
    if deps_dir is not None:
        install = f"# fetchcontent inputs {deps_digest(deps_dir)}\n" + install
    return {
        "TOOLCHAIN_COMMAND": toolchain_command(plan),
        "PYTHON_VERSION": env.python,
        "TORCH_VERSION": env.torch,
        "TORCH_INDEX_URL": env.torch_index_url,
        "TORCH_COMMAND": torch_command(plan),
        "REPO_DIR": REPO_DIR,
        "REPO_COMMIT": plan.sha,
        "INSTALL_STRATEGY": plan.strategy,
        "INSTALL_COMMAND": install,
        "AGENT_BUNDLE": agent_bundle,
        **({"MODELS_DIGEST": models_digest} if models_digest else {}),
    }


def provisional_tag(plan: InstallPlan, task: str = "vllm_core", deps_dir: Path | None = None
                    ) -> str:
    """The tag the image would get, with the base image named instead of its (unknown) id;
    offline plans show it so two plans can be compared."""
    base = f"unresolved:{plan.environment.base_image}"
    return sandbox_recipe(task, plan.sha, base, build_args(plan, deps_dir)).tag


def torch_layer_key(plan: InstallPlan) -> str:
    """What decides the shared torch layer: commits with the same key share it."""
    env = plan.environment
    return sha256_hex(env.base_image, toolchain_command(plan), env.python, env.torch,
                      env.torch_index_url, torch_command(plan))[:12]


def resolve_cuda_base(plan: InstallPlan, *, base_image: str | None = None,
                      base_image_tar: Path | None = None, log: Log = _noop) -> ImageRef:
    """The CUDA base: loaded from a tarball (air-gapped), named, or the plan's choice; for a
    plan on the offline base, that Debian suite's image (built by debootstrap if missing)."""
    if plan.environment.base_kind == "debian" and base_image is None and base_image_tar is None:
        suite = plan.environment.debian_suite or "bookworm"
        return ensure_base_image(BaseImageRecipe(suite=suite), log=log)
    if base_image_tar is not None:
        tags = load_image_archive(base_image_tar)
        log(f"loaded {', '.join(tags) or 'an untagged image'} from {base_image_tar}")
        if base_image is None and tags:
            base_image = tags[0]
    return resolve_named_base(base_image or plan.environment.base_image, log=log)


def ensure_vllm_image(plan: InstallPlan, export_repo, base: ImageRef, log_dir: Path, *,
                      task: str = "vllm_core", deps_dir: Path | None = None,
                      agent_bundle: Path | None = None, models: tuple[Path, str] | None = None,
                      log: Log = _noop) -> ImageRef:
    """Build (or reuse) the sandbox image of one planned commit.

    `export_repo(dest)` writes the leak-proof repository export (repo.export_leakproof);
    `models` is (folder, digest of its content) of generated models for /opt/isobench/models.
    """
    args = build_args(plan, deps_dir, agent_bundle.name if agent_bundle else "",
                      models[1] if models else "")
    recipe = sandbox_recipe(task, plan.sha, base.id, args)
    with tempfile.TemporaryDirectory(prefix="isobench-wheel-") as tmp:
        inputs: dict[str, Path] = {}
        if plan.wheel is not None and plan.wheel.source == "local":
            wheels = Path(tmp) / "wheels"
            wheels.mkdir()
            source = Path(plan.wheel.location)
            target = wheels / source.name
            try:
                os.link(source, target)  # same filesystem: no copy of a 300 MB wheel
            except OSError:
                shutil.copy2(source, target)
            inputs["wheels"] = wheels
        if deps_dir is not None:
            inputs["deps"] = deps_dir
        if agent_bundle is not None:
            inputs["agent"] = agent_bundle
        if models is not None:
            inputs["models"] = models[0]
        return ensure_sandbox_image(recipe, export_repo, base_tag=base.tag, log_dir=log_dir,
                                    log=log, inputs=inputs)
