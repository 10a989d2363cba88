"""The task prompt: a versioned template rendered per item, stored and hashed per run.

The template never asks the agent to commit. ISO-Bench's prompt did, and TRAE's must-patch
check (plain `git diff`) then saw an empty patch and killed 138 runs (FIELD_NOTES section 2).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel

from executor.parts.bench.protect import protected_patterns
from executor.core.task import TaskSpec

PROMPTS_DIR = Path(__file__).parent / "prompts"
DEFAULT_TEMPLATE = "perf_task_v2"


def harness_section(task: TaskSpec) -> str:
    """The paths that measure and judge the work: the harness restores them before timing."""
    paths = ", ".join(protected_patterns(task))
    return (f"\nThese paths belong to the harness, which measures and judges your change: "
            f"{paths}. Changes to them are discarded before the benchmark and the tests run "
            f"(the harness uses its own copies), and are named in the results.\n")


class RenderedPrompt(BaseModel):
    template: str
    text: str
    sha256: str


def render_prompt(task: TaskSpec, *, repo_dir: str, scratch_dir: str, base_sha: str,
                  template: str = DEFAULT_TEMPLATE) -> RenderedPrompt:
    text = (PROMPTS_DIR / f"{template}.txt").read_text()
    test_section = (f"\nThe tests that must keep passing:\n\n    {task.test_command}\n"
                    if task.test_command else "")
    rendered = text.format(repo_dir=repo_dir, base_short=base_sha[:12], goal=task.goal.strip(),
                           bench_command=task.bench_command, test_section=test_section,
                           scratch_dir=scratch_dir, harness_section=harness_section(task))
    return RenderedPrompt(template=template, text=rendered,
                          sha256=hashlib.sha256(rendered.encode()).hexdigest())
