"""OpenHands end to end: the real `openhands` CLI 1.16.0 from PyPI in its bundle (200 packages
installed from the lock, each sha256 checked), on the demo, through the gateway to the scripted
server (Chat Completions via litellm).

Its CLI takes Python 3.12 only and the OS base has 3.13, so the bundle is built on a CPython
3.12 install prefix of this host: ISOBENCH_OPENHANDS_PYTHON, else the first that
`--agent-python`'s own check would suggest (a pyenv or uv 3.12). Without one these tests skip,
except under `.ci/run` (ISOBENCH_CI=1), where that is a failure.

The tool names (`terminal` with `command` and `security_risk`, `finish` with `message`) are
those of openhands-tools/openhands-sdk 1.21.0's default agent, as OpenHands sent them here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from executor.parts import demo
from executor.runs.agent_python import AGENT_PYTHON_NEEDS, candidate_prefixes
from executor.testing.llm_script import LlmScript, call, fail, reply
from executor.testing.scripted_llm import ScriptedLLM
from tests.conftest import rid, run_cli

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
                                                  f"{ALLOCATOR}", security_risk="LOW"))
FINISH = reply(None, call("finish", message="Done."))


def run_openhands(tmp_path: Path, name: str, turns: list, *extra: str):
    run_id = rid(name)
    state = tmp_path / "state"
    with ScriptedLLM(LlmScript(turns=turns, api_key=SecretStr(KEY), models=[MODEL])) as llm:
        out = run_cli("run-commit", demo.DEMO_HUMAN_SHA, "--agent", "openhands", "--model",
                      MODEL, "--base-url", llm.base_url, "--api-key-env", KEY_ENV,
                      "--agent-python", python_prefix(), "--state-dir",
                      str(state), "--run-id", run_id, "--skip-bench", "--retry-wait-max", "0",
                      *extra, env={KEY_ENV: KEY}, timeout=3600)
    item = state / "runs" / "demo" / "openhands" / MODEL / run_id / "demo-0000"
    return out, item, llm


def test_openhands_edits_and_finishes(docker_engine, base_image, tmp_path):
    out, item, _ = run_openhands(tmp_path, "oh-edit", [EDIT, FINISH])
    assert out.returncode == 0, out.stderr[-3000:]
    [attempt] = json.loads((item / "journal.json").read_text())["attempts"]
    assert attempt["agent_outcome"] == "finished"
    assert "+# openhands was here" in (item / "model_patch.diff").read_text()
    files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert not [str(p) for p in files if KEY.encode() in p.read_bytes()]


def test_a_provider_refusing_for_good_is_exit_16(docker_engine, base_image, tmp_path):
    # The bundle's settings file turns the SDK's own retries off: it made 15 calls over about
    # two minutes before. What is left is the OpenAI client's own (3 calls, within seconds).
    out, item, llm = run_openhands(tmp_path, "oh-quota", [fail("insufficient_quota")] * 6)
    assert out.returncode == 16, out.stderr[-3000:]
    assert len([r for r in llm.requests if r.method == "POST"]) <= 3
    [attempt] = json.loads((item / "journal.json").read_text())["attempts"]
    assert attempt["signature"]["name"] == "quota_exhausted"


def test_a_spent_token_budget_ends_budget_exhausted_and_keeps_the_patch(docker_engine,
                                                                       base_image, tmp_path):
    out, item, _ = run_openhands(tmp_path, "oh-budget", [EDIT, FINISH],
                              "--attempt-token-budget", "100")
    assert out.returncode == 14, out.stderr[-3000:]
    [attempt] = json.loads((item / "journal.json").read_text())["attempts"]
    assert attempt["signature"]["name"] == "budget_exhausted"
    assert "+# openhands was here" in (item / "model_patch.diff").read_text()
