"""Claude Code (npm `@anthropic-ai/claude-code`) in the sandbox, headless (`claude -p`), against
the Anthropic Messages API: the controller's gateway, or an endpoint named with --base-url.

Facts this adapter is built on (2.1.332, checked against the scripted Messages server):
  * the npm package is a wrapper whose postinstall only copies the native executable of the
    platform package (`@anthropic-ai/claude-code-linux-x64`, a self-contained ELF that needs
    glibc and nothing else) over its placeholder `bin/claude.exe`. The bundle does the same
    without npm: both tarballs come from the npm registry, each checked against its pinned
    integrity (the sha512 npm itself checks), so no Node is needed, at build or at run time;
  * `ANTHROPIC_BASE_URL` (without /v1) points it at the gateway, `ANTHROPIC_API_KEY` carries
    the attempt token (sent as `x-api-key`); it streams `/v1/messages` with `anthropic-version`
    and a list of `anthropic-beta` flags the gateway passes on;
  * `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`: no telemetry, error reports or update checks
    (the sandbox has no route out but the gateway); `CLAUDE_CODE_MAX_RETRIES` bounds its own
    retries (0 here: a refusal reaches the controller, which classifies and retries);
  * as root, `--dangerously-skip-permissions` needs `IS_SANDBOX=1`;
  * it writes its state under $HOME (`.claude/`, `.claude.json`): HOME is a directory outside
    the repository, so nothing of it can enter the patch;
  * the ending is in its stream-json record (claude_code_record.py), never in the exit code.
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

from pydantic import BaseModel, Field

from executor.core.pricing import PriceTable
from executor.core.redact import Redactor
from executor.engine.images import sha256_hex
from executor.engine.sandbox import Sandbox
from executor.parts.agents.base import (AgentInfo, AgentPrep, AgentRun, AgentTask, Log,
                                        PrepareContext)
from executor.parts.agents.bundle import AgentBundle, BundleRecipe, ensure_bundle, read_bundle_file
from executor.parts.agents.claude_code_record import read_claude_result
from executor.parts.agents.llm_common import (RUN_DIR, Endpoint, RoutedModel, costed,
                                              process_ending, run_agent_process)
from executor.records.state import AGENT_STDERR_NAME, AGENT_STDOUT_NAME

NPM_REGISTRY = "https://registry.npmjs.org"


class NpmArtifact(BaseModel):
    """One npm tarball, pinned by name, version and the registry's integrity string."""

    name: str = Field(description="Package name, e.g. @anthropic-ai/claude-code.")
    version: str = Field(description="Exact version.")
    integrity: str = Field(description="The registry's `dist.integrity` (sha512, base64).")

    @property
    def tarball_url(self) -> str:
        return f"{NPM_REGISTRY}/{self.name}/-/{self.name.split('/')[-1]}-{self.version}.tgz"


CLAUDE_CODE_VERSION = "2.1.332"
# From the registry's package documents (dist.integrity), 2026-12-07.
CLAUDE_CODE_PACKAGE = NpmArtifact(
    name="@anthropic-ai/claude-code", version=CLAUDE_CODE_VERSION,
    integrity="sha512-tvSh6bLvEbd97APD31AnojOrRC3AmcRj5R8sF8QIQitu3x2ucOb1kKmTkGDw41kjva+CGJfpkt"
              "+wYouk6yv56Q==")
CLAUDE_CODE_NATIVE = NpmArtifact(
    name="@anthropic-ai/claude-code-linux-x64", version=CLAUDE_CODE_VERSION,
    integrity="sha512-f4JWhzwYutJIHScC7/dYOPX6s28tt7ZADhsOi8zwOHq5fFPEuUeChh2NMfinSg0GrUckYxaeebC"
              "4h0DqiKzLcw==")

CLAUDE_HOME = f"{RUN_DIR}/claude-home"
TASK_PATH = f"{RUN_DIR}/task.txt"
ANTHROPIC_API_BASE = "https://api.anthropic.com/v1"
KEY_VARIABLE = "ANTHROPIC_API_KEY"  # what Claude Code reads; sent as x-api-key

# Bash run in the bundle image with $BUNDLE_DIR set: fetch, check integrity, unpack.
_FETCH = ('fetch() { curl -fsSL --retry 3 --cacert /etc/isobench/ca-bundle.crt -o "$3" "$1"; '
          'got="sha512-$(python3 -c \'import base64,hashlib,sys; '
          'print(base64.b64encode(hashlib.sha512(open(sys.argv[1],"rb").read()).digest())'
          '.decode())\' "$3")"; '
          'if [ "$got" != "$2" ]; then echo "integrity mismatch for $1: $got" >&2; exit 1; fi; }')


def install_command(package: NpmArtifact, native: NpmArtifact) -> str:
    """The wrapper package (kept for its package.json: it names the native package and
    version it expects), the native executable from the platform package, both integrity-
    checked; a lock file recording what was installed; a smoke test (`--version`)."""
    lock = {"packages": [a.model_dump() for a in (package, native)]}
    return " && ".join([
        _FETCH,
        'mkdir -p "$BUNDLE_DIR/bin" "$BUNDLE_DIR/package" /tmp/cc-native',
        f'fetch {package.tarball_url} {package.integrity} /tmp/cc-package.tgz',
        'tar -xzf /tmp/cc-package.tgz -C "$BUNDLE_DIR/package" --strip-components=1',
        # The wrapper must ask for exactly the native package pinned here.
        'python3 -c \'import json,sys; deps=json.load(open(sys.argv[1]))'
        '["optionalDependencies"]; assert deps[sys.argv[2]] == sys.argv[3], deps\' '
        f'"$BUNDLE_DIR/package/package.json" {native.name} {native.version}',
        f'fetch {native.tarball_url} {native.integrity} /tmp/cc-native.tgz',
        'tar -xzf /tmp/cc-native.tgz -C /tmp/cc-native package/claude',
        'install -m 0755 /tmp/cc-native/package/claude "$BUNDLE_DIR/bin/claude"',
        'rm -rf /tmp/cc-package.tgz /tmp/cc-native.tgz /tmp/cc-native',
        f"printf '%s\\n' {shlex.quote(_json(lock))} > \"$BUNDLE_DIR/npm-lock.json\"",
        'HOME=/tmp/cc-smoke "$BUNDLE_DIR/bin/claude" --version | tee "$BUNDLE_DIR/version.txt"',
        f'grep -qF {shlex.quote(package.version)} "$BUNDLE_DIR/version.txt"',
        'rm -rf /tmp/cc-smoke',
    ])


def _json(data: dict) -> str:
    import json

    return json.dumps(data, sort_keys=True)


class ClaudeCodeSettings(BaseModel):
    """Everything isobench decides about a Claude Code run (no secrets)."""

    endpoint: Endpoint = Field(description="Model, Messages API URL (ending in /v1), key var.")
    package: NpmArtifact = Field(default=CLAUDE_CODE_PACKAGE, description="The npm wrapper.")
    native: NpmArtifact = Field(default=CLAUDE_CODE_NATIVE,
                                description="The platform package with the executable.")
    max_turns: int | None = Field(default=None, ge=1, description="--max-turns; None: no limit.")
    max_retries: int = Field(default=0, ge=0, description="CLAUDE_CODE_MAX_RETRIES: its own "
                                                          "retries of a failed model call.")

    @property
    def version(self) -> str:
        return self.package.version

    def process_base_url(self) -> str | None:
        """ANTHROPIC_BASE_URL: the endpoint without its /v1 (Claude Code adds /v1/messages)."""
        url = self.endpoint.base_url
        return url.rstrip("/").removesuffix("/v1") if url else None


def claude_command(settings: ClaudeCodeSettings, bundle_dir: str) -> str:
    """The bash line that runs Claude Code headless; the task comes on stdin (long,
    multi-line), the key is not here but in this one process's environment."""
    argv = [f"{bundle_dir}/bin/claude", "-p", "--output-format", "stream-json", "--verbose",
            "--model", settings.endpoint.model, "--dangerously-skip-permissions",
            "--no-session-persistence"]
    if settings.max_turns:
        argv += ["--max-turns", str(settings.max_turns)]
    return " ".join(shlex.quote(a) for a in argv) + f" < {TASK_PATH}"


def claude_env(settings: ClaudeCodeSettings) -> dict[str, str]:
    """Non-secret environment of the claude process (see the module docstring)."""
    env = {"HOME": CLAUDE_HOME, "IS_SANDBOX": "1",
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
           "CLAUDE_CODE_MAX_RETRIES": str(settings.max_retries),
           # Background calls (titles, summaries) go to the same model, not a Haiku the
           # endpoint may not serve.
           "ANTHROPIC_SMALL_FAST_MODEL": settings.endpoint.model,
           "ANTHROPIC_DEFAULT_HAIKU_MODEL": settings.endpoint.model,
           "NO_COLOR": "1", "TERM": "dumb"}
    if (url := settings.process_base_url()) is not None:
        env["ANTHROPIC_BASE_URL"] = url
    return env


class ClaudeCodeAgent(RoutedModel):
    """The `claude-code` adapter."""

    name = "claude-code"

    def __init__(self, settings: ClaudeCodeSettings, prices: PriceTable | None = None,
                 verbose: bool = False, environ: dict[str, str] | None = None):
        self._hold(settings, prices, verbose, environ)
        self.bundle: AgentBundle | None = None

    def model_upstream(self):
        from executor.parts.upstream import Upstream

        return Upstream(base_url=self.endpoint.base_url or ANTHROPIC_API_BASE,
                        api_key=self._key, api_key_env=self.endpoint.api_key_env,
                        model=self.endpoint.model, prices=self.prices, wire="anthropic")

    def info(self) -> AgentInfo:
        config = self.settings.model_dump(mode="json")
        if self.bundle is not None:
            config["bundle"] = {"tag": self.bundle.tag, "image_id": self.bundle.image_id,
                                "npm_lock_sha256": sha256_hex(
                                    read_bundle_file(self.bundle, "npm-lock.json"))}
        return AgentInfo(name=self.name, version=self.settings.version,
                         model=self.settings.endpoint.model, config=config)

    def secret_env(self) -> dict[str, str]:
        return {KEY_VARIABLE: self.model_key()}

    def routed_settings(self) -> ClaudeCodeSettings:
        return self.settings.model_copy(update={"endpoint": self.routed_endpoint()})

    def prepare(self, log: Log, context: PrepareContext) -> AgentPrep:
        recipe = BundleRecipe(agent=self.name, version=self.settings.version,
                              install_command=install_command(self.settings.package,
                                                              self.settings.native),
                              source_digest=hashlib.sha256(
                                  (self.settings.package.integrity +
                                   self.settings.native.integrity).encode()).hexdigest(),
                              base_image_id=context.base_image_id,
                              toolchain_command=context.toolchain_command)
        self.bundle = ensure_bundle(recipe, context, log)
        return AgentPrep(mounts=[self.bundle.mount()],
                         network=self.routed_endpoint().sandbox_network())

    def run(self, sandbox: Sandbox, task: AgentTask, out_dir: Path, log: Log) -> AgentRun:
        assert self.bundle is not None, "prepare() first"
        settings = self.routed_settings()
        sandbox.put_file(TASK_PATH, task.prompt.encode())
        sandbox.check(f"mkdir -p {CLAUDE_HOME}", 30)
        result = run_agent_process(
            sandbox, claude_command(settings, self.bundle.bundle_dir), budget_s=task.budget_s,
            workdir=task.repo_dir, out_dir=out_dir, env=claude_env(settings),
            secret_env=self.secret_env(), log=log, verbose=self.verbose, label="claude")
        redactor = Redactor(self.secret_env().values())
        stdout = redactor.text(_read(out_dir / AGENT_STDOUT_NAME))
        outcome = read_claude_result(stdout, redactor.text(_read(out_dir / AGENT_STDERR_NAME)))
        usage = costed(outcome.usage, settings.endpoint.model, self.prices)
        common = dict(usage=usage, exit_code=result.exit_code, duration_s=result.duration_s,
                      steps=outcome.turns, artifacts=[AGENT_STDOUT_NAME, AGENT_STDERR_NAME])
        if result.timed_out:  # killed at the budget, whatever its record says so far
            return process_ending(result, task, outcome.has_result, "claude-code", **common)
        detail = (f"claude-code: {outcome.subtype or 'no result'}"
                  f"{' / ' + outcome.terminal_reason if outcome.terminal_reason else ''}")
        if not outcome.has_result:
            detail = "claude-code printed no result line (crashed at start-up or killed)"
        return AgentRun(ending=outcome.ending, signature=outcome.signature, detail=detail,
                        **common)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
