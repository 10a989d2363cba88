"""The real TRAE in a sandbox on the demo, against the scripted server (Responses API).

Opt-in: TRAE's source is never part of this repository and GitHub is not reachable here, and
its lock file needs Python 3.12 (the sandbox base has 3.13). Set
    ISOBENCH_TRAE_SOURCE  a checkout or bare mirror holding the pinned revision
    ISOBENCH_TRAE_PYTHON  a relocatable CPython 3.12 install prefix for the bundle
to run these. They prove the adapter's whole path: bundle, config, key through the exec-time
environment, outcome from the trajectory, and that with `--must-patch` on, a committed change
still ends up in the harness patch while the run is named by its real cause.
"""

import json
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from executor.parts import demo
from executor.parts.agents.trae import TRAE_REVISION, TraeSettings
from executor.parts.agents.trae_adapter import TraeAgent
from executor.runs.attempts import RetryPolicy, run_commit_with_retries
from executor.runs.pipeline import RunOptions
from executor.runs.resolve import resolve_job
from executor.testing.llm_script import LlmScript, call, reply
from executor.testing.scripted_llm import ScriptedLLM

SOURCE = os.environ.get("ISOBENCH_TRAE_SOURCE")
PYTHON = os.environ.get("ISOBENCH_TRAE_PYTHON")
pytestmark = [pytest.mark.docker,
              pytest.mark.skipif(not (SOURCE and PYTHON),
                                 reason="ISOBENCH_TRAE_SOURCE / ISOBENCH_TRAE_PYTHON not set")]

KEY = "sk-isobench-test-trae-5d1c0e9a7b3f4400"
FILE = "/workspace/repo/minivllm/block_allocator.py"


def run_trae(tmp_path: Path, turns: list, run_id: str, **settings):
    with ScriptedLLM(LlmScript(turns=turns, api_key=SecretStr(KEY))) as llm:
        agent = TraeAgent(TraeSettings(model="scripted-model", base_url=llm.base_url,
                                       source=SOURCE, revision=TRAE_REVISION, max_retries=0,
                                       max_steps=10, **settings),
                          python=Path(PYTHON), environ={"OPENAI_API_KEY": KEY})
        options = RunOptions(state_dir=tmp_path / "state", run_id=run_id, skip_bench=True,
                             agent_budget_s=600)
        lines: list[str] = []
        outcome = run_commit_with_retries(resolve_job(demo.DEMO_HUMAN_SHA), agent, options,
                                          RetryPolicy(max_attempts=2, backoff_base_s=0),
                                          log=lines.append)
        requests = llm.requests
    return outcome, requests, lines


def edit_call():
    return call("bash", command=f"printf '\\n# trae was here\\n' >> {FILE}")


def test_trae_success_in_the_sandbox(docker_engine, base_image, tmp_path):
    outcome, requests, lines = run_trae(
        tmp_path, [reply("Editing.", edit_call()), reply("Done.", call("task_done"))], "ok")
    assert outcome.status == "success", (outcome, lines[-5:])
    journal = json.loads((outcome.item_dir / "journal.json").read_text())
    attempt = journal["attempts"][-1]
    assert attempt["agent_outcome"] == "finished" and attempt["usage"]["llm_calls"] == 2
    assert "+# trae was here" in (outcome.item_dir / "model_patch.diff").read_text()
    assert [r.path for r in requests] == ["/v1/responses"] * 2
    manifest = json.loads((outcome.item_dir / "manifest.json").read_text())
    assert manifest["agent"]["version"] == TRAE_REVISION
    leaks = [p for p in (tmp_path / "state").rglob("*") if p.is_file()
             and KEY.encode() in p.read_bytes()]
    assert leaks == []


def test_must_patch_death_still_collects_the_committed_change(docker_engine, base_image,
                                                              tmp_path):
    turns = [reply(None, edit_call()),
             reply(None, call("bash", command="cd /workspace/repo && git add -A && "
                                               "git commit -qm faster")),
             reply("Done.", call("task_done")), reply("never reached")]
    outcome, requests, _ = run_trae(tmp_path, turns, "must-patch", must_patch=True)
    assert outcome.status == "agent_error"
    assert outcome.signature.name == "must_patch_tool_output_missing"
    journal = json.loads((outcome.item_dir / "journal.json").read_text())
    assert len(journal["attempts"]) == 1  # permanent: not retried
    assert "+# trae was here" in (outcome.item_dir / "model_patch.diff").read_text()
    assert [r.status for r in requests][-1] == 400
