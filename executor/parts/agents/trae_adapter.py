"""TRAE in the sandbox: its bundle, its run, and its outcome read from the trajectory.

The pure parts (settings, config file, command line, trajectory reader) are in trae.py and
trae_trajectory.py; this module puts them to work:
  * bundle: the TRAE source at a pinned revision (a local checkout or mirror: GitHub is not
    reachable from air-gapped hosts), installed from its lock file with
    `uv sync --frozen --all-extras` (uv from PyPI) into a venv in the bundle;
  * Python: TRAE wants >= 3.12 and its lock pins packages with cp312-only wheels
    (tree-sitter-languages 1.10.2), so the sandbox base's Python 3.13 cannot take it.
    uv-managed Pythons are downloaded from GitHub, which these hosts cannot reach, so the bundle
    takes a relocatable CPython install prefix from the host (`--agent-python DIR`, e.g. a
    python-build-standalone `install_only` tree carried over like any mirror) and copies it in;
    without one it uses the base's python3 and the build fails with uv's own message if the
    lock refuses it;
  * run: config rendered from settings (no key in it), key only in the exec-time environment,
    `--must-patch` off (the controller computes the patch), wall-clock budget as the exec
    timeout, stdout/stderr streamed to files, trajectory and TRAE's own patch copied out even
    after a timeout or a crash; the ending comes from the trajectory, never the exit code.
"""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path

from executor.parts.agents.base import (AgentEnding, AgentInfo, AgentPrep, AgentRun, AgentTask, Log,
                                  PrepareContext)
from executor.parts.agents.bundle import (UV, UV_INSTALL_STEPS, AgentBundle, BundleRecipe, cache_root,
                                          ensure_bundle, read_bundle_file)
from executor.parts.agents.llm_common import (RUN_DIR, Endpoint, RoutedModel, copy_out, costed,
                                        process_ending, run_agent_process)
from executor.parts.agents.source import SourceTree, export_source, tree_digest
from executor.parts.agents.trae import TraePaths, TraeSettings, render_trae_config, trae_command
from executor.parts.agents.trae_trajectory import read_trajectory
from executor.engine.images import sha256_hex
from executor.core.pricing import PriceTable
from executor.core.redact import Redactor
from executor.engine.sandbox import Sandbox
from executor.records.state import AGENT_STDERR_NAME, AGENT_STDOUT_NAME, TRAJECTORY_NAME



def install_command() -> str:
    """Bash run in the bundle image (see the module docstring)."""
    return " && ".join([
        'PY=python3',
        'if [ -x "$BUNDLE_DIR/python/bin/python3" ]; then PY="$BUNDLE_DIR/python/bin/python3"; '
        'export LD_LIBRARY_PATH="$BUNDLE_DIR/python/lib"; fi',
        'echo "TRAE bundle: $("$PY" --version)"',
        *UV_INSTALL_STEPS,
        'cd "$BUNDLE_DIR/src"',
        f'{{ UV_PROJECT_ENVIRONMENT="$BUNDLE_DIR/venv" {UV} sync --frozen '
        '--all-extras --no-editable --compile-bytecode --python "$PY" '
        '|| { echo "uv sync failed for $("$PY" --version): TRAE\'s lock needs a Python it has '
        'wheels for (3.12); pass --agent-python DIR" >&2; false; }; }',
        f'{UV} pip freeze --python "$BUNDLE_DIR/venv/bin/python" '
        '> "$BUNDLE_DIR/freeze.txt"',
        '"$BUNDLE_DIR/venv/bin/trae-cli" --help > /dev/null',
        'rm -rf /tmp/uv-tool /root/.cache/uv',
    ])


class TraeAgent(RoutedModel):
    """The `trae` adapter."""

    name = "trae"

    def __init__(self, settings: TraeSettings, api_key_env: str = "OPENAI_API_KEY",
                 python: Path | None = None, prices: PriceTable | None = None,
                 verbose: bool = False, environ: dict[str, str] | None = None):
        self.settings = settings
        self.python = python
        self.prices = prices
        self.verbose = verbose
        endpoint = Endpoint(model=settings.model, base_url=settings.base_url,
                            api_key_env=api_key_env)
        self.endpoint = endpoint
        self._key = endpoint.api_key(environ)
        self.source: SourceTree | None = None
        self.bundle: AgentBundle | None = None

    def info(self) -> AgentInfo:
        config = self.settings.model_dump(mode="json")
        config["api_key_env"] = self.endpoint.api_key_env
        if self.source is not None:
            config["source_tree"] = self.source.model_dump()
        if self.bundle is not None:
            config["bundle"] = {"tag": self.bundle.tag, "image_id": self.bundle.image_id,
                                "freeze_sha256": sha256_hex(read_bundle_file(self.bundle,
                                                                             "freeze.txt"))}
        version = self.source.revision if self.source else self.settings.revision
        return AgentInfo(name=self.name, version=version, model=self.settings.model,
                         config=config)

    def secret_env(self) -> dict[str, str]:
        # TRAE prefers <PROVIDER>_API_KEY from the environment over its config file.
        return {self.settings.api_key_env: self.model_key()}

    def prepare(self, log: Log, context: PrepareContext) -> AgentPrep:
        with tempfile.TemporaryDirectory(prefix="isobench-trae-src-") as tmp:
            src = Path(tmp) / "src"
            self.source = export_source(self.settings.source, self.settings.revision, src,
                                        cache_root())
            log(f"trae: source {self.source.origin} at {self.source.revision[:12]}")
            recipe = BundleRecipe(
                agent=self.name, version=self.source.revision, install_command=install_command(),
                source_digest=self.source.digest,
                python_digest=tree_digest(self.python) if self.python else "",
                base_image_id=context.base_image_id, toolchain_command=context.toolchain_command)
            self.bundle = ensure_bundle(recipe, context, log, src=src, python=self.python)
        return AgentPrep(mounts=[self.bundle.mount()],
                         network=self.routed_endpoint().sandbox_network())

    def paths(self, task: AgentTask) -> TraePaths:
        assert self.bundle is not None, "prepare() first"
        return TraePaths(cli=f"{self.bundle.bundle_dir}/venv/bin/trae-cli",
                         task_file=f"{RUN_DIR}/task.txt", working_dir=task.repo_dir,
                         config_file=f"{RUN_DIR}/trae_config.yaml",
                         trajectory_file=f"{RUN_DIR}/trajectory.json",
                         patch_path=f"{RUN_DIR}/trae_patch.diff")

    def run(self, sandbox: Sandbox, task: AgentTask, out_dir: Path, log: Log) -> AgentRun:
        settings = self.settings.model_copy(update={"base_url": self.routed_endpoint().base_url})
        if task.max_steps:
            settings = settings.model_copy(update={"max_steps": task.max_steps})
        paths = self.paths(task)
        config = render_trae_config(settings)
        (out_dir / "trae_config.yaml").write_text(config)
        sandbox.put_file(paths.config_file, config.encode())
        sandbox.put_file(paths.task_file, task.prompt.encode())
        env = {"NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"}
        if self.python is not None:  # a relocated CPython may find libpython only this way
            env["LD_LIBRARY_PATH"] = f"{self.bundle.bundle_dir}/python/lib"
        command = " ".join(shlex.quote(a) for a in trae_command(settings, paths)) + " < /dev/null"
        result = run_agent_process(sandbox, command, budget_s=task.budget_s,
                                   workdir=task.repo_dir, out_dir=out_dir, env=env,
                                   secret_env=self.secret_env(), log=log,
                                   verbose=self.verbose, label="trae")
        redactor = Redactor(self.secret_env().values())
        trajectory = copy_out(sandbox, paths.trajectory_file, out_dir / TRAJECTORY_NAME,
                              redactor)
        copy_out(sandbox, paths.patch_path, out_dir / "trae_patch.diff", redactor)
        artifacts = [p.name for p in out_dir.iterdir()
                     if p.name in (AGENT_STDOUT_NAME, AGENT_STDERR_NAME, "trae_config.yaml",
                                   TRAJECTORY_NAME, "trae_patch.diff")]
        outcome = read_trajectory(trajectory) if trajectory is not None else None
        usage = costed(outcome.usage, settings.model, self.prices) if outcome else None
        common = dict(usage=usage, exit_code=result.exit_code, duration_s=result.duration_s,
                      steps=outcome.steps if outcome else None, artifacts=sorted(artifacts))
        ended = process_ending(result, task, outcome is not None, "TRAE", **common)
        if ended is not None:
            return ended
        detail = "TRAE: task_done" if outcome.ending == AgentEnding.FINISHED else \
            f"TRAE: {outcome.signature.name if outcome.signature else outcome.ending.value}"
        return AgentRun(ending=outcome.ending, signature=outcome.signature, detail=detail,
                        **common)
