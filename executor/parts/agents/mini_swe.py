"""mini-swe-agent (SWE-agent/mini-swe-agent, PyPI) in the sandbox, against any OpenAI-compatible
endpoint.

Facts this adapter is built on (mini-swe-agent 2.4.6, checked against the scripted server):
  * the default model class calls Chat Completions through litellm with one `bash` tool, not
    streamed; `-m openai/<model>` plus `model.model_kwargs.api_base` points it anywhere;
  * it retries a failed model call itself (tenacity, 10 attempts, 4-60 s waits) and so does the
    openai client inside litellm (2 retries): both are switched off
    (`MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT=1`, `model_kwargs.max_retries=0`) so a 429 reaches
    the controller at once, where retries are classified and journaled (executor/runs/attempts.py);
  * without `LITELLM_LOCAL_MODEL_COST_MAP=True` litellm fetches a cost map from the network at
    import; without `MSWEA_CONFIGURED` mini asks setup questions on stdin; cost tracking errors
    for unknown models are ignored (isobench prices usage itself, executor/core/pricing.py);
  * each command runs in a fresh subshell with a timeout (30 s by default: too short for builds
    and benchmarks, so it is a setting here);
  * the outcome is in the trajectory (mini_swe_trajectory.py), never in the exit code.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from pydantic import BaseModel, Field

from executor.parts.agents.base import (AgentInfo, AgentPrep, AgentRun, AgentTask, Log,
                                  PrepareContext)
from executor.parts.agents.bundle import AgentBundle, BundleRecipe, ensure_bundle, read_bundle_file
from executor.parts.agents.llm_common import (RUN_DIR, Endpoint, RoutedModel, copy_out, costed,
                                        process_ending, run_agent_process)
from executor.parts.agents.mini_swe_trajectory import read_mini_trajectory
from executor.engine.images import sha256_hex
from executor.core.pricing import PriceTable
from executor.core.redact import Redactor
from executor.engine.sandbox import Sandbox
from executor.core.yaml_emit import dump_yaml
from executor.records.state import AGENT_STDERR_NAME, AGENT_STDOUT_NAME, TRAJECTORY_NAME

MINI_SWE_VERSION = "2.4.6"
CONFIG_PATH = f"{RUN_DIR}/mini_isobench.yaml"
TASK_PATH = f"{RUN_DIR}/task.txt"
TRAJECTORY_PATH = f"{RUN_DIR}/mini.traj.json"
# Margin between mini's own wall-clock limit and the controller's kill, so that mini can end
# with TimeExceeded and write its trajectory rather than be killed mid-step.
SELF_STOP_MARGIN_S = 60


class MiniSweSettings(BaseModel):
    """Everything isobench decides about a mini-swe-agent run (no secrets)."""

    endpoint: Endpoint = Field(description="Model, endpoint URL, and where the key comes from.")
    version: str = Field(default=MINI_SWE_VERSION, description="mini-swe-agent version (PyPI).")
    step_limit: int | None = Field(default=None, ge=1, description="Model calls; None: no limit.")
    command_timeout_s: int = Field(default=600, ge=1,
                                   description="Timeout of each bash command the agent runs.")
    model_kwargs: dict = Field(default_factory=dict,
                               description="Extra litellm arguments (temperature, ...).")

    @property
    def litellm_model(self) -> str:
        """litellm's model id: an OpenAI-compatible endpoint is provider `openai`."""
        model = self.endpoint.model
        return model if "/" in model else f"openai/{model}"

    @property
    def key_variable(self) -> str:
        """The variable litellm reads the key from inside the sandbox."""
        return f"{self.litellm_model.split('/', 1)[0].upper()}_API_KEY"


def install_command(version: str) -> str:
    """Bash run in the bundle image: a venv with mini-swe-agent pinned, its frozen package list
    recorded, byte code compiled (the bundle is mounted read-only), and a smoke test."""
    return " && ".join([
        'python3 -m venv "$BUNDLE_DIR/venv"',
        f'"$BUNDLE_DIR/venv/bin/pip" install --quiet "mini-swe-agent=={version}"',
        '"$BUNDLE_DIR/venv/bin/pip" freeze --all > "$BUNDLE_DIR/freeze.txt"',
        '"$BUNDLE_DIR/venv/bin/python" -m compileall -q "$BUNDLE_DIR/venv" > /dev/null || true',
        'MSWEA_CONFIGURED=true MSWEA_SILENT_STARTUP=1 LITELLM_LOCAL_MODEL_COST_MAP=True '
        'MSWEA_GLOBAL_CONFIG_DIR=/tmp/mswea "$BUNDLE_DIR/venv/bin/mini" --help > /dev/null',
    ])


def mini_config(settings: MiniSweSettings, task: AgentTask) -> dict:
    """The config layered over mini's own `mini.yaml` (templates and tool stay theirs)."""
    model_kwargs = {"drop_params": True, "max_retries": 0, **settings.model_kwargs}
    if settings.endpoint.base_url:
        model_kwargs["api_base"] = settings.endpoint.base_url
    return {
        "agent": {"step_limit": settings.step_limit or 0, "cost_limit": 0,
                  "wall_time_limit_seconds": max(1, task.budget_s - SELF_STOP_MARGIN_S),
                  "mode": "yolo", "confirm_exit": False},
        "environment": {"cwd": task.repo_dir, "timeout": settings.command_timeout_s},
        "model": {"model_kwargs": model_kwargs},
    }


def mini_command(settings: MiniSweSettings, bundle_dir: str) -> str:
    """The bash line that runs mini. The task is read from a file (it is long and multi-line);
    the key is not here: it is in the environment of this one process."""
    argv = [f"{bundle_dir}/venv/bin/mini", "--yolo", "--exit-immediately",
            "-m", settings.litellm_model, "-c", "mini.yaml", "-c", CONFIG_PATH,
            "-o", TRAJECTORY_PATH]
    return " ".join(shlex.quote(a) for a in argv) + f' -t "$(cat {TASK_PATH})" < /dev/null'


def mini_env(settings: MiniSweSettings) -> dict[str, str]:
    """Non-secret environment of the mini process (see the module docstring for each)."""
    return {"MSWEA_CONFIGURED": "true", "MSWEA_SILENT_STARTUP": "1",
            "MSWEA_COST_TRACKING": "ignore_errors", "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "MSWEA_MODEL_RETRY_STOP_AFTER_ATTEMPT": "1",
            "MSWEA_GLOBAL_CONFIG_DIR": f"{RUN_DIR}/mswea", "PAGER": "cat",
            "NO_COLOR": "1", "TERM": "dumb"}


class MiniSweAgent(RoutedModel):
    """The `mini-swe-agent` adapter."""

    name = "mini-swe-agent"

    def __init__(self, settings: MiniSweSettings, prices: PriceTable | None = None,
                 verbose: bool = False, environ: dict[str, str] | None = None):
        self._hold(settings, prices, verbose, environ)
        self.bundle: AgentBundle | None = None

    def info(self) -> AgentInfo:
        config = self.settings.model_dump(mode="json")
        if self.bundle is not None:
            config["bundle"] = {"tag": self.bundle.tag, "image_id": self.bundle.image_id,
                                "freeze_sha256": sha256_hex(read_bundle_file(self.bundle,
                                                                             "freeze.txt"))}
        return AgentInfo(name=self.name, version=self.settings.version,
                         model=self.settings.endpoint.model, config=config)

    def secret_env(self) -> dict[str, str]:
        return {self.settings.key_variable: self.model_key()}

    def routed_settings(self) -> MiniSweSettings:
        return self.settings.model_copy(update={"endpoint": self.routed_endpoint()})

    def prepare(self, log: Log, context: PrepareContext) -> AgentPrep:
        recipe = BundleRecipe(agent=self.name, version=self.settings.version,
                              install_command=install_command(self.settings.version),
                              base_image_id=context.base_image_id,
                              toolchain_command=context.toolchain_command)
        self.bundle = ensure_bundle(recipe, context, log)
        return AgentPrep(mounts=[self.bundle.mount()],
                         network=self.routed_endpoint().sandbox_network())

    def run(self, sandbox: Sandbox, task: AgentTask, out_dir: Path, log: Log) -> AgentRun:
        assert self.bundle is not None, "prepare() first"
        config = mini_config(self.routed_settings(), task)
        (out_dir / "mini_isobench.yaml").write_text(dump_yaml(config))
        sandbox.put_file(CONFIG_PATH, dump_yaml(config).encode())
        sandbox.put_file(TASK_PATH, task.prompt.encode())
        result = run_agent_process(
            sandbox, mini_command(self.settings, self.bundle.bundle_dir),
            budget_s=task.budget_s, workdir=task.repo_dir, out_dir=out_dir,
            env=mini_env(self.settings), secret_env=self.secret_env(), log=log,
            verbose=self.verbose, label="mini")
        trajectory = copy_out(sandbox, TRAJECTORY_PATH, out_dir / TRAJECTORY_NAME,
                              Redactor(self.secret_env().values()))
        artifacts = [AGENT_STDOUT_NAME, AGENT_STDERR_NAME, "mini_isobench.yaml"]
        if trajectory is not None:
            artifacts.append(TRAJECTORY_NAME)
        outcome = read_mini_trajectory(trajectory if trajectory is not None else b"")
        usage = costed(outcome.usage, self.settings.endpoint.model, self.prices)
        common = dict(usage=usage, exit_code=result.exit_code, duration_s=result.duration_s,
                      steps=outcome.steps, artifacts=artifacts)
        ended = process_ending(result, task, trajectory is not None, "mini-swe-agent", **common)
        if ended is not None:
            return ended
        return AgentRun(ending=outcome.ending, signature=outcome.signature,
                        detail=f"mini-swe-agent: {outcome.exit_status or 'no exit status'}",
                        **common)
