"""The OpenHands adapter without Docker or OpenHands itself: the bundle recipe (wheels checked
by sha256 before install), the command and environment, option rules, and endings read from
conversation directories laid out as the OpenHands SDK 1.21.0 persists them (base_state.json,
events/event-NNNNN-<uuid>.json with each event's class under `kind`)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from executor.core.errors import UserInputError
from executor.parts.agents import LlmAgentOptions, make_agent
from executor.parts.agents.base import AgentEnding
from executor.parts.agents.llm_common import Endpoint
from executor.parts.agents.openhands import (
    LOCK_NAME,
    OpenHandsAgent,
    OpenHandsSettings,
    install_command,
    openhands_command,
    openhands_env,
)
from executor.parts.agents.openhands_events import conversation_dirs, read_conversation
from executor.parts.agents.openhands_lock import (
    OPENHANDS_REQUIREMENTS,
    lock_text,
    read_lock,
    render_lock,
)

KEY = "sk-unit-openhands-0123456789abcdef"


def conversation(root: Path, events: list[dict], status: str, *, prompt: int = 0,
                 completion: int = 0, calls: int = 0) -> Path:
    """A conversation dir as the SDK writes it."""
    folder = root / "conversations" / uuid.uuid4().hex
    (folder / "events").mkdir(parents=True)
    usage = {"model": "openai/m", "prompt_tokens": prompt, "completion_tokens": completion,
             "cache_read_tokens": 3, "cache_write_tokens": 0, "reasoning_tokens": 2}
    state = {"id": folder.name, "execution_status": status, "stats": {"usage_to_metrics": {
        "agent": {"model_name": "openai/m", "accumulated_cost": 0.0,
                  "accumulated_token_usage": usage,
                  "token_usages": [usage] * calls, "costs": [], "response_latencies": []}}}}
    (folder / "base_state.json").write_text(json.dumps(state))
    for index, event in enumerate(events):
        name = f"event-{index:05d}-{uuid.uuid4()}.json"
        (folder / "events" / name).write_text(json.dumps({"id": str(uuid.uuid4()), **event}))
    return folder


MESSAGE = {"kind": "MessageEvent", "source": "user"}
EDIT = {"kind": "ActionEvent", "source": "agent", "tool_name": "terminal"}
OBSERVED = {"kind": "ObservationEvent", "source": "environment", "tool_name": "terminal"}
FINISH = {"kind": "ActionEvent", "source": "agent", "tool_name": "finish"}


# PyPI's sha256 of the four OpenHands wheels, read off pypi.org when they were first pinned.
OPENHANDS_WHEEL_SHA256 = {
    "openhands==1.16.0": "e5495ddc76bff6ad8cf332b2e366c665f6735da31bc60fba9d430e19d11ffd3d",
    "openhands-sdk==1.21.0": "4bf77fe25c9dd4908f70fef2a2e90fede32ff555359ca08fe9f4f3a3acee930b",
    "openhands-tools==1.21.0":
        "97a0a910388881525e964165686a114d48cdb70788797f7048584d5aa839a61a",
    "openhands-workspace==1.11.1":
        "73f7f4423acf3b1d7116c3a523c04d1b3c185af9d91e0c5cf0666a7758251069",
}


def test_every_package_is_installed_from_the_lock_with_its_hash_checked():
    command = install_command()
    assert "--require-hashes" in command and "--no-deps" in command
    assert f"src/{LOCK_NAME}" in command and "freeze.txt" in command
    packages = {p.requirement: p for p in read_lock(lock_text())}
    assert len(packages) >= 150 and all(p.sha256 for p in packages.values())
    assert all(len(h) == 64 and int(h, 16) >= 0 for p in packages.values() for h in p.sha256)
    for requirement in OPENHANDS_REQUIREMENTS:
        assert OPENHANDS_WHEEL_SHA256[requirement] in packages[requirement].sha256


def test_the_lock_format_reads_back_what_was_written():
    written = [("b-pkg", "2.0", ["b" * 64]), ("A_pkg", "1.0", ["a" * 64, "c" * 64])]
    back = read_lock(render_lock(written))
    assert [(p.name, p.version, list(p.sha256)) for p in back] == sorted(
        written, key=lambda p: p[0].lower())


def test_the_manifest_names_the_lock_and_its_digest(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    agent = make_agent("openhands", llm=LlmAgentOptions(model="m"))
    lock = agent.info().config["lock"]
    assert len(lock["sha256"]) == 64 and "openhands==1.16.0" in lock["packages"]


def test_the_command_and_environment_hold_no_key(monkeypatch):
    monkeypatch.setenv("OH_UNIT_KEY", KEY)
    settings = OpenHandsSettings(endpoint=Endpoint(model="m", base_url="http://127.0.0.1:9/v1",
                                                   api_key_env="OH_UNIT_KEY"))
    agent = OpenHandsAgent(settings)
    env = openhands_env(settings, "/workspace/repo", "/opt/b", python=False)
    assert env["LLM_MODEL"] == "openai/m" and env["LLM_BASE_URL"] == "http://127.0.0.1:9/v1"
    assert env["OPENHANDS_WORK_DIR"] == "/workspace/repo"
    words = openhands_command("/opt/b") + json.dumps(env) + json.dumps(agent.info().model_dump())
    assert KEY not in words and "--headless" in words and "--override-with-envs" in words
    assert agent.secret_env() == {"LLM_API_KEY": KEY}


def test_option_rules(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert isinstance(make_agent("openhands", llm=LlmAgentOptions(model="m")), OpenHandsAgent)
    with pytest.raises(UserInputError, match="no step-limit"):
        make_agent("openhands", llm=LlmAgentOptions(model="m", max_steps=3))
    with pytest.raises(UserInputError, match="pins 1.16.0"):
        make_agent("openhands", llm=LlmAgentOptions(model="m", revision="1.0.0"))


def test_a_finish_action_is_finished_with_the_accumulated_usage(tmp_path):
    folder = conversation(tmp_path, [MESSAGE, EDIT, OBSERVED, FINISH], "finished",
                          prompt=900, completion=40, calls=3)
    outcome = read_conversation(folder)
    assert outcome.ending == AgentEnding.FINISHED and outcome.signature is None
    assert outcome.steps == 2
    assert (outcome.usage.input_tokens, outcome.usage.output_tokens) == (900, 40)
    assert outcome.usage.cached_input_tokens == 3 and outcome.usage.llm_calls == 3


def test_max_iterations_is_max_steps(tmp_path):
    error = {"kind": "ConversationErrorEvent", "source": "environment",
             "code": "MaxIterationsReached",
             "detail": "Agent reached maximum iterations limit (500)."}
    outcome = read_conversation(conversation(tmp_path, [MESSAGE, EDIT, error], "error"))
    assert outcome.ending == AgentEnding.MAX_STEPS and outcome.signature.name == "max_steps"


@pytest.mark.parametrize("code,detail,name", [
    ("LLMRateLimitError", ("litellm.RateLimitError: OpenAIException - You exceeded your "
                           "current quota, please check your plan"), "quota_exhausted"),
    ("LLMRateLimitError", "litellm.RateLimitError: rate limited", "rate_limit"),
    ("LLMBadRequestError", "isobench budget exhausted: this attempt has used 10 of 5 tokens",
     "budget_exhausted"),
    ("LLMAuthenticationError", "Incorrect API key provided", "auth"),
    ("LLMServiceUnavailableError", "upstream gone", "provider_unavailable"),
])
def test_a_conversation_error_is_named_by_its_code_and_detail(tmp_path, code, detail, name):
    error = {"kind": "ConversationErrorEvent", "source": "environment", "code": code,
             "detail": detail}
    outcome = read_conversation(conversation(tmp_path, [MESSAGE, error], "error"))
    assert outcome.ending == AgentEnding.ERROR and outcome.signature.name == name


def test_a_tool_error_that_ends_the_record_is_a_tool_error(tmp_path):
    failed = {"kind": "AgentErrorEvent", "source": "agent", "tool_name": "terminal",
              "error": "terminal session died"}
    outcome = read_conversation(conversation(tmp_path, [MESSAGE, EDIT, failed], "running"))
    assert outcome.signature.name == "agent_tool_error"


def test_stuck_and_unfinished_records_are_not_successes(tmp_path):
    stuck = read_conversation(conversation(tmp_path, [MESSAGE, EDIT, OBSERVED], "stuck"))
    assert stuck.ending == AgentEnding.ERROR and stuck.signature.name == "agent_stuck"
    running = read_conversation(conversation(tmp_path, [MESSAGE, EDIT], "running"))
    assert running.signature.name == "agent_stopped_mid_turn"


def test_no_conversation_is_a_crash_at_start_up(tmp_path):
    assert conversation_dirs(tmp_path / "missing") == []
    outcome = read_conversation(None, "Traceback ...\nModuleNotFoundError: No module named 'x'")
    assert outcome.ending == AgentEnding.ERROR
    assert outcome.signature.name == "agent_startup_failed"


def test_events_are_read_in_index_order_and_a_half_written_one_is_skipped(tmp_path):
    folder = conversation(tmp_path, [MESSAGE, EDIT, FINISH], "running")
    (folder / "events" / f"event-00003-{uuid.uuid4()}.json").write_text('{"kind": "Act')
    assert read_conversation(folder).ending == AgentEnding.FINISHED
    assert conversation_dirs(tmp_path) == [folder]


def test_a_conversation_the_real_openhands_wrote_reads_as_finished():
    folder = Path(__file__).resolve().parents[1] / "fixtures" / "openhands" / "edit_finished"
    assert conversation_dirs(folder.parent) == [folder]
    outcome = read_conversation(folder)
    assert outcome.ending == AgentEnding.FINISHED and outcome.status == "finished"
    assert outcome.steps == 2 and outcome.usage.llm_calls == 2  # terminal edit, finish
    assert outcome.usage.input_tokens > 0 and outcome.usage.output_tokens > 0
