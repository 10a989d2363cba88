"""What one perf commit *is*: the repository, the two shas, and how to build, test and time it.

A `TaskSpec` describes a repository-wide benchmark task (the demo, vLLM core, or a user's own
repo given with `--task FILE` or `--repo PATH`); a `PlanItem` is one commit inside it. The
one-commit pipeline takes a `CommitJob` (spec + item, both shas resolved) and nothing else.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from executor.core.errors import UserInputError


class MetricSpec(BaseModel):
    """How to read one number out of a benchmark run, and which direction is better."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["latency_json", "throughput_json", "serving_json", "prefix_caching_stdout",
                  "vllm_bench_json", "json_path", "regex"] = Field(
        default="latency_json", description="Parser to use on the benchmark's output.")
    output_file: str | None = Field(
        default="/tmp/isobench_bench.json",
        description="File (inside the container) the benchmark writes; None means stdout.")
    field: str | None = Field(
        default=None, description="Field for json_path (dotted path) or the metric to pick.")
    regex: str | None = Field(default=None, description="Pattern with one group, for 'regex'.")
    lower_is_better: bool | None = Field(
        default=None, description="Override the parser's own direction.")


class EvidenceSpec(BaseModel):
    """What the harness records inside the timed process (executor/parts/bench/evidence.py).

    The benchmark script is run through the harness's hook (evidence_hook.py): each call of
    `function` is one benchmark iteration, timed by the harness's own reference to the real
    clocks and summarised by the named `state` reader; the return values of calls named in
    `calls` are summarised by the `result` reader (vLLM: `generate` and `token_ids`). The
    agent variant must reproduce the `reference` variant's evidence."""

    model_config = ConfigDict(extra="forbid")

    script: str = Field(description="The benchmark script as bench_command runs it, e.g. "
                                    "benchmarks/benchmark_latency.py (repository-relative).")
    function: str | None = Field(default=None, description="The function whose every call "
                                 "is one iteration (the demo: decode_loop).")
    state: str | None = Field(default=None, description="State reader at the end of each "
                              "call: demo_block_manager.")
    calls: list[str] = Field(default_factory=list, description="Calls inside the script whose "
                             "results are recorded (vLLM: generate).")
    result: str | None = Field(default=None, description="Result reader: token_ids (per "
                               "call: requests, prompt ids, output counts, output ids and "
                               "text), or token_counts (without ids and text, for a track "
                               "where sampled ids do not repeat between processes).")
    seed_flag: str | None = Field(default=None, description="The benchmark's seed option "
                                  "(the demo: --seed): every block of trials runs on a fresh "
                                  "seed, the same for every variant of the block, so a patch "
                                  "that replays a recorded workload meets inputs it has not "
                                  "seen. None: the command's inputs as written.")
    reference: Literal["base", "human"] = Field(
        default="base", description="Whose evidence the agent must reproduce: human where the "
                                    "task says the commit changes behaviour legitimately.")


class TaskSpec(BaseModel):
    """A benchmark task: a repository and the commands that build, test and time it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Task id used in the state layout, e.g. 'demo' or 'vllm_core'.")
    repo: str = Field(description="Git repository: local path or URL (local mirrors preferred).")
    install_command: str = Field(
        default="python3 -m venv /opt/venv && /opt/venv/bin/pip install -e .",
        description="Shell command run in the repo at image build time (network may be off).")
    bench_command: str = Field(description="Shell command, run in the repo, that times the "
                                           "workload and writes the metric output.")
    metric: MetricSpec = Field(default_factory=MetricSpec)
    test_command: str | None = Field(
        default=None, description="Correctness gate run on the agent variant before timing.")
    native_paths: list[str] = Field(
        default_factory=list,
        description="Path prefixes whose change needs a rebuild before timing (csrc/, setup.py).")
    rebuild_command: str | None = Field(
        default=None, description="Command that rebuilds native parts after a native patch.")
    goal: str = Field(default="Make the benchmark faster without changing behaviour.",
                      description="What the agent is asked to speed up, in one paragraph.")
    build_args: dict[str, str] = Field(
        default_factory=dict,
        description="Extra Dockerfile.gpu build args (e.g. TOOLCHAIN_COMMAND for CUDA bases).")
    base_image: str | None = Field(
        default=None, description="Image to build on; None means isobench's offline base.")
    env: dict[str, str] = Field(default_factory=dict,
                                description="Non-secret environment for every container.")
    server_command: str | None = Field(
        default=None, description="Command that starts the server the benchmark talks to "
                                  "(serving benchmarks); None means the benchmark needs none.")
    server_ready_url: str | None = Field(
        default=None, description="URL (inside the container) that answers 200 once the "
                                  "server accepts requests, e.g. http://localhost:8000/v1/models.")
    server_ready_timeout_s: int = Field(
        default=1200, description="How long to wait for server_ready_url before failing.")
    protected_paths: list[str] | None = Field(
        default=None, description="Paths that measure and judge (benchmark scripts, tests), "
                                  "restored from the reference tree in every variant; None "
                                  "derives them (executor/parts/bench/protect.py).")
    reference_tree: Literal["base", "human"] = Field(
        default="base", description="Commit whose protected paths every variant is measured "
                                    "and judged with.")
    output_check_command: str | None = Field(
        default=None, description="Command whose stdout must be the same on the agent "
                                  "variant as on base (the workload's results); None: no check.")
    evidence: EvidenceSpec | None = Field(
        default=None, description="Behaviour and timing evidence taken inside the timed "
                                  "process by the harness's hook; None: none (the output "
                                  "check and outer timing still apply).")
    builder: Literal["generic", "vllm"] = Field(
        default="generic", description="Image planner: generic runs install_command; vllm "
                                       "derives CUDA, torch and install strategy per commit.")
    target_device: Literal["cuda", "cpu"] = Field(
        default="cuda", description="vllm builder: the CUDA build, or vLLM's x86 CPU build "
                                    "(the CPU track, executor/parts/vllm/cpu_route.py).")

    @model_validator(mode="after")
    def _server_needs_readiness_url(self) -> "TaskSpec":
        if self.server_command and not self.server_ready_url:
            raise ValueError("server_command needs server_ready_url (how to tell it is up)")
        return self


class PlanItem(BaseModel):
    """One commit of a plan, in ISO-Bench's plan.json shape (pre empty: use a parent)."""

    item_id: str
    human: str = Field(description="The real perf commit (full or short sha).")
    pre: str = Field(default="", description="Base commit; empty means parent pre_parent_index.")
    pre_parent_index: int = Field(default=1, ge=1)


class Plan(BaseModel):
    """A list of commits of one task; accepts ISO-Bench's plan.json as is."""

    repo: str
    task_id: str
    items: list[PlanItem]


class CommitJob(BaseModel):
    """A plan item resolved against its repository: both shas are full and known to exist."""

    task: TaskSpec
    item_id: str
    human_sha: str
    base_sha: str


def load_task_file(path: Path) -> TaskSpec:
    """Read a task from TOML or JSON; any problem is a one-line user error."""
    try:
        raw = path.read_text()
    except OSError as exc:
        raise UserInputError(f"cannot read task file {path}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw) if path.suffix == ".toml" else json.loads(raw)
        return TaskSpec.model_validate(data)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise UserInputError(f"task file {path} is not valid {path.suffix[1:]}: {exc}") from exc
    except ValidationError as exc:
        raise UserInputError(f"task file {path}: {_first_errors(exc)}") from exc


def load_plan(path: Path) -> Plan:
    """Read a plan (ISO-Bench plan.json format); malformed input is a one-line user error."""
    try:
        return Plan.model_validate_json(path.read_text())
    except OSError as exc:
        raise UserInputError(f"cannot read plan {path}: {exc.strerror}") from exc
    except ValidationError as exc:
        raise UserInputError(f"plan {path} is malformed: {_first_errors(exc)}") from exc


def _first_errors(exc: ValidationError, limit: int = 3) -> str:
    """pydantic's errors as one line: 'repo: Field required; bench_command: Field required'."""
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
             for e in exc.errors()[:limit]]
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")
