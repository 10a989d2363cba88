"""From what the user typed (a sha, maybe --task / --repo) to a CommitJob with full shas.

Where the task comes from, in order:
  1. --task FILE (TOML or JSON TaskSpec);
  2. a built-in catalogue entry for the sha (the demo, vllm_core);
  3. an `isobench.toml` committed in the repository itself at the human commit.
--repo always overrides the task's repository (a local mirror, say). Every failure here is a
one-line UserInputError raised before any container starts.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import git
from pydantic import BaseModel, Field

from executor.core.errors import UserInputError
from executor.parts.repo import open_repo, parent_sha, resolve_sha
from executor.core.task import CommitJob, PlanItem, TaskSpec, load_task_file

REPO_TASK_FILE = "isobench.toml"


class JobSource(BaseModel):
    """Where a commit's task and repository come from, besides the sha (--task, --repo; a
    single commit also --base and --item-id)."""

    task_file: Path | None = Field(
        default=None, json_schema_extra={"flag": "--task", "path": {"dir_okay": False}},
        description="Task file (TOML/JSON) saying how to build, test and time the repo.")
    repo: str | None = Field(default=None, json_schema_extra={"flag": "--repo",
                                                              "path_or_url": True},
                             description="Repository path or URL (overrides the task's; use "
                                         "mirrors).")
    base: str | None = Field(default=None, json_schema_extra={"flag": "--base"},
                             description="Base commit (default: the parent of SHA).")
    item_id: str | None = Field(default=None, json_schema_extra={"flag": "--item-id"},
                                description="Item id (default: catalogue id or sha).")


def catalogue_lookup(sha: str) -> tuple[TaskSpec, PlanItem] | None:
    """The built-in catalogues' entry for a (short) sha; None when no catalogue has it.

    A catalogued commit that cannot run (no benchmark, TPU-only...) is a UserInputError with
    the catalogue's reason, as is an ambiguous prefix.
    """
    from executor.parts.catalog import NotCatalogued, find_commit

    try:
        return find_commit(sha)
    except NotCatalogued:
        return None


def _task_from_repo(repo: git.Repo, sha: str, source: str) -> TaskSpec | None:
    try:
        text = repo.git.show(f"{sha}:{REPO_TASK_FILE}")
    except git.GitCommandError:
        return None
    try:
        data = tomllib.loads(text)
        if data.get("repo", ".") == ".":  # "this repository"
            data["repo"] = source
        return TaskSpec.model_validate(data)
    except Exception as exc:
        raise UserInputError(f"{REPO_TASK_FILE} at {sha[:12]} is not a valid task: {exc}") \
            from exc


def resolve_job(sha: str, *, task_file: Path | None = None, repo: str | None = None,
                item_id: str | None = None, base: str | None = None,
                parent_index: int = 1) -> CommitJob:
    """Resolve a sha to a runnable job; see the module docstring for the order."""
    task: TaskSpec | None = None
    item: PlanItem | None = None
    if task_file is not None:
        task = load_task_file(task_file)
    elif (found := catalogue_lookup(sha)) is not None:
        task, item = found
    if task is None and repo is None:
        raise UserInputError(f"commit {sha} is not in a built-in catalogue; describe the task "
                             f"with --task FILE, or give --repo PATH whose history has an "
                             f"{REPO_TASK_FILE}")
    source = repo or task.repo
    git_repo = open_repo(source)
    human = resolve_sha(git_repo, item.human if item else sha)
    if task is None:
        task = _task_from_repo(git_repo, human, source)
        if task is None:
            raise UserInputError(f"no task for {sha}: {source} has no {REPO_TASK_FILE} at "
                                 f"{human[:12]}; give --task FILE")
    if repo:
        task = task.model_copy(update={"repo": repo})
    if base:
        base_sha = resolve_sha(git_repo, base)
    elif item and item.pre:
        base_sha = resolve_sha(git_repo, item.pre)
    else:
        base_sha = parent_sha(git_repo, human, item.pre_parent_index if item else parent_index)
    return CommitJob(task=task, item_id=item_id or (item.item_id if item else human[:12]),
                     human_sha=human, base_sha=base_sha)


def reference_patch(job: CommitJob) -> tuple[bytes, str] | None:
    """The patch a task ships for the replay agent when no --patch is given (the demo's
    reference fix), as (bytes, name); None for tasks that ship none."""
    if job.task.name == "demo":
        from executor.parts.demo import REFERENCE_AGENT_PATCH, reference_agent_patch

        return reference_agent_patch(), str(REFERENCE_AGENT_PATCH.name)
    return None


def on_target_device(job: CommitJob, device: str) -> CommitJob:
    """The job for vLLM's `device` build: the CPU track swaps the catalogue's CUDA task for its
    own (a generated tiny model and vLLM's latency benchmark: executor/parts/vllm/cpu_workload.py)."""
    if device == job.task.target_device:
        return job
    if job.task.builder != "vllm" or device != "cpu":
        raise UserInputError(f"--target-device {device} is for vLLM catalogue commits "
                             f"({job.task.name} builds its own way)")
    from executor.parts.vllm.catalog_task import vllm_cpu_task
    from executor.parts.vllm.entries import vllm_core_entry
    from executor.parts.vllm.mirror import GitMirror
    from executor.parts.vllm.planner import scripts_are_stubs

    from executor.parts.vllm.cpu_workload import LATENCY_SCRIPT

    repo = open_repo(job.task.repo)
    mirror = GitMirror(repo.working_tree_dir or repo.git_dir)
    stubs = scripts_are_stubs(mirror, job.human_sha)
    # every variant runs base's copy of the benchmark (protected paths): its flags decide
    task = vllm_cpu_task(vllm_core_entry(job.human_sha), repo=job.task.repo,
                         scripts_stubbed=bool(stubs),
                         script=mirror.read(job.base_sha, LATENCY_SCRIPT))
    return job.model_copy(update={"task": task})


def resolve_source(sha: str, source: JobSource) -> CommitJob:
    """resolve_job with the command line's JobSource."""
    return resolve_job(sha, task_file=source.task_file, repo=source.repo,
                       item_id=source.item_id, base=source.base)
