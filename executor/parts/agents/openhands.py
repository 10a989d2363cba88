"""OpenHands in the sandbox, headless: the `openhands` CLI (PyPI, the package OpenHands ships
its headless mode in; `openhands-ai` 1.x holds only the app server now) on the OpenHands SDK,
against the controller's gateway or any OpenAI-compatible endpoint.

Facts this adapter is built on (openhands 1.16.0, read from its wheel; openhands-sdk/-tools
1.21.0 and openhands-workspace 1.11.1, which it pins exactly):
  * it needs Python 3.12 exactly (`Requires-Python ==3.12.*`); the OS base has 3.13, so, as
    for TRAE, a relocatable CPython 3.12 install prefix is given with `--agent-python DIR` and
    copied into the bundle (without one the install fails with pip's own message);
  * `openhands --headless --json -f TASK --override-with-envs` runs one task with every action
    approved, printing events as JSON lines; with `--override-with-envs` the model comes from
    `LLM_MODEL` (a litellm id: `openai/<model>` for an OpenAI-compatible endpoint),
    `LLM_BASE_URL` and `LLM_API_KEY` (the attempt token, at exec time only);
  * the conversation is persisted under `$OPENHANDS_PERSISTENCE_DIR/conversations/<id>/`
    (base_state.json + events/), the record its ending is read from (openhands_events.py);
  * the SDK retries a failed model call itself (5 tries, 8-64 s waits; the CLI exposes no
    setting), so a 429 reaches the controller late: the gateway's record counts every try;
  * it has no step-limit option either: the SDK's 500 iterations per run apply, and an agent
    that reaches them ends `MaxIterationsReached` (max steps);
  * the CLI asks PyPI for a newer version at start (2 s timeout); nothing else leaves the
    sandbox but model calls.
Installing it brings about 150 packages (litellm, fastmcp, textual, browser-use...), so its
end-to-end test is opt-in (ISOBENCH_OPENHANDS_REAL=1 and ISOBENCH_OPENHANDS_PYTHON).
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from executor.core.errors import AGENT_TIMEOUT, signature
from executor.core.pricing import PriceTable
from executor.core.redact import Redactor
from executor.engine.images import sha256_hex
from executor.engine.sandbox import Sandbox
from executor.parts.agents.base import (
    AgentEnding,
    AgentInfo,
    AgentPrep,
    AgentRun,
    AgentTask,
    Log,
    PrepareContext,
)
from executor.parts.agents.bundle import (
    AgentBundle,
    BundleRecipe,
    ensure_bundle,
    read_bundle_file,
)
from executor.parts.agents.llm_common import (
    RUN_DIR,
    Endpoint,
    RoutedModel,
    costed,
    run_agent_process,
)
from executor.parts.agents.openhands_events import conversation_dirs, read_conversation
from executor.records.state import AGENT_STDERR_NAME, AGENT_STDOUT_NAME

OPENHANDS_VERSION = "1.16.0"


class WheelPin(BaseModel):
    """A wheel by file name and the sha256 PyPI publishes for it."""

    model_config = ConfigDict(frozen=True)

    requirement: str = Field(description="name==version")
    filename: str = Field(description="The wheel's file name.")
    sha256: str = Field(description="Its sha256, checked before it is installed.")


# The CLI and the SDK packages it pins exactly: the artifacts that are OpenHands. Their own
# dependencies resolve from these wheels' metadata and are recorded in freeze.txt.
OPENHANDS_WHEELS = (
    WheelPin(requirement="openhands==1.16.0", filename="openhands-1.16.0-py3-none-any.whl",
             sha256="e5495ddc76bff6ad8cf332b2e366c665f6735da31bc60fba9d430e19d11ffd3d"),
    WheelPin(requirement="openhands-sdk==1.21.0",
             filename="openhands_sdk-1.21.0-py3-none-any.whl",
             sha256="4bf77fe25c9dd4908f70fef2a2e90fede32ff555359ca08fe9f4f3a3acee930b"),
    WheelPin(requirement="openhands-tools==1.21.0",
             filename="openhands_tools-1.21.0-py3-none-any.whl",
             sha256="97a0a910388881525e964165686a114d48cdb70788797f7048584d5aa839a61a"),
    WheelPin(requirement="openhands-workspace==1.11.1",
             filename="openhands_workspace-1.11.1-py3-none-any.whl",
             sha256="73f7f4423acf3b1d7116c3a523c04d1b3c185af9d91e0c5cf0666a7758251069"),
)
PERSISTENCE_DIR = f"{RUN_DIR}/openhands"
TASK_PATH = f"{RUN_DIR}/task.txt"
CONVERSATION_NAME = "openhands_conversation"


class OpenHandsSettings(BaseModel):
    """Everything isobench decides about an OpenHands run (no secrets)."""

    endpoint: Endpoint = Field(description="Model, endpoint URL, and where the key comes from.")
    version: str = Field(default=OPENHANDS_VERSION, description="openhands (PyPI) version.")
    max_iterations: int | None = Field(
        default=None, description="Not settable through the CLI: refused when given.")

    @property
    def litellm_model(self) -> str:
        model = self.endpoint.model
        return model if "/" in model else f"openai/{model}"


def install_command() -> str:
    """Bash run in the bundle image: the pinned wheels downloaded without dependencies and
    checked against their sha256, then installed (dependencies from their metadata) into a
    venv on the given CPython 3.12, the result frozen, byte code compiled, a smoke test."""
    checks = " ".join(f"{pin.sha256}  /tmp/wheels/{pin.filename}\\n" for pin in OPENHANDS_WHEELS)
    requirements = " ".join(shlex.quote(pin.requirement) for pin in OPENHANDS_WHEELS)
    files = " ".join(f"/tmp/wheels/{pin.filename}" for pin in OPENHANDS_WHEELS)
    return " && ".join([
        'PY=python3',
        ('if [ -x "$BUNDLE_DIR/python/bin/python3" ]; then PY="$BUNDLE_DIR/python/bin/python3"; '
         'export LD_LIBRARY_PATH="$BUNDLE_DIR/python/lib"; fi'),
        '"$PY" -m venv "$BUNDLE_DIR/venv"',
        ('"$BUNDLE_DIR/venv/bin/pip" download --quiet --no-deps --only-binary=:all: '
         f'-d /tmp/wheels {requirements}'),
        f'printf "{checks}" | sha256sum --check --strict',
        f'"$BUNDLE_DIR/venv/bin/pip" install --quiet {files}',
        '"$BUNDLE_DIR/venv/bin/pip" freeze --all > "$BUNDLE_DIR/freeze.txt"',
        '"$BUNDLE_DIR/venv/bin/python" -m compileall -q "$BUNDLE_DIR/venv" > /dev/null || true',
        '"$BUNDLE_DIR/venv/bin/openhands" --version',
    ])


def openhands_command(bundle_dir: str) -> str:
    argv = [f"{bundle_dir}/venv/bin/openhands", "--headless", "--json", "--override-with-envs",
            "--exit-without-confirmation", "-f", TASK_PATH]
    return " ".join(shlex.quote(a) for a in argv) + " < /dev/null"


def openhands_env(settings: OpenHandsSettings, repo_dir: str, bundle_dir: str,
                  python: bool) -> dict[str, str]:
    env = {"LLM_MODEL": settings.litellm_model, "OPENHANDS_PERSISTENCE_DIR": PERSISTENCE_DIR,
           "OPENHANDS_WORK_DIR": repo_dir, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "HOME": f"{RUN_DIR}/home", "NO_COLOR": "1", "TERM": "dumb", "PAGER": "cat"}
    if settings.endpoint.base_url:
        env["LLM_BASE_URL"] = settings.endpoint.base_url
    if python:  # a relocated CPython may find libpython only this way
        env["LD_LIBRARY_PATH"] = f"{bundle_dir}/python/lib"
    return env


class OpenHandsAgent(RoutedModel):
    """The `openhands` adapter."""

    name = "openhands"

    def __init__(self, settings: OpenHandsSettings, prices: PriceTable | None = None,
                 verbose: bool = False, environ: dict[str, str] | None = None,
                 python: Path | None = None):
        from executor.core.errors import UserInputError

        if settings.version != OPENHANDS_VERSION:
            raise UserInputError(f"openhands {settings.version}: isobench pins "
                                 f"{OPENHANDS_VERSION} (wheels and their sha256 in "
                                 "executor/parts/agents/openhands.py)")
        if settings.max_iterations is not None:
            raise UserInputError("--max-steps: the openhands CLI has no step-limit option "
                                 "(its SDK stops at 500 iterations)")
        self._hold(settings, prices, verbose, environ)
        self.python = python
        self.bundle: AgentBundle | None = None

    def info(self) -> AgentInfo:
        config = self.settings.model_dump(mode="json")
        config["wheels"] = [pin.model_dump() for pin in OPENHANDS_WHEELS]
        if self.bundle is not None:
            config["bundle"] = {"tag": self.bundle.tag, "image_id": self.bundle.image_id,
                                "freeze_sha256": sha256_hex(read_bundle_file(self.bundle,
                                                                             "freeze.txt"))}
        return AgentInfo(name=self.name, version=self.settings.version,
                         model=self.settings.endpoint.model, config=config)

    def secret_env(self) -> dict[str, str]:
        return {"LLM_API_KEY": self.model_key()}

    def prepare(self, log: Log, context: PrepareContext) -> AgentPrep:
        from executor.parts.agents.source import tree_digest

        recipe = BundleRecipe(agent=self.name, version=self.settings.version,
                              install_command=install_command(),
                              python_digest=tree_digest(self.python) if self.python else "",
                              base_image_id=context.base_image_id,
                              toolchain_command=context.toolchain_command)
        self.bundle = ensure_bundle(recipe, context, log, python=self.python)
        return AgentPrep(mounts=[self.bundle.mount()],
                         network=self.routed_endpoint().sandbox_network())

    def run(self, sandbox: Sandbox, task: AgentTask, out_dir: Path, log: Log) -> AgentRun:
        assert self.bundle is not None, "prepare() first"
        settings = self.settings.model_copy(update={"endpoint": self.routed_endpoint()})
        sandbox.check(f"mkdir -p {PERSISTENCE_DIR} {RUN_DIR}/home")
        sandbox.put_file(TASK_PATH, task.prompt.encode())
        result = run_agent_process(
            sandbox, openhands_command(self.bundle.bundle_dir), budget_s=task.budget_s,
            workdir=task.repo_dir, out_dir=out_dir,
            env=openhands_env(settings, task.repo_dir, self.bundle.bundle_dir,
                              self.python is not None),
            secret_env=self.secret_env(), log=log, verbose=self.verbose, label="openhands")
        saved = self._copy_conversations(sandbox, out_dir)
        dirs = conversation_dirs(saved)
        outcome = read_conversation(dirs[-1] if dirs else None, result.stderr)
        artifacts = [AGENT_STDOUT_NAME, AGENT_STDERR_NAME] + ([CONVERSATION_NAME] if dirs
                                                              else [])
        common = {"usage": costed(outcome.usage, self.settings.endpoint.model, self.prices),
                  "exit_code": result.exit_code, "duration_s": result.duration_s,
                  "steps": outcome.steps, "artifacts": artifacts}
        if result.timed_out:
            return AgentRun(ending=AgentEnding.TIMEOUT, detail="used its whole budget",
                            signature=signature(AGENT_TIMEOUT, f"killed after "
                                                f"{task.budget_s}s", "controller"), **common)
        return AgentRun(ending=outcome.ending, signature=outcome.signature,
                        detail=f"openhands: {outcome.status or 'no status'}", **common)

    def _copy_conversations(self, sandbox: Sandbox, out_dir: Path) -> Path:
        """The persisted conversations, every file passed through the redactor (the SDK
        writes its LLM settings into the state)."""
        dest = out_dir / CONVERSATION_NAME
        try:
            sandbox.get_tree(f"{PERSISTENCE_DIR}/conversations", dest)
        except FileNotFoundError:
            shutil.rmtree(dest, ignore_errors=True)
            return dest
        redactor = Redactor(self.secret_env().values())
        for path in dest.rglob("*"):
            if path.is_file():
                path.write_bytes(redactor.bytes(path.read_bytes()))
        return dest
