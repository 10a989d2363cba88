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
  * the SDK retries a failed model call itself (5 tries, 8-64 s waits) unless its settings say
    otherwise. The CLI has no option for it, but it reads its agent from `agent_settings.json`
    in the persistence dir before it applies the environment: the bundle writes that file (the
    CLI's default agent, serialised by OpenHands itself) with `num_retries=0`, so that, as for
    the other agents, a refusal reaches the controller at once and the controller decides;
  * it has no step-limit option either: the SDK's 500 iterations per run apply, and an agent
    that reaches them ends `MaxIterationsReached` (max steps);
  * the CLI asks PyPI for a newer version at start (2 s timeout); nothing else leaves the
    sandbox but model calls.
It brings 200 packages (litellm, fastmcp, textual, browser-use...): all of them are pinned with
their sha256 in a lock (openhands_lock.py) that uv installs without resolving, about 20 s on a
cold cache (pip's resolve-and-install of the same set took 3 minutes here).
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

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
    UV,
    UV_INSTALL_STEPS,
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
from executor.parts.agents.openhands_lock import (LOCK_PATH, OPENHANDS_VERSION, lock_text,
                                                  read_lock)
from executor.records.state import AGENT_STDERR_NAME, AGENT_STDOUT_NAME

PERSISTENCE_DIR = f"{RUN_DIR}/openhands"
TASK_PATH = f"{RUN_DIR}/task.txt"
CONVERSATION_NAME = "openhands_conversation"
LOCK_NAME = "requirements.txt"  # the lock's name in the bundle's src/
SETTINGS_SCRIPT_NAME = "agent_settings.py"
SETTINGS_NAME = "agent_settings.json"  # the CLI's own settings file in its persistence dir
# Run by the bundle's Python at build time: the CLI's default agent (the one it creates when it
# has no settings file) with its model calls never retried by the SDK, serialised by OpenHands
# itself. The placeholders are overridden by --override-with-envs at run time (LLM_MODEL,
# LLM_BASE_URL, LLM_API_KEY), in the agent's LLM and in its condenser's.
SETTINGS_SCRIPT = """\
from openhands.sdk import LLM
from openhands_cli.utils import get_default_cli_agent

llm = LLM(model="openai/isobench-placeholder", api_key="isobench-placeholder",
          usage_id="agent", num_retries=0)
print(get_default_cli_agent(llm).model_dump_json())
"""


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
    """Bash run in the bundle image: a venv on the given CPython 3.12, then every package of the
    lock (in src/) installed by uv with its sha256 checked and no resolution (`--no-deps`: what
    is not in the lock is not installed), byte code compiled, the result listed, the settings
    file written (SETTINGS_SCRIPT), a smoke test."""
    return " && ".join([
        'PY=python3',
        ('if [ -x "$BUNDLE_DIR/python/bin/python3" ]; then PY="$BUNDLE_DIR/python/bin/python3"; '
         'export LD_LIBRARY_PATH="$BUNDLE_DIR/python/lib"; fi'),
        '"$PY" -m venv --without-pip "$BUNDLE_DIR/venv"',
        *UV_INSTALL_STEPS,
        (f'{UV} pip install --quiet --no-cache --python "$BUNDLE_DIR/venv/bin/python" '
         f'--require-hashes --no-deps --compile-bytecode -r "$BUNDLE_DIR/src/{LOCK_NAME}"'),
        f'{UV} pip freeze --python "$BUNDLE_DIR/venv/bin/python" > "$BUNDLE_DIR/freeze.txt"',
        'rm -rf /tmp/uv-tool',
        ('OPENHANDS_SUPPRESS_BANNER=1 LITELLM_LOCAL_MODEL_COST_MAP=True '
         f'"$BUNDLE_DIR/venv/bin/python" "$BUNDLE_DIR/src/{SETTINGS_SCRIPT_NAME}" '
         f'> "$BUNDLE_DIR/{SETTINGS_NAME}"'),
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
                                 f"{OPENHANDS_VERSION} (every package and its sha256 in "
                                 f"{LOCK_PATH.name}; scripts/lock_openhands.py writes it)")
        if settings.max_iterations is not None:
            raise UserInputError("--max-steps: the openhands CLI has no step-limit option "
                                 "(its SDK stops at 500 iterations)")
        self._hold(settings, prices, verbose, environ)
        self.python = python
        self.bundle: AgentBundle | None = None

    def info(self) -> AgentInfo:
        config = self.settings.model_dump(mode="json")
        lock = lock_text()
        config["lock"] = {"name": LOCK_PATH.name, "sha256": sha256_hex(lock),
                          "packages": [p.requirement for p in read_lock(lock)]}
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

        lock = lock_text()
        recipe = BundleRecipe(agent=self.name, version=self.settings.version,
                              install_command=install_command(),
                              source_digest=sha256_hex(lock, SETTINGS_SCRIPT),
                              python_digest=tree_digest(self.python) if self.python else "",
                              base_image_id=context.base_image_id,
                              toolchain_command=context.toolchain_command)
        with tempfile.TemporaryDirectory(prefix="isobench-openhands-src-") as tmp:
            (Path(tmp) / LOCK_NAME).write_text(lock)
            (Path(tmp) / SETTINGS_SCRIPT_NAME).write_text(SETTINGS_SCRIPT)
            self.bundle = ensure_bundle(recipe, context, log, src=Path(tmp), python=self.python)
        return AgentPrep(mounts=[self.bundle.mount()],
                         network=self.routed_endpoint().sandbox_network())

    def run(self, sandbox: Sandbox, task: AgentTask, out_dir: Path, log: Log) -> AgentRun:
        assert self.bundle is not None, "prepare() first"
        settings = self.settings.model_copy(update={"endpoint": self.routed_endpoint()})
        bundle_dir = self.bundle.bundle_dir
        sandbox.check(f"mkdir -p {PERSISTENCE_DIR} {RUN_DIR}/home && cp {bundle_dir}/"
                      f"{SETTINGS_NAME} {PERSISTENCE_DIR}/{SETTINGS_NAME}")
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
