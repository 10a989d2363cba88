"""OpenHands end to end: the real `openhands` CLI 1.16.0 from PyPI in its bundle (200 packages
installed from the lock, each sha256 checked), on the demo, through the gateway to the scripted
server (Chat Completions via litellm).

Its CLI takes Python 3.12 only and the OS base has 3.13, so the bundle is built on a CPython
3.12 install prefix of this host: ISOBENCH_OPENHANDS_PYTHON, else the first that
`--agent-python`'s own check would suggest (a pyenv or uv 3.12). Without one these tests skip,
except under `.ci/run` (ISOBENCH_CI=1), where that is a failure.

Scenarios, as for the other CLI agents: a real edit ends `finished` with the provider's usage;
a provider refusing for good (insufficient_quota) is exit 16; a spent token budget ends
`budget_exhausted` with the patch kept; the key's text, base64 and hex forms are nowhere in the
sandbox, the state dir, the console, the bundle image or what reaches the model.

The tool names (`terminal` with `command` and `security_risk`, `finish` with `message`) are
those of openhands-tools/openhands-sdk 1.21.0's default agent, as OpenHands sent them here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from executor.engine.images import sha256_hex
from executor.parts import demo
from executor.parts.agents.openhands_lock import lock_text
from executor.runs.agent_python import AGENT_PYTHON_NEEDS, candidate_prefixes
from executor.testing.llm_script import LlmScript, TurnUsage, call, fail, reply
from tests.conftest import rid, run_cli
from tests.integration.agent_evidence import (WatchingLLM, attempts, bundle_image_shows, holds,
                                              scenario_row)

pytestmark = pytest.mark.docker


def python_prefix() -> str:
    given = os.environ.get("ISOBENCH_OPENHANDS_PYTHON")
    if given:
        return given
    found = candidate_prefixes(AGENT_PYTHON_NEEDS["openhands"])
    if found:
        return str(found[0])
    message = "no CPython 3.12 on this host (set ISOBENCH_OPENHANDS_PYTHON=<install prefix>)"
    if os.environ.get("ISOBENCH_CI") == "1":
        pytest.fail(message)
    pytest.skip(message)


KEY = "sk-isobench-openhands-8e1f5a2c7b"
KEY_ENV = "ISOBENCH_OPENHANDS_TEST_KEY"
MODEL = "scripted-model"
ALLOCATOR = "/workspace/repo/minivllm/block_allocator.py"
# The default agent's tools take a security_risk (LOW, MEDIUM, HIGH): without it the call is
# refused as invalid ("Failed to provide security_risk field in tool 'terminal'").
EDIT = reply("Editing.", call("terminal", command=f"printf '\\n# openhands was here\\n' >> "
                                                  f"{ALLOCATOR}", security_risk="LOW"),
             usage=TurnUsage(input_tokens=1500, output_tokens=40))
FINISH = reply(None, call("finish", message="Done."),
               usage=TurnUsage(input_tokens=1600, output_tokens=10))
# Every process environment in the sandbox, OpenHands' own among them: its output goes back to
# the model in the next request, as any command's output could.
SHOW_ENV = reply(None, call("terminal", command="cat /proc/[0-9]*/environ 2>/dev/null | tr "
                                                "'\\0' '\\n' | sort -u", security_risk="LOW"),
                 usage=TurnUsage(input_tokens=1000, output_tokens=20))


def run_openhands(tmp_path: Path, name: str, turns: list, *extra: str):
    """Serve `turns` (the key required), run OpenHands on the demo; (process, item, server)."""
    run_id = rid(name)
    state = tmp_path / "state"
    llm = WatchingLLM(LlmScript(turns=turns, api_key=SecretStr(KEY), models=[MODEL]), run_id)
    with llm:
        out = run_cli("run-commit", demo.DEMO_HUMAN_SHA, "--agent", "openhands", "--model",
                      MODEL, "--base-url", llm.base_url, "--api-key-env", KEY_ENV,
                      "--agent-python", python_prefix(), "--state-dir",
                      str(state), "--run-id", run_id, "--skip-bench", "--retry-wait-max", "0",
                      *extra, env={KEY_ENV: KEY}, timeout=1800)
    item = state / "runs" / "demo" / "openhands" / MODEL / run_id / "demo-0000"
    return out, item, llm


def model_calls(llm: WatchingLLM) -> list:
    return [r for r in llm.requests if r.method == "POST"]


@pytest.fixture(scope="module")
def edited(docker_engine, base_image, tmp_path_factory):
    """One recorded edit that the success and replay scenarios both read (a run of OpenHands
    costs about 10 s)."""
    tmp_path = tmp_path_factory.mktemp("openhands-edited")
    out, item, llm = run_openhands(tmp_path, "oh-edit", [EDIT, FINISH])
    return tmp_path, out, item, llm


def test_openhands_edits_and_finishes(edited):
    _, out, item, llm = edited
    print(scenario_row("openhands", "real edit", out, item))
    assert out.returncode == 0, out.stderr[-3000:]
    [attempt] = attempts(item)
    assert attempt["status"] == "success" and attempt["agent_outcome"] == "finished"
    assert "+# openhands was here" in (item / "model_patch.diff").read_text()
    # Usage: the provider's own counts, as the gateway read them from each answer.
    assert attempt["usage"]["input_tokens"] == 3100 and attempt["usage"]["output_tokens"] == 50
    assert attempt["model_traffic"]["calls"] == 2 == len(model_calls(llm))
    assert all(r.path == "/v1/chat/completions" for r in model_calls(llm))
    conversation = item / "attempt-1" / "openhands_conversation"
    assert list(conversation.rglob("base_state.json"))
    config = json.loads((item / "manifest.json").read_text())["agent"]["config"]
    assert config["lock"]["sha256"] == sha256_hex(lock_text())
    assert config["bundle"]["tag"].startswith("isobench/agent-openhands:")


def test_the_key_is_nowhere_in_the_sandbox_the_state_or_what_reaches_the_model(
        docker_engine, base_image, tmp_path):
    out, item, llm = run_openhands(tmp_path, "oh-keys", [SHOW_ENV, EDIT, FINISH])
    print(scenario_row("openhands", "key search", out, item))
    assert out.returncode == 0, out.stderr[-3000:]
    # The sandbox's configuration while the agent ran.
    assert llm.inspected.startswith("[") and '"Env"' in llm.inspected
    assert not holds(KEY, llm.inspected.encode())
    # The environments went back to the model: OpenHands holds the attempt token, not the key.
    answered = b"".join(llm.raw[2:])
    assert b"LLM_API_KEY=isobench-attempt-" in answered and KEY_ENV.encode() not in answered
    assert llm.raw and not [raw for raw in llm.raw if holds(KEY, raw)]
    files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert len(files) > 5 and not [str(p) for p in files if holds(KEY, p.read_bytes())]
    assert not holds(KEY, (out.stdout + out.stderr).encode())
    assert not holds(KEY, bundle_image_shows(item).encode())


def test_a_recorded_attempt_replays_offline_to_the_same_patch(edited, tmp_path):
    """OpenHands mints a prompt_cache_key and states the time in every request; the gateway's
    Chat Completions replay key sets those aside (gateway/chat_key.py), so the recorded answers
    serve the rerun with no provider and no key. (A run whose commands print per-run values,
    such as the key scenario's environments with the container's hostname, does not repeat
    itself: its replay ends replay_mismatch at the call after them.)"""
    _, out, item, _ = edited
    assert out.returncode == 0, out.stderr[-3000:]
    record = item / "attempt-1" / "model_calls.jsonl"
    run_id = rid("oh-replayed")
    out = run_cli("run-commit", demo.DEMO_HUMAN_SHA, "--agent", "openhands", "--model", MODEL,
                  "--api-key-env", KEY_ENV, "--gateway-replay", str(record),
                  "--agent-python", python_prefix(), "--state-dir", str(tmp_path / "state"),
                  "--run-id", run_id, "--skip-bench", "--retry-wait-max", "0",
                  env={KEY_ENV: ""}, timeout=1800)
    again = tmp_path / "state" / "runs" / "demo" / "openhands" / MODEL / run_id / "demo-0000"
    print(scenario_row("openhands", "replayed offline, no key", out, again))
    assert out.returncode == 0, out.stderr[-3000:]
    assert (again / "model_patch.diff").read_bytes() == (item / "model_patch.diff").read_bytes()
    [attempt] = attempts(again)
    assert attempt["model_traffic"]["calls"] == 2 and attempt["model_traffic"]["answered_ok"] == 2


def test_a_provider_refusing_for_good_is_exit_16(docker_engine, base_image, tmp_path):
    # The bundle's settings file turns the SDK's own retries off: it made 15 calls over about
    # two minutes before. What is left is the OpenAI client's own (3 calls, within seconds).
    out, item, llm = run_openhands(tmp_path, "oh-quota", [fail("insufficient_quota")] * 6)
    print(scenario_row("openhands", "provider refuses (quota)", out, item))
    assert out.returncode == 16, out.stderr[-3000:]
    [attempt] = attempts(item)  # quota is permanent: one attempt
    assert attempt["signature"]["name"] == "quota_exhausted"
    assert len(model_calls(llm)) <= 3


def test_a_spent_token_budget_ends_budget_exhausted_and_keeps_the_patch(docker_engine,
                                                                       base_image, tmp_path):
    out, item, llm = run_openhands(tmp_path, "oh-budget", [EDIT, FINISH],
                                   "--attempt-token-budget", "100")
    print(scenario_row("openhands", "token budget spent", out, item))
    assert out.returncode == 14, out.stderr[-3000:]
    [attempt] = attempts(item)
    assert attempt["signature"]["name"] == "budget_exhausted"
    assert attempt["model_traffic"]["budget_exhausted"] is True and llm.turns_served == 1
    assert "+# openhands was here" in (item / "model_patch.diff").read_text()
