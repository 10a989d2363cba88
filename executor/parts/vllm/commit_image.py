"""One vLLM commit of any repository, built into one image: `isobench images build SHA --repo R`
for commits outside the catalogue (a release sdist committed locally, a fork, a new commit).

The catalogue path builds a base and a human image from catalogue metadata; this one builds the
image of exactly the commit named, planned from its own files like the catalogue's, and writes
a manifest beside the build log: the plan with every reason, and the package set the image
resolved (read back from the image's frozen requirements), each version as of the cut-off.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, Field

from executor.engine.images import ImageRef, Log
from executor.engine.image_store import read_image_file
from executor.core.errors import UserInputError
from executor.core.journal import write_json_atomic
from executor.parts.repo import export_leakproof, open_repo
from executor.records.state import IMAGE_MANIFEST_NAME
from executor.parts.vllm.image import ensure_vllm_image, resolve_cuda_base
from executor.parts.vllm.jobs import VllmBuildOptions, plan_options
from executor.parts.vllm.mirror import GitMirror
from executor.parts.vllm.strategy import InstallPlan, plan_install
from executor.parts.vllm.wheels import Prober

TASK = "vllm"


class CommitImage(BaseModel):
    """The image of one commit and what is in it."""

    sha: str = Field(description="Full sha of the commit.")
    image: ImageRef = Field(description="The sandbox image (built now or reused).")
    base: ImageRef = Field(description="The image it was built FROM.")
    plan: InstallPlan = Field(description="Environment, strategy and every reason.")
    packages: dict[str, str] = Field(
        default_factory=dict, description="name -> version of the image's resolved set.")
    manifest: Path = Field(description="Where plan and packages were written.")


def parse_frozen(text: str) -> dict[str, str]:
    """`uv pip freeze` lines -> {name: version}; `name @ url` lines keep their url."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "==" in line:
            name, version = line.split("==", 1)
        elif " @ " in line:
            name, version = line.split(" @ ", 1)
        else:
            continue
        out[name.strip().lower().replace("_", "-")] = version.strip()
    return out


def plan_commit(sha: str, repo: Path, options: VllmBuildOptions) -> InstallPlan:
    """Plan one commit of `repo` from its own files and committer date (no download)."""
    source = GitMirror(repo)
    full = source.resolve(sha)
    if full is None:
        raise UserInputError(f"{sha} is not a commit of {repo}")
    return plan_install(full, source=source, commit_date=source.commit_date(full),
                        date_source="mirror", options=plan_options(options),
                        prober=Prober(enabled=options.probe))


def build_commit_image(sha: str, repo: Path, options: VllmBuildOptions, log_dir: Path,
                       log: Log) -> CommitImage:
    """Plan, then build (or reuse) the image of `sha`; record plan and packages."""
    plan = plan_commit(sha, repo, options)
    log(f"{plan.sha[:12]}: {plan.reasons[0]}")
    base = resolve_cuda_base(plan, base_image=options.base_image,
                             base_image_tar=options.base_image_tar, log=log)
    git_repo = open_repo(str(repo))
    image = ensure_vllm_image(plan, lambda dest: export_leakproof(git_repo, plan.sha, dest),
                              base, log_dir, task=TASK, deps_dir=options.deps_dir, log=log)
    packages = parse_frozen(read_image_file(image.tag, plan.frozen_requirements))
    manifest = log_dir / IMAGE_MANIFEST_NAME.format(sha12=plan.sha[:12])
    log_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(manifest, {"sha": plan.sha, "image": image.tag, "image_id": image.id,
                                 "base_image": base.tag, "cutoff": plan.exclude_newer,
                                 "packages": packages,
                                 "plan": json.loads(plan.model_dump_json())})
    return CommitImage(sha=plan.sha, image=image, base=base, plan=plan, packages=packages,
                       manifest=manifest)
