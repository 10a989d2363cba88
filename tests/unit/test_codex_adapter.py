"""The Codex CLI adapter without Docker: its pins as npm reads them, the config.toml it writes,
the command line, and endings read from records the real Codex 0.171.0 wrote
(tests/fixtures/codex, made against the scripted server)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from executor.core.errors import UserInputError
from executor.engine.sandbox import ExecResult
from executor.parts.agents import LlmAgentOptions, make_agent
from executor.parts.agents.base import AgentEnding, AgentTask
from executor.parts.agents.codex import (
    CODEX_LOCK,
    CODEX_VERSION,
    KEY_VARIABLE,
    CodexAgent,
    CodexSettings,
    codex_command,
    codex_config,
    codex_env,
    install_command,
)
from executor.parts.agents.codex_events import read_codex_events, read_codex_run
from executor.parts.agents.llm_common import Endpoint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codex"
KEY = "sk-unit-codex-0123456789abcdef"
TASK = AgentTask(item_id="demo-0000", repo_dir="/workspace/repo", scratch_dir="/s",
                 prompt="make it faster", budget_s=600)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def settings(base_url: str | None = "http://127.0.0.1:9/v1") -> CodexSettings:
    return CodexSettings(endpoint=Endpoint(model="gpt-5", base_url=base_url,
                                           api_key_env="CODEX_UNIT_KEY"))


# ----------------------------------------------------------------------- pins


def test_the_lock_pins_every_tarball_by_integrity_and_installs_one_platform():
    lock = json.loads(CODEX_LOCK.package_lock())
    package = json.loads(CODEX_LOCK.package_json())
    assert package["dependencies"] == {"@openai/codex": CODEX_VERSION}  # exact, no range
    entries = {path: entry for path, entry in lock["packages"].items() if path}
    assert len(entries) == 7
    assert all(e["integrity"].startswith("sha512-") and len(e["integrity"]) == 95
               for e in entries.values())
    main = entries["node_modules/@openai/codex"]
    assert main["optionalDependencies"]["@openai/codex-linux-x64"] == \
        f"npm:@openai/codex@{CODEX_VERSION}-linux-x64"
    linux = entries["node_modules/@openai/codex-linux-x64"]
    assert linux["os"] == ["linux"] and linux["cpu"] == ["x64"] and linux["optional"] is True
    assert {e["integrity"] for e in entries.values()} == \
        {pin["integrity"] for pin in CODEX_LOCK.manifest()}


def test_the_bundle_installs_with_npm_ci_from_the_lock_and_checks_the_binary():
    command = install_command()
    assert "npm ci" in command and "npm install" not in command
    assert "--ignore-scripts" in command and "version.txt" in command


def test_another_codex_version_is_refused_until_it_is_pinned():
    with pytest.raises(UserInputError, match="pins @openai/codex"):
        CodexSettings(endpoint=Endpoint(model="m"), version="0.1.0").lock()


# ----------------------------------------------------------------------- config and command


def test_the_config_points_at_the_gateway_over_responses_with_no_retries_of_its_own():
    config = tomllib.loads(codex_config(settings()))
    provider = config["model_providers"][config["model_provider"]]
    assert provider["base_url"] == "http://127.0.0.1:9/v1" and provider["wire_api"] == "responses"
    assert provider["env_key"] == KEY_VARIABLE
    assert provider["request_max_retries"] == 0 and provider["stream_max_retries"] == 0
    assert config["model"] == "gpt-5" and config["approval_policy"] == "never"
    assert config["analytics"] == {"enabled": False}
    assert config["check_for_update_on_startup"] is False


def test_without_a_base_url_the_provider_is_openai():
    provider = tomllib.loads(codex_config(settings(None)))["model_providers"]["isobench"]
    assert provider["base_url"] == "https://api.openai.com/v1"


def test_the_key_is_only_in_the_exec_environment(monkeypatch):
    monkeypatch.setenv("CODEX_UNIT_KEY", KEY)
    agent = CodexAgent(settings())
    assert agent.secret_env() == {KEY_VARIABLE: KEY}
    words = codex_command("/opt/b", "/workspace/repo") + json.dumps(codex_env("/opt/b"))
    words += codex_config(agent.routed_settings()) + json.dumps(agent.info().model_dump())
    assert KEY not in words
    agent.route_models(type("Route", (), {"base_url": "http://gw/v1", "api_key": "tok"})())
    assert agent.secret_env() == {KEY_VARIABLE: "tok"}
    assert "http://gw/v1" in codex_config(agent.routed_settings())


def test_the_command_reads_the_prompt_from_a_file_and_keeps_the_exit_status():
    command = codex_command("/opt/b", "/workspace/repo")
    assert "set -o pipefail" in command and "exec --json" in command
    assert "< /opt/isobench/run/task.txt" in command and "exit $status" in command
    assert "--dangerously-bypass-approvals-and-sandbox" in command


def test_make_agent_codex_refuses_a_step_limit_and_trae_options(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert isinstance(make_agent("codex", llm=LlmAgentOptions(model="gpt-5")), CodexAgent)
    with pytest.raises(UserInputError, match="no step limit"):
        make_agent("codex", llm=LlmAgentOptions(model="gpt-5", max_steps=5))
    with pytest.raises(UserInputError, match="needs --model"):
        make_agent("codex", llm=LlmAgentOptions())
    with pytest.raises(UserInputError, match="TRAE's option"):
        make_agent("codex", llm=LlmAgentOptions(model="gpt-5", must_patch=True))


# ----------------------------------------------------------------------- endings


def test_a_completed_turn_is_finished_with_its_usage_and_model_calls():
    outcome = read_codex_events(fixture("edit_events.jsonl"), fixture("edit_session.jsonl"))
    assert outcome.ending == AgentEnding.FINISHED and outcome.signature is None
    assert outcome.steps == 1 and outcome.last_message == "Done."
    assert outcome.usage.input_tokens == 20774 and outcome.usage.output_tokens == 12
    assert outcome.usage.llm_calls == 2  # two token_usage_records in the session log


def test_the_model_metadata_warning_item_ends_nothing():
    events = fixture("edit_events.jsonl").decode()
    assert '"type":"error"' in events  # the warning item is there, and yet:
    assert read_codex_events(events).ending == AgentEnding.FINISHED


@pytest.mark.parametrize("name,signature_name,error_class", [
    ("quota_events.jsonl", "quota_exhausted", "permanent"),
    ("rate_limit_events.jsonl", "rate_limit", "retryable"),
    ("bad_request_events.jsonl", "invalid_request", "permanent"),
    ("failed_in_stream_events.jsonl", "provider_unavailable", "retryable"),
    ("context_window_events.jsonl", "context_overflow", "permanent"),
])
def test_a_failed_turn_is_named_from_its_message(name, signature_name, error_class):
    outcome = read_codex_events(fixture(name))
    assert outcome.ending == AgentEnding.ERROR and outcome.turn_end == "turn.failed"
    assert outcome.signature.name == signature_name
    assert outcome.signature.error_class == error_class
    assert outcome.signature.source == "codex_events"


def test_a_budget_refusal_is_named_budget_exhausted():
    outcome = read_codex_events(fixture("budget_like_events.jsonl"))
    assert outcome.signature.name == "budget_exhausted"


def test_no_event_at_all_is_a_crash_at_start_up_named_from_stderr():
    outcome = read_codex_events(b"", None, fixture("startup_stderr.txt").decode())
    assert outcome.ending == AgentEnding.ERROR and not outcome.started
    assert outcome.signature.name == "agent_startup_failed"
    assert "unknown configuration field" in "\n".join(
        fixture("startup_stderr.txt").decode().splitlines()[-5:])


def test_a_record_that_stops_mid_turn_is_not_a_success():
    events = ('{"type":"thread.started","thread_id":"t"}\n{"type":"turn.started"}\n'
              '{"type":"item.started","item":{"id":"i","type":"command_execution"}}\n')
    outcome = read_codex_events(events)
    assert outcome.ending == AgentEnding.ERROR
    assert outcome.signature.name == "agent_stopped_mid_turn"


def test_a_failed_tool_before_an_unnamed_failure_is_a_tool_error():
    events = ('{"type":"thread.started","thread_id":"t"}\n{"type":"turn.started"}\n'
              '{"type":"item.completed","item":{"id":"i","type":"command_execution",'
              '"status":"failed","exit_code":-1}}\n'
              '{"type":"turn.failed","error":{"message":"sandbox runtime gave up"}}\n')
    assert read_codex_events(events).signature.name == "agent_tool_error"


def test_the_exit_code_alone_decides_nothing():
    ok_events = fixture("edit_events.jsonl")
    for code in (0, 1):
        result = ExecResult(exit_code=code, stdout="", stderr="", duration_s=1.0)
        run = read_codex_run(result, TASK, ok_events, None, artifacts=[], cost=lambda u: u)
        assert run.ending == AgentEnding.FINISHED and run.exit_code == code
    killed = ExecResult(exit_code=124, stdout="", stderr="", duration_s=600, timed_out=True)
    run = read_codex_run(killed, TASK, ok_events, None, artifacts=[], cost=lambda u: u)
    assert run.ending == AgentEnding.TIMEOUT
