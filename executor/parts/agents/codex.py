"""Codex CLI (npm `@openai/codex`) in the sandbox, headless (`codex exec --json`), against the
controller's gateway or any endpoint that speaks the OpenAI Responses API.

Facts this adapter is built on (Codex CLI 0.171.0, checked by running it against the scripted
server, executor/testing/scripted_llm.py):
  * the npm package is a small Node launcher; the program is a static (musl) native binary in
    the platform package `@openai/codex-linux-x64` (`...-linux-arm64`), which the launcher
    execs with `CODEX_MANAGED_PACKAGE_ROOT` and `CODEX_MANAGED_BY_NPM=1` set. The adapter does
    the same, so the sandbox needs no Node: Node (Debian's) and npm are used only to build the
    bundle, with `npm ci` from a lock file that pins every tarball's sha512 (npm_pins.py);
  * configuration is `$CODEX_HOME/config.toml`: a custom provider
    `[model_providers.<id>]` with `base_url`, `env_key` (the variable holding the key: here the
    attempt token) and `wire_api = "responses"` (the only wire API it accepts);
    `request_max_retries = 0` and `stream_max_retries = 0` make a refused call reach the
    controller at once, where retries are classified and journaled (executor/runs/attempts.py);
  * it calls `POST {base_url}/responses`, streamed, stateless (`store: false`, the whole input
    every turn, reasoning items replayed with `include: ["reasoning.encrypted_content"]`),
    tools `exec_command`/`write_stdin` (function tools) among others; nothing else is called
    when analytics and update checks are off;
  * `--json` prints one event per line: thread.started, turn.started, item.started /
    item.completed (agent_message, command_execution, file_change, error...), and the turn's
    end, `turn.completed` with its usage or `turn.failed` with the error; a failed turn exits
    1, as does a crash, so the ending is read from these events (codex_events.py), never from
    the exit code. The session log (`$CODEX_HOME/sessions/.../rollout-*.jsonl`) is kept too;
  * `--dangerously-bypass-approvals-and-sandbox`: the container is the sandbox (Codex's own
    bubblewrap/landlock sandbox cannot nest in it) and nobody is there to approve;
  * Codex has no step limit: `--max-steps` is refused for it (agents/__init__.py).
"""

from __future__ import annotations

import json
import shlex
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

from executor.core.pricing import PriceTable
from executor.core.redact import Redactor
from executor.engine.images import sha256_hex
from executor.engine.sandbox import Sandbox
from executor.parts.agents.base import (
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
from executor.parts.agents.codex_events import read_codex_run
from executor.parts.agents.llm_common import (
    RUN_DIR,
    Endpoint,
    RoutedModel,
    copy_out,
    costed,
    run_agent_process,
)
from executor.parts.agents.npm_pins import NpmLock, NpmPin
from executor.parts.upstream import OPENAI_BASE_URL
from executor.records.state import AGENT_STDERR_NAME, AGENT_STDOUT_NAME

CODEX_VERSION = "0.171.0"
# The registry's integrity of each tarball of this version (`npm view @openai/codex@V
# dist.integrity`, and the same for each platform package).
CODEX_LOCK = NpmLock(
    root_name="isobench-codex-bundle",
    direct=NpmPin(path="node_modules/@openai/codex", name="@openai/codex",
                  version=CODEX_VERSION,
                  integrity="sha512-1IOFzL2Xg86tLdw6kDo3GoKbkQENgQi7TI6rlEvN132R7ngSw7SNOIQoTcnKzS"
                            "ZZ8kf9N9GynCweSoaFbqk2Eg=="),
    optional=tuple(
        NpmPin(path=f"node_modules/@openai/codex-{os_}-{cpu}", name="@openai/codex",
               version=f"{CODEX_VERSION}-{os_}-{cpu}", integrity=integrity, os=(os_,),
               cpu=(cpu,), optional=True)
        for os_, cpu, integrity in (
            ("darwin", "arm64",
             "sha512-hIYTkRUpuYpkVfTq4cpby0PXqhAVcIgE7f6FoyY1lt2RyARj3GXS1Can/dIYUBItVhXzhb98HYHZNzCX74QRlQ=="),
            ("darwin", "x64",
             "sha512-pwN5uNEKx/mZjwBEf/6CKq6SJMfJS5kruV3sJQAk7ebIPvC58Ote3CicIxETDZtjLj35rNv3PLPd7mHCg6hGPw=="),
            ("linux", "arm64",
             "sha512-9z17t4bbUJ9UCIb49O4PoA+ki+45q3rd8nZ8PeH6sYnlKkBld/Xpo/OS3h3Ti954+foshX4o7k5TCU8N7zzqQA=="),
            ("linux", "x64",
             "sha512-l66NZkQgdk2C3pbcfULDz42yEUB581MVA6I+Y43Wp4OIqEy73HCdmZ0GTjeAHY2ycuH4N00d9VsLrwT1jxshTw=="),
            ("win32", "arm64",
             "sha512-kkavDHtAkkNaYtO7eBw4IdBbE/PsWP+Ezp9JXcr/mBu/Cc7EevzFVIVC3sZYvWsF9xuvyjIUv9CKeN0LU0+N9Q=="),
            ("win32", "x64",
             "sha512-HKWBK25tLQxdEg6svw0CrBf+v0bQhRyF8EBVdNqeRxErqpfFa/dfSar6r3sJt6tyPqozOtgz2BH8B2G3n/+gnQ=="))))

PROVIDER_ID = "isobench"
KEY_VARIABLE = "OPENAI_API_KEY"  # the provider's env_key: the attempt token at exec time
CODEX_HOME = f"{RUN_DIR}/codex-home"
TASK_PATH = f"{RUN_DIR}/task.txt"
EVENTS_PATH = f"{RUN_DIR}/codex_events.jsonl"
SESSION_COPY_PATH = f"{RUN_DIR}/codex_session.jsonl"
LAST_MESSAGE_PATH = f"{RUN_DIR}/codex_last_message.txt"
EVENTS_NAME = "codex_events.jsonl"
SESSION_NAME = "codex_session.jsonl"
CONFIG_NAME = "codex_config.toml"
# The binary's place in the platform package, by the machine `uname -m` names.
TARGETS = {"x86_64": ("x64", "x86_64-unknown-linux-musl"),
           "aarch64": ("arm64", "aarch64-unknown-linux-musl")}
STREAM_IDLE_TIMEOUT_MS = 600_000  # a slow model is not a dead stream


class CodexSettings(BaseModel):
    """Everything isobench decides about a Codex run (no secrets)."""

    endpoint: Endpoint = Field(description="Model, endpoint URL, and where the key comes from.")
    version: str = Field(default=CODEX_VERSION, description="@openai/codex version (npm).")
    reasoning_effort: str | None = Field(
        default=None, description="model_reasoning_effort (minimal, low, medium, high); None: "
                                  "Codex's default for the model.")

    def lock(self) -> NpmLock:
        if self.version != CODEX_VERSION:
            from executor.core.errors import UserInputError

            raise UserInputError(f"codex {self.version}: isobench pins @openai/codex "
                                 f"{CODEX_VERSION} (version and integrity of every tarball); "
                                 "another version needs its pins in executor/parts/agents/"
                                 "codex.py")
        return CODEX_LOCK


def install_command() -> str:
    """Bash run in the bundle image: Debian's Node and npm (build time only), `npm ci` from the
    pinned lock in src/, the installed tree listed, and a smoke test of the native binary."""
    return " && ".join([
        "apt-get update -qq",
        ("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
         "nodejs npm > /dev/null"),
        'cd "$BUNDLE_DIR"',
        "cp src/package.json src/package-lock.json .",
        ("npm ci --ignore-scripts --no-audit --no-fund --cafile /etc/isobench/ca-bundle.crt "
         "--loglevel=error"),
        "npm ls --all --json > installed.json",
        f'"$({launcher_path("$BUNDLE_DIR")})" --version > version.txt',
        "cat version.txt",
    ])


def launcher_path(bundle_dir: str) -> str:
    """Shell words that print the native binary's path for this machine's architecture."""
    arms = " ".join(f"{machine}) echo {bundle_dir}/node_modules/@openai/codex-linux-{cpu}/"
                    f"vendor/{triple}/bin/codex;;" for machine, (cpu, triple) in TARGETS.items())
    return f"case $(uname -m) in {arms} esac"


def package_root(bundle_dir: str) -> str:
    return f"{bundle_dir}/node_modules/@openai/codex"


def toml_value(value: object) -> str:
    """A TOML value: strings as basic strings (JSON's escapes are TOML's), numbers, booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise TypeError(f"no TOML form for {type(value).__name__}")


def toml_document(top: dict[str, object], tables: dict[str, dict[str, object]]) -> str:
    lines = [f"{key} = {toml_value(value)}" for key, value in top.items()]
    for name, table in tables.items():
        lines += ["", f"[{name}]"] + [f"{key} = {toml_value(value)}"
                                       for key, value in table.items()]
    return "\n".join(lines) + "\n"


def codex_config(settings: CodexSettings) -> str:
    """$CODEX_HOME/config.toml: the model, one provider (the gateway, or the endpoint), no
    retries of its own, no approvals, and none of the traffic a benchmark has no use for
    (analytics, update checks, hosted web search)."""
    top: dict[str, object] = {
        "model": settings.endpoint.model,
        "model_provider": PROVIDER_ID,
        "approval_policy": "never",
        "sandbox_mode": "danger-full-access",
        "check_for_update_on_startup": False,
        "web_search": "disabled",
    }
    if settings.reasoning_effort:
        top["model_reasoning_effort"] = settings.reasoning_effort
    provider = {
        "name": "isobench",
        "base_url": settings.endpoint.base_url or OPENAI_BASE_URL,
        "env_key": KEY_VARIABLE,
        "wire_api": "responses",
        "request_max_retries": 0,
        "stream_max_retries": 0,
        "stream_idle_timeout_ms": STREAM_IDLE_TIMEOUT_MS,
    }
    return toml_document(top, {"analytics": {"enabled": False},
                               f"model_providers.{PROVIDER_ID}": provider})


def codex_command(bundle_dir: str, repo_dir: str) -> str:
    """The bash line that runs Codex: the prompt from a file on stdin, the JSON events teed to
    a file (the console and agent_stdout.txt get them too), the session log copied next to it
    whatever the exit. The key is not here: it is in this one process's environment."""
    argv = ["exec", "--json", "--strict-config", "--dangerously-bypass-approvals-and-sandbox",
            "--skip-git-repo-check", "-C", repo_dir, "-o", LAST_MESSAGE_PATH, "-"]
    args = " ".join(shlex.quote(a) for a in argv)
    return (f'set -o pipefail; CODEX="$({launcher_path(bundle_dir)})"; '
            f'"$CODEX" {args} < {TASK_PATH} | tee {EVENTS_PATH}; status=$?; '
            f'session=$(find {CODEX_HOME}/sessions -name "rollout-*.jsonl" 2>/dev/null '
            f'| sort | tail -n 1); '
            f'[ -n "$session" ] && cp "$session" {SESSION_COPY_PATH}; exit $status')


def codex_env(bundle_dir: str) -> dict[str, str]:
    """Non-secret environment: what the npm launcher would set, CODEX_HOME, no colours."""
    return {"CODEX_HOME": CODEX_HOME, "CODEX_MANAGED_PACKAGE_ROOT": package_root(bundle_dir),
            "CODEX_MANAGED_BY_NPM": "1", "NO_COLOR": "1", "TERM": "dumb", "PAGER": "cat"}


class CodexAgent(RoutedModel):
    """The `codex` adapter."""

    name = "codex"

    def __init__(self, settings: CodexSettings, prices: PriceTable | None = None,
                 verbose: bool = False, environ: dict[str, str] | None = None):
        self._hold(settings, prices, verbose, environ)
        self.lock = settings.lock()
        self.bundle: AgentBundle | None = None

    def info(self) -> AgentInfo:
        config = self.settings.model_dump(mode="json")
        config["npm"] = self.lock.manifest()
        if self.bundle is not None:
            config["bundle"] = {"tag": self.bundle.tag, "image_id": self.bundle.image_id,
                                "installed_sha256": sha256_hex(read_bundle_file(
                                    self.bundle, "installed.json")),
                                "reports": read_bundle_file(self.bundle, "version.txt").strip()}
        return AgentInfo(name=self.name, version=self.settings.version,
                         model=self.settings.endpoint.model, config=config)

    def secret_env(self) -> dict[str, str]:
        return {KEY_VARIABLE: self.model_key()}

    def routed_settings(self) -> CodexSettings:
        return self.settings.model_copy(update={"endpoint": self.routed_endpoint()})

    def prepare(self, log: Log, context: PrepareContext) -> AgentPrep:
        package_json, package_lock = self.lock.package_json(), self.lock.package_lock()
        recipe = BundleRecipe(agent=self.name, version=self.settings.version,
                              install_command=install_command(),
                              source_digest=sha256_hex(package_json, package_lock),
                              base_image_id=context.base_image_id,
                              toolchain_command=context.toolchain_command)
        with tempfile.TemporaryDirectory(prefix="isobench-codex-src-") as tmp:
            (Path(tmp) / "package.json").write_text(package_json)
            (Path(tmp) / "package-lock.json").write_text(package_lock)
            self.bundle = ensure_bundle(recipe, context, log, src=Path(tmp))
        return AgentPrep(mounts=[self.bundle.mount()],
                         network=self.routed_endpoint().sandbox_network())

    def run(self, sandbox: Sandbox, task: AgentTask, out_dir: Path, log: Log) -> AgentRun:
        assert self.bundle is not None, "prepare() first"
        config = codex_config(self.routed_settings())
        (out_dir / CONFIG_NAME).write_text(config)
        sandbox.check(f"mkdir -p {CODEX_HOME}")
        sandbox.put_file(f"{CODEX_HOME}/config.toml", config.encode())
        sandbox.put_file(TASK_PATH, task.prompt.encode())
        result = run_agent_process(
            sandbox, codex_command(self.bundle.bundle_dir, task.repo_dir),
            budget_s=task.budget_s, workdir=task.repo_dir, out_dir=out_dir,
            env=codex_env(self.bundle.bundle_dir), secret_env=self.secret_env(), log=log,
            verbose=self.verbose, label="codex")
        redactor = Redactor(self.secret_env().values())
        events = copy_out(sandbox, EVENTS_PATH, out_dir / EVENTS_NAME, redactor)
        session = copy_out(sandbox, SESSION_COPY_PATH, out_dir / SESSION_NAME, redactor)
        artifacts = [AGENT_STDOUT_NAME, AGENT_STDERR_NAME, CONFIG_NAME]
        artifacts += [name for name, data in ((EVENTS_NAME, events), (SESSION_NAME, session))
                      if data is not None]
        return read_codex_run(result, task, events, session, artifacts=artifacts,
                              cost=lambda usage: costed(usage, self.settings.endpoint.model,
                                                        self.prices))
